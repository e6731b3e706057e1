//! The login form: shown for a pending authorization request or for the admin page, and
//! its submission (CSRF check, throttling, password check, a new session).

use actix_web::http::StatusCode;
use actix_web::http::header::{LOCATION, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::oauth::authorize::load_pending;
use crate::oauth::device::VERIFICATION_PATH;
use crate::oauth::error::AuthorizeError;
use crate::oauth::user_code::UserCode;
use crate::registry::client::ClientDisplay;
use crate::registry::password;
use crate::registry::user::User;
use crate::state::AppState;
use crate::store::throttle::Reservation;
use crate::web::pages::Persona;
use crate::web::{csrf, pages, session};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::post().to(submit)).route("/login/persona", web::post().to(persona));
}

/// Most personas a development login page lists.
const MAX_PERSONAS: i64 = 50;

/// The users a development login page offers as one-click sign-ins: none unless
/// `--dev-login` is on (which start-up allows only for a loopback issuer).
pub async fn personas(state: &AppState) -> Result<Vec<Persona>, AuthorizeError> {
    if !state.config.dev_login {
        return Ok(Vec::new());
    }
    let users = state.store.list_users("", MAX_PERSONAS).await?;
    Ok(users.into_iter().filter(|u| !u.disabled).map(|u| persona_of(&u)).collect())
}

fn persona_of(user: &User) -> Persona {
    let roles = match user.claims.get("roles") {
        Some(serde_json::Value::Array(roles)) => {
            roles.iter().filter_map(serde_json::Value::as_str).collect::<Vec<_>>().join(", ")
        }
        Some(serde_json::Value::String(role)) => role.clone(),
        _ => String::new(),
    };
    Persona { username: user.username.clone(), name: user.display_name().to_owned(), roles }
}

/// What a successful sign-in continues to.
#[derive(Debug, Clone)]
pub enum LoginTarget {
    /// A pending authorization request of a client.
    Authorization { client: Box<ClientDisplay>, request_id: String },
    /// A page of the admin area (a path under `/admin`, never another site).
    Admin { return_to: String },
    /// The device page (RFC 8628 §3.3), with the user code the user came with, if any.
    Device { user_code: Option<UserCode> },
}

impl LoginTarget {
    /// An admin target; anything but a local `/admin` path falls back to `/admin`.
    pub fn admin(return_to: Option<&str>) -> Self {
        let safe = return_to
            .filter(|p| (*p == "/admin" || p.starts_with("/admin/")) && !p.contains("//") && !p.contains('\\'));
        Self::Admin { return_to: safe.unwrap_or("/admin").to_owned() }
    }

    /// The target a login form's `return_to` names: the device page (its user code read
    /// again, so nothing else passes through) or else an admin page.
    pub fn local(return_to: Option<&str>) -> Self {
        let rest = return_to.and_then(|p| p.strip_prefix(VERIFICATION_PATH));
        if rest == Some("") {
            return Self::Device { user_code: None };
        }
        match rest.and_then(|r| r.strip_prefix('?')) {
            Some(query) => {
                let typed = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "user_code");
                Self::Device { user_code: typed.and_then(|(_, v)| UserCode::parse(&v)) }
            }
            None => Self::admin(return_to),
        }
    }

    fn continue_url(&self) -> String {
        match self {
            Self::Authorization { request_id, .. } => format!("/authorize/continue?request_id={request_id}"),
            Self::Admin { return_to } => return_to.clone(),
            Self::Device { user_code: Some(code) } => format!("{VERIFICATION_PATH}?user_code={}", code.display()),
            Self::Device { user_code: None } => VERIFICATION_PATH.to_owned(),
        }
    }
}

/// Renders the login form for `target`.
pub fn render(
    req: &HttpRequest,
    state: &AppState,
    target: &LoginTarget,
    username: &str,
    error: Option<String>,
    personas: &[Persona],
    status: StatusCode,
) -> HttpResponse {
    let (csrf_token, cookie) = csrf::token(req, state.config.issuer.is_https());
    let (local_page, device_return);
    let (client, request_id, return_to) = match target {
        LoginTarget::Authorization { client, request_id } => (&**client, request_id.as_str(), None),
        LoginTarget::Admin { return_to } => {
            local_page = ClientDisplay::named("the Lanyard admin page");
            (&local_page, "", Some(return_to.as_str()))
        }
        LoginTarget::Device { .. } => {
            local_page = ClientDisplay::named("your device");
            device_return = target.continue_url();
            (&local_page, "", Some(device_return.as_str()))
        }
    };
    // Personas sign in without a password: offered for client sign-ins only, never for the
    // admin page's own login form (nor the device page's: dev-login uses login_hint there).
    let personas = if return_to.is_some() { &[] } else { personas };
    let page = pages::LoginPage { client, request_id, return_to, csrf_token: &csrf_token, username, error, personas };
    let mut response = pages::html(status, &page);
    pages::allow_logo(&mut response, client);
    if let Some(cookie) = cookie {
        let _ = response.add_cookie(&cookie);
    }
    response
}

#[derive(Deserialize)]
struct LoginForm {
    csrf_token: Option<String>,
    request_id: Option<String>,
    return_to: Option<String>,
    username: String,
    password: String,
}

/// The same words whatever was wrong, so that usernames can't be discovered.
const FAILED: &str = "Invalid username or password.";

/// The response for a form whose CSRF token does not match the browser's cookie.
pub fn csrf_failure() -> HttpResponse {
    pages::message(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form was not submitted from this browser's Lanyard page (missing or wrong CSRF token). Go back, reload the page and try again.",
    )
}

/// The client IP used for throttling: the TCP peer (forwarded headers can be forged).
pub fn client_ip(req: &HttpRequest) -> String {
    req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AuthorizeError> {
    let form = form.into_inner();
    if !csrf::verify(&req, form.csrf_token.as_deref()) {
        return Ok(csrf_failure());
    }
    let target = match form.request_id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => {
            let (_, client, pending) = load_pending(&state, id).await?;
            crate::activity::note_client(&req, &client.client_id);
            LoginTarget::Authorization {
                client: Box::new(client.display(state.config.dev_login)),
                request_id: pending.id,
            }
        }
        None => LoginTarget::local(form.return_to.as_deref()),
    };
    let config = &state.config;
    let personas = match target {
        LoginTarget::Authorization { .. } => personas(&state).await?,
        LoginTarget::Admin { .. } | LoginTarget::Device { .. } => Vec::new(),
    };
    let username = form.username.trim().to_owned();
    // No account can have this name: nothing to look up, count or hash.
    if crate::registry::user::validate_username(&username).is_err() {
        return Ok(render(&req, &state, &target, "", Some(FAILED.into()), &personas, StatusCode::UNAUTHORIZED));
    }
    let user_key = format!("user:{}", username.to_lowercase());
    let ip_key = format!("ip:{}", client_ip(&req));
    // Both slots are taken before the password is hashed: at most `login_max_failures`
    // guesses per account (and four times that per IP) are ever evaluated per window.
    let throttled = |retry_after: i64| {
        let message = format!("Too many failed sign-in attempts. Try again in {retry_after} seconds.");
        let mut response =
            render(&req, &state, &target, &username, Some(message), &personas, StatusCode::TOO_MANY_REQUESTS);
        response.headers_mut().insert(RETRY_AFTER, retry_after.into());
        Ok(response)
    };
    let (user_limit, ip_limit, lockout) =
        (config.login_max_failures, config.login_max_failures * 4, config.login_lockout);
    let user_count = match state.store.reserve_attempt(&user_key, user_limit, lockout).await? {
        Reservation::Granted { count } => count,
        Reservation::Refused { retry_after } => return throttled(retry_after),
    };
    let ip_count = match state.store.reserve_attempt(&ip_key, ip_limit, lockout).await? {
        Reservation::Granted { count } => count,
        Reservation::Refused { retry_after } => {
            state.store.release_attempt(&user_key).await?;
            return throttled(retry_after);
        }
    };
    let user = state.store.user_by_username(&username).await?;
    let stored = user.as_ref().filter(|u| !u.disabled).map(|u| u.password_hash.clone());
    let verified = password::verify(form.password, stored).await;
    // The page says only that sign-in failed (no account enumeration); the log says why.
    let reason = match &user {
        None => "no such user",
        Some(u) if u.disabled => "the account is disabled",
        Some(_) => "wrong password",
    };
    let (true, Some(user)) = (verified, user) else {
        tracing::info!(%username, reason, "sign-in failed");
        state.store.lock_if_limit_reached(&user_key, user_count, user_limit, lockout).await?;
        state.store.lock_if_limit_reached(&ip_key, ip_count, ip_limit, lockout).await?;
        return Ok(render(&req, &state, &target, &username, Some(FAILED.into()), &personas, StatusCode::UNAUTHORIZED));
    };
    state.store.clear_attempts(&user_key).await?;
    state.store.release_attempt(&ip_key).await?;
    let (session, cookie) = session::start(
        &state.store,
        &user.id,
        crate::oauth::claims_request::AuthMethod::Password,
        config.session_ttl,
        config.issuer.is_https(),
    )
    .await?;
    if let LoginTarget::Authorization { request_id, .. } = &target {
        // This sign-in satisfies the request's prompt=login / max_age.
        state.store.mark_request_authenticated(request_id, &session.sid).await?;
    }
    tracing::info!(user = %user.username, "user signed in");
    Ok(HttpResponse::SeeOther().cookie(cookie).insert_header((LOCATION, target.continue_url())).finish())
}

#[derive(Deserialize)]
struct PersonaForm {
    csrf_token: Option<String>,
    request_id: String,
    username: String,
}

/// `--dev-login`'s one-click sign-in from a client's login page: the pending request goes
/// on as the chosen user, signed in without a password (`amr: ["dev"]`, as a `login_hint`
/// dev sign-in is). Not served (404) without `--dev-login`.
async fn persona(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<PersonaForm>,
) -> Result<HttpResponse, AuthorizeError> {
    if !state.config.dev_login {
        return Ok(HttpResponse::NotFound().finish());
    }
    let form = form.into_inner();
    if !csrf::verify(&req, form.csrf_token.as_deref()) {
        return Ok(csrf_failure());
    }
    let (_, client, pending) = load_pending(&state, &form.request_id).await?;
    crate::activity::note_client(&req, &client.client_id);
    let user = state.store.user_by_username(form.username.trim()).await?.filter(|u| !u.disabled);
    let Some(user) = user else {
        tracing::warn!(username = %form.username, "dev-login: persona sign-in for a user that does not exist or is disabled");
        let target = LoginTarget::Authorization {
            client: Box::new(client.display(state.config.dev_login)),
            request_id: pending.id,
        };
        let error = format!("dev-login: there is no enabled user named \"{}\".", form.username.trim());
        let personas = personas(&state).await?;
        return Ok(render(&req, &state, &target, "", Some(error), &personas, StatusCode::UNPROCESSABLE_ENTITY));
    };
    let config = &state.config;
    let (session, cookie) = session::start(
        &state.store,
        &user.id,
        crate::oauth::claims_request::AuthMethod::Dev,
        config.session_ttl,
        config.issuer.is_https(),
    )
    .await?;
    state.store.mark_request_authenticated(&pending.id, &session.sid).await?;
    tracing::warn!(user = %user.username, client = %client.client_id, "dev-login: signed in as a persona without a password");
    let target = LoginTarget::Authorization {
        client: Box::new(client.display(state.config.dev_login)),
        request_id: pending.id.clone(),
    };
    Ok(HttpResponse::SeeOther().cookie(cookie).insert_header((LOCATION, target.continue_url())).finish())
}

#[cfg(test)]
mod tests {
    use super::LoginTarget;
    use crate::oauth::user_code::UserCode;

    #[test]
    fn a_return_to_the_device_page_keeps_only_a_valid_user_code() {
        let code = UserCode::parse("BCDF-GHJK");
        for (return_to, expected) in [
            ("/device", "/device"),
            ("/device?user_code=bcdf-ghjk", "/device?user_code=BCDF-GHJK"),
            ("/device?user_code=BCDF-GHJK&next=https://evil.example", "/device?user_code=BCDF-GHJK"),
            ("/device?user_code=not-a-code", "/device"),
        ] {
            let target = LoginTarget::local(Some(return_to));
            assert!(matches!(&target, LoginTarget::Device { .. }), "{return_to}");
            assert_eq!(target.continue_url(), expected, "{return_to}");
        }
        assert!(
            matches!(LoginTarget::local(Some("/device?user_code=BCDFGHJK")), LoginTarget::Device { user_code } if user_code == code)
        );
        for elsewhere in ["/devices", "//evil.example/device", "https://evil.example/device", "/device/../admin"] {
            assert_eq!(LoginTarget::local(Some(elsewhere)).continue_url(), "/admin", "{elsewhere}");
        }
    }
}
