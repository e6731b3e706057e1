//! Hostile input: a flood of concurrent wrong passwords for one account, and NUL or control
//! characters (or absurd lengths) in every place an identifier is read. Each gets the
//! protocol's own answer, identically on both backends, and never a 5xx.

use std::time::Duration;

use futures_util::future::join_all;
use lanyard::crypto::sha256_hex;

use crate::both_backends;
use crate::flow::{self, Browser, REDIRECT_URI, form_field};
use crate::helpers::{Backend, TestDb, TestServer, within};
use crate::token_lifecycle::Reply;

both_backends!(
    concurrent_wrong_passwords_evaluate_at_most_the_limit_and_then_lock_the_account,
    control_characters_in_identifiers_get_the_protocols_own_errors_and_never_a_5xx,
);

/// What the login form says on any failed attempt.
const LOGIN_FAILED: &str = "Invalid username or password.";
const ADMIN_PASSWORD: &str = "admin-password";
const ADMIN_TOKEN: &str = "hostile-input-admin-token-with-plenty-of-entropy-0123456789";
const MAX_FAILURES: i64 = 5;

/// A browser on the admin login form: its cookie jar holds the CSRF cookie.
struct LoginForm {
    http: reqwest::Client,
    csrf: String,
    return_to: String,
}

/// GET /admin, followed to the login form, the way a browser gets there.
async fn admin_login_form(server: &TestServer) -> LoginForm {
    let http = Browser::new(server).http;
    let first = http.get(server.url("/admin")).send().await.expect("sent");
    assert_eq!(first.status().as_u16(), 303, "/admin without a session");
    let location = first.headers()["location"].to_str().expect("ASCII").to_owned();
    let page = http.get(server.url(&location)).send().await.expect("sent");
    assert_eq!(page.status().as_u16(), 200, "the login form");
    let html = page.text().await.expect("a body");
    LoginForm {
        csrf: form_field(&html, "csrf_token").expect("csrf_token field"),
        return_to: form_field(&html, "return_to").expect("return_to field"),
        http,
    }
}

impl LoginForm {
    async fn submit(&self, server: &TestServer, username: &str, password: &str) -> Reply {
        let form = [
            ("csrf_token", self.csrf.as_str()),
            ("return_to", self.return_to.as_str()),
            ("username", username),
            ("password", password),
        ];
        Reply::read(self.http.post(server.url("/login")).form(&form).send().await.expect("sent")).await
    }
}

async fn concurrent_wrong_passwords_evaluate_at_most_the_limit_and_then_lock_the_account(backend: Backend) {
    // Both floods run before anything is asserted, so a failure reports both figures.
    let mut failures = Vec::new();
    for concurrency in [16, 64] {
        let db = TestDb::create(backend).await;
        let server = TestServer::start_with(&db, |s| {
            s.admin_password = Some(ADMIN_PASSWORD.into());
            s.login_max_failures = MAX_FAILURES;
        })
        .await;
        let form = admin_login_form(&server).await;

        let guesses: Vec<String> = (0..concurrency).map(|i| format!("wrong guess {i}")).collect();
        let attempts = guesses.iter().map(|guess| form.submit(&server, "admin", guess));
        let (answers, _) = within(Duration::from_secs(180), "the concurrent attempts", join_all(attempts)).await;

        let evaluated = answers.iter().filter(|r| r.status == 401 && r.text.contains(LOGIN_FAILED)).count();
        let locked = answers.iter().filter(|r| r.status == 429 && r.header("retry-after").is_some()).count();
        let others: Vec<String> = answers
            .iter()
            .filter(|r| !(r.status == 401 && r.text.contains(LOGIN_FAILED)))
            .filter(|r| !(r.status == 429 && r.header("retry-after").is_some()))
            .map(|r| format!("{} {:.200}", r.status, r.text))
            .collect();
        let summary = format!("{concurrency} concurrent → {evaluated} evaluated, {locked} refused with 429");
        if !others.is_empty() {
            failures.push(format!("{summary}; every other answer must be a 429 with Retry-After, got {others:?}"));
        }
        if evaluated as i64 > MAX_FAILURES {
            failures.push(format!("{summary}: at most {MAX_FAILURES} passwords may be evaluated"));
        }

        let correct = form.submit(&server, "admin", ADMIN_PASSWORD).await;
        if correct.status != 429 || correct.header("retry-after").is_none() {
            failures.push(format!(
                "{summary}; then the correct password must be refused with 429 and Retry-After, got {}",
                correct.status
            ));
        }
        server.stop().await;
    }
    assert!(failures.is_empty(), "on {backend:?}:\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// NUL and control characters
// ---------------------------------------------------------------------------------------

/// A hostile identifier: what a test calls it, its raw value and its percent-encoding.
struct Hostile {
    name: &'static str,
    raw: String,
    encoded: String,
}

fn hostile_identifiers() -> Vec<Hostile> {
    let long = "a".repeat(10_000);
    vec![
        Hostile { name: "a NUL", raw: "a\0b".into(), encoded: "a%00b".into() },
        Hostile { name: "U+0001", raw: "a\u{1}b".into(), encoded: "a%01b".into() },
        Hostile { name: "10 000 characters", raw: long.clone(), encoded: long },
    ]
}

/// Collects what went wrong, so one run reports every position at once.
#[derive(Default)]
struct Findings {
    wrong: Vec<String>,
    server_errors: usize,
}

impl Findings {
    fn check(&mut self, ok: bool, what: &str, reply: &Reply) {
        if reply.status >= 500 {
            self.server_errors += 1;
        }
        if !ok || reply.status >= 500 {
            // An HTML page is named by its title; anything else shown as it is.
            let shown = match (reply.text.find("<title>"), reply.text.find("</title>")) {
                (Some(start), Some(end)) if start < end => &reply.text[start + 7..end],
                _ => reply.text.as_str(),
            };
            self.wrong.push(format!("{what}: {} {shown:.200}", reply.status));
        }
    }

    /// RFC 6749 §5.2: 401 `invalid_client`.
    fn invalid_client(&mut self, what: &str, reply: &Reply) {
        self.check(
            reply.status == 401 && reply.error() == "invalid_client",
            &format!("{what} (want 401 invalid_client)"),
            reply,
        );
    }

    /// An HTML error page with a status in `statuses`, and no redirect.
    fn page(&mut self, what: &str, reply: &Reply, statuses: std::ops::RangeInclusive<u16>) {
        let ok = statuses.contains(&reply.status)
            && reply.header("location").is_none()
            && reply.header("content-type").unwrap_or("").starts_with("text/html");
        self.check(ok, &format!("{what} (want an HTML page {statuses:?}, no redirect)"), reply);
    }

    /// An RFC 7807 problem with `status`.
    fn problem(&mut self, what: &str, reply: &Reply, statuses: &[u16]) {
        let ok = statuses.contains(&reply.status)
            && reply.header("content-type") == Some("application/problem+json")
            && reply.body["status"] == reply.status;
        self.check(ok, &format!("{what} (want a problem {statuses:?})"), reply);
    }
}

/// Sends a raw request body (already encoded) as a form.
async fn post_raw(http: &reqwest::Client, url: &str, basic: Option<&str>, body: String) -> Reply {
    use base64::Engine;
    let mut request = http.post(url).header("content-type", "application/x-www-form-urlencoded").body(body);
    if let Some(credentials) = basic {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials.as_bytes());
        request = request.header("authorization", format!("Basic {encoded}"));
    }
    within(Duration::from_secs(30), url, async { Reply::read(request.send().await.expect("sent")).await }).await.0
}

async fn get_raw(http: &reqwest::Client, url: &str, bearer: Option<&str>) -> Reply {
    let mut request = http.get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    within(Duration::from_secs(30), url, async { Reply::read(request.send().await.expect("sent")).await }).await.0
}

async fn control_characters_in_identifiers_get_the_protocols_own_errors_and_never_a_5xx(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.admin_password = Some(ADMIN_PASSWORD.into())).await;
    server.store.insert_admin_token("ci", &sha256_hex(ADMIN_TOKEN)).await.expect("admin token stored");
    let fx = flow::fixture(&server).await;
    let http = Browser::new(&server).http;
    let mut findings = Findings::default();
    let ids = hostile_identifiers();

    // Client authentication at the token, introspection and revocation endpoints.
    for id in &ids {
        for (path, form) in [
            ("/token", "grant_type=client_credentials"),
            ("/introspect", "token=some-token"),
            ("/revoke", "token=some-token"),
        ] {
            let url = server.url(path);
            let what = |how: &str| format!("{path}: client_id with {} {how}", id.name);
            let reply = post_raw(&http, &url, Some(&format!("{}:secret", id.raw)), form.to_owned()).await;
            findings.invalid_client(&what("in Basic auth"), &reply);
            let reply = post_raw(&http, &url, Some(&format!("{}:secret", id.encoded)), form.to_owned()).await;
            findings.invalid_client(&what("in Basic auth, form-encoded"), &reply);
            let body = format!("{form}&client_id={}&client_secret=secret", id.encoded);
            let reply = post_raw(&http, &url, None, body).await;
            findings.invalid_client(&what("in the body"), &reply);
        }

        // RFC 6749 §4.1.2.1: an unverifiable client gets the error page, never a redirect.
        let url = server.url(&format!(
            "/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=xyz\
             &code_challenge={}&code_challenge_method=S256",
            id.encoded,
            url::form_urlencoded::byte_serialize(REDIRECT_URI.as_bytes()).collect::<String>(),
            flow::s256(flow::VERIFIER),
        ));
        let reply = get_raw(&Browser::new(&server).http, &url, None).await;
        findings.page(&format!("/authorize: client_id with {}", id.name), &reply, 400..=400);

        let url = server.url(&format!("/logout?client_id={}", id.encoded));
        let reply = get_raw(&Browser::new(&server).http, &url, None).await;
        findings.page(&format!("/logout: client_id with {}", id.name), &reply, 400..=499);

        // The admin API: an unknown resource, whatever its name holds.
        for (resource, path) in [
            ("/admin/api/clients/{id}", format!("/admin/api/clients/{}", id.encoded)),
            ("/admin/api/users/{id}", format!("/admin/api/users/{}", id.encoded)),
            ("/admin/api/apis/item?identifier={id}", format!("/admin/api/apis/item?identifier={}", id.encoded)),
        ] {
            let reply = get_raw(&http, &server.url(&path), Some(ADMIN_TOKEN)).await;
            findings.problem(&format!("GET {resource} with {}", id.name), &reply, &[404]);
        }
        let reply =
            get_raw(&http, &server.url(&format!("/admin/api/users?search={}", id.encoded)), Some(ADMIN_TOKEN)).await;
        if id.name != "10 000 characters" {
            findings.problem(&format!("admin API user search with {}", id.name), &reply, &[400, 404]);
        } else {
            findings.check(reply.status < 500, "admin API user search with 10 000 characters (want no 5xx)", &reply);
        }
    }

    // The login form: a hostile username is a failed sign-in like any other.
    for id in ids.iter().take(2) {
        let browser = Browser::new(&server);
        let page = browser.open(&flow::authorize_url(&server, &fx.client_id, &[])).await;
        let html = page.html();
        let form = [
            ("csrf_token", form_field(html, "csrf_token").expect("csrf_token field")),
            ("request_id", form_field(html, "request_id").expect("request_id field")),
            ("username", id.raw.clone()),
            ("password", "wrong password".into()),
        ];
        let response = browser.http.post(server.url("/login")).form(&form).send().await.expect("sent");
        let reply = Reply::read(response).await;
        let ok = (reply.status == 401 && reply.text.contains(LOGIN_FAILED)) || reply.status == 400;
        findings.check(
            ok,
            &format!("POST /login: username with {} (want 401 {LOGIN_FAILED:?} or 400)", id.name),
            &reply,
        );

        // A hostile request_id: the pending request cannot exist.
        let form = [
            ("csrf_token", form_field(html, "csrf_token").expect("csrf_token field")),
            ("request_id", id.raw.clone()),
            ("username", "alice".into()),
            ("password", flow::PASSWORD.into()),
        ];
        let response = browser.http.post(server.url("/login")).form(&form).send().await.expect("sent");
        findings.page(&format!("POST /login: request_id with {}", id.name), &Reply::read(response).await, 400..=400);

        // A hostile login_hint on an otherwise valid request goes back to the client.
        let url = flow::authorize_url(&server, &fx.client_id, &[("login_hint", id.raw.as_str())]);
        let response = Browser::new(&server).http.get(&url).send().await.expect("sent");
        let location = response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("").to_owned();
        let reply = Reply::read(response).await;
        let params: Vec<(String, String)> =
            url::Url::parse(&location).map(|u| u.query_pairs().into_owned().collect()).unwrap_or_default();
        let ok = reply.status == 303
            && location.starts_with(&format!("{REDIRECT_URI}?"))
            && params.contains(&("error".into(), "invalid_request".into()));
        findings.check(
            ok,
            &format!(
                "/authorize: login_hint with {} (want an invalid_request redirect, got Location {location:?})",
                id.name
            ),
            &reply,
        );
    }

    // The admin pages' user search.
    let form = admin_login_form(&server).await;
    let signed_in = form.submit(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(signed_in.status, 303, "admin sign-in: {}", signed_in.text);
    for id in ids.iter().take(2) {
        let reply = get_raw(&form.http, &server.url(&format!("/admin/users?q={}", id.encoded)), None).await;
        findings.check(
            [400, 404].contains(&reply.status),
            &format!("admin page user search with {} (want 400 or 404)", id.name),
            &reply,
        );
    }

    assert!(
        findings.wrong.is_empty(),
        "{} hostile identifiers got the wrong answer ({} of them a 5xx) on {backend:?}:\n{}",
        findings.wrong.len(),
        findings.server_errors,
        findings.wrong.join("\n")
    );
}
