//! DPoP proofs (RFC 9449 §4): a JWT a client signs with its own key for one HTTP request,
//! sent in the `DPoP` header, the public key inside it. Tokens issued with one are bound to
//! that key (`cnf.jkt`, the key's RFC 7638 thumbprint), so a stolen token is useless
//! without the private key.
//!
//! [`VerifiedProof`] holds a proof whose every rule of §4.3 holds for one request (the
//! checks need no storage, so `lanyard::verify` applies them too); [`DpopProof`] is one
//! this server has also seen for the first time, on any replica (its `jti` recorded in the
//! database until the proof's `iat` leaves the window). Neither can be built otherwise.

use std::fmt;

use actix_web::HttpRequest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use serde_json::{Map, Value};

use super::client_signature::decode_json;
use super::dpop_nonce::NonceKey;
use crate::registry::client_keys::AssertionAlg;
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// `typ` of a DPoP proof (§4.2).
pub const PROOF_TYP: &str = "dpop+jwt";
/// The request header a proof travels in, and the response header a nonce does.
pub const DPOP_HEADER: &str = "DPoP";
pub const NONCE_HEADER: &str = "DPoP-Nonce";
/// Seconds a proof's `iat` may lie before or after "now" (plus the clock leeway): a proof is
/// made for one request, just before it is sent (§11.1).
pub const PROOF_WINDOW: i64 = 60;
/// The algorithms a proof may be signed with (asymmetric only: never `none` or an HMAC),
/// in the order `dpop_signing_alg_values_supported` lists them.
pub const ALGS: [AssertionAlg; 4] =
    [AssertionAlg::ES256, AssertionAlg::PS256, AssertionAlg::RS256, AssertionAlg::EdDSA];
/// The longest proof read (a proof with an RSA-4096 key is under 2 KiB).
const MAX_PROOF_BYTES: usize = 8 * 1024;
/// The longest `jti` accepted (it is stored hashed, so only to refuse absurd input).
const MAX_JTI_CHARS: usize = 512;
/// The smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;
/// JWK members only a private or symmetric key has (RFC 7518 §6, RFC 8037 §2): a proof
/// carries the public key (§4.3 item 7).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// `dpop_signing_alg_values_supported`, and the `algs` of a `DPoP` challenge.
pub fn algs_supported() -> Vec<&'static str> {
    ALGS.iter().map(|a| a.as_str()).collect()
}

/// Why a proof was refused, in words safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// `invalid_dpop_proof` (§7.1, §5).
    #[error("{0}")]
    Invalid(String),
    /// `use_dpop_nonce` (§8, §9): the proof lacks a nonce this server accepts; the answer
    /// carries a fresh one in `DPoP-Nonce`.
    #[error("{0}")]
    UseNonce(String),
}

fn invalid(reason: impl Into<String>) -> ProofError {
    ProofError::Invalid(reason.into())
}

/// What a proof must say to be accepted for one request.
pub struct ProofCheck<'a> {
    /// The request's method (`htm`, compared exactly).
    pub method: &'a str,
    /// The URLs the request may have been sent to (`htu`, compared after RFC 3986
    /// normalization, query and fragment dropped): the issuer's, and the back-channel
    /// one's when it differs.
    pub urls: &'a [String],
    /// "Now" on the verifier's clock, and the clock difference tolerated.
    pub now: i64,
    pub leeway: i64,
    /// The access token the proof is presented with, at a protected resource: its hash
    /// must be in `ath` (§4.3 item 12).
    pub access_token: Option<&'a str>,
    /// Nonces are required, and made by this key (§8).
    pub nonces: Option<&'a NonceKey>,
}

/// A proof whose signature, key and claims hold for the request it was checked against.
/// Whether its `jti` was seen before is the holder's next question.
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    jkt: String,
    jti: String,
    replay_until: i64,
}

impl VerifiedProof {
    /// Checks `raw` (the `DPoP` header's value) by every rule of RFC 9449 §4.3 but the
    /// replay check.
    pub fn verify(raw: &str, check: &ProofCheck<'_>) -> Result<Self, ProofError> {
        if raw.len() > MAX_PROOF_BYTES {
            return Err(invalid("the DPoP proof is too long"));
        }
        let mut parts = raw.split('.');
        let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(invalid("the DPoP proof is not a compact JWS (three parts)"));
        };
        let header = decode_json(header).ok_or_else(|| invalid("the DPoP proof header is not a JSON object"))?;
        let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
        if !typ.eq_ignore_ascii_case(PROOF_TYP) {
            return Err(invalid(format!("the DPoP proof's typ is {typ:?}, not {PROOF_TYP}")));
        }
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("none");
        let alg = AssertionAlg::parse(alg_name).filter(|a| ALGS.contains(a)).ok_or_else(|| {
            invalid(format!("alg {alg_name:?} is not accepted for DPoP proofs (use {})", algs_supported().join(", ")))
        })?;
        // No extension is understood, so none may be critical (RFC 7515 §4.1.11).
        if header.contains_key("crit") {
            return Err(invalid("the DPoP proof header has crit, and no extension is supported"));
        }
        let jwk = header.get("jwk").and_then(Value::as_object).ok_or_else(|| invalid("the DPoP proof has no jwk"))?;
        let jkt = public_key_thumbprint(jwk, alg)?;
        let key = Jwk::from_map(jwk.clone()).map_err(|_| invalid("the DPoP proof's jwk is malformed"))?;
        let verifier = alg.verifier(&key).map_err(|_| invalid(format!("the jwk cannot verify {alg}")))?;
        let (payload, _) = josekit::jws::deserialize_compact(raw, verifier.as_ref())
            .map_err(|_| invalid("the DPoP proof's signature does not verify with its jwk"))?;
        let claims: Map<String, Value> =
            serde_json::from_slice(&payload).map_err(|_| invalid("the DPoP proof's payload is not a JSON object"))?;
        let (jti, iat) = check_claims(&claims, check)?;
        Ok(Self { jkt, jti: jti.to_owned(), replay_until: iat.saturating_add(PROOF_WINDOW + check.leeway + 1) })
    }

    /// The RFC 7638 SHA-256 thumbprint of the proof's key (base64url): `cnf.jkt`.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// The proof's `jti`: a second proof with it, under the same key, is a replay.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// Until when a replay of this proof must be caught by its `jti`: afterwards its `iat`
    /// refuses it.
    pub fn replay_until(&self) -> i64 {
        self.replay_until
    }
}

/// A number claim (integer, or a finite float as some libraries write times).
fn number(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    let value = claims.get(name)?;
    value.as_i64().or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// §4.2 and §4.3 items 8–12, in that order; returns `jti` and `iat`.
fn check_claims<'c>(claims: &'c Map<String, Value>, check: &ProofCheck<'_>) -> Result<(&'c str, i64), ProofError> {
    let string = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = string("jti").filter(|j| !j.is_empty()).ok_or_else(|| invalid("the DPoP proof has no jti"))?;
    if jti.chars().count() > MAX_JTI_CHARS {
        return Err(invalid(format!("the DPoP proof's jti is longer than {MAX_JTI_CHARS} characters")));
    }
    let htm = string("htm").ok_or_else(|| invalid("the DPoP proof has no htm"))?;
    if htm != check.method {
        return Err(invalid(format!("the DPoP proof's htm is {htm:?}, but this request is a {}", check.method)));
    }
    let htu = string("htu").ok_or_else(|| invalid("the DPoP proof has no htu"))?;
    let normalized = normalize_htu(htu);
    if normalized.is_none() || !check.urls.iter().any(|u| normalize_htu(u) == normalized) {
        let expected = check.urls.first().map(String::as_str).unwrap_or_default();
        return Err(invalid(format!("the DPoP proof's htu {htu:?} is not this endpoint ({expected})")));
    }
    if let Some(key) = check.nonces {
        match string("nonce") {
            None => return Err(ProofError::UseNonce("this server requires a nonce in DPoP proofs".into())),
            Some(nonce) if !key.accepts(nonce, check.now) => {
                return Err(ProofError::UseNonce("the DPoP proof's nonce is not (or no longer) valid".into()));
            }
            Some(_) => {}
        }
    }
    let iat = number(claims, "iat").ok_or_else(|| invalid("the DPoP proof has no iat"))?;
    let window = PROOF_WINDOW + check.leeway;
    if iat > check.now.saturating_add(window) {
        return Err(invalid(format!("the DPoP proof's iat is {} seconds in the future", iat - check.now)));
    }
    if iat < check.now.saturating_sub(window) {
        return Err(invalid(format!(
            "the DPoP proof was made {} seconds ago; a proof is good for {window} seconds",
            check.now - iat
        )));
    }
    if let Some(token) = check.access_token {
        let expected = access_token_hash(token);
        match string("ath") {
            None => return Err(invalid("the DPoP proof has no ath (the hash of the access token)")),
            Some(ath) if ath != expected => {
                return Err(invalid("the DPoP proof's ath is not the hash of this access token"));
            }
            Some(_) => {}
        }
    }
    Ok((jti, iat))
}

/// `ath` (§4.2): base64url(SHA-256(the access token's ASCII)).
pub fn access_token_hash(access_token: &str) -> String {
    crate::crypto::sha256_b64(access_token.as_bytes())
}

/// The RFC 7638 thumbprint of a proof's `jwk`, after checking that it is a public key of a
/// type `alg` can use: RSA (2048 bits at least), EC P-256, or OKP Ed25519.
fn public_key_thumbprint(jwk: &Map<String, Value>, alg: AssertionAlg) -> Result<String, ProofError> {
    if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(invalid(format!("the DPoP proof's jwk holds the private member {private:?}: send the public key")));
    }
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| invalid(format!("the DPoP proof's jwk has no {name}")))
    };
    let kty = member("kty")?;
    // Canonical JSON: the required members in lexicographic order, no whitespace, each
    // value serialized (escaped) by serde_json.
    let text = |v: &str| Value::String(v.to_owned()).to_string();
    let canonical = match (alg, kty) {
        (AssertionAlg::RS256 | AssertionAlg::PS256, "RSA") => {
            let n = member("n")?;
            let bytes = URL_SAFE_NO_PAD.decode(n).map_err(|_| invalid("the jwk's n is not base64url"))?;
            let significant = bytes.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return Err(invalid("the DPoP proof's RSA key is shorter than 2048 bits"));
            }
            format!(r#"{{"e":{},"kty":"RSA","n":{}}}"#, text(member("e")?), text(n))
        }
        (AssertionAlg::ES256, "EC") if member("crv")? == "P-256" => {
            format!(r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#, text(member("x")?), text(member("y")?))
        }
        (AssertionAlg::EdDSA, "OKP") if member("crv")? == "Ed25519" => {
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":{}}}"#, text(member("x")?))
        }
        _ => return Err(invalid(format!("the DPoP proof's jwk (kty {kty:?}) is not a key for {alg}"))),
    };
    Ok(URL_SAFE_NO_PAD.encode(openssl::sha::sha256(canonical.as_bytes())))
}

/// `htu` as compared (§4.3 item 9): syntax- and scheme-based normalization (RFC 3986
/// §6.2.2, §6.2.3: lower-case scheme and host, no default port, no dot segments, `/` for
/// an empty path, percent-encodings upper-case and decoded where they stand for an
/// unreserved character), without query and fragment. `None` for anything but an absolute
/// http(s) URL.
pub fn normalize_htu(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    let mut normalized = url.origin().ascii_serialization();
    let path = url.path().as_bytes();
    let mut i = 0;
    while i < path.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (path[i], path.get(i + 1).copied().and_then(hex), path.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                let byte = (high * 16 + low) as u8;
                if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                    normalized.push(byte as char);
                } else {
                    normalized.push_str(&format!("%{byte:02X}"));
                }
                i += 3;
            }
            (byte, _, _) => {
                normalized.push(byte as char);
                i += 1;
            }
        }
    }
    Some(normalized)
}

/// The `DPoP` header of a request: `None` when there is none; one at most (§4.3 item 2).
pub fn proof_header(req: &HttpRequest) -> Result<Option<&str>, ProofError> {
    let mut values = req.headers().get_all(DPOP_HEADER);
    let Some(first) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(invalid("send one DPoP header, not several"));
    }
    first.to_str().map(Some).map_err(|_| invalid("the DPoP header is not a compact JWS"))
}

/// A proof this server accepted: verified for its request, and seen for the first time.
#[derive(Debug, Clone)]
pub struct DpopProof {
    jkt: String,
}

/// Why a request's proof was not accepted: the proof's fault, or the store's.
#[derive(Debug)]
pub enum DpopRefusal {
    Proof(ProofError),
    Unavailable(StoreError),
}

impl From<ProofError> for DpopRefusal {
    fn from(e: ProofError) -> Self {
        Self::Proof(e)
    }
}

impl From<StoreError> for DpopRefusal {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e)
    }
}

impl fmt::Display for DpopRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Proof(e) => write!(f, "{e}"),
            Self::Unavailable(e) => write!(f, "{e}"),
        }
    }
}

impl DpopProof {
    /// Records `proof`'s `jti` under its key until it can no longer be accepted: a proof
    /// presented twice, to any replica, is refused the second time (§11.1).
    pub async fn accept(proof: VerifiedProof, store: &Store) -> Result<Self, DpopRefusal> {
        if !store.consume_dpop_jti(&proof.jkt, &proof.jti, proof.replay_until).await? {
            return Err(invalid("this DPoP proof was already used (its jti was seen before)").into());
        }
        Ok(Self { jkt: proof.jkt })
    }

    /// The thumbprint of the key the proof showed possession of (RFC 7638, base64url).
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// Whether the proof showed the key a token or code is bound to (`jkt`).
    pub fn proves(&self, jkt: &str) -> bool {
        crate::crypto::constant_time_eq(self.jkt.as_bytes(), jkt.as_bytes())
    }

    /// The proof sent with `req` to this server's `path` (`/token`, `/userinfo`), checked
    /// and accepted; `None` when the request has none. `access_token`: the token the proof
    /// must be about (at a protected resource).
    pub async fn from_request(
        req: &HttpRequest,
        state: &AppState,
        path: &str,
        access_token: Option<&str>,
    ) -> Result<Option<Self>, DpopRefusal> {
        let Some(raw) = proof_header(req)? else { return Ok(None) };
        let config = &state.config;
        let mut urls = vec![config.issuer.endpoint(path)];
        if let Some(backchannel) = &config.backchannel_url {
            urls.push(backchannel.endpoint(path));
        }
        let nonces = if config.dpop_nonce { Some(nonce_key(state).await?) } else { None };
        let check = ProofCheck {
            method: req.method().as_str(),
            urls: &urls,
            now: state.now(),
            leeway: config.clock_leeway,
            access_token,
            nonces,
        };
        let verified = VerifiedProof::verify(raw, &check)?;
        Ok(Some(Self::accept(verified, &state.store).await?))
    }
}

/// The nonce key, loaded on first use (and then held: it never changes).
pub async fn nonce_key(state: &AppState) -> Result<&NonceKey, StoreError> {
    state.dpop_nonce_key.get_or_try_init(|| NonceKey::load(&state.store)).await
}

/// The nonce to send in `DPoP-Nonce` with a response, when nonces are required. A store
/// failure leaves it out (the request it answers fails on the store anyway).
pub async fn current_nonce(state: &AppState) -> Option<String> {
    if !state.config.dpop_nonce {
        return None;
    }
    match nonce_key(state).await {
        Ok(key) => Some(key.current(state.now())),
        Err(e) => {
            tracing::warn!(error = %e, "cannot load the DPoP nonce key");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_is_compared_after_normalization_without_query_or_fragment() {
        let same = [
            ("https://Server.Example.COM:443/token", "https://server.example.com/token"),
            ("HTTPS://server.example.com/a/../token?x=1#f", "https://server.example.com/token"),
            ("https://server.example.com/%7Etoken", "https://server.example.com/~token"),
            ("https://server.example.com/a%2fb", "https://server.example.com/a%2Fb"),
            ("http://127.0.0.1:80", "http://127.0.0.1/"),
        ];
        for (a, b) in same {
            assert_eq!(normalize_htu(a), normalize_htu(b), "{a} = {b}");
            assert!(normalize_htu(a).is_some());
        }
        let different = [
            ("https://server.example.com/token", "http://server.example.com/token"),
            ("https://server.example.com/token", "https://server.example.com:8443/token"),
            ("https://server.example.com/token", "https://server.example.com/token/"),
            ("https://server.example.com/token", "https://server.example.com/Token"),
        ];
        for (a, b) in different {
            assert_ne!(normalize_htu(a), normalize_htu(b), "{a} != {b}");
        }
        for bad in ["/token", "urn:x:y", "ftp://server.example.com/token", ""] {
            assert_eq!(normalize_htu(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_thumbprint_is_rfc_7638s_and_private_or_weak_keys_are_refused() {
        // RFC 7638 §3.1's example key.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwk: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256"})).unwrap();
        assert_eq!(
            public_key_thumbprint(&jwk, AssertionAlg::RS256).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        let mut private = jwk.clone();
        private.insert("d".into(), Value::String("secret".into()));
        assert!(public_key_thumbprint(&private, AssertionAlg::RS256).unwrap_err().to_string().contains("private"));
        assert!(public_key_thumbprint(&jwk, AssertionAlg::ES256).is_err(), "an RSA key for ES256");
        let mut short = jwk.clone();
        short.insert("n".into(), Value::String(n[..172].into()));
        assert!(public_key_thumbprint(&short, AssertionAlg::RS256).unwrap_err().to_string().contains("2048"));
        let hmac: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"kty": "oct", "k": "c2VjcmV0"})).unwrap();
        assert!(public_key_thumbprint(&hmac, AssertionAlg::ES256).is_err());
    }
}
