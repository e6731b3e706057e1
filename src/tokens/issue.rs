//! Building and signing id_tokens and access tokens.

use serde_json::Map;

use super::claims::{
    ACCESS_TOKEN_TYP, AccessTokenClaims, Actor, Audience, Confirmation, ID_TOKEN_TYP, IdTokenClaims, USERINFO_TYP,
    UserinfoClaims, is_reserved_claim,
};
use super::keys::{KeyError, KeyRing, SigningAlg};

/// A signed access token and the facts the caller records or returns.
#[derive(Debug, Clone)]
pub struct IssuedAccessToken {
    pub token: String,
    pub jti: String,
    pub expires_at: i64,
    pub expires_in: i64,
}

/// What an access token says; `aud` is never empty.
#[derive(Debug, Clone)]
pub struct AccessTokenGrant<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub audience: Vec<String>,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub auth_time: Option<i64>,
    pub sid: Option<&'a str>,
    /// RFC 9068 §2.2.3.1: the sign-in's `acr`, when a user is present.
    pub acr: Option<&'a str>,
    pub ttl: i64,
    pub alg: SigningAlg,
    /// The user's claims the API asks for (its `access_token_claims`); empty otherwise.
    pub user_claims: Map<String, serde_json::Value>,
    /// `iat`, from the protocol clock (`AppState::now`).
    pub issued_at: i64,
    /// The DPoP key the token is bound to (its RFC 7638 thumbprint), when the token
    /// request proved one (RFC 9449 §6.1): the token carries it as `cnf.jkt`.
    pub dpop_jkt: Option<&'a str>,
}

/// Signs an RFC 9068 access token (`typ: at+jwt`).
pub fn access_token(ring: &KeyRing, grant: &AccessTokenGrant<'_>) -> Result<IssuedAccessToken, KeyError> {
    sign_access_token(ring, grant, None, grant.issued_at)
}

/// Signs an access token issued by token exchange (RFC 8693 §4.1): as [`access_token`],
/// with `act` naming who acts on the subject's behalf, issued at `grant.issued_at` (the
/// protocol clock's now) and valid for `grant.ttl` seconds.
pub fn exchanged_access_token(
    ring: &KeyRing,
    grant: &AccessTokenGrant<'_>,
    act: Actor,
) -> Result<IssuedAccessToken, KeyError> {
    sign_access_token(ring, grant, Some(act), grant.issued_at)
}

fn sign_access_token(
    ring: &KeyRing,
    grant: &AccessTokenGrant<'_>,
    act: Option<Actor>,
    iat: i64,
) -> Result<IssuedAccessToken, KeyError> {
    let jti = uuid::Uuid::new_v4().to_string();
    let claims = AccessTokenClaims {
        iss: grant.issuer.to_owned(),
        sub: grant.subject.to_owned(),
        aud: Audience::from_list(grant.audience.clone()),
        exp: iat + grant.ttl,
        iat,
        nbf: None,
        jti: jti.clone(),
        client_id: grant.client_id.to_owned(),
        azp: grant.client_id.to_owned(),
        scope: grant.scope.to_owned(),
        auth_time: grant.auth_time,
        sid: grant.sid.map(str::to_owned),
        acr: grant.acr.map(str::to_owned),
        act,
        cnf: grant.dpop_jkt.map(|jkt| Confirmation { jkt: jkt.to_owned() }),
        // Validated on the way in already; dropped here too so that no path can make a
        // user claim shadow a registered one (serde would write both).
        claims: grant
            .user_claims
            .iter()
            .filter(|(name, _)| !is_reserved_claim(name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
    };
    let token = ring.sign(grant.alg, ACCESS_TOKEN_TYP, &claims)?;
    Ok(IssuedAccessToken { token, jti, expires_at: claims.exp, expires_in: grant.ttl })
}

/// What an id_token says about a sign-in.
#[derive(Debug, Clone)]
pub struct IdTokenGrant<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub client_id: &'a str,
    pub auth_time: i64,
    pub nonce: Option<&'a str>,
    pub sid: &'a str,
    pub access_token: Option<&'a str>,
    pub profile: Map<String, serde_json::Value>,
    /// `acr` and `amr` (OIDC Core §2) of the sign-in.
    pub acr: Option<&'a str>,
    pub amr: Option<Vec<String>>,
    pub ttl: i64,
    pub alg: SigningAlg,
    /// `iat`, from the protocol clock (`AppState::now`).
    pub issued_at: i64,
}

/// Signs an id_token, `aud` = the client alone.
pub fn id_token(ring: &KeyRing, grant: IdTokenGrant<'_>) -> Result<String, KeyError> {
    let iat = grant.issued_at;
    let mut profile = grant.profile;
    profile.remove("sub");
    let claims = IdTokenClaims {
        iss: grant.issuer.to_owned(),
        sub: grant.subject.to_owned(),
        aud: Audience::One(grant.client_id.to_owned()),
        exp: iat + grant.ttl,
        iat,
        auth_time: grant.auth_time,
        nonce: grant.nonce.map(str::to_owned),
        at_hash: grant.access_token.map(at_hash),
        sid: grant.sid.to_owned(),
        azp: None,
        acr: grant.acr.map(str::to_owned),
        amr: grant.amr,
        profile,
    };
    ring.sign(grant.alg, ID_TOKEN_TYP, &claims)
}

/// Signs a userinfo response for `client_id` with the active key of `alg` (OIDC Core
/// §5.3.2). Members named like the JWT's own claims are dropped from `claims`, so that a
/// user attribute can never stand in for `iss` or `aud`.
pub fn signed_userinfo(
    ring: &KeyRing,
    alg: SigningAlg,
    issuer: &str,
    client_id: &str,
    mut claims: Map<String, serde_json::Value>,
) -> Result<String, KeyError> {
    for reserved in ["iss", "aud", "exp", "iat", "nbf", "jti", "nonce"] {
        claims.remove(reserved);
    }
    let userinfo = UserinfoClaims { iss: issuer.to_owned(), aud: Audience::One(client_id.to_owned()), claims };
    ring.sign(alg, USERINFO_TYP, &userinfo)
}

/// OIDC Core §3.1.3.6: the left half of the SHA-256 of the access token, base64url
/// (RS256 and ES256 both hash with SHA-256).
pub fn at_hash(access_token: &str) -> String {
    use base64::Engine;
    let digest = openssl::sha::sha256(access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}
