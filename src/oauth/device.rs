//! `/device_authorization` (RFC 8628 §3.1–3.2): a device without a browser or a keyboard
//! (a CLI, a TV) asks for a device code, which it polls `/token` with, and a user code,
//! which the user types at `/device` on another screen.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::client_auth;
use super::error::TokenError;
use super::requested_access::RequestedAccess;
use super::token::form_params;
use super::user_code::UserCode;
use crate::crypto::{random_token, sha256_hex};
use crate::registry::client::{Client, GrantType};
use crate::state::AppState;
use crate::store::device_codes::NewDeviceCode;

/// How long the user has to approve (RFC 8628 §3.2 `expires_in`).
pub const DEVICE_CODE_TTL: i64 = 600;
/// Seconds the device waits between polls at first (§3.2 `interval`; 5 is the default).
pub const POLL_INTERVAL: i64 = 5;
/// Where the user types the code: a page on the issuer.
pub const VERIFICATION_PATH: &str = "/device";
/// Draws of a new user code when the one drawn is taken (20^8 codes: a second collision
/// in a row means something else is wrong).
const USER_CODE_DRAWS: usize = 5;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/device_authorization", web::post().to(device_authorization));
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

async fn device_authorization(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, TokenError> {
    let params = form_params(&req, &body)?;
    // §3.1: the client authenticates as it would at /token (public clients by client_id).
    let client = client_auth::authenticate(&req, &params, &state).await?;
    let answer = start(&state, &client, &params).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(answer))
}

/// Validates the request for `client` (the grant, `scope` and `resource` as `/authorize`
/// checks them) and stores a pending request under new codes.
pub async fn start(
    state: &AppState,
    client: &Client,
    params: &super::params::Params,
) -> Result<DeviceAuthorization, TokenError> {
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(TokenError::new("unauthorized_client", "this client may not use the device authorization grant"));
    }
    let apis = state.registry.apis().await?;
    let catalog = state.registry.scopes().await?;
    let access = RequestedAccess::parse(params, client, &apis, &catalog, state.config.scope_narrowing)
        .map_err(|r| TokenError::new(r.error, r.description))?;
    let device_code = random_token(32);
    let device_code_hash = sha256_hex(&device_code);
    let grant_id = uuid::Uuid::new_v4().to_string();
    let scope = access.scope.to_string();
    let resources = serde_json::to_string(&access.resources).unwrap_or_else(|_| "[]".into());
    for _ in 0..USER_CODE_DRAWS {
        let user_code = UserCode::generate();
        let new = NewDeviceCode {
            device_code_hash: &device_code_hash,
            user_code_hash: &user_code.hash(),
            client_id: &client.client_id,
            scope: &scope,
            resources: &resources,
            grant_id: &grant_id,
            expires_at: state.now() + DEVICE_CODE_TTL,
            poll_interval: POLL_INTERVAL,
        };
        if state.store.insert_device_code(&new).await? {
            let verification_uri = state.config.issuer.endpoint(VERIFICATION_PATH);
            let shown = user_code.display();
            return Ok(DeviceAuthorization {
                verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
                verification_uri,
                user_code: shown,
                device_code,
                expires_in: DEVICE_CODE_TTL,
                interval: POLL_INTERVAL,
            });
        }
    }
    tracing::error!(client = %client.client_id, "no free user code after {USER_CODE_DRAWS} draws");
    Err(TokenError::new("temporarily_unavailable", "no user code could be issued; retry shortly"))
}
