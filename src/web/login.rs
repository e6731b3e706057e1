//! The login form's submission: CSRF check, throttling, password check, new session.

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::app::AppState;
use crate::oauth::authorize::{load_pending, login_page};
use crate::oauth::error::AuthorizeError;
use crate::registry::password;
use crate::web::{csrf, pages, session};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::post().to(submit));
}

#[derive(Deserialize)]
struct LoginForm {
    csrf_token: Option<String>,
    request_id: String,
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
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
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
    let (_, client, pending) = load_pending(&state, &form.request_id).await?;
    let config = &state.config;
    let username = form.username.trim().to_owned();
    let user_key = format!("user:{}", username.to_lowercase());
    let ip_key = format!("ip:{}", client_ip(&req));
    let wait = state.store.throttle_wait(&[&user_key, &ip_key]).await?;
    if wait > 0 {
        let message = format!("Too many failed sign-in attempts. Try again in {wait} seconds.");
        let mut response = login_page(
            &req,
            &state,
            &client,
            &pending.id,
            &username,
            Some(message),
            StatusCode::TOO_MANY_REQUESTS,
        );
        if let Ok(value) = wait.to_string().parse() {
            response
                .headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, value);
        }
        return Ok(response);
    }
    let user = state.store.user_by_username(&username).await?;
    let stored = user
        .as_ref()
        .filter(|u| !u.disabled)
        .map(|u| u.password_hash.clone());
    if !password::verify(form.password, stored).await {
        state
            .store
            .record_login_failure(&user_key, config.login_max_failures, config.login_lockout)
            .await?;
        state
            .store
            .record_login_failure(&ip_key, config.login_max_failures * 4, config.login_lockout)
            .await?;
        return Ok(login_page(
            &req,
            &state,
            &client,
            &pending.id,
            &username,
            Some(FAILED.into()),
            StatusCode::UNAUTHORIZED,
        ));
    }
    let Some(user) = user else {
        return Err(AuthorizeError::Unavailable);
    };
    state.store.clear_login_failures(&user_key).await?;
    let (_, cookie) = session::start(
        &state.store,
        &user.id,
        config.session_ttl,
        config.issuer.is_https(),
    )
    .await?;
    tracing::info!(user = %user.username, client = %client.client_id, "user signed in");
    Ok(HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((
            LOCATION,
            format!("/authorize/continue?request_id={}", pending.id),
        ))
        .finish())
}
