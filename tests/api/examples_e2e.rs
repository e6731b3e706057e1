//! The article's two examples end to end, in-process over real HTTP: Lanyard (seeded with
//! `examples/support/todo-seed.toml`), the calendar API (`examples/calendar_api.rs`) and
//! the to-do app (`examples/todo_app.rs`, an `openidconnect` relying party), each on its own
//! random port, driven by a cookie-keeping HTTP client playing the browser.

// example_api.rs loads the same file for its own tests; each test module has its own copy.
use crate::appointments_api;
#[path = "../../examples/support/todo_app.rs"]
mod todo_app;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::{App, HttpServer, web};
use lanyard::verify::Verifier;
use reqwest::cookie::CookieStore;
use serde_json::Value;

use crate::both_backends;
use crate::flow::{decode_jwt, form_field};
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    the_todo_app_offers_a_sign_in_link_to_a_visitor,
    the_todo_app_signs_alice_in_with_dev_login_and_greets_her_by_name,
    the_todo_app_signs_alice_in_through_the_login_form_and_greets_her_by_name,
    a_new_appointment_reaches_the_calendar_api_with_alices_access_token,
    the_calendar_api_refuses_the_id_token_the_todo_app_received,
    the_todo_app_refuses_a_callback_this_browser_did_not_start,
    signing_out_of_the_todo_app_ends_the_session_at_lanyard_too,
);

/// The calendar API's identifier (the `aud` of its access tokens), as in the seed file.
pub const CALENDAR: &str = "https://api.example.test/appointments";
const TODO_SECRET: &str = "todo-secret-for-development";

/// The seed file the to-do example documents.
pub fn todo_seed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/support/todo-seed.toml")
}

/// An actix server on its own random port, stopped when dropped.
struct Running {
    base: String,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// Runs an actix app on `listener` in the background (one worker, no signal handling).
macro_rules! spawn {
    ($listener:expr, $factory:expr) => {{
        let listener: TcpListener = $listener;
        let port = listener.local_addr().expect("local addr").port();
        let server = HttpServer::new($factory).workers(1).disable_signals().listen(listener).expect("listen").run();
        let handle = server.handle();
        tokio::spawn(server);
        Running { base: format!("http://127.0.0.1:{port}"), handle }
    }};
}

/// The calendar API (examples/calendar_api.rs) in-process, trusting `idp`.
pub struct CalendarApi {
    pub base: String,
    /// What the API stored: the test checks who owns what.
    pub calendar: web::Data<appointments_api::Calendar>,
    _server: Running,
}

impl CalendarApi {
    pub async fn start(idp: &TestServer) -> CalendarApi {
        let verifier = Verifier::discover(&idp.base, CALENDAR).await.expect("the calendar API discovers Lanyard");
        let verifier = web::Data::new(verifier);
        let calendar = web::Data::new(appointments_api::Calendar::default());
        let data = calendar.clone();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = spawn!(listener, move || {
            App::new().app_data(verifier.clone()).app_data(data.clone()).configure(appointments_api::configure)
        });
        CalendarApi { base: server.base.clone(), calendar, _server: server }
    }

    /// `GET /appointments` with a bearer token: status, challenge and JSON body.
    pub async fn list(&self, token: &str) -> (u16, String, Value) {
        let response = reqwest::Client::new()
            .get(format!("{}/appointments", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("the calendar API answers");
        let status = response.status().as_u16();
        let challenge =
            response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        (status, challenge, response.json().await.unwrap_or(Value::Null))
    }
}

/// Lanyard, the calendar API and the to-do app, and a browser.
struct Stack {
    lanyard: TestServer,
    calendar: CalendarApi,
    todo: web::Data<todo_app::TodoApp>,
    todo_server: Running,
    jar: Arc<reqwest::cookie::Jar>,
    browser: reqwest::Client,
    _db: TestDb,
}

impl Stack {
    async fn start(backend: Backend, dev_login: bool) -> Stack {
        let db = TestDb::create(backend).await;
        let lanyard = TestServer::start_with(&db, |s| {
            s.seed = Some(todo_seed());
            s.dev_login = dev_login;
        })
        .await;
        let calendar = CalendarApi::start(&lanyard).await;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let config = todo_app::TodoConfig {
            issuer: lanyard.base.clone(),
            client_id: "todo".into(),
            client_secret: TODO_SECRET.into(),
            // The seed registers http://127.0.0.1:3000/callback: loopback redirect URIs
            // may vary the port (RFC 8252 §7.3).
            public_url: format!("http://127.0.0.1:{port}"),
            calendar_api: calendar.base.clone(),
            calendar_audience: CALENDAR.into(),
        };
        let todo = web::Data::new(todo_app::TodoApp::discover(config).await.expect("the to-do app discovers Lanyard"));
        assert_eq!(todo.redirect_uri(), format!("http://127.0.0.1:{port}/callback"));
        let data = todo.clone();
        let todo_server = spawn!(listener, move || App::new().app_data(data.clone()).configure(todo_app::configure));
        let jar = Arc::new(reqwest::cookie::Jar::default());
        // Follows redirects like a browser (303 → GET), across the three servers.
        let browser = reqwest::Client::builder().cookie_provider(jar.clone()).build().expect("http client");
        Stack { lanyard, calendar, todo, todo_server, jar, browser, _db: db }
    }

    fn todo_url(&self, path: &str) -> String {
        format!("{}{path}", self.todo_server.base)
    }

    /// Opens a to-do page, following redirects; the final URL, status and HTML.
    async fn open(&self, path: &str) -> (String, u16, String) {
        let response = self.browser.get(self.todo_url(path)).send().await.expect("the to-do app answers");
        read(response).await
    }

    /// The session the to-do app keeps for this browser.
    fn session(&self) -> todo_app::Session {
        let url = self.todo_url("/").parse().expect("a URL");
        let cookies = self.jar.cookies(&url).expect("cookies for the to-do app");
        let cookies = cookies.to_str().expect("ASCII cookies");
        let id = cookies
            .split("; ")
            .find_map(|c| c.strip_prefix(&format!("{}=", todo_app::SESSION_COOKIE)))
            .expect("a to-do session cookie");
        self.todo.session(id).expect("the to-do app knows this session")
    }

    async fn alice_id(&self) -> String {
        self.lanyard.store.user_by_username("alice").await.expect("store").expect("alice is seeded").id
    }
}

async fn read(response: reqwest::Response) -> (String, u16, String) {
    let url = response.url().to_string();
    let status = response.status().as_u16();
    (url, status, response.text().await.expect("a body"))
}

async fn the_todo_app_offers_a_sign_in_link_to_a_visitor(backend: Backend) {
    let stack = Stack::start(backend, false).await;
    let (_, status, html) = stack.open("/").await;
    assert_eq!(status, 200);
    assert!(html.contains("<a href=\"/login\">Sign in</a>"), "{html}");
    assert!(!html.contains("Hello"), "{html}");
}

async fn the_todo_app_signs_alice_in_with_dev_login_and_greets_her_by_name(backend: Backend) {
    let stack = Stack::start(backend, true).await;
    // /login → Lanyard /authorize (dev-login: no password, no consent) → /callback → /.
    let (url, status, html) = stack.open("/login?login_hint=alice").await;
    assert_eq!(status, 200, "{url}: {html}");
    assert_eq!(url, stack.todo_url("/"), "the browser ends on the to-do app's home page");
    assert!(html.contains("Hello, Alice</p>"), "{html}");
    assert!(html.contains("No appointments yet."), "the calendar answered the access token: {html}");
}

async fn the_todo_app_signs_alice_in_through_the_login_form_and_greets_her_by_name(backend: Backend) {
    let stack = Stack::start(backend, false).await;
    let (url, status, html) = stack.open("/login").await;
    assert!(url.starts_with(&stack.lanyard.base), "Lanyard's login page: {url}");
    assert_eq!(status, 200);
    let form = [
        ("csrf_token", form_field(&html, "csrf_token").expect("csrf_token field")),
        ("request_id", form_field(&html, "request_id").expect("request_id field")),
        ("username", "alice".to_owned()),
        ("password", "alice-password".to_owned()),
    ];
    let response = stack.browser.post(stack.lanyard.url("/login")).form(&form).send().await.expect("login");
    // The seeded client is first-party: no consent page.
    let (url, status, html) = read(response).await;
    assert_eq!((url.as_str(), status), (stack.todo_url("/").as_str(), 200), "{html}");
    assert!(html.contains("Hello, Alice</p>"), "{html}");
}

async fn a_new_appointment_reaches_the_calendar_api_with_alices_access_token(backend: Backend) {
    let stack = Stack::start(backend, true).await;
    stack.open("/login?login_hint=alice").await;
    let response = stack
        .browser
        .post(stack.todo_url("/appointments/new"))
        .form(&[("title", "Dentist <3"), ("at", "2026-12-01T09:30")])
        .send()
        .await
        .expect("the to-do app answers");
    let (url, status, html) = read(response).await;
    assert_eq!((url.as_str(), status), (stack.todo_url("/").as_str(), 200), "{html}");
    assert!(html.contains("<li>2026-12-01T09:30 — Dentist &lt;3</li>"), "listed, escaped: {html}");

    // The calendar API stored it for alice (the access token's `sub`)…
    let stored = stack.calendar.calendar.0.lock().expect("calendar").clone();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].owner, stack.alice_id().await);
    assert_eq!(stored[0].title, "Dentist <3");
    // …because the to-do app called it with an RFC 9068 access token for the calendar.
    let session = stack.session();
    let (header, claims) = decode_jwt(&session.access_token);
    assert_eq!(header["typ"], "at+jwt");
    assert!(claims["aud"].to_string().contains(CALENDAR), "{claims}");
    assert_eq!(claims["client_id"], "todo");
    let (status, _, body) = stack.calendar.list(&session.access_token).await;
    assert_eq!(status, 200);
    assert_eq!(body["appointments"][0]["title"], "Dentist <3");
}

async fn the_calendar_api_refuses_the_id_token_the_todo_app_received(backend: Backend) {
    let stack = Stack::start(backend, true).await;
    stack.open("/login?login_hint=alice").await;
    let id_token = stack.session().id_token.to_string();
    let (_, claims) = decode_jwt(&id_token);
    assert_eq!(claims["aud"], "todo", "the id_token is for the to-do app");
    assert_eq!(claims["name"], "Alice");

    let (status, challenge, body) = stack.calendar.list(&id_token).await;
    assert_eq!(status, 401, "{body}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("id_token"), "the refusal says why: {challenge}");
    assert!(stack.calendar.calendar.0.lock().expect("calendar").is_empty());
}

async fn the_todo_app_refuses_a_callback_this_browser_did_not_start(backend: Backend) {
    let stack = Stack::start(backend, true).await;
    // Another browser starts a sign-in; this one is handed its callback (login CSRF).
    let other = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let started = other.get(stack.todo_url("/login")).send().await.expect("login");
    let location = started.headers()["location"].to_str().expect("ASCII").to_owned();
    let state = url::Url::parse(&location)
        .expect("an authorization URL")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("a state");
    let (_, status, html) = stack.open(&format!("/callback?code=stolen&state={state}")).await;
    assert_eq!(status, 400);
    assert!(html.contains("not started in this browser"), "{html}");
    let (_, _, home) = stack.open("/").await;
    assert!(home.contains("Sign in"), "still signed out: {home}");
}

async fn signing_out_of_the_todo_app_ends_the_session_at_lanyard_too(backend: Backend) {
    let stack = Stack::start(backend, true).await;
    // The seed registers http://127.0.0.1:3000/ exactly; this app runs on another port, so
    // its own home page is registered too (post-logout URIs match exactly, and an
    // unregistered one is refused without ending anything: RP-Initiated Logout 1.0 §3).
    let home = stack.todo_url("/");
    let mut client = stack.lanyard.store.client("todo").await.expect("read").expect("the seeded client");
    client.post_logout_redirect_uris.push(lanyard::oauth::redirect_uri::RedirectUri::parse(&home).expect("a URI"));
    assert!(stack.lanyard.store.update_client(&client).await.expect("updated"));
    stack.open("/login?login_hint=alice").await;
    let response = stack.browser.post(stack.todo_url("/logout")).send().await.expect("logout");
    let (url, status, html) = read(response).await;
    assert_eq!(url, home, "back at the app after Lanyard ended its session: {html}");
    assert_eq!(status, 200);
    assert!(html.contains("Sign in"), "signed out of the to-do app: {html}");
    // Lanyard's session is gone too: a new sign-in without a hint asks for a password.
    let (url, _, html) = stack.open("/login").await;
    assert!(url.starts_with(&stack.lanyard.base), "{url}");
    assert!(html.contains("name=\"password\""), "{html}");
}
