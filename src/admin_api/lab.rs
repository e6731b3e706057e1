//! The test lab in the admin API (development features only): `GET/POST /admin/api/clock`,
//! so that a test can move every server on the database forward in time instead of
//! waiting, and `POST /admin/api/check-api`, the API hardness check.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::problem::Problem;
use super::{Caller, ok};
use crate::clock::{ClockChange, ClockView, real_now};
use crate::lab::api_check::{self, ApiCheckError, ApiCheckRequest, Minter};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/clock", web::get().to(show))
        .route("/clock", web::post().to(change))
        .route("/check-api", web::post().to(check_api));
}

async fn show(_: Caller, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    dev_only(&state)?;
    Ok(ok(&ClockView::of(state.clock.setting(), real_now())))
}

/// Body: `{"advance_seconds": 3600}`, `{"offset_seconds": -60}`, `{"freeze": true}`,
/// `{"reset": true}` (combinable, except `reset`); answers the clock as it now is, once
/// every server on the database keeps that time.
async fn change(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<ClockChange>,
) -> Result<HttpResponse, Problem> {
    dev_only(&state)?;
    let view = crate::lab::set_clock(&state.store, &body).await.map_err(|e| match e {
        crate::lab::ClockError::Invalid(message) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, message),
        crate::lab::ClockError::Store(e) => e.into(),
    })?;
    let detail =
        format!("now {} (offset {} s{})", view.now_utc, view.offset_seconds, if view.frozen { ", frozen" } else { "" });
    caller.audit(&state.store, "clock.set", "clock", &detail).await;
    Ok(ok(&view))
}

/// Body: as `lanyard check-api`'s options (`url`, `audience`, `scope`, `method`, `user`,
/// `client`, `require_introspection`); answers the report (`passed`, `rows`, `summary`)
/// with 200 whether the API passed or not: the check itself worked.
async fn check_api(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<ApiCheckRequest>,
) -> Result<HttpResponse, Problem> {
    dev_only(&state)?;
    let check = body.into_inner();
    let report = api_check::run(&Minter::State(state.clone()), &check).await.map_err(|e| match e {
        ApiCheckError::Invalid(message) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, message),
        ApiCheckError::Failed(e) => {
            tracing::warn!(error = %e, "API check failed to run");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, format!("the check could not run: {e}"))
        }
    })?;
    let verdict = if report.passed { "passed" } else { "failed" };
    caller.audit(&state.store, "api.check", &check.url, verdict).await;
    Ok(ok(&report))
}

fn dev_only(state: &AppState) -> Result<(), Problem> {
    if state.config.dev_features() {
        Ok(())
    } else {
        Err(Problem::new(StatusCode::FORBIDDEN, crate::lab::CLOCK_DEV_ONLY))
    }
}
