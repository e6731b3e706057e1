//! CSRF protection for HTML forms: a random token in an `HttpOnly; SameSite` cookie that
//! every form must echo in a hidden field (double submit). Nothing server-side, so any
//! replica can check it.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};

use crate::crypto::{constant_time_eq, random_token};

pub const COOKIE: &str = "lanyard_csrf";
pub const FIELD: &str = "csrf_token";

/// The browser's CSRF token, and a cookie to set when the browser has none yet.
pub fn token(req: &HttpRequest, secure: bool) -> (String, Option<Cookie<'static>>) {
    if let Some(existing) = req.cookie(COOKIE).map(|c| c.value().to_owned()).filter(|v| v.len() >= 32) {
        return (existing, None);
    }
    let value = random_token(32);
    let cookie =
        Cookie::build(COOKIE, value.clone()).path("/").http_only(true).secure(secure).same_site(SameSite::Lax).finish();
    (value, Some(cookie))
}

/// Whether a submitted form's token matches the browser's cookie.
pub fn verify(req: &HttpRequest, submitted: Option<&str>) -> bool {
    match (req.cookie(COOKIE), submitted) {
        (Some(cookie), Some(submitted)) if !submitted.is_empty() => {
            constant_time_eq(cookie.value().as_bytes(), submitted.as_bytes())
        }
        _ => false,
    }
}
