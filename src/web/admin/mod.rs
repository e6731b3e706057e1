//! The admin area (`/admin`): server-rendered pages for clients, users, APIs, keys, a
//! token inspector and the protocol recorder. Admins are users with the admin role, signed
//! in with the ordinary login form and session; every form carries the CSRF token.

mod activity;
mod apis;
mod clients;
mod dashboard;
mod form;
mod inspect;
mod keys;
mod lab;
mod scopes;
mod users;

use std::fmt;

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use crate::registry::user::User;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::sessions::Session;
use crate::web::login::{self, LoginTarget};
use crate::web::{csrf, pages, session};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/login", web::get().to(login_form)).route("/admin/logout", web::post().to(logout));
    dashboard::configure(cfg);
    clients::configure(cfg);
    apis::configure(cfg);
    scopes::configure(cfg);
    keys::configure(cfg);
    lab::configure(cfg);
    inspect::configure(cfg);
    users::configure(cfg);
    activity::configure(cfg);
}

/// What every admin page shows around its content.
pub struct Chrome {
    pub username: String,
    pub csrf_token: String,
    /// The navigation entry to highlight.
    pub nav: &'static str,
    pub issuer: String,
    /// Development features are on: the test lab's pages are offered.
    pub lab: bool,
    /// When the test lab's clock is not the wall clock: every page says so.
    pub clock_moved: Option<String>,
}

/// A signed-in admin, with the CSRF token for the forms of the page being rendered.
pub struct Admin {
    pub user: User,
    pub session: Session,
    pub csrf_token: String,
    csrf_cookie: Option<Cookie<'static>>,
}

impl Admin {
    pub fn chrome(&self, state: &AppState, nav: &'static str) -> Chrome {
        Chrome {
            username: self.user.username.clone(),
            csrf_token: self.csrf_token.clone(),
            nav,
            issuer: state.config.issuer.as_str().to_owned(),
            lab: state.config.dev_features(),
            clock_moved: state
                .config
                .dev_features()
                .then(|| lab::ClockBar::of(state))
                .filter(|c| c.moved)
                .map(|c| format!("Server time is {} ({}), not the wall clock's {}.", c.now, c.how, c.real)),
        }
    }

    /// Renders an admin page (setting the CSRF cookie when the browser has none).
    pub fn page(&self, status: StatusCode, page: &impl Template) -> HttpResponse {
        let mut response = pages::html(status, page);
        if let Some(cookie) = &self.csrf_cookie {
            let _ = response.add_cookie(cookie);
        }
        response
    }

    /// Checks a submitted form's CSRF token.
    pub fn check_csrf(&self, req: &HttpRequest, submitted: Option<&str>) -> Result<(), AdminError> {
        if csrf::verify(req, submitted) { Ok(()) } else { Err(AdminError::Csrf) }
    }

    /// The audit log's name for this admin.
    pub fn actor(&self) -> &str {
        &self.user.username
    }
}

/// Why an admin request did not get its page.
#[derive(Debug)]
pub enum AdminError {
    /// Not signed in: to the login form, then back to `return_to`.
    SignIn {
        return_to: String,
    },
    /// Signed in, but not an admin.
    Forbidden,
    Csrf,
    NotFound(String),
    Unavailable,
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SignIn { .. } => f.write_str("sign-in required"),
            Self::Forbidden => f.write_str("admin role required"),
            Self::Csrf => f.write_str("CSRF token missing or wrong"),
            Self::NotFound(what) => write!(f, "{what} not found"),
            Self::Unavailable => f.write_str("database unavailable"),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure on an admin page");
        Self::Unavailable
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn { return_to } => {
                let query =
                    url::form_urlencoded::Serializer::new(String::new()).append_pair("return_to", return_to).finish();
                HttpResponse::SeeOther().insert_header((LOCATION, format!("/admin/login?{query}"))).finish()
            }
            Self::Forbidden => pages::message(
                StatusCode::FORBIDDEN,
                "Admins only",
                "You are signed in, but your account does not have the admin role.",
            ),
            Self::Csrf => login::csrf_failure(),
            Self::NotFound(what) => pages::message(StatusCode::NOT_FOUND, "Not found", &format!("There is no {what}.")),
            Self::Unavailable => pages::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Lanyard cannot reach its database right now. Please try again in a moment.",
            ),
        }
    }
}

/// The signed-in admin, or the reason there is none.
pub async fn require_admin(req: &HttpRequest, state: &AppState) -> Result<Admin, AdminError> {
    let return_to = if req.method() == actix_web::http::Method::GET {
        match req.query_string() {
            "" => req.path().to_owned(),
            q => format!("{}?{q}", req.path()),
        }
    } else {
        "/admin".to_owned()
    };
    let Some(session) = session::current(req, &state.store).await? else {
        return Err(AdminError::SignIn { return_to });
    };
    let user = state.store.user_by_id(&session.user_id).await?.ok_or(AdminError::SignIn { return_to })?;
    if !user.is_admin || user.disabled {
        return Err(AdminError::Forbidden);
    }
    let (csrf_token, csrf_cookie) = csrf::token(req, state.config.issuer.is_https());
    Ok(Admin { user, session, csrf_token, csrf_cookie })
}

/// The signed-in admin and a submitted form whose CSRF token has been checked: what every
/// admin POST starts with.
pub async fn require_admin_form(
    req: &HttpRequest,
    state: &AppState,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<(Admin, form::Fields), AdminError> {
    let admin = require_admin(req, state).await?;
    let fields = form::Fields::from(submitted.into_inner());
    admin.check_csrf(req, fields.csrf_token())?;
    Ok((admin, fields))
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

async fn login_form(req: HttpRequest, state: web::Data<AppState>, query: web::Query<LoginQuery>) -> HttpResponse {
    let target = LoginTarget::admin(query.return_to.as_deref());
    login::render(&req, &state, &target, "", None, &[], StatusCode::OK)
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    csrf_token: Option<String>,
}

async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    admin.check_csrf(&req, form.csrf_token.as_deref())?;
    crate::oauth::session_end::end_session(&state, &admin.session.sid).await?;
    Ok(HttpResponse::SeeOther()
        .cookie(session::removal(state.config.issuer.is_https()))
        .insert_header((LOCATION, "/admin/login"))
        .finish())
}

/// Formats a Unix time for people (UTC).
pub fn when(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&format).ok()).unwrap_or_default()
}
