//! `/introspect` (RFC 7662): an API, authenticated as its introspection client, asks whether
//! a token for its own audience is active. Everything else is `{"active": false}`: an
//! id_token, a foreign audience, an expired or revoked token, garbage.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::client_auth;
use super::error::TokenError;
use super::token::form_params;
use crate::crypto::sha256_hex;
use crate::registry::client::{Client, ClientType};
use crate::state::AppState;
use crate::tokens::verify;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/introspect", web::post().to(introspect));
}

async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, TokenError> {
    let params = form_params(&req, &body)?;
    let client = client_auth::authenticate(&req, &params, &state).await?;
    if client.client_type != ClientType::Confidential {
        return Err(TokenError::invalid_client("introspection requires a confidential client"));
    }
    let token = params
        .single("token")
        .map_err(TokenError::invalid_request)?
        .ok_or_else(|| TokenError::invalid_request("token is required"))?;
    // The audiences this caller speaks for: the APIs whose introspection client it is.
    let audiences: Vec<String> = state
        .registry
        .apis()
        .await?
        .iter()
        .filter(|a| a.introspection_client_id.as_deref() == Some(client.client_id.as_str()))
        .map(|a| a.identifier.clone())
        .collect();
    let answer = match access_token(&state, token, &audiences).await? {
        Some(active) => active,
        None => refresh_token(&state, token, &client).await?.unwrap_or_else(|| json!({ "active": false })),
    };
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(answer))
}

async fn access_token(state: &AppState, token: &str, audiences: &[String]) -> Result<Option<Value>, TokenError> {
    let issuer = state.config.issuer.as_str();
    let ring = state.keys.ring();
    // The signature is checked once; then the audience must be one of the caller's.
    let Ok(claims) = verify::decode(&ring, issuer, token) else { return Ok(None) };
    let Some(audience) = audiences.iter().find(|a| claims.aud.contains(a)) else { return Ok(None) };
    if verify::check_audience_and_time(&claims, audience, verify::Validity::at(state.now(), state.config.clock_leeway))
        .is_err()
    {
        return Ok(None);
    }
    if state.store.is_revoked(&claims.jti).await? {
        return Ok(None);
    }
    // client_credentials tokens are not recorded anywhere, so a deleted client's tokens
    // are recognised here: they end with their client.
    let registered = crate::oauth::client_metadata::is_metadata_url(&claims.client_id)
        || state.registry.client(&claims.client_id).await?.is_some();
    if !registered {
        return Ok(None);
    }
    let mut answer = serde_json::to_value(&claims).unwrap_or_default();
    if let Value::Object(map) = &mut answer {
        map.insert("active".into(), Value::Bool(true));
        // RFC 9449 §6.2: a bound token is a DPoP token; its `cnf` is among the claims.
        let token_type = if claims.dpop_jkt().is_some() { "DPoP" } else { "Bearer" };
        map.insert("token_type".into(), Value::String(token_type.into()));
    }
    Ok(Some(answer))
}

/// A refresh token is described only to the client it was issued to, with the `sub` that
/// client knows the user by (pairwise or public).
async fn refresh_token(state: &AppState, token: &str, client: &Client) -> Result<Option<Value>, TokenError> {
    let client_id = client.client_id.as_str();
    Ok(state
        .store
        .refresh_token(&sha256_hex(token))
        .await?
        .filter(|r| r.client_id == client_id && r.expires_at > state.now())
        .map(|r| {
            json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": r.client_id,
                "sub": state.subjects.for_client(client, &r.user_id),
                "scope": r.scope,
                "iat": r.issued_at,
                "exp": r.expires_at,
                "iss": state.config.issuer.as_str(),
            })
        }))
}
