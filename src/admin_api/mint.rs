//! `POST /admin/api/tokens/mint`: real, signed tokens for API tests, as `lanyard token mint`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::problem::Problem;
use super::{Caller, ok};
use crate::state::AppState;
use crate::tokens::mint::{MintError, MintRequest, mint};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tokens/mint", web::post().to(mint_tokens));
}

/// Body: `{"user": "alice", "client": "web", "api": "https://…", "scope": "…", "id_token": true}`
/// (`user` omitted: a client_credentials token); with `"defect": "expired"` (…) a token an
/// API must refuse, with development features only.
async fn mint_tokens(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<MintRequest>,
) -> Result<HttpResponse, Problem> {
    let request = body.into_inner();
    if request.defect.is_some() && !state.config.dev_features() {
        return Err(Problem::new(StatusCode::FORBIDDEN, crate::cli::token::DEV_ONLY));
    }
    let minted = mint(
        &state.store,
        &state.keys.ring(),
        &state.config.issuer,
        &state.subjects,
        state.config.id_token_ttl,
        &request,
    )
    .await
    .map_err(|e| match e {
        MintError::Invalid(message) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, message),
        MintError::Store(e) => e.into(),
        MintError::Keys(e) => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    })?;
    let subject = request.user.as_deref().unwrap_or("client_credentials");
    caller.audit(&state.store, "token.mint", &request.client, subject).await;
    Ok(ok(&minted))
}
