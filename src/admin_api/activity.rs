//! `GET /admin/api/activity[/{id}]`: the protocol recorder's entries (test lab, development
//! features only), newest first, filtered by `client_id`, `user`, `endpoint`,
//! `errors_only`, `since` (an id) and `limit`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::problem::Problem;
use super::{Caller, ok};
use crate::activity::Filter;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/activity", web::get().to(list)).route("/activity/{id}", web::get().to(read));
}

/// Why the recorder's entries are refused without development features.
pub const DEV_ONLY: &str = "the protocol recorder is a test-lab feature, on only with development features: \
     start with --dev (or --dev-login, --ephemeral, LANYARD_DEV=true), without LANYARD_ACTIVITY_RECORDER=false";

fn require_recorder(state: &AppState) -> Result<(), Problem> {
    if state.config.dev_features() && state.activity.is_on() {
        Ok(())
    } else {
        Err(Problem::new(StatusCode::FORBIDDEN, DEV_ONLY))
    }
}

async fn list(_: Caller, state: web::Data<AppState>, filter: web::Query<Filter>) -> Result<HttpResponse, Problem> {
    require_recorder(&state)?;
    Ok(ok(&state.activity.list(&filter).await?))
}

async fn read(_: Caller, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, Problem> {
    require_recorder(&state)?;
    let found = match id.parse::<i64>() {
        Ok(id) => state.activity.get(id).await?,
        Err(_) => None,
    };
    found.map(|entry| ok(&entry)).ok_or_else(|| Problem::not_found(format!("activity entry {id:?}")))
}
