//! The token inspector: paste a JWT, see its header and claims, whether this server's keys
//! verify it, whether it has expired or been revoked, and, in plain words, what it is for
//! (the analysis is [`crate::web::token_report`]).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::{AdminError, Chrome, require_admin, require_admin_form};
use crate::state::AppState;
use crate::web::token_report::{Report, examine};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/inspect").route(web::get().to(form)).route(web::post().to(inspect)));
}

#[derive(Template)]
#[template(path = "admin/inspect.html")]
struct InspectPage {
    chrome: Chrome,
    token: String,
    error: Option<String>,
    report: Option<Report>,
}

async fn form(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    let page = InspectPage { chrome: admin.chrome(&state, "inspect"), token: String::new(), error: None, report: None };
    Ok(admin.page(StatusCode::OK, &page))
}

async fn inspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, fields) = require_admin_form(&req, &state, submitted).await?;
    let token = fields.text("token");
    let (status, error, report) = match examine(&state, &token).await? {
        Ok(report) => (StatusCode::OK, None, Some(report)),
        Err(problem) => (StatusCode::UNPROCESSABLE_ENTITY, Some(problem), None),
    };
    let page = InspectPage { chrome: admin.chrome(&state, "inspect"), token, error, report };
    Ok(admin.page(status, &page))
}
