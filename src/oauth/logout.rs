//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), at `/logout`.
//!
//! With a valid `id_token_hint` (expired ones too: the signature still counts) the session
//! ends at once; without one the user confirms on a CSRF-protected page. The browser goes
//! back only to a registered `post_logout_redirect_uri`, else sees a "signed out" page.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::error::{AuthorizeError, redirect_with};
use super::params::Params;
use crate::registry::client::Client;
use crate::state::AppState;
use crate::tokens::claims::{ACCESS_TOKEN_TYP, IdTokenClaims};
use crate::web::{csrf, pages, session};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/logout").route(web::get().to(logout_get)).route(web::post().to(logout_post)));
}

async fn logout_get(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AuthorizeError> {
    logout(&req, &state, &Params::parse(req.query_string().as_bytes())).await
}

async fn logout_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AuthorizeError> {
    let params = Params::parse(&body);
    let single = |name| params.single(name).map_err(|e| AuthorizeError::page("Invalid logout request", e));
    if single("confirm")? == Some("yes") {
        if !csrf::verify(&req, single("csrf_token")?) {
            return Ok(crate::web::login::csrf_failure());
        }
        let client = client_for(&state, single("client_id")?, None).await?;
        if let Some(s) = session::current(&req, &state.store).await? {
            state.store.end_session(&s.sid).await?;
        }
        return Ok(finish(&state, client.as_ref(), single("post_logout_redirect_uri")?, single("state")?));
    }
    logout(&req, &state, &params).await
}

async fn logout(req: &HttpRequest, state: &AppState, params: &Params) -> Result<HttpResponse, AuthorizeError> {
    let single = |name| params.single(name).map_err(|e| AuthorizeError::page("Invalid logout request", e));
    let hint = match single("id_token_hint")? {
        Some(token) => Some(verify_hint(state, token)?),
        None => None,
    };
    let hinted_client = hint.as_ref().and_then(|h| h.aud.iter().next().map(str::to_owned));
    let client = client_for(state, single("client_id")?, hinted_client.as_deref()).await?;
    let redirect = single("post_logout_redirect_uri")?;
    let rp_state = single("state")?;
    let Some(hint) = hint else {
        // No proof the request comes from the user's client: ask the user.
        let (csrf_token, cookie) = csrf::token(req, state.config.issuer.is_https());
        let page = pages::LogoutPage {
            csrf_token: &csrf_token,
            client_name: client.as_ref().map(|c| c.name.as_str()),
            client_id: client.as_ref().map(|c| c.client_id.as_str()),
            post_logout_redirect_uri: redirect,
            state: rp_state,
        };
        let mut response = pages::html(StatusCode::OK, &page);
        if let Some(cookie) = cookie {
            let _ = response.add_cookie(&cookie);
        }
        return Ok(response);
    };
    state.store.end_session(&hint.sid).await?;
    if let Some(current) = session::current(req, &state.store).await?
        && current.user_id == hint.sub
    {
        state.store.end_session(&current.sid).await?;
    }
    tracing::info!(sid = %hint.sid, "session ended by RP-initiated logout");
    Ok(finish(state, client.as_ref(), redirect, rp_state))
}

/// An id_token of ours: signature, `typ` and `iss` checked; expiry deliberately not.
fn verify_hint(state: &AppState, token: &str) -> Result<IdTokenClaims, AuthorizeError> {
    let invalid = |why: &str| AuthorizeError::page("Invalid logout request", format!("The id_token_hint {why}."));
    let (header, payload) =
        state.keys.ring().verify(token).map_err(|_| invalid("is not an id_token signed by this server"))?;
    if header.token_type().is_some_and(|t| t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)) {
        return Err(invalid("is an access token, not an id_token"));
    }
    let claims: IdTokenClaims = serde_json::from_slice(&payload).map_err(|_| invalid("is not an id_token"))?;
    if claims.iss != state.config.issuer.as_str() {
        return Err(invalid("was issued by another server"));
    }
    Ok(claims)
}

/// The client named by `client_id` or by the hint's `aud`; they must agree.
async fn client_for(
    state: &AppState,
    client_id: Option<&str>,
    hinted: Option<&str>,
) -> Result<Option<Client>, AuthorizeError> {
    if let (Some(named), Some(hinted)) = (client_id, hinted)
        && named != hinted
    {
        return Err(AuthorizeError::page(
            "Invalid logout request",
            "client_id does not match the id_token_hint's audience.",
        ));
    }
    match (client_id, hinted) {
        // A client named in the request must exist: its registered URIs decide the redirect.
        (Some(id), _) => match state.store.client(id).await? {
            Some(client) => Ok(Some(client)),
            None => Err(AuthorizeError::page("Unknown application", "There is no client with this client_id.")),
        },
        // The hint's client may have been deleted since: the user can still sign out.
        (None, Some(id)) => Ok(state.store.client(id).await?),
        (None, None) => Ok(None),
    }
}

/// Back to a registered post-logout URI (exact match), or the "signed out" page.
fn finish(state: &AppState, client: Option<&Client>, redirect: Option<&str>, rp_state: Option<&str>) -> HttpResponse {
    let secure = state.config.issuer.is_https();
    let registered =
        client.zip(redirect).is_some_and(|(c, uri)| c.post_logout_redirect_uris.iter().any(|r| r.as_str() == uri));
    let mut response = match redirect {
        Some(uri) if registered => {
            let params: Vec<(&str, &str)> = rp_state.map(|s| ("state", s)).into_iter().collect();
            redirect_with(uri, &params)
        }
        _ => pages::message(StatusCode::OK, "Signed out", "You are signed out of Lanyard. You can close this window."),
    };
    let _ = response.add_cookie(&session::removal(secure));
    response
}
