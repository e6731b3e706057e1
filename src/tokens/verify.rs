//! Checks that a presented bearer token is a valid Lanyard access token for an audience.
//! Used by userinfo and introspection; `lanyard::verify` (for APIs) applies the same rules.

use super::claims::{ACCESS_TOKEN_TYP, AccessTokenClaims};
use super::keys::KeyRing;
use crate::store::now;

/// Clock skew tolerated when checking `exp` and `iat`, seconds.
pub const CLOCK_SKEW: i64 = 60;

/// Why a token was refused, in words safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the token is not a signed JWT issued by this server: {0}")]
    Signature(String),
    #[error(
        "this is an id_token (typ {0:?}), which tells a client who signed in; it is not an access token and no API may accept it"
    )]
    IdToken(String),
    #[error("the token's typ is {0:?}, not at+jwt: it is not an access token")]
    NotAnAccessToken(String),
    #[error("the token was issued by {0:?}, not this server")]
    Issuer(String),
    #[error("the token is not meant for this audience ({0})")]
    Audience(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token has been revoked")]
    Revoked,
    #[error("the token's claims are malformed: {0}")]
    Malformed(String),
}

/// Verifies signature, `typ`, `iss`, `aud` and `exp` (revocation is the caller's: it needs
/// the store). An id_token is recognised and refused by name.
pub fn access_token(ring: &KeyRing, issuer: &str, audience: &str, token: &str) -> Result<AccessTokenClaims, Rejection> {
    let claims = decode(ring, issuer, token)?;
    check_audience_and_time(&claims, audience)?;
    Ok(claims)
}

/// Verifies signature, `typ` and `iss` only: for revocation, where an expired token or
/// any audience is fine.
pub fn decode(ring: &KeyRing, issuer: &str, token: &str) -> Result<AccessTokenClaims, Rejection> {
    let (header, payload) = ring.verify(token).map_err(Rejection::Signature)?;
    parse_claims(header.token_type(), &payload, issuer)
}

/// The checks after the signature, shared with the API-side verifier.
pub fn check_claims(
    typ: Option<&str>,
    payload: &[u8],
    issuer: &str,
    audience: &str,
) -> Result<AccessTokenClaims, Rejection> {
    let claims = parse_claims(typ, payload, issuer)?;
    check_audience_and_time(&claims, audience)?;
    Ok(claims)
}

fn parse_claims(typ: Option<&str>, payload: &[u8], issuer: &str) -> Result<AccessTokenClaims, Rejection> {
    let typ = typ.unwrap_or("");
    // RFC 9068 §4: "at+jwt" or "application/at+jwt", compared case-insensitively.
    let is_access_token = typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || typ.eq_ignore_ascii_case("application/at+jwt");
    if !is_access_token {
        let value: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
        // An id_token has a subject but no client_id.
        return Err(if value.get("client_id").is_none() && value.get("sub").is_some() {
            Rejection::IdToken(typ.to_owned())
        } else {
            Rejection::NotAnAccessToken(typ.to_owned())
        });
    }
    let claims: AccessTokenClaims = serde_json::from_slice(payload).map_err(|e| Rejection::Malformed(e.to_string()))?;
    if claims.iss != issuer {
        return Err(Rejection::Issuer(claims.iss));
    }
    Ok(claims)
}

/// `aud` contains `audience`, and the token is within its lifetime (with clock skew).
pub fn check_audience_and_time(claims: &AccessTokenClaims, audience: &str) -> Result<(), Rejection> {
    if !claims.aud.contains(audience) {
        return Err(Rejection::Audience(format!("expected {audience}")));
    }
    let now = now();
    if claims.exp + CLOCK_SKEW < now {
        return Err(Rejection::Expired);
    }
    if claims.iat - CLOCK_SKEW > now {
        return Err(Rejection::Malformed("iat is in the future".into()));
    }
    Ok(())
}
