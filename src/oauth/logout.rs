//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), at `/logout`.
//!
//! With a valid `id_token_hint` (expired ones too: the signature still counts) the session
//! ends at once; without one the user confirms on a CSRF-protected page. The browser goes
//! back only to a `post_logout_redirect_uri` registered (exactly) by the client the request
//! identifies (§2, §3: by `id_token_hint` or `client_id`); any other one is refused with an
//! error page before anything ends. Without one, the user sees a "signed out" page.
//!
//! Ending the session tells the clients that took part in it (`session_end`): back-channel
//! logout tokens are sent off the request path, and front-channel logout URIs are loaded in
//! iframes of the page the browser sees next (which then moves on to the redirect URI).

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_SECURITY_POLICY;
use actix_web::{HttpRequest, HttpResponse, web};

use super::error::{AuthorizeError, redirect_with};
use super::params::Params;
use super::session_end::{self, LoggedOut};
use crate::registry::client::Client;
use crate::state::AppState;
use crate::tokens::claims::IdTokenClaims;
use crate::web::{csrf, pages, session};

/// Seconds the front-channel iframes get before the page moves on to the RP.
const FRONTCHANNEL_DELAY: u32 = 2;

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
        let target = post_logout_target(client.as_ref(), single("post_logout_redirect_uri")?)?;
        let mut told = Vec::new();
        if let Some(s) = session::current(&req, &state.store).await? {
            told = session_end::end_session(&state, &s.sid).await?;
        }
        return Ok(finish(&state, target, single("state")?, &told));
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
    // Refused before anything ends: the user must not be signed out by a request that
    // then cannot go where it says.
    let redirect = post_logout_target(client.as_ref(), single("post_logout_redirect_uri")?)?;
    let rp_state = single("state")?;
    // Accepted (§2) and ignored: Lanyard's pages are in one language.
    let _ = single("ui_locales")?;
    let Some(hint) = hint else {
        // No proof the request comes from the user's client: ask the user.
        let (csrf_token, cookie) = csrf::token(req, state.config.issuer.is_https());
        let page = pages::LogoutPage {
            csrf_token: &csrf_token,
            client_name: client.as_ref().map(|c| c.name.as_str()),
            client_id: client.as_ref().map(|c| c.client_id.as_str()),
            post_logout_redirect_uri: redirect.as_deref(),
            state: rp_state,
        };
        let mut response = pages::html(StatusCode::OK, &page);
        if let Some(cookie) = cookie {
            let _ = response.add_cookie(&cookie);
        }
        return Ok(response);
    };
    let mut told = session_end::end_session(state, &hint.sid).await?;
    // The hint's `sub` is its client's view of the user: pairwise for a pairwise client. A
    // client deleted since has no subject type any more: its hint is compared with the
    // public id, so a pairwise one then ends only the session it names.
    if let Some(current) = session::current(req, &state.store).await?
        && client.as_ref().map_or_else(|| current.user_id.clone(), |c| state.subjects.for_client(c, &current.user_id))
            == hint.sub
    {
        told.extend(session_end::end_session(state, &current.sid).await?);
    }
    tracing::info!(sid = %hint.sid, "session ended by RP-initiated logout");
    Ok(finish(state, redirect, rp_state, &told))
}

/// An id_token of ours: signature, `typ` and `iss` checked; expiry deliberately not.
fn verify_hint(state: &AppState, token: &str) -> Result<IdTokenClaims, AuthorizeError> {
    crate::tokens::verify::id_token_hint_claims(&state.keys.ring(), state.config.issuer.as_str(), token)
        .map_err(|why| AuthorizeError::page("Invalid logout request", format!("The id_token_hint {why}.")))
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
        (Some(id), _) => match state.registry.client(id).await? {
            Some(client) => Ok(Some(client)),
            None => Err(AuthorizeError::page("Unknown application", "There is no client with this client_id.")),
        },
        // The hint's client may have been deleted since: the user can still sign out.
        (None, Some(id)) => Ok(state.registry.client(id).await?),
        (None, None) => Ok(None),
    }
}

/// The `post_logout_redirect_uri` to go back to, checked: registered exactly by the client
/// the request identifies (§2: "MUST NOT perform post-logout redirection if [it] does not
/// exactly match one of the previously registered post_logout_redirect_uris values").
fn post_logout_target(client: Option<&Client>, redirect: Option<&str>) -> Result<Option<String>, AuthorizeError> {
    let Some(uri) = redirect else { return Ok(None) };
    let Some(client) = client else {
        // §3: the client must be identified to know which URIs it registered.
        return Err(AuthorizeError::page(
            "Invalid logout request",
            "A post_logout_redirect_uri needs an id_token_hint or a client_id naming the application.",
        ));
    };
    if client.post_logout_redirect_uris.iter().any(|r| r.as_str() == uri) {
        Ok(Some(uri.to_owned()))
    } else {
        // Never shown as a link: it is exactly what an attacker would want followed.
        Err(AuthorizeError::page(
            "Invalid logout request",
            "The post_logout_redirect_uri is not registered for this application: you were not signed out.",
        ))
    }
}

/// Back to the checked post-logout URI, or the "signed out" page; through a page with
/// the front-channel iframes first when a client registered a front-channel logout URI.
fn finish(state: &AppState, target: Option<String>, rp_state: Option<&str>, told: &[LoggedOut]) -> HttpResponse {
    let secure = state.config.issuer.is_https();
    // §3: `state` goes back as it came; nothing else is added.
    let continue_to = target.and_then(|uri| {
        let mut url = url::Url::parse(&uri).ok()?;
        if let Some(s) = rp_state {
            url.query_pairs_mut().append_pair("state", s);
        }
        Some(url.to_string())
    });
    let frames = frontchannel_frames(state, told);
    let mut response = match (&continue_to, frames.is_empty()) {
        (Some(uri), true) => redirect_with(uri, &[]),
        (None, true) => {
            pages::message(StatusCode::OK, "Signed out", "You are signed out of Lanyard. You can close this window.")
        }
        (_, false) => {
            let page = pages::SignedOutPage {
                frames: &frames,
                continue_to: continue_to.as_deref(),
                delay: FRONTCHANNEL_DELAY,
            };
            let mut response = pages::html(StatusCode::OK, &page);
            // This page alone may frame the clients' front-channel logout URIs.
            let origins: Vec<String> = frames
                .iter()
                .filter_map(|f| url::Url::parse(f).ok())
                .map(|u| u.origin().ascii_serialization())
                .collect();
            let csp =
                format!("default-src 'self'; frame-src {}; frame-ancestors 'none'; base-uri 'none'", origins.join(" "));
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&csp) {
                response.headers_mut().insert(CONTENT_SECURITY_POLICY, value);
            }
            response
        }
    };
    let _ = response.add_cookie(&session::removal(secure));
    response
}

/// The front-channel logout URI of each client told (Front-Channel Logout 1.0 §2), with
/// `iss` and `sid` when the client asked for them.
fn frontchannel_frames(state: &AppState, told: &[LoggedOut]) -> Vec<String> {
    let mut frames: Vec<String> = Vec::new();
    for t in told {
        let Some(mut uri) = t.client.frontchannel_logout_uri.clone() else { continue };
        if t.client.frontchannel_logout_session_required {
            uri.query_pairs_mut().append_pair("iss", state.config.issuer.as_str()).append_pair("sid", &t.sid);
        }
        let uri = uri.to_string();
        if !frames.contains(&uri) {
            frames.push(uri);
        }
    }
    frames
}
