//! Checks that a presented bearer token is a valid Lanyard access token for an audience.
//! Used by userinfo and introspection; `lanyard::verify` (for APIs) applies the same rules.

use super::claims::{ACCESS_TOKEN_TYP, AccessTokenClaims};
use super::keys::KeyRing;

/// Clock difference tolerated by default when checking `exp`, `nbf` and `iat`, seconds
/// (the server's is the `clock_leeway` setting).
pub const DEFAULT_LEEWAY: i64 = 30;

/// The moment a token is checked at, and the clock difference tolerated.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub now: i64,
    pub leeway: i64,
}

impl Validity {
    /// The wall clock's now, with `leeway` seconds of tolerance: for verifiers outside the
    /// server (an API's `lanyard::verify`), which keep their own time.
    pub fn wall_clock(leeway: i64) -> Self {
        Self { now: crate::clock::real_now(), leeway }
    }

    /// `now` on the server's protocol clock, with `leeway` seconds of tolerance.
    pub fn at(now: i64, leeway: i64) -> Self {
        Self { now, leeway }
    }

    /// Why a token with these times is not valid at this moment, if it is not.
    pub fn check(&self, exp: Option<i64>, nbf: Option<i64>, iat: Option<i64>) -> Result<(), Rejection> {
        if exp.is_none() {
            return Err(Rejection::Malformed("exp is missing".into()));
        }
        self.check_if_present(exp, nbf, iat)
    }

    /// The same rules, for a JWT whose `exp` is optional (a request object, OIDC Core §6.1).
    pub fn check_if_present(&self, exp: Option<i64>, nbf: Option<i64>, iat: Option<i64>) -> Result<(), Rejection> {
        let Self { now, leeway } = *self;
        if exp.is_some_and(|exp| exp.saturating_add(leeway) < now) {
            return Err(Rejection::Expired);
        }
        if let Some(nbf) = nbf.filter(|nbf| nbf.saturating_sub(leeway) > now) {
            return Err(Rejection::NotYetValid(format!("nbf is {} seconds in the future", nbf.saturating_sub(now))));
        }
        if let Some(iat) = iat.filter(|iat| iat.saturating_sub(leeway) > now) {
            return Err(Rejection::NotYetValid(format!("iat is {} seconds in the future", iat.saturating_sub(now))));
        }
        Ok(())
    }
}

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
    #[error("the token is not valid yet: {0}")]
    NotYetValid(String),
    #[error("the token has been revoked")]
    Revoked,
    #[error("the token's claims are malformed: {0}")]
    Malformed(String),
    /// RFC 9449 §7.2: a DPoP-bound token is refused without a proof of its key.
    #[error(
        "this access token is DPoP-bound: present it as Authorization: DPoP with a DPoP proof of its key (RFC 9449)"
    )]
    DpopBound,
}

/// Verifies signature, `typ`, `iss`, `aud` and `exp` (revocation is the caller's: it needs
/// the store). An id_token is recognised and refused by name.
pub fn access_token(
    ring: &KeyRing,
    issuer: &str,
    audience: &str,
    token: &str,
    at: Validity,
) -> Result<AccessTokenClaims, Rejection> {
    let claims = decode(ring, issuer, token)?;
    check_audience_and_time(&claims, audience, at)?;
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
    at: Validity,
) -> Result<AccessTokenClaims, Rejection> {
    let claims = parse_claims(typ, payload, issuer)?;
    check_audience_and_time(&claims, audience, at)?;
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

/// `aud` contains `audience`, and the token is within its lifetime at `at`.
pub fn check_audience_and_time(claims: &AccessTokenClaims, audience: &str, at: Validity) -> Result<(), Rejection> {
    if !claims.aud.contains(audience) {
        return Err(Rejection::Audience(format!("expected {audience}")));
    }
    at.check(Some(claims.exp), claims.nbf, Some(claims.iat))
}

/// An id_token presented back as a hint (`id_token_hint` at `/authorize` and `/logout`):
/// signed by this server, not an access token or a logout token (by `typ`), from `issuer`.
/// Expiry is deliberately not checked: a hint says who the client expects, it grants
/// nothing. The error completes "the id_token_hint …".
pub fn id_token_hint_claims(
    ring: &KeyRing,
    issuer: &str,
    token: &str,
) -> Result<super::claims::IdTokenClaims, &'static str> {
    let (header, payload) = ring.verify(token).map_err(|_| "is not an id_token signed by this server")?;
    let typ = header.token_type().unwrap_or("");
    if typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) {
        return Err("is an access token, not an id_token");
    }
    if typ.eq_ignore_ascii_case(super::claims::LOGOUT_TOKEN_TYP) {
        return Err("is a logout token, not an id_token");
    }
    let claims: super::claims::IdTokenClaims = serde_json::from_slice(&payload).map_err(|_| "is not an id_token")?;
    if claims.iss != issuer {
        return Err("was issued by another server");
    }
    Ok(claims)
}

/// The `sub` of an `id_token_hint` at `/authorize` (OIDC Core §3.1.2.1): as
/// [`id_token_hint_claims`], and issued to `client_id`.
pub fn id_token_hint(ring: &KeyRing, issuer: &str, client_id: &str, token: &str) -> Result<String, &'static str> {
    let claims = id_token_hint_claims(ring, issuer, token)?;
    if !claims.aud.contains(client_id) {
        return Err("was issued to another client");
    }
    Ok(claims.sub)
}

#[cfg(test)]
mod tests {
    use super::{Rejection, Validity};

    #[test]
    fn times_are_checked_with_the_leeway() {
        let at = Validity { now: 1_000_000, leeway: 30 };
        let now = at.now;
        assert_eq!(at.check(Some(now + 60), None, Some(now)), Ok(()));
        assert_eq!(at.check(Some(now - 29), None, Some(now - 100)), Ok(()), "expired within the leeway");
        assert_eq!(at.check(Some(now - 31), None, Some(now - 100)), Err(Rejection::Expired));
        assert_eq!(at.check(Some(now + 60), Some(now + 29), Some(now)), Ok(()), "nbf within the leeway");
        assert!(matches!(at.check(Some(now + 7200), Some(now + 3600), Some(now)), Err(Rejection::NotYetValid(_))));
        assert!(matches!(at.check(Some(now + 7200), None, Some(now + 3600)), Err(Rejection::NotYetValid(_))));
        assert!(matches!(at.check(None, None, None), Err(Rejection::Malformed(_))));
    }
}
