//! `/userinfo` (OIDC Core §5.3): claims about the user, for an access token whose `aud`
//! includes this endpoint. An id_token is refused, whatever it says. A DPoP-bound token
//! (RFC 9449 §7) is accepted only as `Authorization: DPoP` with a proof of its key.

use actix_web::http::header::{self, AUTHORIZATION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};

use super::claims_request::ClaimsRequest;
use super::dpop::{self, DpopProof, DpopRefusal, ProofError};
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

/// An access token as presented.
enum Presented {
    /// RFC 6750: `Authorization: Bearer`, or `access_token` in a form body.
    Bearer(String),
    /// RFC 9449 §7.1: `Authorization: DPoP`, with a proof in the `DPoP` header.
    Dpop(String),
}

/// The access token from the Authorization header (`Bearer` or `DPoP`, case-insensitive)
/// or, on POST, the form body (RFC 6750 §2.1, §2.2); sending both is an error (§2).
fn presented_token(req: &HttpRequest, body: &[u8]) -> Result<Presented, BearerError> {
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
            let (scheme, token) = h.split_once(' ').unwrap_or((h, ""));
            let token = token.trim().to_owned();
            if scheme.eq_ignore_ascii_case("Bearer") {
                Ok(Presented::Bearer(token))
            } else if scheme.eq_ignore_ascii_case("DPoP") {
                Ok(Presented::Dpop(token))
            } else {
                Err(BearerError::invalid_request("the Authorization header must use the Bearer or DPoP scheme"))
            }
        }
        (None, Some(token)) => Ok(Presented::Bearer(token)),
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
    // RFC 9449 §9: with nonces required, every answer carries the current one.
    let nonce = dpop::current_nonce(&state).await;
    match answer(&req, &state, &body).await {
        Ok(mut response) => {
            if let Some(value) = nonce.and_then(|n| header::HeaderValue::from_str(&n).ok()) {
                response.headers_mut().insert(header::HeaderName::from_static("dpop-nonce"), value);
            }
            Ok(response)
        }
        Err(e) => Err(e.with_dpop_nonce(nonce)),
    }
}

/// The access token's claims, once the way it was presented fits its binding: a DPoP-bound
/// token only with the DPoP scheme and a proof of its key, an unbound one only as a bearer
/// token (RFC 9449 §7.1, §7.2).
async fn presented_claims(
    req: &HttpRequest,
    state: &AppState,
    presented: &Presented,
) -> Result<AccessTokenClaims, BearerError> {
    let audience = state.config.issuer.endpoint("/userinfo");
    match presented {
        Presented::Bearer(token) => {
            let claims = verify_access_token(state, token, &audience).await?;
            if claims.dpop_jkt().is_some() {
                return Err(BearerError::invalid_token(
                    "this access token is DPoP-bound: present it as Authorization: DPoP with a DPoP proof of its key",
                )
                .dpop());
            }
            Ok(claims)
        }
        Presented::Dpop(token) => {
            let claims = verify_access_token(state, token, &audience).await.map_err(|e| BearerError::from(e).dpop())?;
            let proof = DpopProof::from_request(req, state, "/userinfo", Some(token)).await?.ok_or_else(|| {
                DpopRefusal::Proof(ProofError::Invalid("the DPoP header (the proof) is missing".into()))
            })?;
            match claims.dpop_jkt() {
                Some(jkt) if proof.proves(jkt) => Ok(claims),
                Some(_) => {
                    Err(BearerError::invalid_token("the DPoP proof's key is not the one the token is bound to").dpop())
                }
                None => Err(BearerError::invalid_token(
                    "this access token is not DPoP-bound: present it as Authorization: Bearer",
                )
                .dpop()),
            }
        }
    }
}

async fn answer(req: &HttpRequest, state: &AppState, body: &[u8]) -> Result<HttpResponse, BearerError> {
    let presented = presented_token(req, body)?;
    let dpop_scheme = matches!(presented, Presented::Dpop(_));
    // RFC 9449 §7.1: a request with the DPoP scheme is answered with a DPoP challenge.
    release(req, state, &presented).await.map_err(|e| if dpop_scheme { e.dpop() } else { e })
}

/// The user's claims for a presented token, as JSON or (when the client registered for
/// it) a JWS.
async fn release(req: &HttpRequest, state: &AppState, presented: &Presented) -> Result<HttpResponse, BearerError> {
    let claims = presented_claims(req, state, presented).await?;
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
