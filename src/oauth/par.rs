//! Pushed Authorization Requests (RFC 9126): `POST /par`, where an authenticated client
//! pushes the parameters of an authorization request and receives a single-use reference,
//! `urn:ietf:params:oauth:request_uri:…`, to send the browser to `/authorize` with.
//!
//! A push is validated as `/authorize` validates a request (the same
//! [`request_object::resolve`] and [`AuthorizationRequest::parse`]), only its errors are
//! RFC 6749 §5.2 JSON. What is kept is the resolved parameters, bound to the client, under
//! the SHA-256 of the reference; `/authorize` takes them once ([`take`]) and validates
//! them again, against the client as it is then (§4).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::authorization_request::AuthorizationRequest;
use super::client_auth;
use super::error::{AuthorizeError, TokenError};
use super::params::Params;
use super::request_object::{self, AuthorizationParams, Checks};
use super::token::form_params;
use crate::crypto::{random_token, sha256_hex};
use crate::registry::client::Client;
use crate::state::AppState;
use crate::store::pushed::Taken;
use crate::tokens::verify::Validity;

/// The `request_uri` prefix of a pushed request (RFC 9126 §2.2): a URN, never fetched.
pub const PAR_URN_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Parameters that authenticate the client at `/par` and are no part of the
/// authorization request (RFC 9126 §2.1): never stored with it.
const CLIENT_AUTHENTICATION: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/par").route(web::post().to(push)).default_service(web::to(not_post)));
}

/// RFC 9126 §2.2: the reference and its lifetime, with `201 Created`.
#[derive(Debug, Serialize)]
struct Pushed {
    request_uri: String,
    expires_in: i64,
}

async fn push(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, TokenError> {
    let params = form_params(&req, &body)?;
    let client = client_auth::authenticate(&req, &params, &state).await?;
    let resolved = validate(&state, &client, &params).await?;
    // RFC 9126 §2.2: cryptographically random, and only a reference (never fetched).
    let request_uri = format!("{PAR_URN_PREFIX}{}", random_token(32));
    let ttl = state.config.pushed_request_ttl;
    state.store.insert_pushed_request(&sha256_hex(&request_uri), &client.client_id, &resolved.encode(), ttl).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(Pushed { request_uri, expires_in: ttl }))
}

/// RFC 9126 §2.3: anything but POST is a 405.
async fn not_post() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, HeaderValue::from_static("POST")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "error": "invalid_request",
            "error_description": "push authorization requests with POST (RFC 9126 §2)",
        }))
}

/// The authorization parameters of a push by `client`, resolved and validated as
/// `/authorize` would, without the client's credentials.
async fn validate(state: &AppState, client: &Client, pushed: &Params) -> Result<Params, TokenError> {
    let single = |name| pushed.single(name).map_err(TokenError::invalid_request);
    // §2.1: client_id is as required here as at /authorize (client authentication has
    // checked that it names the authenticated client).
    if single("client_id")?.is_none() {
        return Err(TokenError::invalid_request("client_id is required in a pushed authorization request"));
    }
    // §2.1: a pushed request cannot itself point to a request.
    if pushed.all("request_uri").map_or(true, |values| !values.is_empty()) {
        return Err(TokenError::invalid_request("request_uri must not be sent to the pushed authorization endpoint"));
    }
    let mut query = match single("request")? {
        // §3: with a request object, the other parameters (besides client authentication)
        // are ignored: only its members count.
        Some(object) => {
            let mut only = Params::default();
            only.set("client_id", vec![client.client_id.clone()]);
            only.set("request", vec![object.to_owned()]);
            only
        }
        None => pushed.clone(),
    };
    for name in CLIENT_AUTHENTICATION {
        query.remove(name);
    }
    let iss = state.config.issuer.as_str();
    let checks = checks(state);
    let resolved = request_object::resolve(&query, client, &checks)
        .await
        .map_err(|refusal| TokenError::new(refusal.error, refusal.description))?;
    let apis = state.registry.apis().await?;
    let catalog = state.registry.scopes().await?;
    let ring = state.keys.ring();
    AuthorizationRequest::parse(&resolved, client, &apis, &catalog, iss, &ring, state.config.scope_narrowing)
        .map_err(as_json)?;
    Ok(resolved.as_params().clone())
}

/// What request objects are checked against at this server, now.
pub fn checks(state: &AppState) -> Checks<'_> {
    Checks {
        issuer: state.config.issuer.as_str(),
        at: Validity::at(state.now(), state.config.clock_leeway),
        jwks: &state.client_jwks,
        allow_loopback: state.config.dev_login,
    }
}

/// An `/authorize` refusal as the JSON error a direct request gets (RFC 9126 §2.3): the
/// same code; where `/authorize` would show a page (a redirect_uri it cannot trust, which
/// has no code of its own), `invalid_request`.
fn as_json(error: AuthorizeError) -> TokenError {
    match error {
        AuthorizeError::Redirect(r) => TokenError::new(r.error, r.description),
        AuthorizeError::Page { message, .. } => TokenError::invalid_request(message),
        AuthorizeError::Unavailable => {
            TokenError::new("temporarily_unavailable", "the server cannot reach its database; retry shortly")
        }
    }
}

/// The reference to a pushed request, if `/authorize` was given one as its `request_uri`
/// (a URL there is a request object by reference: `request_object`).
pub fn reference(params: &Params) -> Option<&str> {
    params.single("request_uri").ok().flatten().filter(|uri| uri.starts_with(PAR_URN_PREFIX))
}

/// Takes the pushed request `request_uri` of `client` for `/authorize`, once (RFC 9126
/// §4). An unknown, foreign or used reference says nothing trustworthy about where to
/// send an error: a page. An expired one of this client was validated when pushed: its
/// redirect_uri, if still registered, gets `invalid_request_uri`.
pub async fn take(state: &AppState, client: &Client, request_uri: &str) -> Result<AuthorizationParams, AuthorizeError> {
    let page = |message: &str| AuthorizeError::Page {
        status: StatusCode::BAD_REQUEST,
        title: "Sign-in link not valid",
        message: format!("{message} Go back to the application and sign in again."),
    };
    match state.store.take_pushed_request(&sha256_hex(request_uri), &client.client_id).await? {
        Taken::Fresh(params) => Ok(AuthorizationParams::pushed(Params::parse(params.as_bytes()))),
        Taken::Used => {
            Err(page("This pushed authorization request (request_uri) was used already: each is good once."))
        }
        Taken::Unknown => Err(page(&format!(
            "The request_uri names no pushed authorization request of client {:?}.",
            client.client_id
        ))),
        Taken::Expired(params) => Err(AuthorizationRequest::refuse_unparsed(
            &Params::parse(params.as_bytes()),
            client,
            state.config.issuer.as_str(),
            "invalid_request_uri",
            "the pushed authorization request has expired: push it again".into(),
        )),
    }
}

/// `/authorize` without a pushed request, from a client that must push (RFC 9126 §4,
/// §5, §6): `invalid_request`, at the query's redirect_uri when it is registered.
pub fn refuse_unpushed(params: &Params, client: &Client, state: &AppState) -> Option<AuthorizeError> {
    let by_client = client.require_par;
    if !(by_client || state.config.require_pushed_authorization_requests) {
        return None;
    }
    let whose = if by_client { "this client" } else { "this server" };
    Some(AuthorizationRequest::refuse_unparsed(
        params,
        client,
        state.config.issuer.as_str(),
        "invalid_request",
        format!(
            "{whose} requires pushed authorization requests (RFC 9126): POST the request to {} and pass the \
             request_uri it returns",
            state.config.issuer.endpoint("/par")
        ),
    ))
}
