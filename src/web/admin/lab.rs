//! The test lab's admin page (`/admin/lab`, development features only): the servers' clock
//! (advance, set, freeze, reset) and the API hardness check. The dashboard shows the same
//! clock bar, and every admin page says so when the clock is not the wall clock.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::form::{self, Done, Fields};
use super::{Admin, AdminError, Chrome, require_admin, require_admin_form};
use crate::clock::{ClockChange, ClockView, parse_seconds, real_now};
use crate::lab::api_check::{self, ApiCheckError, ApiCheckReport, ApiCheckRequest, Minter};
use crate::lab::{ClockError, set_clock};
use crate::state::AppState;
use crate::web::pages;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/lab", web::get().to(show))
        .route("/admin/lab/clock", web::post().to(change_clock))
        .route("/admin/lab/check-api", web::post().to(check_api));
}

const NOTICES: [(&str, &str); 1] = [("clock", "Clock changed: every server on this database keeps the new time.")];

/// The clock as the clock bar shows it.
pub struct ClockBar {
    pub now: String,
    pub real: String,
    /// "the wall clock", "wall clock +3600 s", "frozen"
    pub how: String,
    pub moved: bool,
    pub frozen: bool,
}

impl ClockBar {
    pub fn of(state: &AppState) -> Self {
        let view = ClockView::of(state.clock.setting(), real_now());
        let how = view.how();
        Self {
            now: view.now_utc,
            real: view.real_now_utc,
            moved: view.now != view.real_now || view.frozen,
            frozen: view.frozen,
            how,
        }
    }
}

/// The API check form's values (kept after a run, so it can be run again).
#[derive(Default)]
struct CheckForm {
    url: String,
    audience: String,
    scope: String,
    method: String,
    require_introspection: bool,
}

#[derive(Template)]
#[template(path = "admin/lab.html")]
struct LabPage {
    chrome: Chrome,
    clock: ClockBar,
    notice: Option<&'static str>,
    error: Option<String>,
    check: CheckForm,
    report: Option<ApiCheckReport>,
}

#[derive(Template)]
#[template(path = "admin/lab_off.html")]
struct LabOffPage {
    chrome: Chrome,
}

fn page(admin: &Admin, state: &AppState, status: StatusCode, lab: LabParts) -> HttpResponse {
    if !state.config.dev_features() {
        return admin.page(StatusCode::FORBIDDEN, &LabOffPage { chrome: admin.chrome(state, "lab") });
    }
    let page = LabPage {
        chrome: admin.chrome(state, "lab"),
        clock: ClockBar::of(state),
        notice: lab.notice,
        error: lab.error,
        check: lab.check,
        report: lab.report,
    };
    admin.page(status, &page)
}

#[derive(Default)]
struct LabParts {
    notice: Option<&'static str>,
    error: Option<String>,
    check: CheckForm,
    report: Option<ApiCheckReport>,
}

async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    done: web::Query<Done>,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    let check = CheckForm { method: "GET".into(), ..Default::default() };
    Ok(page(&admin, &state, StatusCode::OK, LabParts { notice: done.notice(&NOTICES), check, ..Default::default() }))
}

/// The clock bar's forms: `action` = advance | offset | freeze | unfreeze | reset, with
/// `seconds` (90, 15m, 1h, 2d) for the first two; back to `return_to` (the dashboard or
/// this page).
async fn change_clock(
    req: HttpRequest,
    state: web::Data<AppState>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, fields) = require_admin_form(&req, &state, submitted).await?;
    if !state.config.dev_features() {
        return Ok(page(&admin, &state, StatusCode::FORBIDDEN, LabParts::default()));
    }
    let fail = |error: String| {
        let check = CheckForm { method: "GET".into(), ..Default::default() };
        Ok(page(
            &admin,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            LabParts { error: Some(error), check, ..Default::default() },
        ))
    };
    let change = match clock_change(&fields) {
        Ok(change) => change,
        Err(error) => return fail(error),
    };
    let view = match set_clock(&state.store, &change).await {
        Ok(view) => view,
        Err(ClockError::Invalid(error)) => return fail(error),
        Err(ClockError::Store(e)) => return Err(e.into()),
    };
    let detail =
        format!("now {} (offset {} s{})", view.now_utc, view.offset_seconds, if view.frozen { ", frozen" } else { "" });
    state.store.audit(admin.actor(), "clock.set", "clock", &detail).await?;
    let back = if fields.get("return_to") == Some("/admin") { "/admin?done=clock" } else { "/admin/lab?done=clock" };
    Ok(form::see_other(back))
}

fn clock_change(fields: &Fields) -> Result<ClockChange, String> {
    let seconds = || parse_seconds(&fields.text("seconds"));
    Ok(match fields.get("action").unwrap_or_default() {
        "advance" => ClockChange { advance_seconds: Some(seconds()?), ..Default::default() },
        "offset" => ClockChange { offset_seconds: Some(seconds()?), ..Default::default() },
        "freeze" => ClockChange { freeze: Some(true), ..Default::default() },
        "unfreeze" => ClockChange { freeze: Some(false), ..Default::default() },
        "reset" => ClockChange { reset: true, ..Default::default() },
        other => return Err(format!("unknown clock action {other:?}")),
    })
}

async fn check_api(
    req: HttpRequest,
    state: web::Data<AppState>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, fields) = require_admin_form(&req, &state, submitted).await?;
    let check = CheckForm {
        url: fields.text("url").trim().to_owned(),
        audience: fields.text("audience").trim().to_owned(),
        scope: fields.text("scope").trim().to_owned(),
        method: form::non_blank(&fields.text("method")).unwrap_or_else(|| "GET".into()),
        require_introspection: fields.checked("require_introspection"),
    };
    if !state.config.dev_features() {
        return Ok(page(&admin, &state, StatusCode::FORBIDDEN, LabParts::default()));
    }
    let request = ApiCheckRequest {
        url: check.url.clone(),
        audience: check.audience.clone(),
        scope: check.scope.clone(),
        method: Some(check.method.clone()),
        user: None,
        client: None,
        require_introspection: check.require_introspection,
    };
    match api_check::run(&Minter::State(state.clone()), &request).await {
        Ok(report) => {
            let verdict = if report.passed { "passed" } else { "failed" };
            state.store.audit(admin.actor(), "api.check", &check.url, verdict).await?;
            Ok(page(&admin, &state, StatusCode::OK, LabParts { check, report: Some(report), ..Default::default() }))
        }
        Err(ApiCheckError::Invalid(error)) => Ok(page(
            &admin,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            LabParts { check, error: Some(error), ..Default::default() },
        )),
        Err(ApiCheckError::Failed(e)) => {
            tracing::warn!(error = %e, "API check failed to run");
            Ok(pages::message(StatusCode::SERVICE_UNAVAILABLE, "The check could not run", &e.to_string()))
        }
    }
}
