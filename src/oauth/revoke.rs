//! `/revoke` (RFC 7009): a client ends its own access or refresh token. Unknown and foreign
//! tokens get the same empty 200, so nobody learns whether a token exists.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::client_auth;
use super::error::TokenError;
use super::token::form_params;
use crate::crypto::sha256_hex;
use crate::state::AppState;
use crate::tokens::verify;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/revoke", web::post().to(revoke));
}

async fn revoke(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, TokenError> {
    let params = form_params(&req, &body)?;
    let client = client_auth::authenticate(&req, &params, &state).await?;
    let token = params
        .single("token")
        .map_err(TokenError::invalid_request)?
        .ok_or_else(|| TokenError::invalid_request("token is required"))?;
    // token_type_hint only orders the look-ups (§2.1); both kinds are tried.
    let hint = params.single("token_type_hint").map_err(TokenError::invalid_request)?;
    let refresh_first = hint == Some("refresh_token");
    if refresh_first && revoke_refresh(&state, &client.client_id, token).await? {
        return Ok(done());
    }
    match verify::decode(&state.keys.ring(), state.config.issuer.as_str(), token) {
        Ok(claims) if claims.client_id == client.client_id => {
            state.store.revoke_access_token(&claims.jti, claims.exp).await?;
            tracing::info!(client = %client.client_id, jti = %claims.jti, "access token revoked");
        }
        Ok(_) => {}
        Err(_) if !refresh_first => {
            revoke_refresh(&state, &client.client_id, token).await?;
        }
        Err(_) => {}
    }
    Ok(done())
}

/// Revokes a refresh token's whole grant (§2.1: and the access tokens issued under it).
async fn revoke_refresh(state: &AppState, client_id: &str, token: &str) -> Result<bool, TokenError> {
    match state.store.refresh_token(&sha256_hex(token)).await? {
        Some(record) if record.client_id == client_id => {
            state.store.revoke_grant(&record.family_id).await?;
            tracing::info!(client = %client_id, "refresh token revoked with its grant");
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn done() -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).finish()
}
