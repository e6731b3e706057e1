//! The to-do app: a small relying party built with the `openidconnect` crate.
//!
//! It signs users in with Lanyard (authorization code flow with PKCE, `nonce` and `state`),
//! keeps their tokens on the server (the browser holds only a random session id), greets
//! them with the name from the **verified id_token**, and calls the calendar API with the
//! **access token**. Never the other way round: the id_token tells this app who signed in
//! (`aud` = this client); the access token is what an API accepts (`aud` = the API).
//!
//! Routes (see [`configure`]): `/` (sign-in link, or a greeting and the user's
//! appointments), `/login` (starts the flow; `?login_hint=` is passed on, which with
//! Lanyard's `--dev-login` signs that user in headlessly), `/callback`,
//! `POST /appointments/new` and `POST /logout` (RP-initiated logout at Lanyard).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdToken};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndSessionUrl, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse, reqwest,
};
use serde::Deserialize;

/// Where things are.
#[derive(Debug, Clone)]
pub struct TodoConfig {
    /// Lanyard's issuer URL (discovery starts there).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Where browsers reach this app; the redirect URI is `{public_url}/callback`.
    pub public_url: String,
    /// The calendar API's base URL, e.g. `http://127.0.0.1:9001`.
    pub calendar_api: String,
    /// The calendar API's identifier: the `resource` (RFC 8707) the access token is for.
    pub calendar_audience: String,
}

/// The session cookie: a random id naming a [`Session`] kept here.
pub const SESSION_COOKIE: &str = "todo_session";
/// Binds a sign-in in progress to the browser that started it (login CSRF).
const LOGIN_COOKIE: &str = "todo_login";
/// How long a user may take to sign in.
const LOGIN_TTL: Duration = Duration::from_secs(600);

/// The scopes the app asks for (`openid` is added by the library).
const SCOPES: [&str; 3] = ["profile", "read:appointments", "write:appointments"];

/// A client with its authorization and token endpoints known.
type OidcClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet, EndpointMaybeSet>;

/// A sign-in between `/login` and `/callback`, under its `state`.
struct PendingLogin {
    pkce_verifier: PkceCodeVerifier,
    nonce: Nonce,
    started: Instant,
}

/// What the app knows about a signed-in browser. The tokens never leave the server.
#[derive(Debug, Clone)]
pub struct Session {
    /// From the verified id_token: `name`, else `preferred_username`, else `sub`.
    pub name: String,
    /// For the calendar API.
    pub access_token: String,
    /// For this app only (and as `id_token_hint` at logout); never sent to an API.
    pub id_token: CoreIdToken,
}

/// The app's state: the OpenID Connect client and what it remembers.
pub struct TodoApp {
    config: TodoConfig,
    oidc: OidcClient,
    end_session: Option<EndSessionUrl>,
    http: reqwest::Client,
    pending: Mutex<HashMap<String, PendingLogin>>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl TodoApp {
    /// Discovers Lanyard's endpoints and keys (OpenID Connect Discovery).
    pub async fn discover(config: TodoConfig) -> Result<Self, String> {
        // No redirects: following them would let a metadata document send us anywhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|e| format!("LANYARD_ISSUER: {e}"))?;
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &http)
            .await
            .map_err(|e| format!("discovery at {} failed: {e}", config.issuer))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let token_url =
            metadata.token_endpoint().cloned().ok_or_else(|| "the issuer has no token endpoint".to_owned())?;
        let redirect = RedirectUrl::new(format!("{}/callback", config.public_url.trim_end_matches('/')))
            .map_err(|e| format!("redirect URI: {e}"))?;
        let oidc = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(config.client_id.clone()),
            Some(ClientSecret::new(config.client_secret.clone())),
        )
        .set_redirect_uri(redirect)
        .set_token_uri(token_url);
        Ok(Self { config, oidc, end_session, http, pending: Mutex::default(), sessions: Mutex::default() })
    }

    /// The redirect URI to register for this app at Lanyard.
    pub fn redirect_uri(&self) -> String {
        self.oidc.redirect_uri().map(|r| r.to_string()).unwrap_or_default()
    }

    /// The session a session cookie names (tests look at the tokens kept for a user).
    pub fn session(&self, id: &str) -> Option<Session> {
        lock(&self.sessions).get(id).cloned()
    }

    fn secure_cookies(&self) -> bool {
        self.config.public_url.starts_with("https://")
    }

    fn cookie<'c>(&self, name: &'c str, value: String) -> Cookie<'c> {
        Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure_cookies())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The app's routes; expects a `web::Data<TodoApp>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/login", web::get().to(login))
        .route("/callback", web::get().to(callback))
        .route("/appointments/new", web::post().to(new_appointment))
        .route("/logout", web::post().to(logout));
}

fn current_session(req: &HttpRequest, app: &TodoApp) -> Option<Session> {
    req.cookie(SESSION_COOKIE).and_then(|c| app.session(c.value()))
}

async fn home(req: HttpRequest, app: web::Data<TodoApp>) -> HttpResponse {
    let Some(session) = current_session(&req, &app) else {
        return page(StatusCode::OK, "<p>You are not signed in.</p><p><a href=\"/login\">Sign in</a></p>");
    };
    let appointments = match list_appointments(&app, &session).await {
        Ok(list) if list.is_empty() => "<p>No appointments yet.</p>".to_owned(),
        Ok(list) => {
            let items: String =
                list.iter().map(|a| format!("<li>{} — {}</li>", escape(&a.at), escape(&a.title))).collect();
            format!("<ul>{items}</ul>")
        }
        Err(e) => format!("<p class=\"error\">The calendar is unavailable: {}</p>", escape(&e)),
    };
    page(
        StatusCode::OK,
        &format!(
            "<p>Hello, {}</p><form method=\"post\" action=\"/logout\"><button>Sign out</button></form>\
             <h2>Appointments</h2>{appointments}\
             <form method=\"post\" action=\"/appointments/new\">\
             <label>What <input name=\"title\" required></label> \
             <label>When <input name=\"at\" type=\"datetime-local\" required></label> \
             <button>Add</button></form>",
            escape(&session.name)
        ),
    )
}

#[derive(Deserialize)]
struct LoginQuery {
    login_hint: Option<String>,
}

/// Starts the code flow: PKCE, a nonce and a state, remembered under the state, which the
/// browser also gets in a cookie so that only it can finish this sign-in.
async fn login(app: web::Data<TodoApp>, query: web::Query<LoginQuery>) -> HttpResponse {
    let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = app
        .oidc
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(pkce_challenge)
        // RFC 8707: the access token is for the calendar API (its `aud`).
        .add_extra_param("resource", app.config.calendar_audience.clone());
    for scope in SCOPES {
        request = request.add_scope(Scope::new(scope.to_owned()));
    }
    if let Some(hint) = query.into_inner().login_hint.filter(|h| !h.is_empty()) {
        request = request.add_extra_param("login_hint", hint);
    }
    let (url, state, nonce) = request.url();
    {
        let mut pending = lock(&app.pending);
        pending.retain(|_, p| p.started.elapsed() < LOGIN_TTL);
        pending.insert(state.secret().clone(), PendingLogin { pkce_verifier, nonce, started: Instant::now() });
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url.to_string()))
        .cookie(app.cookie(LOGIN_COOKIE, state.secret().clone()))
        .finish()
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Finishes the code flow: checks `state` and `iss`, exchanges the code with the PKCE
/// verifier, verifies the id_token (signature, `iss`, `aud`, `exp`, nonce, `at_hash`).
async fn callback(req: HttpRequest, app: web::Data<TodoApp>, query: web::Query<CallbackQuery>) -> HttpResponse {
    let query = query.into_inner();
    if let Some(error) = query.error {
        let description = query.error_description.unwrap_or_default();
        return error_page(StatusCode::BAD_REQUEST, &format!("Sign-in failed: {error}: {description}"));
    }
    let state = query.state.unwrap_or_default();
    // Only the browser that started this sign-in may finish it.
    if req.cookie(LOGIN_COOKIE).is_none_or(|c| c.value() != state) {
        return error_page(StatusCode::BAD_REQUEST, "This sign-in was not started in this browser.");
    }
    let Some(pending) = lock(&app.pending).remove(&state) else {
        return error_page(StatusCode::BAD_REQUEST, "This sign-in has expired or was already completed.");
    };
    // RFC 9207: the response must come from the issuer we sent the user to.
    if query.iss.as_deref().is_some_and(|iss| iss != app.config.issuer) {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in response came from another issuer.");
    }
    let Some(code) = query.code else {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in response has no code.");
    };
    match finish_sign_in(&app, code, pending).await {
        Ok(session) => {
            let id = CsrfToken::new_random_len(32).secret().clone();
            lock(&app.sessions).insert(id.clone(), session);
            let mut forget = app.cookie(LOGIN_COOKIE, String::new());
            forget.make_removal();
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/"))
                .cookie(app.cookie(SESSION_COOKIE, id))
                .cookie(forget)
                .finish()
        }
        Err(e) => error_page(StatusCode::BAD_GATEWAY, &format!("Sign-in failed: {e}")),
    }
}

async fn finish_sign_in(app: &TodoApp, code: String, pending: PendingLogin) -> Result<Session, String> {
    let response = app
        .oidc
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(pending.pkce_verifier)
        .request_async(&app.http)
        .await
        .map_err(|e| format!("the token request failed: {e}"))?;
    let id_token = response.id_token().ok_or("the token response has no id_token")?;
    let verifier = app.oidc.id_token_verifier();
    let claims = id_token.claims(&verifier, &pending.nonce).map_err(|e| format!("the id_token is invalid: {e}"))?;
    // The access token came with this id_token, not from somewhere else (OIDC Core §3.1.3.8).
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token.signing_alg().map_err(|e| e.to_string())?;
        let key = id_token.signing_key(&verifier).map_err(|e| e.to_string())?;
        let actual = AccessTokenHash::from_token(response.access_token(), alg, key).map_err(|e| e.to_string())?;
        if actual != *expected {
            return Err("the access token does not match the id_token's at_hash".into());
        }
    }
    let name = claims
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.to_string())
        .or_else(|| claims.preferred_username().map(|u| u.to_string()))
        .unwrap_or_else(|| claims.subject().to_string());
    Ok(Session { name, access_token: response.access_token().secret().clone(), id_token: id_token.clone() })
}

/// An appointment as the calendar API returns it.
#[derive(Debug, Deserialize)]
struct Appointment {
    title: String,
    at: String,
}

#[derive(Deserialize)]
struct AppointmentList {
    appointments: Vec<Appointment>,
}

/// `GET /appointments` at the calendar API, with the user's access token.
async fn list_appointments(app: &TodoApp, session: &Session) -> Result<Vec<Appointment>, String> {
    let response = app
        .http
        .get(format!("{}/appointments", app.config.calendar_api))
        .bearer_auth(&session.access_token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    Ok(response.json::<AppointmentList>().await.map_err(|e| e.to_string())?.appointments)
}

#[derive(Deserialize, serde::Serialize)]
struct NewAppointment {
    title: String,
    at: String,
}

/// Creates an appointment at the calendar API with the ACCESS token. The form is safe from
/// cross-site posts because the session cookie is `SameSite=Lax`.
async fn new_appointment(req: HttpRequest, app: web::Data<TodoApp>, form: web::Form<NewAppointment>) -> HttpResponse {
    let Some(session) = current_session(&req, &app) else {
        return HttpResponse::SeeOther().insert_header((header::LOCATION, "/login")).finish();
    };
    let sent = app
        .http
        .post(format!("{}/appointments", app.config.calendar_api))
        .bearer_auth(&session.access_token)
        .json(&form.into_inner())
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => {
            HttpResponse::SeeOther().insert_header((header::LOCATION, "/")).finish()
        }
        Ok(response) => error_page(StatusCode::BAD_GATEWAY, &refusal(response).await),
        Err(e) => error_page(StatusCode::BAD_GATEWAY, &format!("The calendar is unavailable: {e}")),
    }
}

/// Forgets the session here, then ends it at Lanyard too (RP-initiated logout with the
/// id_token as `id_token_hint`; Lanyard returns the browser to `/` if that URI is registered).
async fn logout(req: HttpRequest, app: web::Data<TodoApp>) -> HttpResponse {
    let session = req.cookie(SESSION_COOKIE).and_then(|c| lock(&app.sessions).remove(c.value()));
    let mut forget = app.cookie(SESSION_COOKIE, String::new());
    forget.make_removal();
    let home = format!("{}/", app.config.public_url.trim_end_matches('/'));
    let location = match (session, &app.end_session) {
        (Some(session), Some(endpoint)) => {
            let mut request = LogoutRequest::from(endpoint.clone()).set_id_token_hint(&session.id_token);
            if let Ok(home) = PostLogoutRedirectUrl::new(home.clone()) {
                request = request.set_post_logout_redirect_uri(home);
            }
            request.http_get_url().to_string()
        }
        _ => home,
    };
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).cookie(forget).finish()
}

/// Why the calendar API refused: its status and Bearer challenge.
async fn refusal(response: reqwest::Response) -> String {
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE.as_str())
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    format!("the calendar API answered {status} {challenge}")
}

fn page(status: StatusCode, body: &str) -> HttpResponse {
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>To-do</title></head>\
         <body><h1>To-do</h1>{body}</body></html>"
    ))
}

fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    page(status, &format!("<p class=\"error\">{}</p><p><a href=\"/\">Back</a></p>", escape(message)))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
