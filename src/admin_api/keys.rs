//! `/admin/api/keys` and `/admin/api/keys/rotate`: the signing keys, and their rotation in
//! one step (a new key signs at once; the one it replaces is retired but stays published
//! until the tokens it signed have expired).

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::problem::Problem;
use super::{Caller, ok};
use crate::registry::FieldErrors;
use crate::state::AppState;
use crate::tokens::keys::{KeyError, SigningAlg};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/keys", web::get().to(list)).route("/keys/rotate", web::post().to(rotate));
}

/// The body of a rotation: `{"alg": "RS256" | "ES256"}`; an empty body rotates RS256.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    #[serde(default)]
    alg: Option<String>,
}

async fn list(_: Caller, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    // The ring is refreshed in the background; a caller asking for keys wants them now.
    state.keys.reload().await.map_err(key_failure)?;
    Ok(ok(&state.keys.ring().summaries()))
}

async fn rotate(caller: Caller, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, Problem> {
    let request: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Problem::wrong_shape(&e))?
    };
    let alg = match request.alg.as_deref() {
        None => SigningAlg::RS256,
        Some(raw) => raw.parse::<SigningAlg>().map_err(|e| FieldErrors::single("alg", e))?,
    };
    let rotation = state.keys.rotate(alg).await.map_err(key_failure)?;
    let detail = match &rotation.retired {
        Some(old) => format!("{alg} rotated; {old} retired"),
        None => format!("{alg} rotated"),
    };
    caller.audit(&state.store, "key.rotate", &rotation.kid, &detail).await;
    Ok(ok(&rotation))
}

/// A key operation that failed: the store's fault is a 503 like any other; anything else
/// (a key that cannot be generated or decrypted) is logged and reported without detail.
fn key_failure(error: KeyError) -> Problem {
    match error {
        KeyError::Store(e) => e.into(),
        other => {
            tracing::error!(error = %other, "signing key operation failed");
            Problem::new(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, "the signing keys could not be changed")
        }
    }
}
