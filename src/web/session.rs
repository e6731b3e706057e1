//! The browser session cookie: a random value whose SHA-256 names the stored session.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};

use crate::crypto::{random_token, sha256_hex};
use crate::oauth::claims_request::AuthMethod;
use crate::store::sessions::Session;
use crate::store::{Store, StoreError};

pub const COOKIE: &str = "lanyard_session";

/// The live session of the browser that sent `req`, if any.
pub async fn current(req: &HttpRequest, store: &Store) -> Result<Option<Session>, StoreError> {
    match req.cookie(COOKIE) {
        Some(cookie) if !cookie.value().is_empty() => store.session(&sha256_hex(cookie.value())).await,
        _ => Ok(None),
    }
}

/// Starts a new session for `user_id` (always a new id: no session fixation) and returns
/// it with the cookie that carries it.
pub async fn start(
    store: &Store,
    user_id: &str,
    method: AuthMethod,
    ttl: i64,
    secure: bool,
) -> Result<(Session, Cookie<'static>), StoreError> {
    let value = random_token(32);
    let now = store.now();
    let session = Session {
        sid: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.to_owned(),
        auth_time: now,
        expires_at: now + ttl,
        amr: method.as_str().to_owned(),
    };
    store.insert_session(&sha256_hex(&value), &session).await?;
    let cookie = Cookie::build(COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(Duration::seconds(ttl))
        .finish();
    Ok((session, cookie))
}

/// A cookie that makes the browser forget its session.
pub fn removal(secure: bool) -> Cookie<'static> {
    let mut cookie =
        Cookie::build(COOKIE, "").path("/").http_only(true).secure(secure).same_site(SameSite::Lax).finish();
    cookie.make_removal();
    cookie
}
