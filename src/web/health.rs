//! Liveness and readiness probes.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};

use crate::state::AppState;

/// Readiness answers within this long (or the database deadline, if shorter), database
/// or not: a probe that hangs is a probe that lies.
const READY_DEADLINE: Duration = Duration::from_secs(1);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz);
}

/// Liveness: the process answers.
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Readiness: not draining for a shutdown, and the database answers in time.
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.is_draining() {
        return unready("shutting down");
    }
    let deadline = READY_DEADLINE.min(state.config.database_timeout);
    match tokio::time::timeout(deadline, state.store.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            unready("database unavailable")
        }
        Err(_) => {
            tracing::warn!(?deadline, "readiness check: the database did not answer in time");
            unready("database not answering")
        }
    }
}

fn unready(why: &'static str) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .content_type("text/plain")
        .insert_header((actix_web::http::header::RETRY_AFTER, crate::web::deadline::RETRY_AFTER_SECONDS))
        .body(why)
}
