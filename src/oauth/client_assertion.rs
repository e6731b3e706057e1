//! Client assertions (RFC 7523 §2.2 and §3, OIDC Core §9): a JWS whose claims name the
//! client (`iss` = `sub` = client_id), this server (`aud`), a short validity (`exp`) and a
//! single-use `jti`, either signed with one of the client's registered keys
//! (`private_key_jwt`) or MACed with its secret (`client_secret_jwt`). Which of the two a
//! client uses is its registration's choice, never the assertion's: the `alg` is checked
//! against the family of the client's method before any key is looked at, so a public key
//! is never taken for an HMAC secret, nor `none` for anything. The claims, their limits
//! and the replay check are the same for both.
//!
//! Every failure is reported to the caller as a bare `invalid_client`; the reason (a
//! [`Refused`]) goes to the server log, where an operator can see why a client fails.

use serde_json::{Map, Value};

use super::client_jwks::JwksCache;
use super::client_signature::{self, AlgRule, decode_json};
use crate::registry::client::{AuthMethod, Client};
use crate::registry::client_keys::{AuthSigningAlg, MacAlg};
use crate::store::{Store, StoreError};

/// `client_assertion_type` for a JWT assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How far ahead an assertion may expire: it is made for one request, not kept.
pub const MAX_LIFETIME: i64 = 300;
/// The longest assertion read (a signed JWT of a few claims is well under 2 KiB).
const MAX_ASSERTION_BYTES: usize = 8 * 1024;
/// The longest `jti` recorded.
const MAX_JTI_CHARS: usize = 255;

/// Why an assertion was refused (logged, never sent).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(reason: impl Into<String>) -> Refused {
    Refused::Invalid(reason.into())
}

/// An assertion as presented, decoded but not yet verified: only good for finding out
/// which client it claims to come from.
pub struct Unverified<'a> {
    raw: &'a str,
    /// `sub`: the client it claims to authenticate (RFC 7523 §3 item 2).
    pub client_id: String,
}

impl<'a> Unverified<'a> {
    /// Reads the claimed client from an assertion's payload, without trusting it.
    pub fn peek(raw: &'a str) -> Result<Self, Refused> {
        if raw.len() > MAX_ASSERTION_BYTES {
            return Err(invalid("the assertion is too long"));
        }
        let mut parts = raw.split('.');
        let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(invalid("the assertion is not a compact JWS (three parts)"));
        };
        let claims = decode_json(payload).ok_or_else(|| invalid("the assertion payload is not a JSON object"))?;
        let client_id =
            claims.get("sub").and_then(Value::as_str).ok_or_else(|| invalid("the assertion has no sub"))?.to_owned();
        Ok(Self { raw, client_id })
    }
}

/// What an assertion is checked against.
pub struct Expectations<'a> {
    /// The `aud` values this server answers to: its issuer identifier, its token endpoint
    /// and the endpoint being called.
    pub audiences: &'a [String],
    pub now: i64,
    pub leeway: i64,
}

/// Verifies `assertion` for `client` (registered for private_key_jwt or client_secret_jwt)
/// and consumes its `jti`: afterwards the same assertion is refused, on every replica.
pub async fn verify(
    assertion: &Unverified<'_>,
    client: &Client,
    jwks_cache: &JwksCache,
    store: &Store,
    expect: &Expectations<'_>,
) -> Result<(), Refused> {
    let payload = match client.auth_method {
        AuthMethod::PrivateKeyJwt => signed_with_key(assertion.raw, client, jwks_cache).await?,
        AuthMethod::ClientSecretJwt => maced_with_secret(assertion.raw, client, store)?,
        other => return Err(invalid(format!("the client is registered for {}, not an assertion", other.as_str()))),
    };
    let claims: Map<String, Value> =
        serde_json::from_slice(&payload).map_err(|_| invalid("the assertion payload is not a JSON object"))?;
    let (jti, exp) = check_claims(&claims, &client.client_id, expect)?;
    // Kept past `exp` by the leeway, as long as the assertion could still be accepted.
    if !store.consume_assertion_jti(&client.client_id, jti, exp.saturating_add(expect.leeway)).await? {
        return Err(invalid(format!("jti {jti:?} was already used (a replayed assertion)")));
    }
    Ok(())
}

/// private_key_jwt: the payload, if one of the client's registered keys verifies the
/// signature with an asymmetric algorithm (the rules request objects share, in
/// `client_signature`).
async fn signed_with_key(raw: &str, client: &Client, jwks_cache: &JwksCache) -> Result<Vec<u8>, Refused> {
    let registered = match client.assertion_alg {
        None => None,
        Some(AuthSigningAlg::Key(alg)) => Some(alg),
        Some(AuthSigningAlg::Mac(alg)) => {
            return Err(invalid(format!("the registered token_endpoint_auth_signing_alg {alg} is not for keys")));
        }
    };
    let rule = AlgRule { registered, setting: "token_endpoint_auth_signing_alg" };
    client_signature::verify(raw, client, jwks_cache, rule).await.map_err(Refused::Invalid)
}

/// client_secret_jwt: the payload, if the MAC is the one the client's secret gives (opened
/// from its sealed copy with the store's key-encryption key; compared in constant time).
fn maced_with_secret(raw: &str, client: &Client, store: &Store) -> Result<Vec<u8>, Refused> {
    let header = client_signature::header_of(raw).map_err(Refused::Invalid)?;
    let name = header.algorithm().unwrap_or("none");
    // HMACs only: `none` and the asymmetric algorithms fail here.
    let alg =
        MacAlg::parse(name).ok_or_else(|| invalid(format!("alg {name:?} is not accepted for client_secret_jwt")))?;
    if client.assertion_alg.is_some_and(|registered| registered != AuthSigningAlg::Mac(alg)) {
        return Err(invalid(format!("alg {name} differs from the registered token_endpoint_auth_signing_alg")));
    }
    let sealed = client
        .secret_sealed
        .as_ref()
        .ok_or_else(|| invalid("the client has no sealed secret to check a MAC with: rotate its secret"))?;
    let secret = sealed.open(store.key_encryption_key(), &client.client_id).map_err(|e| {
        // The server's configuration, not the caller, is at fault: the operator must see it.
        tracing::warn!(client_id = %client.client_id, error = %e, "a client_secret_jwt secret cannot be opened");
        invalid(format!("the client's secret {e}"))
    })?;
    let verifier = alg.verifier(&secret).map_err(|e| invalid(format!("the client's secret cannot key {alg} ({e})")))?;
    josekit::jws::deserialize_compact(raw, verifier.as_ref())
        .map(|(payload, _)| payload)
        .map_err(|_| invalid("the MAC does not verify with the client's secret"))
}

fn number(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Refused> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| invalid(format!("{name} is not a number"))),
    }
}

/// RFC 7523 §3's rules on the claims; returns the `jti` and `exp`.
fn check_claims<'c>(
    claims: &'c Map<String, Value>,
    client_id: &str,
    expect: &Expectations<'_>,
) -> Result<(&'c str, i64), Refused> {
    for name in ["iss", "sub"] {
        if claims.get(name).and_then(Value::as_str) != Some(client_id) {
            return Err(invalid(format!("{name} is not the client_id")));
        }
    }
    // One audience, and it must be this server (draft-ietf-oauth-rfc7523bis: a list of
    // several audiences is how an assertion made for one server gets used at another).
    let audience = match claims.get("aud") {
        Some(Value::String(one)) => Some(one.as_str()),
        Some(Value::Array(list)) if list.len() == 1 => list[0].as_str(),
        Some(Value::Array(_)) => return Err(invalid("aud must name one audience")),
        _ => None,
    };
    let Some(audience) = audience else { return Err(invalid("aud is missing")) };
    if !expect.audiences.iter().any(|a| a == audience) {
        return Err(invalid(format!("aud {audience:?} is not this server's issuer or endpoint")));
    }
    let exp = number(claims, "exp")?.ok_or_else(|| invalid("exp is missing"))?;
    if exp.saturating_add(expect.leeway) <= expect.now {
        return Err(invalid("the assertion has expired"));
    }
    if exp > expect.now.saturating_add(MAX_LIFETIME).saturating_add(expect.leeway) {
        return Err(invalid(format!("exp is more than {MAX_LIFETIME} seconds ahead")));
    }
    for name in ["nbf", "iat"] {
        if number(claims, name)?.is_some_and(|t| t > expect.now.saturating_add(expect.leeway)) {
            return Err(invalid(format!("{name} is in the future")));
        }
    }
    let jti = claims.get("jti").and_then(Value::as_str).filter(|j| !j.is_empty());
    let jti = jti.ok_or_else(|| invalid("jti is missing"))?;
    if jti.chars().count() > MAX_JTI_CHARS {
        return Err(invalid(format!("jti is longer than {MAX_JTI_CHARS} characters")));
    }
    Ok((jti, exp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expect(audiences: &[String]) -> Expectations<'_> {
        Expectations { audiences, now: 1_000_000, leeway: 30 }
    }

    #[test]
    fn claims_are_checked_one_rule_at_a_time() {
        let audiences = vec!["https://idp.test".to_string(), "https://idp.test/token".to_string()];
        let good = json!({"iss": "c", "sub": "c", "aud": "https://idp.test/token", "exp": 1_000_060, "jti": "j"});
        let ok = good.as_object().unwrap().clone();
        assert!(check_claims(&ok, "c", &expect(&audiences)).is_ok());
        let cases: [(&str, Value, &str); 10] = [
            ("iss", json!("other"), "iss"),
            ("sub", json!("other"), "sub"),
            ("aud", json!("https://elsewhere.test"), "aud"),
            ("aud", json!(["https://idp.test", "https://elsewhere.test"]), "one audience"),
            ("exp", json!(999_900), "expired"),
            ("exp", json!(1_000_400), "ahead"),
            ("exp", Value::Null, "exp is missing"),
            ("iat", json!(1_000_100), "future"),
            ("jti", Value::Null, "jti"),
            ("jti", json!("x".repeat(300)), "longer"),
        ];
        for (name, value, reason) in cases {
            let mut claims = ok.clone();
            if value.is_null() {
                claims.remove(name);
            } else {
                claims.insert(name.into(), value);
            }
            let error = check_claims(&claims, "c", &expect(&audiences)).unwrap_err().to_string();
            assert!(error.contains(reason), "{name}: {error}");
        }
        let mut listed = ok.clone();
        listed.insert("aud".into(), json!(["https://idp.test"]));
        assert!(check_claims(&listed, "c", &expect(&audiences)).is_ok(), "one audience in a list");
    }
}
