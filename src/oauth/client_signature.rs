//! JWSs a client signs with one of its registered keys (an inline JWK Set, or a `jwks_uri`
//! fetched and cached, fetched again once when a `kid` is new): `private_key_jwt` client
//! assertions (RFC 7523) and request objects (OIDC Core §6, RFC 9101) are both checked
//! here, with the same rules on algorithms and keys.

use base64::Engine;
use josekit::jws::JwsHeader;
use serde_json::{Map, Value};

use super::client_jwks::JwksCache;
use crate::registry::client::Client;
use crate::registry::client_keys::{AssertionAlg, ClientJwks};

/// The algorithm a JWS must use: any of [`AssertionAlg::ALL`], or the one a client
/// registered (`setting` names that setting, for the reason given when another is used).
#[derive(Debug, Clone, Copy)]
pub struct AlgRule {
    pub registered: Option<AssertionAlg>,
    pub setting: &'static str,
}

/// The JSON object a base64url part of a compact JWS holds, if it is one.
pub fn decode_json(part: &str) -> Option<Map<String, Value>> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The protected header of a compact JWS, unverified.
pub fn header_of(raw: &str) -> Result<JwsHeader, String> {
    let first = raw.split('.').next().unwrap_or_default();
    let map = decode_json(first).ok_or("the JWS header is not a JSON object")?;
    JwsHeader::from_map(map).map_err(|e| format!("the JWS header is malformed ({e})"))
}

/// Verifies that `client` signed the compact JWS `raw` with one of its registered keys and
/// an algorithm `rule` allows; returns the payload. The reason for a refusal is safe to
/// log, and to tell the client (it names no key material).
pub async fn verify(raw: &str, client: &Client, jwks_cache: &JwksCache, rule: AlgRule) -> Result<Vec<u8>, String> {
    let header = header_of(raw)?;
    let alg_name = header.algorithm().unwrap_or("none");
    // Only asymmetric algorithms: `none` and HMAC (a public key taken for a secret) are
    // refused before any key is looked at.
    let alg = AssertionAlg::parse(alg_name).ok_or_else(|| format!("alg {alg_name:?} is not accepted"))?;
    if rule.registered.is_some_and(|registered| registered != alg) {
        return Err(format!("alg {alg} differs from the registered {}", rule.setting));
    }
    let kid = header.key_id();
    match (&client.jwks, &client.jwks_uri) {
        (Some(keys), _) => verify_with(raw, keys, alg, kid),
        (None, Some(uri)) => {
            let mut keys = jwks_cache.keys(uri).await?;
            if let Some(kid) = kid
                && !keys.has_kid(kid)
                && let Some(fresh) = jwks_cache.refetch_for_kid(uri, kid).await?
            {
                keys = fresh;
            }
            verify_with(raw, &keys, alg, kid)
        }
        (None, None) => Err("the client has no registered keys".into()),
    }
}

/// The verified payload, if one of the keys that may have signed verifies the signature.
fn verify_with(raw: &str, keys: &ClientJwks, alg: AssertionAlg, kid: Option<&str>) -> Result<Vec<u8>, String> {
    let mut tried = 0;
    for jwk in keys.candidates(alg, kid) {
        // A key whose own `alg`, `use` or `key_ops` rule out this algorithm is skipped.
        let Ok(verifier) = alg.verifier(jwk) else { continue };
        tried += 1;
        if let Ok((payload, _)) = josekit::jws::deserialize_compact(raw, verifier.as_ref()) {
            return Ok(payload);
        }
    }
    Err(match (tried, kid) {
        (0, Some(kid)) => format!("no registered {alg} key has the kid {kid:?}"),
        (0, None) => format!("no registered key can verify {alg}"),
        _ => "the signature does not verify with the registered keys".to_string(),
    })
}
