//! Tokens an API must refuse, for the test lab: each [`Defect`] turns an otherwise perfect
//! access token for an API into one that a correct verifier rejects, so that an API's own
//! tests can prove it does (`lanyard token mint --defect`, `POST /admin/api/tokens/mint`,
//! `TestIdp::mint_defective`, and `lanyard check-api`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jws::{ES256, HS256, JwsHeader, RS256};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::claims::ACCESS_TOKEN_TYP;
use super::keys::{KeyError, KeyRing, SigningAlg};

/// What is wrong with a defective token, on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Defect {
    /// The user's id_token for the client, presented as a bearer token.
    IdToken,
    /// `aud` names another API.
    WrongAudience,
    /// `typ: JWT` instead of `at+jwt` (RFC 9068 §4): indistinguishable from an id_token.
    TypJwt,
    /// `alg: none`, no signature.
    AlgNone,
    /// HS256 keyed with the server's public key (the RS256/HS256 confusion attack).
    Hs256PublicKey,
    /// Signed by the server's key, but the header names a `kid` the JWKS does not have.
    UnknownKid,
    /// Signed by a key that is not in the JWKS, under the `kid` of one that is.
    ForeignKey,
    /// The signature does not match (one bit flipped).
    BadSignature,
    /// `exp` an hour ago.
    Expired,
    /// `nbf` an hour from now.
    NotYetValid,
    /// `iat` an hour from now.
    IssuedInFuture,
    /// `iss` is another server.
    WrongIssuer,
    /// Valid, but without the scopes asked for: an API must answer 403 `insufficient_scope`.
    MissingScope,
    /// Valid in form, but revoked: only an API that introspects can tell.
    Revoked,
}

impl Defect {
    pub const ALL: [Defect; 14] = [
        Self::IdToken,
        Self::WrongAudience,
        Self::TypJwt,
        Self::AlgNone,
        Self::Hs256PublicKey,
        Self::UnknownKid,
        Self::ForeignKey,
        Self::BadSignature,
        Self::Expired,
        Self::NotYetValid,
        Self::IssuedInFuture,
        Self::WrongIssuer,
        Self::MissingScope,
        Self::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdToken => "id_token",
            Self::WrongAudience => "wrong_audience",
            Self::TypJwt => "typ_jwt",
            Self::AlgNone => "alg_none",
            Self::Hs256PublicKey => "hs256_public_key",
            Self::UnknownKid => "unknown_kid",
            Self::ForeignKey => "foreign_key",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::WrongIssuer => "wrong_issuer",
            Self::MissingScope => "missing_scope",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == raw)
    }

    /// The HTTP status a correct API answers: 403 for a token without the scope, else 401.
    pub fn expected_status(self) -> u16 {
        if self == Self::MissingScope { 403 } else { 401 }
    }

    /// What is wrong, in words.
    pub fn description(self) -> &'static str {
        match self {
            Self::IdToken => "an id_token presented as an access token",
            Self::WrongAudience => "aud names another API",
            Self::TypJwt => "typ is JWT, not at+jwt",
            Self::AlgNone => "alg none, no signature",
            Self::Hs256PublicKey => "HS256 keyed with the server's public key",
            Self::UnknownKid => "a kid the JWKS does not have",
            Self::ForeignKey => "signed by a key not in the JWKS, under a real kid",
            Self::BadSignature => "the signature does not match",
            Self::Expired => "exp an hour ago",
            Self::NotYetValid => "nbf an hour from now",
            Self::IssuedInFuture => "iat an hour from now",
            Self::WrongIssuer => "iss is another server",
            Self::MissingScope => "without the scopes asked for",
            Self::Revoked => "revoked (only introspection tells)",
        }
    }
}

impl std::fmt::Display for Defect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where defective tokens point when they must name something that is not this server.
pub const WRONG_ISSUER: &str = "https://wrong-issuer.lanyard.invalid";
pub const WRONG_AUDIENCE: &str = "https://wrong-audience.lanyard.invalid/api";

/// Rewrites a perfect access token into one with `defect`. `IdToken`, `MissingScope` and
/// `Revoked` are made by the minting itself (what is minted, what is recorded), not here:
/// for them the token is returned as it is.
pub fn rewrite(perfect: &str, defect: Defect, ring: &KeyRing, now: i64) -> Result<String, KeyError> {
    let broken = |what: &str| KeyError::Crypto(format!("the minted token cannot be rewritten: {what}"));
    let (header, mut claims) = decode(perfect).ok_or_else(|| broken("not a JWS"))?;
    let alg: SigningAlg =
        header.get("alg").and_then(Value::as_str).and_then(|a| a.parse().ok()).ok_or_else(|| broken("unknown alg"))?;
    let kid = header.get("kid").and_then(Value::as_str).unwrap_or_default().to_owned();
    let lifetime = claims.get("exp").and_then(Value::as_i64).unwrap_or(now + 3600)
        - claims.get("iat").and_then(Value::as_i64).unwrap_or(now);
    let mut set = |name: &str, value: Value| {
        claims.insert(name.to_owned(), value);
    };
    match defect {
        Defect::IdToken | Defect::MissingScope | Defect::Revoked => return Ok(perfect.to_owned()),
        Defect::WrongAudience => set("aud", Value::from(WRONG_AUDIENCE)),
        Defect::WrongIssuer => set("iss", Value::from(WRONG_ISSUER)),
        Defect::Expired => {
            set("iat", Value::from(now - 2 * 3600));
            set("exp", Value::from(now - 3600));
        }
        Defect::NotYetValid => set("nbf", Value::from(now + 3600)),
        Defect::IssuedInFuture => {
            set("iat", Value::from(now + 3600));
            set("exp", Value::from(now + 3600 + lifetime));
        }
        Defect::TypJwt => return ring.sign(alg, "JWT", &claims),
        Defect::UnknownKid => {
            return ring.sign_as(alg, ACCESS_TOKEN_TYP, Some(&format!("unknown-{}", uuid::Uuid::new_v4())), &claims);
        }
        Defect::AlgNone => {
            let header = serde_json::json!({"alg": "none", "typ": ACCESS_TOKEN_TYP});
            return Ok(format!("{}.{}.", encode(&header), encode(&Value::Object(claims))));
        }
        Defect::BadSignature => {
            let (signed, signature) = perfect.rsplit_once('.').ok_or_else(|| broken("no signature"))?;
            let mut bytes = URL_SAFE_NO_PAD.decode(signature).map_err(|_| broken("signature not base64url"))?;
            if let Some(first) = bytes.first_mut() {
                *first ^= 0x01;
            }
            return Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes)));
        }
        Defect::Hs256PublicKey => {
            let pem = public_pem(ring, &kid).ok_or_else(|| broken("the signing key is not in the JWKS"))?;
            let signer = HS256.signer_from_bytes(&pem).map_err(|e| KeyError::Crypto(e.to_string()))?;
            return compact(&claims, "HS256", &kid, &signer);
        }
        Defect::ForeignKey => {
            let crypto = |e: josekit::JoseError| KeyError::Crypto(e.to_string());
            return match alg {
                SigningAlg::RS256 => {
                    let pair = RS256.generate_key_pair(2048).map_err(crypto)?;
                    compact(&claims, "RS256", &kid, &RS256.signer_from_der(pair.to_der_private_key()).map_err(crypto)?)
                }
                SigningAlg::ES256 => {
                    let pair = ES256.generate_key_pair().map_err(crypto)?;
                    compact(&claims, "ES256", &kid, &ES256.signer_from_der(pair.to_der_private_key()).map_err(crypto)?)
                }
            };
        }
    }
    ring.sign(alg, ACCESS_TOKEN_TYP, &claims)
}

fn compact(
    claims: &Map<String, Value>,
    alg: &str,
    kid: &str,
    signer: &dyn josekit::jws::JwsSigner,
) -> Result<String, KeyError> {
    let mut header = JwsHeader::new();
    header.set_algorithm(alg);
    header.set_token_type(ACCESS_TOKEN_TYP);
    header.set_key_id(kid);
    let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Crypto(e.to_string()))?;
    josekit::jws::serialize_compact(&payload, &header, signer).map_err(|e| KeyError::Crypto(e.to_string()))
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn decode(token: &str) -> Option<(Map<String, Value>, Map<String, Value>)> {
    let mut parts = token.split('.');
    let part = |p: Option<&str>| -> Option<Map<String, Value>> {
        match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p?).ok()?).ok()? {
            Value::Object(map) => Some(map),
            _ => None,
        }
    };
    Some((part(parts.next())?, part(parts.next())?))
}

/// The PEM (SubjectPublicKeyInfo) of the published key `kid`: the bytes a verifier that
/// trusts the token's `alg` would use as an HMAC key.
fn public_pem(ring: &KeyRing, kid: &str) -> Option<Vec<u8>> {
    use openssl::bn::BigNum;
    let jwks: Value = serde_json::from_slice(&ring.jwks()).ok()?;
    let key = jwks["keys"].as_array()?.iter().find(|k| k["kid"] == kid)?;
    let member = |name: &str| BigNum::from_slice(&URL_SAFE_NO_PAD.decode(key[name].as_str()?).ok()?).ok();
    match key["kty"].as_str()? {
        "RSA" => openssl::rsa::Rsa::from_public_components(member("n")?, member("e")?).ok()?.public_key_to_pem().ok(),
        "EC" => {
            let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).ok()?;
            let (x, y) = (member("x")?, member("y")?);
            let ec = openssl::ec::EcKey::from_public_key_affine_coordinates(&group, &x, &y).ok()?;
            ec.public_key_to_pem().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::Defect;

    #[test]
    fn defects_have_one_name_each_and_parse_back() {
        for defect in Defect::ALL {
            assert_eq!(Defect::parse(defect.as_str()), Some(defect));
            assert_eq!(serde_json::to_value(defect).unwrap(), defect.as_str());
        }
        assert_eq!(Defect::parse("nonsense"), None);
        assert_eq!(Defect::MissingScope.expected_status(), 403);
        assert_eq!(Defect::Expired.expected_status(), 401);
    }
}
