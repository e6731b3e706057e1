//! `/token` (RFC 6749 §3.2): authenticate the client, then dispatch on `grant_type`.

mod authorization_code;

use actix_web::http::header::{self, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::client_auth;
use super::error::TokenError;
use super::params::Params;
use super::scope::{ScopeSet, is_oidc_scope};
use crate::app::AppState;
use crate::registry::api::{Api, DEFAULT_ACCESS_TOKEN_TTL};
use crate::tokens::keys::SigningAlg;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/token", web::post().to(token));
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

impl TokenResponse {
    fn into_response(self) -> HttpResponse {
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(self)
    }
}

/// Parses a form body, refusing other content types (RFC 6749 §3.2).
pub fn form_params(req: &HttpRequest, body: &[u8]) -> Result<Params, TokenError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(TokenError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    Ok(Params::parse(body))
}

async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, TokenError> {
    let params = form_params(&req, &body)?;
    let client = client_auth::authenticate(&req, &params, &state.store).await?;
    let response = match params
        .single("grant_type")
        .map_err(TokenError::invalid_request)?
    {
        Some("authorization_code") => {
            authorization_code::exchange(&state, &client, &params).await?
        }
        Some(other) => {
            return Err(TokenError::new(
                "unsupported_grant_type",
                format!("grant_type {other:?} is not supported"),
            ));
        }
        None => return Err(TokenError::invalid_request("grant_type is required")),
    };
    Ok(response.into_response())
}

/// The API one access token is for: the `resource` (or `audience`) named in the token
/// request, which must be among those granted; otherwise the first granted one
/// (RFC 8707 §2.2: one audience per token, so no token carries audiences it doesn't need).
pub fn select_resource(params: &Params, granted: &[String]) -> Result<Option<String>, TokenError> {
    let mut requested = params.all("resource");
    requested.extend(
        params
            .single("audience")
            .map_err(TokenError::invalid_request)?,
    );
    match requested.as_slice() {
        [] => Ok(granted.first().cloned()),
        [one] if granted.iter().any(|g| g == one) => Ok(Some((*one).to_owned())),
        [one] => Err(TokenError::new(
            "invalid_target",
            format!("{one:?} was not granted to this client by the user"),
        )),
        _ => Err(TokenError::new(
            "invalid_target",
            "name one resource per token request",
        )),
    }
}

/// How the access token for a user grant is shaped: its audiences, its scope (OIDC scopes
/// for userinfo plus the chosen API's own), lifetime and algorithm.
pub struct AccessTokenShape {
    pub audience: Vec<String>,
    pub scope: ScopeSet,
    pub ttl: i64,
    pub alg: SigningAlg,
}

pub fn shape_user_token(
    state: &AppState,
    granted: &ScopeSet,
    api: Option<&Api>,
) -> AccessTokenShape {
    let openid = granted.contains("openid");
    let mut audience = Vec::new();
    if let Some(api) = api {
        audience.push(api.identifier.clone());
    }
    if openid {
        audience.push(state.config.issuer.endpoint("/userinfo"));
    }
    let scope = granted.filter(|s| {
        (openid && is_oidc_scope(s) && s != "offline_access") || api.is_some_and(|a| a.defines(s))
    });
    AccessTokenShape {
        audience,
        scope,
        ttl: api.map_or(DEFAULT_ACCESS_TOKEN_TTL, |a| a.access_token_ttl),
        alg: api.map_or(SigningAlg::RS256, |a| a.signing_alg),
    }
}
