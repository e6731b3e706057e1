//! `/device` (RFC 8628 §3.3): a signed-in user types the code their device shows, sees
//! which application asks for what, and approves or denies it. Every lookup of a code is
//! throttled per account and per IP in the database (§5.1: user codes are short, so
//! guessing must be bounded). With `--dev-login`, `login_hint` signs the hinted user in
//! as `/authorize` does, so that a test approves without a browser (a GET shows the page,
//! a POST of its form approves).

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::oauth::claims_request::AuthMethod;
use crate::oauth::error::AuthorizeError;
use crate::oauth::params::Params;
use crate::oauth::requested_access::RequestedAccess;
use crate::oauth::scope::ScopeSet;
use crate::oauth::user_code::UserCode;
use crate::registry::client::Client;
use crate::registry::user::User;
use crate::state::AppState;
use crate::store::device_codes::{DeviceApproval, DeviceRequest, DeviceStatus};
use crate::store::sessions::Session;
use crate::store::throttle::Reservation;
use crate::web::login::{LoginTarget, client_ip, csrf_failure};
use crate::web::{csrf, pages, session};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(crate::oauth::device::VERIFICATION_PATH).route(web::get().to(show)).route(web::post().to(decide)),
    );
}

/// `GET /device[?user_code=…]`: the code entry form, or the request the code names.
async fn show(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AuthorizeError> {
    let params = Params::parse(req.query_string().as_bytes());
    let typed = params.single("user_code").ok().flatten().map(str::trim).filter(|t| !t.is_empty());
    let hint = params.single("login_hint").ok().flatten();
    let target = LoginTarget::Device { user_code: typed.and_then(UserCode::parse) };
    let visitor = match visitor(&req, &state, hint, &target).await? {
        Ok(visitor) => visitor,
        Err(login_page) => return Ok(login_page),
    };
    let mut response = match typed {
        None => entry(&visitor.user, "", None, StatusCode::OK),
        Some(typed) => match lookup(&req, &state, &visitor.user, typed).await? {
            Ok(found) => confirm(&req, &state, &visitor.user, &found).await?,
            Err(refused) => refused.page(&visitor.user, typed),
        },
    };
    if let Some(cookie) = &visitor.new_cookie {
        let _ = response.add_cookie(cookie);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct DecisionForm {
    csrf_token: Option<String>,
    user_code: String,
    decision: String,
}

/// `POST /device`: Approve or Deny, for the signed-in user.
async fn decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, AuthorizeError> {
    if !csrf::verify(&req, form.csrf_token.as_deref()) {
        return Ok(csrf_failure());
    }
    let target = LoginTarget::Device { user_code: UserCode::parse(&form.user_code) };
    let Visitor { user, session, .. } = match visitor(&req, &state, None, &target).await? {
        Ok(visitor) => visitor,
        Err(login_page) => return Ok(login_page),
    };
    let found = match lookup(&req, &state, &user, &form.user_code).await? {
        Ok(found) => found,
        Err(refused) => return Ok(refused.page(&user, &form.user_code)),
    };
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Ok(entry(&user, &form.user_code, Some("Choose Approve or Deny.".into()), StatusCode::BAD_REQUEST)),
    };
    let method = AuthMethod::from_stored(Some(&session.amr));
    let client = &found.client;
    let approval = DeviceApproval {
        user_id: &user.id,
        sid: &session.sid,
        auth_time: session.auth_time,
        acr: method.acr(),
        amr: method.as_str(),
        // Remembered as /consent remembers it, so the user's grants are listed and revoked
        // alike (never for a client known only by its metadata document).
        remember_consent: !client.from_metadata_document,
    };
    let code_hash = found.code.hash();
    if !state.store.decide_device_request(&code_hash, approve.then_some(&approval)).await? {
        // Decided meanwhile (another tab) or expired between the two statements.
        return Ok(Refused::Used.page(&user, &form.user_code));
    }
    if !approve {
        tracing::info!(user = %user.username, client = %client.client_id, "device authorization denied");
        return Ok(pages::message(
            StatusCode::OK,
            "Access denied",
            &format!("{} was not connected. You can close this page.", client.name),
        ));
    }
    tracing::info!(user = %user.username, client = %client.client_id, "device authorization approved");
    Ok(pages::message(
        StatusCode::OK,
        "Device connected",
        &format!("{} is now connected to your account. Return to your device: it continues on its own.", client.name),
    ))
}

/// The signed-in user at the page, and the cookie of a dev-login sign-in made just now.
struct Visitor {
    user: User,
    session: Session,
    new_cookie: Option<Cookie<'static>>,
}

/// The signed-in user, or else the login page (whose form comes back here). With
/// `--dev-login`, a `login_hint` naming another user than the signed-in one signs that
/// user in, as at `/authorize`.
async fn visitor(
    req: &HttpRequest,
    state: &AppState,
    hint: Option<&str>,
    target: &LoginTarget,
) -> Result<Result<Visitor, HttpResponse>, AuthorizeError> {
    let mut signed_in = None;
    if let Some(session) = session::current(req, &state.store).await? {
        signed_in = state.store.user_by_id(&session.user_id).await?.filter(|u| !u.disabled).map(|u| (u, session));
    }
    let config = &state.config;
    if config.dev_login
        && let Some(hint) = hint
        && signed_in.as_ref().is_none_or(|(u, _)| u.username != hint)
    {
        let Some(user) = state.store.user_by_username(hint).await?.filter(|u| !u.disabled) else {
            tracing::warn!(login_hint = hint, "dev-login: login_hint names no enabled user, so nobody was signed in");
            let error = format!("dev-login: login_hint names no enabled user \"{hint}\". Sign in below.");
            let page = crate::web::login::render(req, state, target, hint, Some(error), &[], StatusCode::OK);
            return Ok(Err(page));
        };
        // --dev-login: headless approval for test suites (refused at start-up unless loopback).
        let (session, cookie) =
            session::start(&state.store, &user.id, AuthMethod::Dev, config.session_ttl, config.issuer.is_https())
                .await?;
        tracing::warn!(user = %user.username, "dev-login: signed in at the device page without a password");
        return Ok(Ok(Visitor { user, session, new_cookie: Some(cookie) }));
    }
    match signed_in {
        Some((user, session)) => Ok(Ok(Visitor { user, session, new_cookie: None })),
        None => Ok(Err(crate::web::login::render(req, state, target, "", None, &[], StatusCode::OK))),
    }
}

/// A live, pending request found by its code, with its client.
struct Found {
    code: UserCode,
    request: DeviceRequest,
    client: Client,
}

/// Why a code cannot be approved, as the page says it.
enum Refused {
    Malformed,
    Unknown,
    Expired,
    Used,
    Throttled { retry_after: i64 },
    ClientGone,
}

impl Refused {
    fn page(&self, user: &User, typed: &str) -> HttpResponse {
        let (status, message) = match self {
            Self::Malformed => (
                StatusCode::BAD_REQUEST,
                "That is not a code of ours: it has 8 letters, like BCDF-GHJK. Check your device and try again.".into(),
            ),
            Self::Unknown => {
                (StatusCode::BAD_REQUEST, "That code is not valid. Check the code on your device and try again.".into())
            }
            Self::Expired => {
                (StatusCode::BAD_REQUEST, "That code has expired. Start again on your device to get a new one.".into())
            }
            Self::Used => (
                StatusCode::BAD_REQUEST,
                "That code was already used. Start again on your device to get a new one.".into(),
            ),
            Self::Throttled { retry_after } => {
                (StatusCode::TOO_MANY_REQUESTS, format!("Too many wrong codes. Try again in {retry_after} seconds."))
            }
            Self::ClientGone => {
                (StatusCode::BAD_REQUEST, "The application that asked for this code no longer exists here.".into())
            }
        };
        let mut response = entry(user, typed, Some(message), status);
        if let Self::Throttled { retry_after } = self {
            response.headers_mut().insert(RETRY_AFTER, (*retry_after).into());
        }
        response
    }
}

/// Looks a typed code up. Both throttle slots (the account's, the IP's) are taken first,
/// so that at most `login_max_failures` unknown codes per account (four times that per IP)
/// are ever tried per window, however many requests arrive at once; a code that exists
/// gives its slots back.
async fn lookup(
    req: &HttpRequest,
    state: &AppState,
    user: &User,
    typed: &str,
) -> Result<Result<Found, Refused>, AuthorizeError> {
    let Some(code) = UserCode::parse(typed) else { return Ok(Err(Refused::Malformed)) };
    let config = &state.config;
    let (user_limit, ip_limit, lockout) =
        (config.login_max_failures, config.login_max_failures * 4, config.login_lockout);
    let user_key = format!("device:user:{}", user.id);
    let ip_key = format!("device:ip:{}", client_ip(req));
    let user_count = match state.store.reserve_attempt(&user_key, user_limit, lockout).await? {
        Reservation::Granted { count } => count,
        Reservation::Refused { retry_after } => return Ok(Err(Refused::Throttled { retry_after })),
    };
    let ip_count = match state.store.reserve_attempt(&ip_key, ip_limit, lockout).await? {
        Reservation::Granted { count } => count,
        Reservation::Refused { retry_after } => {
            state.store.release_attempt(&user_key).await?;
            return Ok(Err(Refused::Throttled { retry_after }));
        }
    };
    let Some(request) = state.store.device_request(&code.hash()).await? else {
        tracing::info!(user = %user.username, "device page: unknown user code");
        state.store.lock_if_limit_reached(&user_key, user_count, user_limit, lockout).await?;
        state.store.lock_if_limit_reached(&ip_key, ip_count, ip_limit, lockout).await?;
        return Ok(Err(Refused::Unknown));
    };
    state.store.release_attempt(&user_key).await?;
    state.store.release_attempt(&ip_key).await?;
    if request.expires_at <= state.now() {
        return Ok(Err(Refused::Expired));
    }
    if request.status != DeviceStatus::Pending {
        return Ok(Err(Refused::Used));
    }
    match state.find_client(&request.client_id).await? {
        Some(client) => Ok(Ok(Found { code, request, client })),
        None => Ok(Err(Refused::ClientGone)),
    }
}

/// The code entry form.
fn entry(user: &User, typed: &str, error: Option<String>, status: StatusCode) -> HttpResponse {
    pages::html(status, &pages::DeviceEntryPage { username: &user.username, typed, error })
}

/// The request to approve: client, code, scopes and APIs, and the CSRF-protected form.
async fn confirm(
    req: &HttpRequest,
    state: &AppState,
    user: &User,
    found: &Found,
) -> Result<HttpResponse, AuthorizeError> {
    let apis = state.registry.apis().await?;
    let catalog = state.registry.scopes().await?;
    let access = RequestedAccess {
        scope: ScopeSet::parse(&found.request.scope).unwrap_or_default(),
        resources: serde_json::from_str(&found.request.resources).unwrap_or_default(),
    };
    let described = access.describe(&apis, &catalog);
    let (csrf_token, cookie) = csrf::token(req, state.config.issuer.is_https());
    let display = found.client.display(state.config.dev_login);
    let user_code = found.code.display();
    let page = pages::DeviceConfirmPage {
        client: &display,
        username: &user.username,
        user_code: &user_code,
        csrf_token: &csrf_token,
        scopes: described.scopes,
        apis: described.apis,
    };
    let mut response = pages::html(StatusCode::OK, &page);
    pages::allow_logo(&mut response, &display);
    if let Some(cookie) = cookie {
        let _ = response.add_cookie(&cookie);
    }
    Ok(response)
}
