//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`, or `none` for public clients.

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use base64::Engine;

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
    let presented = presented(req, params)?;
    let failed = || TokenError::invalid_client("client authentication failed");
    let client = state.find_client(&presented.client_id).await?.ok_or_else(failed)?;
    match (client.client_type, presented.secret.as_deref()) {
        (ClientType::Confidential, Some(secret)) if client.secret_matches(secret) => Ok(client),
        (ClientType::Confidential, _) => Err(failed()),
        (ClientType::Public, None) => Ok(client),
        (ClientType::Public, Some(_)) => {
            Err(TokenError::invalid_client("this is a public client: it has no secret to present"))
        }
    }
}
