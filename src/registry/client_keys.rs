//! A client's public keys for `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9): an inline
//! JWK Set or a `jwks_uri`, and the algorithms a client assertion may be signed with:
//! asymmetric ones for `private_key_jwt`, HMACs keyed with the secret for
//! `client_secret_jwt`. The two never mix (a public key taken for an HMAC secret is the
//! algorithm-confusion attack).

use std::fmt;

use josekit::JoseError;
use josekit::jwk::Jwk;
use josekit::jws::alg::hmac::{HmacJwsAlgorithm, HmacJwsSigner};
use josekit::jws::{ES256, EdDSA, HS256, HS384, HS512, JwsAlgorithm, JwsSigner, JwsVerifier, PS256, RS256};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// The asymmetric algorithms a client assertion may use. `none` and HMAC are not among
/// them, by construction: a public key can never be taken for an HMAC secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum AssertionAlg {
    RS256,
    PS256,
    ES256,
    EdDSA,
}

impl AssertionAlg {
    pub const ALL: [AssertionAlg; 4] = [Self::RS256, Self::PS256, Self::ES256, Self::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }

    /// A verifier for `jwk` with this algorithm; fails when the key is of another type or
    /// curve, or its `use`/`alg`/`key_ops` say it is not for this (josekit checks them).
    pub fn verifier(self, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, String> {
        let verifier: Result<Box<dyn JwsVerifier>, _> = match self {
            Self::RS256 => RS256.verifier_from_jwk(jwk).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
            Self::PS256 => PS256.verifier_from_jwk(jwk).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
            Self::ES256 => ES256.verifier_from_jwk(jwk).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
            Self::EdDSA => EdDSA.verifier_from_jwk(jwk).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        };
        verifier.map_err(|e| e.to_string())
    }

    /// The algorithm family a key type can serve.
    fn fits(self, jwk: &Jwk) -> bool {
        match self {
            Self::RS256 | Self::PS256 => jwk.key_type() == "RSA",
            Self::ES256 => jwk.key_type() == "EC" && jwk.curve() == Some("P-256"),
            Self::EdDSA => jwk.key_type() == "OKP" && jwk.curve() == Some("Ed25519"),
        }
    }
}

impl fmt::Display for AssertionAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HMAC algorithms a `client_secret_jwt` assertion may use (RFC 7518 §3.2, OIDC Core
/// §9), keyed with the octets of the client's secret. Apart from [`AssertionAlg`] by
/// construction: nothing verifies an HMAC with a registered public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum MacAlg {
    HS256,
    HS384,
    HS512,
}

impl MacAlg {
    pub const ALL: [MacAlg; 3] = [Self::HS256, Self::HS384, Self::HS512];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }

    fn algorithm(self) -> HmacJwsAlgorithm {
        match self {
            Self::HS256 => HS256,
            Self::HS384 => HS384,
            Self::HS512 => HS512,
        }
    }

    /// RFC 7518 §3.2: the key is at least as long as the hash output (32, 48, 64 bytes).
    pub fn min_secret_bytes(self) -> usize {
        match self {
            Self::HS256 => 32,
            Self::HS384 => 48,
            Self::HS512 => 64,
        }
    }

    /// A verifier keyed with `secret`, comparing MACs in constant time; fails when the
    /// secret is shorter than [`MacAlg::min_secret_bytes`].
    pub fn verifier(self, secret: &[u8]) -> Result<Box<dyn JwsVerifier>, String> {
        let signer = self.algorithm().signer_from_bytes(secret).map_err(|e| e.to_string())?;
        Ok(Box::new(ConstantTimeMac { algorithm: self.algorithm(), signer }))
    }
}

impl fmt::Display for MacAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// josekit's own HMAC verifier (0.10) compares MACs with `!=`, which stops at the first
/// differing byte: its timing tells a caller how much of a forged MAC is right. This one
/// computes the MAC with josekit's signer and compares it with `crypto::constant_time_eq`.
#[derive(Debug, Clone)]
struct ConstantTimeMac {
    algorithm: HmacJwsAlgorithm,
    signer: HmacJwsSigner,
}

impl JwsVerifier for ConstantTimeMac {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &self.algorithm
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        let expected = self.signer.sign(message)?;
        if crate::crypto::constant_time_eq(&expected, signature) {
            Ok(())
        } else {
            Err(JoseError::InvalidSignature(anyhow::anyhow!("the MAC does not match")))
        }
    }

    fn box_clone(&self) -> Box<dyn JwsVerifier> {
        Box::new(self.clone())
    }
}

/// `token_endpoint_auth_signing_alg` (RFC 7591 §2): the one algorithm a client's
/// assertions may use, of the family its auth method verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthSigningAlg {
    /// For `private_key_jwt`.
    Key(AssertionAlg),
    /// For `client_secret_jwt`.
    Mac(MacAlg),
}

impl AuthSigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key(alg) => alg.as_str(),
            Self::Mac(alg) => alg.as_str(),
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        AssertionAlg::parse(raw).map(Self::Key).or_else(|| MacAlg::parse(raw).map(Self::Mac))
    }
}

impl fmt::Display for AuthSigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AuthSigningAlg {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The most keys one set may hold (a client rotating keys needs two or three).
pub const MAX_KEYS: usize = 20;

/// Members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1;
/// RFC 8037 §2): a client registers public keys only.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A validated JWK Set of a client's public keys.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientJwks {
    keys: Vec<Jwk>,
}

impl ClientJwks {
    /// Reads a JWK Set (RFC 7517 §5), refusing private members, symmetric keys, keys that
    /// cannot be loaded, and two keys with one `kid`. Keys of algorithms Lanyard does not
    /// verify (another curve, `use: enc`) are kept but never used.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let keys = value
            .as_object()
            .and_then(|o| o.get("keys"))
            .and_then(Value::as_array)
            .ok_or("must be a JWK Set: an object with a \"keys\" array")?;
        if keys.is_empty() || keys.len() > MAX_KEYS {
            return Err(format!("must hold 1 to {MAX_KEYS} keys"));
        }
        let mut parsed: Vec<Jwk> = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let map = key.as_object().ok_or_else(|| format!("key {i} is not an object"))?;
            if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| map.contains_key(**m)) {
                return Err(format!("key {i} has the private member {member:?}: register public keys only"));
            }
            let jwk = Jwk::from_map(map.clone()).map_err(|e| format!("key {i} is not a JWK ({e})"))?;
            let family = match (jwk.key_type(), jwk.curve()) {
                ("RSA", _) => Some(AssertionAlg::RS256),
                ("EC", Some("P-256")) => Some(AssertionAlg::ES256),
                ("OKP", Some("Ed25519")) => Some(AssertionAlg::EdDSA),
                ("EC" | "OKP", _) => None,
                (kty, _) => return Err(format!("key {i} has kty {kty:?}: use RSA, EC or OKP public keys")),
            };
            // Loading the key checks its members; `use: enc` keys are not for signatures.
            if let Some(alg) = family
                && jwk.key_use() != Some("enc")
            {
                // Its own `alg` (PS256 on an RSA key, say) is checked at verification.
                let mut plain = jwk.clone();
                let _ = plain.set_parameter("alg", None);
                alg.verifier(&plain).map_err(|e| format!("key {i} is not a usable public key ({e})"))?;
            }
            if let Some(kid) = jwk.key_id()
                && parsed.iter().any(|k| k.key_id() == Some(kid))
            {
                return Err(format!("two keys have the kid {kid:?}"));
            }
            parsed.push(jwk);
        }
        Ok(Self { keys: parsed })
    }

    /// Reads a JWK Set from its JSON text.
    pub fn parse_str(raw: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(raw).map_err(|e| format!("is not JSON ({e})"))?;
        Self::parse(&value)
    }

    /// The set as JSON (what was registered, in key order).
    pub fn to_value(&self) -> Value {
        let keys: Vec<Value> = self.keys.iter().map(|k| Value::Object(k.clone().into())).collect();
        serde_json::json!({ "keys": keys })
    }

    /// Whether some key carries `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.key_id() == Some(kid))
    }

    /// The keys that may have signed an assertion with `alg` and `kid`: the key with that
    /// kid, or without a kid every key of the algorithm's type (RFC 7515 §4.1.4: kid is
    /// optional). Encryption keys never verify anything.
    pub fn candidates(&self, alg: AssertionAlg, kid: Option<&str>) -> impl Iterator<Item = &Jwk> {
        self.keys
            .iter()
            .filter(move |k| kid.is_none_or(|kid| k.key_id() == Some(kid)))
            .filter(move |k| alg.fits(k) && k.key_use() != Some("enc"))
    }
}

impl Serialize for ClientJwks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

/// Checks a `jwks_uri`: `https`, or `http` on a loopback host (fetched only in dev mode).
pub fn parse_jwks_uri(raw: &str) -> Result<url::Url, String> {
    let url = parse_fetchable_url(raw)?;
    if url.fragment().is_some() {
        return Err("must not have a fragment or credentials".into());
    }
    Ok(url)
}

/// Checks a URL the server will fetch a client's document from (a `jwks_uri`, a
/// `request_uris` entry): absolute, `https`, or `http` on a loopback host (fetched only in
/// dev mode), no credentials. A fragment is the caller's to judge.
pub fn parse_fetchable_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|_| "must be an absolute URL".to_string())?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("must use https".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not have credentials".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rsa_public() -> Value {
        let pair = RS256.generate_key_pair(2048).unwrap();
        let mut jwk = pair.to_jwk_public_key();
        jwk.set_key_id("r1");
        Value::Object(jwk.into())
    }

    #[test]
    fn a_public_key_set_is_accepted_and_keys_are_found_by_kid_and_type() {
        let set = ClientJwks::parse(&json!({ "keys": [rsa_public()] })).unwrap();
        assert_eq!(set.candidates(AssertionAlg::RS256, Some("r1")).count(), 1);
        assert_eq!(set.candidates(AssertionAlg::PS256, None).count(), 1);
        assert_eq!(set.candidates(AssertionAlg::ES256, None).count(), 0);
        assert_eq!(set.candidates(AssertionAlg::RS256, Some("other")).count(), 0);
    }

    #[test]
    fn private_symmetric_and_malformed_sets_are_refused() {
        let pair = RS256.generate_key_pair(2048).unwrap();
        let private = Value::Object(pair.to_jwk_private_key().into());
        let cases = [
            (json!({ "keys": [private] }), "private member"),
            (json!({ "keys": [{"kty": "oct", "k": "c2VjcmV0"}] }), "private member"),
            (json!({ "keys": [{"kty": "RSA", "n": "AQAB"}] }), "not a usable"),
            (json!({ "keys": [] }), "1 to"),
            (json!([rsa_public()]), "JWK Set"),
            (json!({ "keys": [rsa_public(), rsa_public()] }), "two keys"),
        ];
        for (set, expected) in cases {
            let error = ClientJwks::parse(&set).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn mac_verifiers_need_a_long_enough_secret_and_check_the_mac() {
        let secret = [42u8; 64];
        for alg in MacAlg::ALL {
            assert!(alg.verifier(&secret[..alg.min_secret_bytes() - 1]).is_err(), "{alg}: short secret");
            let verifier = alg.verifier(&secret[..alg.min_secret_bytes()]).unwrap();
            let signer = alg.algorithm().signer_from_bytes(&secret[..alg.min_secret_bytes()]).unwrap();
            let mac = signer.sign(b"message").unwrap();
            assert!(verifier.verify(b"message", &mac).is_ok(), "{alg}");
            assert!(verifier.verify(b"massage", &mac).is_err(), "{alg}: another message");
            assert!(verifier.verify(b"message", &mac[..mac.len() - 1]).is_err(), "{alg}: truncated MAC");
        }
        assert_eq!(AuthSigningAlg::parse("HS384"), Some(AuthSigningAlg::Mac(MacAlg::HS384)));
        assert_eq!(AuthSigningAlg::parse("PS256"), Some(AuthSigningAlg::Key(AssertionAlg::PS256)));
        assert_eq!(AuthSigningAlg::parse("none"), None);
    }

    #[test]
    fn jwks_uris_must_be_https_unless_loopback() {
        assert!(parse_jwks_uri("https://rp.example/jwks").is_ok());
        assert!(parse_jwks_uri("http://127.0.0.1:8080/jwks").is_ok());
        assert!(parse_jwks_uri("http://rp.example/jwks").is_err());
        assert!(parse_jwks_uri("jwks").is_err());
    }
}
