//! The dashboard: counts, issuer, recent activity and the audit log.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::{AdminError, Chrome, require_admin, when};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(dashboard));
}

struct Row {
    when: String,
    what: String,
    who: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    clients: i64,
    users: i64,
    apis: i64,
    sessions: i64,
    discovery: String,
    activity: Vec<Row>,
    audit: Vec<Row>,
    /// The test lab's clock bar (development features only).
    clock: Option<super::lab::ClockBar>,
    notice: Option<&'static str>,
}

const NOTICES: [(&str, &str); 1] = [("clock", "Clock changed: every server on this database keeps the new time.")];

async fn dashboard(
    req: HttpRequest,
    state: web::Data<AppState>,
    done: web::Query<super::form::Done>,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    let store = &state.store;
    let activity = store
        .recent_activity(10)
        .await?
        .into_iter()
        .map(|a| Row { when: when(a.at), what: a.kind.to_owned(), who: a.user, detail: a.client })
        .collect();
    let audit = store
        .recent_audit(10)
        .await?
        .into_iter()
        .map(|e| Row { when: when(e.at), what: format!("{} {}", e.action, e.target), who: e.actor, detail: e.detail })
        .collect();
    let page = DashboardPage {
        chrome: admin.chrome(&state, "dashboard"),
        clients: store.count_clients().await?,
        users: store.count_users().await?,
        apis: store.count_apis().await?,
        sessions: store.count_active_sessions().await?,
        discovery: state.config.issuer.endpoint("/.well-known/openid-configuration"),
        activity,
        audit,
        clock: state.config.dev_features().then(|| super::lab::ClockBar::of(&state)),
        notice: done.notice(&NOTICES),
    };
    Ok(admin.page(StatusCode::OK, &page))
}
