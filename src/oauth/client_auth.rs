//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`, a JWT assertion
//! (RFC 7523 §2.2, see `client_assertion`) signed with the client's key (`private_key_jwt`)
//! or MACed with its secret (`client_secret_jwt`), or `none` for public clients.

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use base64::Engine;

use super::client_assertion::{self, ASSERTION_TYPE, Expectations, Refused, Unverified};
use super::error::TokenError;
use super::params::{ParamError, Params};
use crate::registry::client::{Client, ClientType};
use crate::state::AppState;
use crate::web::input_guard::has_control;

/// Credentials as presented, before they are checked.
struct Presented {
    client_id: String,
    secret: Option<String>,
}

/// A JWT client assertion (RFC 7521 §4.2), if one was sent: mixed with a secret or Basic
/// credentials it is an `invalid_request` (RFC 6749 §2.3: one method per request).
fn presented_assertion<'p>(req: &HttpRequest, params: &'p Params) -> Result<Option<Unverified<'p>>, TokenError> {
    let kind = params.single("client_assertion_type").map_err(TokenError::invalid_request)?;
    let assertion = params.single("client_assertion").map_err(TokenError::invalid_request)?;
    if kind.is_none() && assertion.is_none() {
        return Ok(None);
    }
    let secret = params.single("client_secret").map_err(TokenError::invalid_request)?;
    if secret.is_some() || req.headers().contains_key(AUTHORIZATION) {
        return Err(TokenError::invalid_request(
            "use one client authentication method: a client_assertion, or a secret, not both",
        ));
    }
    let refused = |reason: &str| {
        tracing::info!(reason, "client authentication failed");
        failed()
    };
    if kind != Some(ASSERTION_TYPE) {
        return Err(refused("client_assertion_type is not the jwt-bearer type"));
    }
    let assertion = assertion.ok_or_else(|| refused("client_assertion is missing"))?;
    let unverified = Unverified::peek(assertion).map_err(|e| refused(&e.to_string()))?;
    // RFC 7521 §4.2: a client_id sent alongside must name the same client.
    let body_id = params.single("client_id").map_err(|_| refused("client_id is malformed"))?;
    if body_id.is_some_and(|id| id != unverified.client_id) {
        return Err(refused("client_id differs from the assertion's sub"));
    }
    Ok(Some(unverified))
}

/// The one answer to every failed authentication: the reason is logged, not sent.
fn failed() -> TokenError {
    TokenError::invalid_client("client authentication failed")
}

fn presented(req: &HttpRequest, params: &Params) -> Result<Presented, TokenError> {
    // A client_id no client can have fails authentication like any unknown one.
    let body_id = match params.single("client_id") {
        Err(ParamError::ControlCharacters(_)) => {
            return Err(TokenError::invalid_client("client authentication failed"));
        }
        other => other.map_err(TokenError::invalid_request)?,
    };
    let body_secret = params.single("client_secret").map_err(TokenError::invalid_request)?;
    let header = req.headers().get(AUTHORIZATION).and_then(|h| h.to_str().ok());
    if let Some(header) = header {
        let Some(encoded) = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic ")) else {
            return Err(TokenError::invalid_client("only HTTP Basic authentication is accepted here"));
        };
        let malformed = || TokenError::invalid_client("the Basic credentials are malformed");
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
        let decode =
            |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
        let (id, secret) = (decode(id).ok_or_else(malformed)?, decode(secret).ok_or_else(malformed)?);
        if has_control(&id) || has_control(&secret) {
            return Err(malformed());
        }
        if body_secret.is_some() {
            return Err(TokenError::invalid_request(
                "use one client authentication method, not Basic and client_secret together",
            ));
        }
        if body_id.is_some_and(|b| b != id) {
            return Err(TokenError::invalid_request("client_id in the body differs from the Basic credentials"));
        }
        return Ok(Presented { client_id: id, secret: Some(secret).filter(|s| !s.is_empty()) });
    }
    let client_id = body_id.ok_or_else(|| TokenError::invalid_client("client authentication is required"))?;
    Ok(Presented { client_id: client_id.to_owned(), secret: body_secret.map(str::to_owned) })
}

/// Authenticates the calling client with one database round trip at most, none for a
/// cached client (a client known by its metadata document is public and authenticates with
/// `none`). The cache is safe for this: a rotated secret or a deleted client is written
/// with `Reach::AtOnce`, which returns only when every server has dropped its copy.
pub async fn authenticate(req: &HttpRequest, params: &Params, state: &AppState) -> Result<Client, TokenError> {
    if let Some(assertion) = presented_assertion(req, params)? {
        return authenticate_assertion(req, &assertion, state).await;
    }
    let presented = presented(req, params)?;
    // The caller learns only that authentication failed; the operator learns why.
    let refused = |reason: &str| {
        tracing::info!(client_id = %presented.client_id, reason, "client authentication failed");
        failed()
    };
    let Some(client) = state.find_client(&presented.client_id).await? else {
        return Err(refused("no such client"));
    };
    // A client registered for an assertion never sends its secret as it is (a
    // client_secret_jwt client's secret must not cross the wire: that is the point).
    if client.auth_method.uses_assertion() {
        return Err(refused("the client is registered for an assertion but sent no client_assertion"));
    }
    match (client.client_type, presented.secret.as_deref()) {
        (ClientType::Confidential, Some(secret)) if client.secret_matches(secret) => Ok(client),
        (ClientType::Confidential, Some(_)) => Err(refused("wrong client secret")),
        (ClientType::Confidential, None) => Err(refused("a confidential client sent no secret")),
        (ClientType::Public, None) => Ok(client),
        (ClientType::Public, Some(_)) => {
            tracing::info!(client_id = %client.client_id, reason = "a public client sent a secret", "client authentication failed");
            Err(TokenError::invalid_client("this is a public client: it has no secret to present"))
        }
    }
}

/// Checks a client assertion: the client it names must be registered for `private_key_jwt`
/// or `client_secret_jwt`, and the assertion must verify against its keys or its secret,
/// for this server and this endpoint.
async fn authenticate_assertion(
    req: &HttpRequest,
    assertion: &Unverified<'_>,
    state: &AppState,
) -> Result<Client, TokenError> {
    let client_id = assertion.client_id.as_str();
    let refused = |reason: &str| {
        tracing::info!(client_id, reason, "client authentication failed");
        failed()
    };
    let Some(client) = state.registry.client(client_id).await? else {
        return Err(refused("no such client"));
    };
    if !client.auth_method.uses_assertion() {
        return Err(refused("the client is not registered for private_key_jwt or client_secret_jwt"));
    }
    // draft-ietf-oauth-rfc7523bis: the issuer identifier; OIDC Core §9: the token
    // endpoint; and the endpoint being called, which RFC 7523 §3 also allows.
    let issuer = &state.config.issuer;
    let mut audiences = vec![issuer.as_str().to_owned(), issuer.endpoint("/token")];
    // RFC 9126 §2: at /par, its URL too.
    if let Some(called) =
        ["/introspect", "/revoke", "/device_authorization", "/par"].into_iter().find(|p| req.path().ends_with(p))
    {
        audiences.push(issuer.endpoint(called));
    }
    let expect = Expectations { audiences: &audiences, now: state.now(), leeway: state.config.clock_leeway };
    match client_assertion::verify(assertion, &client, &state.client_jwks, &state.store, &expect).await {
        Ok(()) => Ok(client),
        Err(Refused::Store(e)) => Err(e.into()),
        Err(Refused::Invalid(reason)) => Err(refused(&reason)),
    }
}
