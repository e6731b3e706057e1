//! The code flow when something is wrong: bad authorization requests, stolen or replayed
//! codes, client authentication, CSRF, throttling, consent and re-authentication rules,
//! and what the userinfo endpoint refuses.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use lanyard::registry::{self, client::ClientSpec};
use serde_json::Value;

use crate::both_backends;
use crate::flow::{self, API, Browser, Fixture, Outcome, REDIRECT_URI, VERIFIER, authorize_url};
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    an_unknown_client_gets_an_html_error_page_and_no_redirect,
    an_unregistered_redirect_uri_gets_an_html_error_page_and_never_a_redirect,
    a_loopback_redirect_uri_may_use_another_port,
    unsupported_response_types_are_redirected_back_with_state_and_iss,
    a_missing_or_plain_code_challenge_is_an_invalid_request,
    an_unknown_scope_is_invalid_scope_and_an_unregistered_api_is_invalid_target,
    prompt_none_without_a_session_redirects_with_login_required,
    prompt_none_without_consent_redirects_with_consent_required,
    a_replayed_code_is_refused_and_revokes_the_tokens_of_its_first_exchange,
    a_wrong_or_missing_pkce_verifier_is_invalid_grant,
    a_code_presented_by_another_client_is_refused_and_stays_redeemable_by_its_own,
    a_wrong_client_secret_is_invalid_client_and_every_token_response_is_no_store,
    a_redirect_uri_differing_from_the_authorization_request_is_invalid_grant,
    concurrent_redemptions_of_one_code_have_exactly_one_winner,
    the_login_form_refuses_a_missing_or_wrong_csrf_token,
    the_consent_form_refuses_a_missing_or_wrong_csrf_token,
    a_wrong_password_and_an_unknown_username_fail_alike,
    repeated_login_failures_lock_the_account_with_retry_after,
    denying_consent_redirects_with_access_denied_and_state,
    consent_is_remembered_until_the_client_asks_for_more,
    prompt_consent_shows_the_consent_page_even_right_after_consent,
    prompt_login_asks_for_the_password_again_and_renews_auth_time,
    max_age_zero_asks_for_the_password_again_like_prompt_login,
    tokens_carry_the_right_audiences_nonce_sid_and_only_granted_scopes,
    userinfo_without_a_token_challenges_without_an_error_code,
    userinfo_refuses_tampered_and_unsigned_tokens,
    userinfo_refuses_a_token_sent_in_both_header_and_body,
);

/// What the login form says on any failed attempt.
const LOGIN_FAILED: &str = "Invalid username or password.";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|v| v.to_str().expect("an ASCII header").to_owned())
}

/// Whether the response sets the session cookie (a sign-in happened).
fn sets_session_cookie(response: &reqwest::Response) -> bool {
    response.headers().get_all("set-cookie").iter().any(|v| v.to_str().unwrap_or("").starts_with("lanyard_session="))
}

/// Asserts an HTML page (never a redirect) with `status`, returns its body.
async fn html_page(response: reqwest::Response, status: u16, what: &str) -> String {
    assert_eq!(response.status().as_u16(), status, "{what}: status");
    assert!(
        header(&response, "location").is_none(),
        "{what}: an HTML page must not redirect, got Location {:?}",
        header(&response, "location")
    );
    let content_type = header(&response, "content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{what}: content-type {content_type:?}");
    assert_eq!(header(&response, "x-frame-options").as_deref(), Some("DENY"), "{what}: HTML pages must not be framed");
    response.text().await.expect("a body")
}

/// Asserts an RFC 6749 §4.1.2.1 error redirect to the fixture's redirect_uri with
/// `state` and RFC 9207 `iss`, and returns its parameters.
fn error_redirect(server: &TestServer, response: &reqwest::Response, what: &str) -> HashMap<String, String> {
    assert_eq!(response.status().as_u16(), 303, "{what}: an error redirect was expected");
    let (location, params) = flow::location_params(response);
    assert!(location.starts_with(&format!("{REDIRECT_URI}?")), "{what}: redirected to {location}");
    assert_eq!(params.get("state").map(String::as_str), Some("xyz"), "{what}: state");
    assert_eq!(params.get("iss").map(String::as_str), Some(server.base.as_str()), "{what}: iss");
    assert!(!params.contains_key("code"), "{what}: no code with an error");
    assert!(params.get("error_description").is_some_and(|d| !d.is_empty()), "{what}: error_description");
    params
}

async fn get(server: &TestServer, url: &str) -> reqwest::Response {
    server.http.get(url).send().await.expect("request sent")
}

fn is_login_page(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Page { status: 200, html } if html.contains("name=\"password\""))
}

fn is_consent_page(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Page { status: 200, html } if html.contains("value=\"allow\""))
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Page { status, html } => format!("page {status}: {html}"),
        Outcome::Redirect { location, .. } => format!("redirect to {location}"),
    }
}

/// The code of a redirect to the client, after checking `state` and `iss`.
fn code_of(server: &TestServer, outcome: &Outcome) -> String {
    let params = outcome.params();
    assert_eq!(params.get("state").map(String::as_str), Some("xyz"));
    assert_eq!(params.get("iss").map(String::as_str), Some(server.base.as_str()));
    params.get("code").expect("a code").clone()
}

/// Signs `browser` in as alice (allowing consent if asked) and returns a fresh code.
async fn code_for(browser: &Browser<'_>, fx: &Fixture, extra: &[(&str, &str)]) -> String {
    let outcome = browser.sign_in(&authorize_url(browser.server, &fx.client_id, extra), "alice").await;
    code_of(browser.server, &outcome)
}

/// Sleeps until the wall clock has just entered a new second. The server counts time in
/// whole seconds: this makes "in a later second" certain and "in the same second" all
/// but certain for what follows.
async fn start_of_next_second() {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let left = 1000 - u64::from(since_epoch.subsec_millis());
    tokio::time::sleep(Duration::from_millis(left + 20)).await;
}

/// How a token request authenticates its client.
enum ClientAuth<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
}

/// A /token answer; every one must be `Cache-Control: no-store` (RFC 6749 §5.1, §5.2).
struct TokenReply {
    status: u16,
    www_authenticate: Option<String>,
    body: Value,
}

impl TokenReply {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

async fn token_request(server: &TestServer, auth: ClientAuth<'_>, form: &[(&str, &str)]) -> TokenReply {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let request = server.http.post(server.url("/token"));
    let request = match auth {
        ClientAuth::Basic(id, secret) => request.basic_auth(id, Some(secret)),
        ClientAuth::Post(id, secret) => {
            form.push(("client_id", id));
            form.push(("client_secret", secret));
            request
        }
    };
    let response = request.form(&form).send().await.expect("request sent");
    let status = response.status().as_u16();
    let cache = header(&response, "cache-control").unwrap_or_default();
    assert!(cache.contains("no-store"), "/token answered {status} without Cache-Control: no-store ({cache:?})");
    let www_authenticate = header(&response, "www-authenticate");
    let body = response.json().await.unwrap_or(Value::Null);
    TokenReply { status, www_authenticate, body }
}

/// Redeems `code` for `fx`'s client with client_secret_basic.
async fn redeem(server: &TestServer, fx: &Fixture, code: &str, verifier: &str) -> TokenReply {
    token_request(
        server,
        ClientAuth::Basic(&fx.client_id, &fx.client_secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await
}

fn assert_invalid_grant(reply: &TokenReply, what: &str) {
    assert_eq!(reply.status, 400, "{what}: {}", reply.body);
    assert_eq!(reply.error(), "invalid_grant", "{what}: {}", reply.body);
}

/// A /userinfo answer.
struct UserinfoReply {
    status: u16,
    www_authenticate: String,
    body: Value,
}

async fn userinfo(server: &TestServer, token: &str) -> UserinfoReply {
    let response = server.http.get(server.url("/userinfo")).bearer_auth(token).send().await.expect("request sent");
    userinfo_reply(response).await
}

async fn userinfo_reply(response: reqwest::Response) -> UserinfoReply {
    let status = response.status().as_u16();
    let www_authenticate = header(&response, "www-authenticate").unwrap_or_default();
    let body = response.json().await.unwrap_or(Value::Null);
    UserinfoReply { status, www_authenticate, body }
}

fn scope_set(scope: &Value) -> BTreeSet<String> {
    scope
        .as_str()
        .unwrap_or_else(|| panic!("scope is a string: {scope}"))
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn set(scopes: &[&str]) -> BTreeSet<String> {
    scopes.iter().map(|s| (*s).to_owned()).collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Posts the login form of `page` from `browser`, returning the raw response.
async fn post_login(
    browser: &Browser<'_>,
    page: &Outcome,
    csrf_token: Option<&str>,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let html = page.html();
    let request_id = flow::form_field(html, "request_id").expect("request_id field");
    let mut form = vec![("request_id", request_id.as_str()), ("username", username), ("password", password)];
    if let Some(token) = csrf_token {
        form.push(("csrf_token", token));
    }
    browser.http.post(browser.server.url("/login")).form(&form).send().await.expect("request sent")
}

/// The text of the login page's error paragraph.
fn login_error(html: &str) -> Option<String> {
    let marker = "class=\"error\" role=\"alert\">";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find("</p>")? + start;
    Some(html[start..end].to_owned())
}

// ---------------------------------------------------------------------------------------
// /authorize: errors shown as pages, errors sent back to the client
// ---------------------------------------------------------------------------------------

async fn an_unknown_client_gets_an_html_error_page_and_no_redirect(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    flow::fixture(&server).await;

    let html = html_page(get(&server, &authorize_url(&server, "nope", &[])).await, 400, "unknown client").await;
    assert!(html.contains("Unknown application"), "{html}");
    assert!(html.contains("nope"), "the page names the client id: {html}");

    let html = html_page(get(&server, &authorize_url(&server, "", &[])).await, 400, "no client_id").await;
    assert!(html.contains("client_id"), "{html}");

    // What the page echoes is escaped.
    let html = html_page(
        get(&server, &authorize_url(&server, "<script>alert(1)</script>", &[])).await,
        400,
        "client_id with markup",
    )
    .await;
    assert!(!html.contains("<script>alert(1)"), "unescaped: {html}");
}

async fn an_unregistered_redirect_uri_gets_an_html_error_page_and_never_a_redirect(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    for redirect_uri in [
        "http://127.0.0.1:9999/other",
        "https://evil.example/cb",
        "http://127.0.0.1:9999/cb/",
        "http://127.0.0.1:9999/cb?x=1",
        "http://127.0.0.2:9999/cb",
    ] {
        // Even with errors that would otherwise be redirected (RFC 6749 §4.1.2.1).
        for extra in [vec![], vec![("response_type", "token")]] {
            let mut params = vec![("redirect_uri", redirect_uri)];
            params.extend(extra);
            let html =
                html_page(get(&server, &authorize_url(&server, &fx.client_id, &params)).await, 400, redirect_uri).await;
            assert!(html.contains("not registered"), "{redirect_uri}: the page explains why: {html}");
        }
    }
    let html = html_page(
        get(&server, &authorize_url(&server, &fx.client_id, &[("redirect_uri", "")])).await,
        400,
        "no redirect_uri",
    )
    .await;
    assert!(html.contains("redirect_uri"), "{html}");
}

async fn a_loopback_redirect_uri_may_use_another_port(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let native = "http://127.0.0.1:45678/cb";
    let browser = Browser::new(&server);
    let url = authorize_url(&server, &fx.client_id, &[("redirect_uri", native)]);
    let page = browser.open(&url).await;
    assert!(is_login_page(&page), "RFC 8252 §7.3: any port on loopback; got {}", describe(&page));
    let outcome = browser.sign_in(&url, "alice").await;
    match &outcome {
        Outcome::Redirect { location, params } => {
            assert!(location.starts_with(&format!("{native}?")), "back to the port asked for: {location}");
            assert!(params.contains_key("code"), "{location}");
        }
        other => panic!("expected a redirect, got {}", describe(other)),
    }
}

async fn unsupported_response_types_are_redirected_back_with_state_and_iss(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    for response_type in ["token", "id_token", "code token"] {
        let response = get(&server, &authorize_url(&server, &fx.client_id, &[("response_type", response_type)])).await;
        let params = error_redirect(&server, &response, response_type);
        assert_eq!(params["error"], "unsupported_response_type", "{response_type}");
    }
}

async fn a_missing_or_plain_code_challenge_is_an_invalid_request(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let cases: [(&str, Vec<(&str, &str)>); 4] = [
        ("no code_challenge", vec![("code_challenge", ""), ("code_challenge_method", "")]),
        ("no code_challenge but a method", vec![("code_challenge", "")]),
        ("plain", vec![("code_challenge", VERIFIER), ("code_challenge_method", "plain")]),
        ("no method (plain by default, RFC 7636 §4.3)", vec![("code_challenge_method", "")]),
    ];
    for (what, extra) in cases {
        let response = get(&server, &authorize_url(&server, &fx.client_id, &extra)).await;
        let params = error_redirect(&server, &response, what);
        assert_eq!(params["error"], "invalid_request", "{what}");
        assert!(params["error_description"].contains("code_challenge"), "{what}: {}", params["error_description"]);
    }
}

async fn an_unknown_scope_is_invalid_scope_and_an_unregistered_api_is_invalid_target(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;

    let response = get(&server, &authorize_url(&server, &fx.client_id, &[("scope", "openid launch:missiles")])).await;
    let params = error_redirect(&server, &response, "unknown scope");
    assert_eq!(params["error"], "invalid_scope");
    assert!(params["error_description"].contains("launch:missiles"), "{}", params["error_description"]);

    for (what, extra) in [
        ("resource", vec![("resource", "https://unregistered.example.test/api")]),
        ("audience (alias)", vec![("audience", "https://unregistered.example.test/api")]),
    ] {
        let response = get(&server, &authorize_url(&server, &fx.client_id, &extra)).await;
        let params = error_redirect(&server, &response, what);
        assert_eq!(params["error"], "invalid_target", "{what}");
        assert!(
            params["error_description"].contains("unregistered.example.test"),
            "{what}: {}",
            params["error_description"]
        );
    }
}

async fn prompt_none_without_a_session_redirects_with_login_required(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let response = get(&server, &authorize_url(&server, &fx.client_id, &[("prompt", "none")])).await;
    let params = error_redirect(&server, &response, "prompt=none, no session");
    assert_eq!(params["error"], "login_required");
}

async fn prompt_none_without_consent_redirects_with_consent_required(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    let login = browser.open(&authorize_url(&server, &fx.client_id, &[])).await;
    let consent = browser.login(&login, "alice", flow::PASSWORD).await;
    assert!(is_consent_page(&consent), "{}", describe(&consent));

    let response = browser.http.get(authorize_url(&server, &fx.client_id, &[("prompt", "none")])).send().await.unwrap();
    let params = error_redirect(&server, &response, "prompt=none, no consent");
    assert_eq!(params["error"], "consent_required");
}

// ---------------------------------------------------------------------------------------
// /token: codes, PKCE, client authentication
// ---------------------------------------------------------------------------------------

async fn a_replayed_code_is_refused_and_revokes_the_tokens_of_its_first_exchange(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    let code = code_for(&browser, &fx, &[]).await;

    let first = redeem(&server, &fx, &code, VERIFIER).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let access_token = first.body["access_token"].as_str().unwrap().to_owned();
    let before = userinfo(&server, &access_token).await;
    assert_eq!(before.status, 200, "the token works before the replay: {}", before.body);
    assert_eq!(before.body["sub"], fx.user_id.as_str());

    let second = redeem(&server, &fx, &code, VERIFIER).await;
    assert_invalid_grant(&second, "second redemption");
    assert!(second.body.get("access_token").is_none(), "{}", second.body);

    // RFC 6749 §4.1.2: the tokens issued for the code are revoked.
    let after = userinfo(&server, &access_token).await;
    assert_eq!(after.status, 401, "{}", after.body);
    assert!(
        after.www_authenticate.starts_with("Bearer") && after.www_authenticate.contains("error=\"invalid_token\""),
        "{}",
        after.www_authenticate
    );
    assert_eq!(after.body["error"], "invalid_token");
}

async fn a_wrong_or_missing_pkce_verifier_is_invalid_grant(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);

    let code = code_for(&browser, &fx, &[]).await;
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-verifieR";
    let reply = redeem(&server, &fx, &code, wrong).await;
    assert_invalid_grant(&reply, "wrong verifier");
    assert!(reply.body["error_description"].as_str().is_some_and(|d| d.contains("code_verifier")), "{}", reply.body);

    let code = code_for(&browser, &fx, &[]).await;
    let reply = token_request(
        &server,
        ClientAuth::Basic(&fx.client_id, &fx.client_secret),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT_URI)],
    )
    .await;
    assert_invalid_grant(&reply, "no verifier");
    assert!(reply.body["error_description"].as_str().is_some_and(|d| d.contains("code_verifier")), "{}", reply.body);
    assert!(reply.body.get("access_token").is_none());
}

async fn a_code_presented_by_another_client_is_refused_and_stays_redeemable_by_its_own(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let other = registry::create_client(
        &server.store,
        ClientSpec {
            client_id: Some("other".into()),
            client_name: Some("Other app".into()),
            redirect_uris: vec![REDIRECT_URI.into()],
            scope: Some("openid profile email".into()),
            ..Default::default()
        },
    )
    .await
    .expect("second client registered");
    let other = Fixture {
        client_id: other.client.client_id,
        client_secret: other.secret.expect("a confidential client's secret"),
        user_id: fx.user_id.clone(),
    };
    let browser = Browser::new(&server);
    let code = code_for(&browser, &fx, &[]).await;

    let stolen = redeem(&server, &other, &code, VERIFIER).await;
    assert_invalid_grant(&stolen, "code redeemed by another client");
    assert!(stolen.body.get("access_token").is_none());

    let legitimate = redeem(&server, &fx, &code, VERIFIER).await;
    assert_eq!(legitimate.status, 200, "the thief's attempt must not burn the code: {}", legitimate.body);
    let (_, claims) = flow::decode_jwt(legitimate.body["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], fx.client_id.as_str());
}

async fn a_wrong_client_secret_is_invalid_client_and_every_token_response_is_no_store(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    let code = code_for(&browser, &fx, &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
    ];

    for (what, auth) in [
        ("Basic, wrong secret", ClientAuth::Basic(&fx.client_id, "not-the-secret")),
        ("Basic, unknown client", ClientAuth::Basic("nobody", &fx.client_secret)),
    ] {
        let reply = token_request(&server, auth, &form).await;
        assert_eq!(reply.status, 401, "{what}: {}", reply.body);
        assert_eq!(reply.error(), "invalid_client", "{what}");
        let challenge = reply.www_authenticate.unwrap_or_default();
        assert!(challenge.starts_with("Basic"), "{what}: RFC 6749 §5.2 requires a Basic challenge: {challenge:?}");
    }

    let reply = token_request(&server, ClientAuth::Post(&fx.client_id, "not-the-secret"), &form).await;
    assert_eq!(reply.status, 401, "client_secret_post: {}", reply.body);
    assert_eq!(reply.error(), "invalid_client", "client_secret_post");
    assert!(reply.body["error_description"].is_string(), "{}", reply.body);

    // A failed client authentication doesn't consume the code; success is no-store too.
    let reply = redeem(&server, &fx, &code, VERIFIER).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body["access_token"].is_string(), "{}", reply.body);
}

async fn a_redirect_uri_differing_from_the_authorization_request_is_invalid_grant(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    for redirect_uri in [
        "http://127.0.0.1:9999/other",
        // Registered (loopback, any port) but not the one sent to /authorize.
        "http://127.0.0.1:45678/cb",
    ] {
        let code = code_for(&browser, &fx, &[]).await;
        let reply = token_request(
            &server,
            ClientAuth::Basic(&fx.client_id, &fx.client_secret),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        assert_invalid_grant(&reply, redirect_uri);
        assert!(reply.body.get("access_token").is_none());
    }
}

async fn concurrent_redemptions_of_one_code_have_exactly_one_winner(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    let code = code_for(&browser, &fx, &[]).await;

    let replies = futures_util::future::join_all((0..8).map(|_| redeem(&server, &fx, &code, VERIFIER))).await;
    let summary: Vec<String> = replies.iter().map(|r| format!("{} {}", r.status, r.error())).collect();
    let winners = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(winners, 1, "exactly one redemption wins: {summary:?}");
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_invalid_grant(reply, &format!("a losing redemption among {summary:?}"));
    }
}

// ---------------------------------------------------------------------------------------
// Login and consent pages
// ---------------------------------------------------------------------------------------

async fn the_login_form_refuses_a_missing_or_wrong_csrf_token(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let url = authorize_url(&server, &fx.client_id, &[]);
    let browser = Browser::new(&server);
    let page = browser.open(&url).await;
    assert!(is_login_page(&page), "{}", describe(&page));

    let forged = "A".repeat(43);
    for (what, token) in
        [("no csrf_token", None), ("a wrong csrf_token", Some(forged.as_str())), ("an empty csrf_token", Some(""))]
    {
        let response = post_login(&browser, &page, token, "alice", flow::PASSWORD).await;
        assert!(!sets_session_cookie(&response), "{what}: signed in");
        let html = html_page(response, 403, what).await;
        assert!(html.contains("CSRF"), "{what}: {html}");
    }
    // A browser that never saw the page (a cross-site form post) has no CSRF cookie.
    let stranger = Browser::new(&server);
    let token = flow::form_field(page.html(), "csrf_token").unwrap();
    let response = post_login(&stranger, &page, Some(&token), "alice", flow::PASSWORD).await;
    assert!(!sets_session_cookie(&response), "cross-site post: signed in");
    html_page(response, 403, "cross-site post").await;

    let again = browser.open(&url).await;
    assert!(is_login_page(&again), "still signed out: {}", describe(&again));
    let again = stranger.open(&url).await;
    assert!(is_login_page(&again), "still signed out: {}", describe(&again));
}

async fn the_consent_form_refuses_a_missing_or_wrong_csrf_token(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let url = authorize_url(&server, &fx.client_id, &[]);
    let browser = Browser::new(&server);
    let login = browser.open(&url).await;
    let consent = browser.login(&login, "alice", flow::PASSWORD).await;
    assert!(is_consent_page(&consent), "{}", describe(&consent));
    let request_id = flow::form_field(consent.html(), "request_id").unwrap();

    let forged = "A".repeat(43);
    for (what, token) in [("no csrf_token", None), ("a wrong csrf_token", Some(forged.as_str()))] {
        let mut form = vec![("request_id", request_id.as_str()), ("decision", "allow")];
        if let Some(token) = token {
            form.push(("csrf_token", token));
        }
        let response = browser.http.post(server.url("/consent")).form(&form).send().await.unwrap();
        let html = html_page(response, 403, what).await;
        assert!(html.contains("CSRF"), "{what}: {html}");
    }
    let recorded = server.store.consent(&fx.user_id, &fx.client_id).await.unwrap();
    assert!(recorded.is_none(), "consent recorded: {recorded:?}");
    let again = browser.open(&url).await;
    assert!(is_consent_page(&again), "consent is asked again: {}", describe(&again));
}

async fn a_wrong_password_and_an_unknown_username_fail_alike(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    let page = browser.open(&authorize_url(&server, &fx.client_id, &[])).await;

    let wrong_password = browser.login(&page, "alice", "not-her-password").await;
    let unknown_user = browser.login(&page, "mallory", flow::PASSWORD).await;
    assert_eq!(wrong_password.status(), unknown_user.status());
    assert_eq!(wrong_password.status(), 401);
    let (a, b) = (login_error(wrong_password.html()), login_error(unknown_user.html()));
    assert_eq!(a.as_deref(), Some(LOGIN_FAILED), "{}", wrong_password.html());
    assert_eq!(a, b, "the same words whatever was wrong");
    for outcome in [&wrong_password, &unknown_user] {
        assert!(outcome.html().contains("name=\"password\""), "the login form again: {}", outcome.html());
    }
}

async fn repeated_login_failures_lock_the_account_with_retry_after(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let max_failures = server.config.login_max_failures;
    assert_eq!(max_failures, 5, "the documented default");
    let fx = flow::fixture(&server).await;
    let url = authorize_url(&server, &fx.client_id, &[]);
    let browser = Browser::new(&server);
    let mut page = browser.open(&url).await;
    for attempt in 1..=max_failures {
        page = browser.login(&page, "alice", "guess").await;
        assert_eq!(page.status(), 401, "attempt {attempt}: {}", page.html());
        assert_eq!(login_error(page.html()).as_deref(), Some(LOGIN_FAILED), "attempt {attempt}");
    }

    let token = flow::form_field(page.html(), "csrf_token").unwrap();
    let response = post_login(&browser, &page, Some(&token), "alice", flow::PASSWORD).await;
    assert!(!sets_session_cookie(&response), "signed in although locked");
    let retry_after: i64 =
        header(&response, "retry-after").expect("a Retry-After header").parse().expect("Retry-After in seconds");
    assert!((1..=server.config.login_lockout).contains(&retry_after), "Retry-After {retry_after}");
    let html = html_page(response, 429, "locked").await;
    let message = login_error(&html).unwrap_or_default();
    let seconds: i64 = message
        .split("Try again in ")
        .nth(1)
        .and_then(|rest| rest.split(" seconds").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the page says when to retry: {message:?}"));
    assert!((retry_after - 1..=retry_after).contains(&seconds), "page says {seconds}, header {retry_after}");
    let again = browser.open(&url).await;
    assert!(is_login_page(&again), "{}", describe(&again));
}

async fn denying_consent_redirects_with_access_denied_and_state(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    let login = browser.open(&authorize_url(&server, &fx.client_id, &[])).await;
    let consent = browser.login(&login, "alice", flow::PASSWORD).await;
    assert!(is_consent_page(&consent), "{}", describe(&consent));
    let outcome = browser.consent(&consent, "deny").await;
    let params = outcome.params();
    assert_eq!(params.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(params.get("state").map(String::as_str), Some("xyz"));
    assert_eq!(params.get("iss").map(String::as_str), Some(server.base.as_str()));
    assert!(!params.contains_key("code"));
    let recorded = server.store.consent(&fx.user_id, &fx.client_id).await.unwrap();
    assert!(recorded.is_none(), "a denial is not a consent: {recorded:?}");
}

async fn consent_is_remembered_until_the_client_asks_for_more(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    let url = authorize_url(&server, &fx.client_id, &[]);
    let login = browser.open(&url).await;
    let consent = browser.login(&login, "alice", flow::PASSWORD).await;
    assert!(is_consent_page(&consent), "{}", describe(&consent));
    let first = browser.consent(&consent, "allow").await;
    code_of(&server, &first);

    let second = browser.open(&url).await;
    assert!(
        matches!(&second, Outcome::Redirect { params, .. } if params.contains_key("code")),
        "no consent page the second time: {}",
        describe(&second)
    );

    let more = browser
        .open(&authorize_url(
            &server,
            &fx.client_id,
            &[("scope", "openid profile email read:appointments"), ("resource", API)],
        ))
        .await;
    assert!(is_consent_page(&more), "a new scope is asked: {}", describe(&more));
    assert!(more.html().contains("read:appointments"), "{}", more.html());
}

async fn prompt_consent_shows_the_consent_page_even_right_after_consent(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    code_for(&browser, &fx, &[]).await;
    let url = authorize_url(&server, &fx.client_id, &[("prompt", "consent")]);

    // Consent given in an earlier second.
    start_of_next_second().await;
    let page = browser.open(&url).await;
    assert!(is_consent_page(&page), "{}", describe(&page));
    start_of_next_second().await;
    let outcome = browser.consent(&page, "allow").await;
    code_of(&server, &outcome);

    // Consent given a moment ago, in the same second: prompt=consent still asks
    // (OIDC Core §3.1.2.1: "MUST prompt the End-User for consent").
    let page = browser.open(&url).await;
    assert!(is_consent_page(&page), "prompt=consent right after a consent skipped the page: {}", describe(&page));
}

/// Signs in, then checks that `extra` (prompt=login or max_age=0) shows the login page
/// again, both when the session is from an earlier second and when it is brand new.
async fn reauthentication_is_forced_by(backend: Backend, extra: (&str, &str)) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    let first = code_for(&browser, &fx, &[]).await;
    let first = redeem(&server, &fx, &first, VERIFIER).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let (_, first_id) = flow::decode_jwt(first.body["id_token"].as_str().unwrap());
    let url = authorize_url(&server, &fx.client_id, &[extra]);

    start_of_next_second().await;
    let page = browser.open(&url).await;
    assert!(is_login_page(&page), "{extra:?} with a live session: {}", describe(&page));
    start_of_next_second().await;
    let outcome = browser.login(&page, "alice", flow::PASSWORD).await;
    let code = code_of(&server, &outcome);
    let reply = redeem(&server, &fx, &code, VERIFIER).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (_, id) = flow::decode_jwt(reply.body["id_token"].as_str().unwrap());
    assert!(
        id["auth_time"].as_i64().unwrap() > first_id["auth_time"].as_i64().unwrap(),
        "auth_time renewed: {} then {}",
        first_id["auth_time"],
        id["auth_time"]
    );

    // A session started a moment ago (same second) doesn't satisfy a new request either.
    let page = browser.open(&url).await;
    assert!(is_login_page(&page), "{extra:?} right after a sign-in skipped the login page: {}", describe(&page));
}

async fn prompt_login_asks_for_the_password_again_and_renews_auth_time(backend: Backend) {
    reauthentication_is_forced_by(backend, ("prompt", "login")).await;
}

/// OIDC Core §3.1.2.1: "max_age=0 is equivalent to prompt=login".
async fn max_age_zero_asks_for_the_password_again_like_prompt_login(backend: Backend) {
    reauthentication_is_forced_by(backend, ("max_age", "0")).await;
}

// ---------------------------------------------------------------------------------------
// What the tokens say
// ---------------------------------------------------------------------------------------

async fn tokens_carry_the_right_audiences_nonce_sid_and_only_granted_scopes(backend: Backend) {
    let db = TestDb::create(backend).await;
    // Narrowing on: the extra scope is dropped (by default it is refused; see dev_loop.rs).
    let server = TestServer::start_with(&db, |s| s.scope_narrowing = true).await;
    // Allowed `openid profile email read:appointments`; asks for write:appointments too.
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    let url = authorize_url(&server, &fx.client_id, &[("scope", "openid email write:appointments"), ("resource", API)]);
    let login = browser.open(&url).await;
    assert!(is_login_page(&login), "{}", describe(&login));
    let consent = browser.login(&login, "alice", flow::PASSWORD).await;
    assert!(is_consent_page(&consent), "{}", describe(&consent));
    assert!(
        !consent.html().contains("write:appointments"),
        "the consent page lists a scope the client may not have: {}",
        consent.html()
    );
    let outcome = browser.consent(&consent, "allow").await;
    let code = code_of(&server, &outcome);
    let reply = redeem(&server, &fx, &code, VERIFIER).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // RFC 6749 §5.1: the granted scope, since it differs from the requested one.
    assert_eq!(scope_set(&reply.body["scope"]), set(&["email", "openid"]), "{}", reply.body);

    let (header, id) = flow::decode_jwt(reply.body["id_token"].as_str().unwrap());
    assert_ne!(header["alg"], "none");
    assert_eq!(id["aud"], Value::String(fx.client_id.clone()), "{id}");
    assert!(id.get("azp").is_none_or(|azp| azp == fx.client_id.as_str()), "{id}");
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert!(id["sid"].as_str().is_some_and(|s| !s.is_empty()), "sid: {id}");
    assert_eq!(id["sub"], fx.user_id.as_str());
    assert_eq!(id["iss"], server.base.as_str());
    assert_eq!(id["email"], "alice@example.test");
    assert!(id.get("name").is_none(), "profile was not asked: {id}");

    let (header, at) = flow::decode_jwt(reply.body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    let audiences: Vec<&str> = match &at["aud"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        other => panic!("aud: {other}"),
    };
    let userinfo_endpoint = server.url("/userinfo");
    assert!(audiences.contains(&userinfo_endpoint.as_str()), "aud includes userinfo: {audiences:?}");
    assert!(audiences.contains(&API), "aud includes the resource: {audiences:?}");
    assert_eq!(scope_set(&at["scope"]), set(&["email", "openid"]), "{at}");
    assert_eq!(at["client_id"], fx.client_id.as_str());
    assert_eq!(at["sub"], fx.user_id.as_str());
}

// ---------------------------------------------------------------------------------------
// /userinfo
// ---------------------------------------------------------------------------------------

/// A valid access token for alice at the fixture's first-party client.
async fn access_token(server: &TestServer) -> String {
    let fx = flow::fixture_with(server, |c| c.first_party = Some(true)).await;
    let browser = Browser::new(server);
    let code = code_for(&browser, &fx, &[]).await;
    let reply = redeem(server, &fx, &code, VERIFIER).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = reply.body["access_token"].as_str().unwrap().to_owned();
    let ok = userinfo(server, &token).await;
    assert_eq!(ok.status, 200, "the untouched token works: {}", ok.body);
    token
}

async fn userinfo_without_a_token_challenges_without_an_error_code(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    for response in [
        server.get("/userinfo").await,
        server.http.post(server.url("/userinfo")).form(&[("unrelated", "x")]).send().await.unwrap(),
    ] {
        let reply = userinfo_reply(response).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        // RFC 6750 §3.1: no error code or other error information without a token.
        assert_eq!(reply.www_authenticate, "Bearer realm=\"lanyard\"");
        assert!(
            reply.body.get("error").is_none_or(|e| e != "invalid_token"),
            "RFC 6750 §3.1: a request without a token is not an invalid token: {}",
            reply.body
        );
    }
}

async fn userinfo_refuses_tampered_and_unsigned_tokens(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let token = access_token(&server).await;
    let parts: Vec<&str> = token.split('.').collect();
    let (header, mut claims) = flow::decode_jwt(&token);

    // One character of the payload flipped.
    let mut payload: Vec<char> = parts[1].chars().collect();
    let middle = payload.len() / 2;
    payload[middle] = if payload[middle] == 'A' { 'B' } else { 'A' };
    let flipped: String = payload.into_iter().collect();
    // A claim changed and the payload re-encoded, the signature kept.
    claims["sub"] = Value::String("someone-else".into());
    let rewritten = b64(claims.to_string().as_bytes());
    let (_, original_claims) = flow::decode_jwt(&token);
    let same_payload = b64(original_claims.to_string().as_bytes());
    // alg none, with and without the real kid, and an empty signature.
    let none_with_kid = b64(serde_json::json!({
        "alg": "none", "typ": "at+jwt", "kid": header["kid"]
    })
    .to_string()
    .as_bytes());
    let none = b64(br#"{"alg":"none","typ":"at+jwt"}"#);

    let cases = [
        ("flipped payload", format!("{}.{flipped}.{}", parts[0], parts[2])),
        ("rewritten payload", format!("{}.{rewritten}.{}", parts[0], parts[2])),
        ("alg none with kid", format!("{none_with_kid}.{}.", parts[1])),
        ("alg none", format!("{none}.{}.", parts[1])),
        ("alg none, re-encoded payload", format!("{none}.{same_payload}.")),
        ("signature stripped", format!("{}.{}.", parts[0], parts[1])),
    ];
    for (what, forged) in cases {
        let reply = userinfo(&server, &forged).await;
        assert_eq!(reply.status, 401, "{what}: {}", reply.body);
        assert!(
            reply.www_authenticate.starts_with("Bearer realm=\"lanyard\"")
                && reply.www_authenticate.contains("error=\"invalid_token\""),
            "{what}: {}",
            reply.www_authenticate
        );
        assert_eq!(reply.body["error"], "invalid_token", "{what}");
        assert!(reply.body.get("sub").is_none(), "{what}: claims leaked");
    }
}

async fn userinfo_refuses_a_token_sent_in_both_header_and_body(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let token = access_token(&server).await;
    let response = server
        .http
        .post(server.url("/userinfo"))
        .bearer_auth(&token)
        .form(&[("access_token", token.as_str())])
        .send()
        .await
        .unwrap();
    let reply = userinfo_reply(response).await;
    assert_eq!(reply.status, 400, "RFC 6750 §2: one method only");
    assert_eq!(reply.body["error"], "invalid_request", "{}", reply.body);
    assert!(
        reply.www_authenticate.starts_with("Bearer") && reply.www_authenticate.contains("error=\"invalid_request\""),
        "{}",
        reply.www_authenticate
    );
    assert!(reply.body.get("sub").is_none(), "claims released");

    // The same token in the body alone is fine.
    let response =
        server.http.post(server.url("/userinfo")).form(&[("access_token", token.as_str())]).send().await.unwrap();
    let reply = userinfo_reply(response).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["email"], "alice@example.test");
}
