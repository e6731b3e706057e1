//! The protocol recorder's pages (test lab, development features only): `/admin/activity`
//! lists the recorded exchanges (filtered by client, user, endpoint or failure), and
//! `/admin/activity/{id}` shows one: its parameters (secrets masked), its outcome and the
//! tokens it carried, decoded and explained. Without development features, a page says how
//! to turn them on.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::{AdminError, Chrome, require_admin};
use crate::activity::{Entry, Filter, TokenCheck};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/activity", web::get().to(list)).route("/admin/activity/{id}", web::get().to(show));
}

/// The most rows one list shows (filters narrow it).
const PAGE_SIZE: i64 = 200;

/// What the endpoint filter offers.
const ENDPOINTS: [&str; 14] = [
    "authorize",
    "login",
    "consent",
    "token",
    "userinfo",
    "introspect",
    "revoke",
    "logout",
    "register",
    "par",
    "device_authorization",
    "device",
    "backchannel_logout",
    "",
];

struct Row {
    href: String,
    time: String,
    endpoint: String,
    method: String,
    client_id: String,
    user: String,
    status: u16,
    error: String,
    description: String,
    duration_ms: i64,
    failed: bool,
}

#[derive(Template)]
#[template(path = "admin/activity.html")]
struct ListPage {
    chrome: Chrome,
    enabled: bool,
    client_id: String,
    user: String,
    endpoint: String,
    errors_only: bool,
    endpoints: Vec<&'static str>,
    rows: Vec<Row>,
    truncated: bool,
}

/// A decoded token as the page shows it.
struct TokenView {
    source: String,
    kind: String,
    summary: String,
    verdict: String,
    checks: Vec<TokenCheck>,
    times: Vec<(String, String)>,
    header: String,
    claims: String,
}

#[derive(Template)]
#[template(path = "admin/activity_entry.html")]
struct EntryPage {
    chrome: Chrome,
    entry: Entry,
    time: String,
    body: Option<String>,
    response: Option<String>,
    tokens: Vec<TokenView>,
}

/// A Unix time to the second, for people (UTC).
fn when_exact(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&format).ok()).unwrap_or_default()
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<Filter>,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    let filter = Filter { limit: Some(PAGE_SIZE + 1), ..query.into_inner() };
    let enabled = state.activity.is_on();
    let entries = if enabled { state.activity.list(&filter).await? } else { Vec::new() };
    let truncated = entries.len() as i64 > PAGE_SIZE;
    let rows = entries
        .into_iter()
        .take(PAGE_SIZE as usize)
        .map(|e| Row {
            href: format!("/admin/activity/{}", e.id),
            time: when_exact(e.at),
            failed: e.failed(),
            endpoint: e.endpoint,
            method: e.method,
            client_id: e.client_id.unwrap_or_default(),
            user: e.user.or(e.user_id).unwrap_or_default(),
            status: e.status,
            error: e.error.unwrap_or_default(),
            description: e.error_description.unwrap_or_default(),
            duration_ms: e.duration_ms,
        })
        .collect();
    let page = ListPage {
        chrome: admin.chrome(&state, "activity"),
        enabled,
        client_id: filter.client_id.unwrap_or_default(),
        user: filter.user.unwrap_or_default(),
        endpoint: filter.endpoint.unwrap_or_default(),
        errors_only: filter.errors_only,
        endpoints: ENDPOINTS.to_vec(),
        rows,
        truncated,
    };
    let status = if enabled { StatusCode::OK } else { StatusCode::FORBIDDEN };
    Ok(admin.page(status, &page))
}

async fn show(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    if !state.activity.is_on() {
        return Err(AdminError::NotFound("protocol activity: development features are off".into()));
    }
    let not_found = || AdminError::NotFound(format!("recorded exchange {id:?}"));
    let id_number = id.parse::<i64>().map_err(|_| not_found())?;
    let entry = state.activity.get(id_number).await?.ok_or_else(not_found)?;
    let tokens = entry
        .detail
        .tokens
        .iter()
        .map(|t| TokenView {
            source: t.source.clone(),
            kind: t.kind.clone(),
            summary: t.summary.clone(),
            verdict: t.verdict.clone(),
            checks: t.checks.clone(),
            times: t.times.clone(),
            header: pretty(&t.header),
            claims: pretty(&t.claims),
        })
        .collect();
    let page = EntryPage {
        chrome: admin.chrome(&state, "activity"),
        time: when_exact(entry.at),
        body: entry.detail.body.as_ref().map(pretty),
        response: entry.detail.response.as_ref().map(pretty),
        tokens,
        entry,
    };
    Ok(admin.page(StatusCode::OK, &page))
}
