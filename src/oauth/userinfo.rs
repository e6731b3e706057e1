//! `/userinfo` (OIDC Core §5.3): claims about the user, for an access token whose `aud`
//! includes this endpoint. An id_token is refused, whatever it says.

use actix_web::http::header::{self, AUTHORIZATION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};

use super::claims_request::ClaimsRequest;
use super::error::BearerError;
use super::params::Params;
use super::scope::ScopeSet;
use crate::state::AppState;
use crate::store::StoreError;
use crate::tokens::claims::AccessTokenClaims;
use crate::tokens::{issue, verify};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/userinfo").route(web::get().to(userinfo)).route(web::post().to(userinfo)));
}

/// The bearer token from the Authorization header or, on POST, the form body
/// (RFC 6750 §2.1, §2.2); sending both is an error (§2).
fn bearer_token(req: &HttpRequest, body: &[u8]) -> Result<String, BearerError> {
    let header = req.headers().get(AUTHORIZATION).and_then(|h| h.to_str().ok());
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let from_body = if is_form {
        Params::parse(body).single("access_token").map_err(BearerError::invalid_request)?.map(str::to_owned)
    } else {
        None
    };
    match (header, from_body) {
        (Some(_), Some(_)) => Err(BearerError::invalid_request("send the access token in one place only")),
        (Some(h), None) => {
            let token = h
                .strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
                .ok_or_else(|| BearerError::invalid_request("the Authorization header must use the Bearer scheme"))?;
            Ok(token.trim().to_owned())
        }
        (None, Some(token)) => Ok(token),
        (None, None) => Err(BearerError::missing()),
    }
}

/// Why an access token was not accepted: the token's fault, or the server's.
#[derive(Debug)]
pub enum AccessTokenError {
    Rejected(verify::Rejection),
    /// Its revocation status could not be read: the caller should retry, not give up.
    Unavailable(StoreError),
}

impl From<AccessTokenError> for BearerError {
    fn from(e: AccessTokenError) -> Self {
        match e {
            AccessTokenError::Rejected(rejection) => BearerError::invalid_token(rejection.to_string()),
            AccessTokenError::Unavailable(e) => e.into(),
        }
    }
}

/// Verifies an access token for `audience` fully: signature, typ, iss, aud, exp, nbf,
/// revocation.
pub async fn verify_access_token(
    state: &AppState,
    token: &str,
    audience: &str,
) -> Result<AccessTokenClaims, AccessTokenError> {
    let at = verify::Validity::at(state.now(), state.config.clock_leeway);
    let claims = verify::access_token(&state.keys.ring(), state.config.issuer.as_str(), audience, token, at)
        .map_err(AccessTokenError::Rejected)?;
    // Fail closed, but honestly: a token whose revocation can't be checked is neither
    // accepted nor called invalid (a 401 would make the client throw a good token away).
    match state.store.is_revoked(&claims.jti).await {
        Ok(false) => Ok(claims),
        Ok(true) => Err(AccessTokenError::Rejected(verify::Rejection::Revoked)),
        Err(e) => Err(AccessTokenError::Unavailable(e)),
    }
}

async fn userinfo(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, BearerError> {
    let token = bearer_token(&req, &body)?;
    let audience = state.config.issuer.endpoint("/userinfo");
    let claims = verify_access_token(&state, &token, &audience).await?;
    if !claims.has_scope("openid") {
        return Err(BearerError::insufficient_scope("the access token was not granted the openid scope"));
    }
    // The user is found through the grant the token was issued under, not by its `sub`: a
    // pairwise `sub` names nobody by itself (and is not reversible). A token recorded under
    // no grant (signed with the server's key outside its flows) can only name its user by
    // a public `sub`.
    let (user_id, context) = match state.store.access_token_grant(&claims.jti).await? {
        Some(found) => found,
        None => (claims.sub.clone(), Default::default()),
    };
    let user = state
        .store
        .user_by_id(&user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| BearerError::invalid_token("the user of this token no longer exists"))?;
    let scopes = ScopeSet::parse(&claims.scope).unwrap_or_default();
    let catalog = state.registry.scopes().await?;
    let mut released = user.claims_for(&scopes, &catalog);
    // OIDC Core §5.5: claims the authorization request asked for at userinfo, found through
    // the grant this token was issued under.
    if let Some(request) = crate::oauth::token::claims_request(&context) {
        ClaimsRequest::add_user_claims(&request.userinfo, &user, &mut released);
    }
    // OIDC Core §5.3.2: the `sub` the client knows the user by, which is the token's (it
    // was issued to this client with the client's view of the user).
    released.insert("sub".into(), serde_json::Value::String(claims.sub.clone()));
    // OIDC Core §5.3.2: a client registered with userinfo_signed_response_alg gets a JWS.
    let client = state.registry.client(&claims.client_id).await?;
    if let Some(alg) = client.and_then(|c| c.userinfo_alg) {
        let jws =
            issue::signed_userinfo(&state.keys.ring(), alg, state.config.issuer.as_str(), &claims.client_id, released)?;
        return Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type("application/jwt")
            .body(jws));
    }
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(serde_json::Value::Object(released)))
}
