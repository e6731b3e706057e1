//! The protocol recorder (test lab, development features only): every exchange of a flow
//! is listed by the admin API and the admin page, with secrets masked and tokens decoded;
//! failures say why; filters, retention, back-channel deliveries, replicas sharing one
//! database, and nothing at all without development features.

use std::collections::HashMap;
use std::time::Duration;

use lanyard::crypto::sha256_hex;
use lanyard::testing::{ActivityFilter, ClientSpec, SignIn, TestIdp};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::both_backends;
use crate::flow::{self, API, Browser, Fixture, PASSWORD, REDIRECT_URI, VERIFIER, form_field};
use crate::helpers::{Backend, TestDb, TestServer};
use crate::token_lifecycle::{Creds, client_credentials, machine_client, member, post_form};

both_backends!(
    a_code_flow_is_listed_with_secrets_masked_and_tokens_decoded,
    a_failed_exchange_shows_its_error_and_why,
    entries_can_be_filtered_by_client_user_endpoint_and_id,
    only_the_newest_entries_are_kept,
    a_back_channel_logout_delivery_is_recorded,
    without_development_features_nothing_is_recorded_and_the_recorder_is_refused,
    with_the_recorder_turned_off_a_dev_server_records_nothing,
    servers_on_one_database_see_each_others_entries,
);

const TOKEN: &str = "activity-admin-token-with-plenty-of-entropy";
const ADMIN_PASSWORD: &str = "admin-password";

async fn start(backend: Backend, dev: bool) -> (TestDb, TestServer) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| {
        s.dev = dev;
        s.admin_password = Some(ADMIN_PASSWORD.into());
    })
    .await;
    server.store.insert_admin_token("ci", &sha256_hex(TOKEN)).await.unwrap();
    (db, server)
}

/// `GET /admin/api/activity?{query}`: status and the raw body.
async fn api_raw(server: &TestServer, query: &str) -> (u16, String) {
    let response =
        server.http.get(server.url(&format!("/admin/api/activity?{query}"))).bearer_auth(TOKEN).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The entries `GET /admin/api/activity?{query}` lists (newest first).
async fn api(server: &TestServer, query: &str) -> Vec<Value> {
    let (status, body) = api_raw(server, query).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn param<'e>(entry: &'e Value, name: &str) -> Option<&'e Value> {
    entry["params"].as_array().unwrap().iter().find(|p| p["name"] == name)
}

fn token<'e>(entry: &'e Value, source: &str) -> &'e Value {
    entry["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["source"] == source)
        .unwrap_or_else(|| panic!("no {source} token in {entry:#}"))
}

fn assert_masked(entry: &Value, name: &str) {
    let p = param(entry, name).unwrap_or_else(|| panic!("no {name} parameter in {entry:#}"));
    assert_eq!(p["masked"], true, "{p}");
    assert!(p["value"].as_str().unwrap().contains("(masked, "), "{p}");
}

/// Signs in to the admin pages; returns the browser's HTTP client.
async fn admin(server: &TestServer) -> reqwest::Client {
    let browser = Browser::new(server);
    let login = browser.http.get(server.url("/admin/login")).send().await.unwrap().text().await.unwrap();
    let form = [
        ("csrf_token", form_field(&login, "csrf_token").unwrap()),
        ("return_to", "/admin".to_owned()),
        ("username", "admin".to_owned()),
        ("password", ADMIN_PASSWORD.to_owned()),
    ];
    let done = browser.http.post(server.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(done.status().as_u16(), 303);
    browser.http
}

async fn page(http: &reqwest::Client, server: &TestServer, path: &str) -> (u16, String) {
    let response = http.get(server.url(path)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn offline_fixture(server: &TestServer) -> Fixture {
    flow::fixture_with(server, |c| {
        c.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
        c.scope = Some("openid profile email offline_access read:appointments".into());
    })
    .await
}

async fn a_code_flow_is_listed_with_secrets_masked_and_tokens_decoded(backend: Backend) {
    let (_db, server) = start(backend, true).await;
    let fx = offline_fixture(&server).await;
    let browser = Browser::new(&server);
    let extra = [("scope", "openid profile offline_access read:appointments"), ("resource", API)];
    let outcome = browser.sign_in(&flow::authorize_url(&server, "web", &extra), "alice").await;
    let code = outcome.params()["code"].clone();
    let (status, tokens) = flow::exchange(&server, &fx, &code, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    let access_token = member(&tokens, "access_token").to_owned();
    let userinfo = server.http.get(server.url("/userinfo")).bearer_auth(&access_token).send().await.unwrap();
    assert_eq!(userinfo.status(), 200);
    let creds = Creds::from(&fx);
    let refresh_token = member(&tokens, "refresh_token").to_owned();
    let refreshed = post_form(
        &server,
        "/token",
        Some(&creds),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())],
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);

    let (status, raw) = api_raw(&server, "").await;
    assert_eq!(status, 200, "{raw}");
    let entries: Vec<Value> = serde_json::from_str(&raw).unwrap();
    let endpoints: Vec<&str> = entries.iter().map(|e| e["endpoint"].as_str().unwrap()).collect();
    // Newest first: the refresh, userinfo, the code exchange, then the browser's steps.
    assert_eq!(&endpoints[..3], ["token", "userinfo", "token"], "{endpoints:?}");
    for step in ["authorize", "login", "consent"] {
        assert!(endpoints.contains(&step), "{step} in {endpoints:?}");
    }
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    // The authorization response: to the client, its code masked, the user and client known.
    let redirected = entries
        .iter()
        .find(|e| e["endpoint"] == "authorize" && e["redirect"].as_str().is_some_and(|r| r.starts_with(REDIRECT_URI)))
        .expect("the final redirect is recorded");
    let redirect = redirected["redirect"].as_str().unwrap();
    assert!(redirect.contains("state=xyz") && !redirect.contains("code="), "{redirect}");
    assert_masked(redirected, "code");
    assert_eq!(redirected["client_id"], "web");
    assert_eq!(redirected["user"], "alice");
    let login = entries.iter().find(|e| e["endpoint"] == "login").unwrap();
    assert_masked(login, "password");
    assert_eq!(login["user"], "alice");

    // The code exchange: every credential masked, the tokens decoded and explained.
    let exchange = &entries[2];
    assert_eq!((exchange["client_id"].as_str(), exchange["user"].as_str()), (Some("web"), Some("alice")));
    assert_eq!(exchange["status"], 200);
    assert_eq!(param(exchange, "grant_type").unwrap()["value"], "authorization_code");
    for secret in ["code", "code_verifier", "Authorization"] {
        assert_masked(exchange, secret);
    }
    assert!(param(exchange, "Authorization").unwrap()["value"].as_str().unwrap().starts_with("Basic web:"));
    let access = token(exchange, "response access_token");
    assert_eq!(access["kind"], "access token");
    assert_eq!(access["verdict"], "valid");
    assert_eq!(access["claims"]["client_id"], "web");
    assert_eq!(access["header"]["typ"], "at+jwt");
    assert!(access["summary"].as_str().unwrap().contains("for user alice"), "{access}");
    let id_token = token(exchange, "response id_token");
    assert_eq!(id_token["kind"], "id_token");
    assert_eq!(id_token["claims"]["nonce"], "n-0S6_WzA2Mj");
    for member in ["access_token", "id_token", "refresh_token"] {
        assert!(exchange["response"][member].as_str().unwrap().contains("(masked, "), "{member}");
    }
    assert_eq!(exchange["response"]["token_type"], "Bearer");
    assert!(exchange["duration_ms"].as_i64().unwrap() >= 0);

    // Userinfo: the bearer token decoded; the refresh: its token masked.
    assert_eq!((entries[1]["client_id"].as_str(), entries[1]["user"].as_str()), (Some("web"), Some("alice")));
    assert_eq!(token(&entries[1], "request bearer token")["kind"], "access token");
    assert_masked(&entries[0], "refresh_token");
    assert_eq!(entries[0]["user"], "alice");

    // No secret, no token, anywhere in the API's answer or on the pages.
    let new_refresh = refreshed.str("refresh_token").to_owned();
    let id_token_raw = member(&tokens, "id_token").to_owned();
    let secrets = [
        ("code", code.as_str()),
        ("client secret", fx.client_secret.as_str()),
        ("code_verifier", VERIFIER),
        ("refresh token", refresh_token.as_str()),
        ("new refresh token", new_refresh.as_str()),
        ("access token", access_token.as_str()),
        ("id_token", id_token_raw.as_str()),
        ("password", PASSWORD),
    ];
    let http = admin(&server).await;
    let (status, list) = page(&http, &server, "/admin/activity").await;
    assert_eq!(status, 200, "{list}");
    assert!(list.contains("Protocol activity") && list.contains("alice") && list.contains("token"), "{list}");
    let detail_path = format!("/admin/activity/{}", exchange["id"]);
    let (status, detail) = page(&http, &server, &detail_path).await;
    assert_eq!(status, 200, "{detail}");
    assert!(detail.contains("An access token for") && detail.contains("(masked, "), "{detail}");
    assert!(detail.contains("at+jwt"), "the decoded header is shown");
    for (what, secret) in secrets {
        assert!(!raw.contains(secret), "the {what} appears in the API's answer");
        assert!(!list.contains(secret) && !detail.contains(secret), "the {what} appears on a page");
    }
    // The client's and the user's admin pages link to their activity.
    let (_, client_page) = page(&http, &server, "/admin/clients/web").await;
    assert!(client_page.contains("/admin/activity?client_id=web"), "a link on the client's page");
    let (_, user_page) = page(&http, &server, &format!("/admin/users/{}", fx.user_id)).await;
    assert!(user_page.contains("/admin/activity?user=alice"), "a link on the user's page");
    server.stop().await;
}

async fn a_failed_exchange_shows_its_error_and_why(backend: Backend) {
    let (_db, server) = start(backend, true).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    let outcome = browser.sign_in(&flow::authorize_url(&server, "web", &[]), "alice").await;
    let (status, refused) =
        flow::exchange(&server, &fx, &outcome.params()["code"], "a-wrong-verifier-0123456789-0123456789-xx").await;
    assert_eq!(status, 400, "{refused}");

    let failed = api(&server, "errors_only=true&endpoint=token").await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["status"], 400);
    assert_eq!(failed[0]["error"], refused["error"]);
    assert_eq!(failed[0]["error"], "invalid_grant");
    assert_eq!(failed[0]["error_description"], refused["error_description"]);
    assert!(!failed[0]["error_description"].as_str().unwrap().is_empty());
    assert_eq!(failed[0]["client_id"], "web");

    // An error redirect: its error read from the Location.
    let response = browser
        .http
        .get(flow::authorize_url(&server, "web", &[("scope", "openid no-such-scope")]))
        .send()
        .await
        .unwrap();
    let (_, sent) = flow::location_params(&response);
    let entry = &api(&server, "errors_only=true&endpoint=authorize").await[0];
    assert_eq!(entry["error"].as_str(), sent.get("error").map(String::as_str), "{entry:#}");
    assert_eq!(entry["error_description"].as_str(), sent.get("error_description").map(String::as_str));
    assert_eq!(entry["status"], 303);
    // An error page (no redirect to an unknown client): its title and sentence.
    let response = browser.http.get(flow::authorize_url(&server, "nobody", &[])).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let entry = &api(&server, "errors_only=true&endpoint=authorize").await[0];
    assert_eq!(entry["error"], "Unknown application", "{entry:#}");
    assert!(entry["error_description"].as_str().unwrap().contains("nobody"), "{entry:#}");
    // A bearer error: read from WWW-Authenticate.
    let response = server.http.get(server.url("/userinfo")).bearer_auth("not-a-token").send().await.unwrap();
    assert_eq!(response.status(), 401);
    let entry = &api(&server, "endpoint=userinfo").await[0];
    assert_eq!(entry["error"], "invalid_token", "{entry:#}");

    // The page lists the failure with its reason, one click from the list.
    let http = admin(&server).await;
    let (_, list) = page(&http, &server, "/admin/activity?errors_only=true&endpoint=token").await;
    assert!(list.contains("invalid_grant"), "{list}");
    let description = lanyard::testing::decode_entities(failed[0]["error_description"].as_str().unwrap());
    assert!(lanyard::testing::decode_entities(&list).contains(&description), "{list}");
    server.stop().await;
}

async fn entries_can_be_filtered_by_client_user_endpoint_and_id(backend: Backend) {
    let (_db, server) = start(backend, true).await;
    let fx = flow::fixture(&server).await;
    flow::add_user(&server, "bob").await;
    let machine = machine_client(&server, "machine", "read:appointments", |_| {}).await;
    for user in ["alice", "bob"] {
        let browser = Browser::new(&server);
        let outcome = browser.sign_in(&flow::authorize_url(&server, "web", &[]), user).await;
        let (status, _) = flow::exchange(&server, &fx, &outcome.params()["code"], VERIFIER).await;
        assert_eq!(status, 200);
    }
    let before = api(&server, "").await[0]["id"].as_i64().unwrap();
    let reply = client_credentials(&server, &machine, &[("resource", API)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    let web = api(&server, "client_id=web").await;
    assert!(web.len() >= 6 && web.iter().all(|e| e["client_id"] == "web"), "{web:#?}");
    let users: Vec<&str> = web.iter().filter_map(|e| e["user"].as_str()).collect();
    assert!(users.contains(&"alice") && users.contains(&"bob"), "{users:?}");
    let bob = api(&server, "user=bob").await;
    assert!(!bob.is_empty() && bob.iter().all(|e| e["user"] == "bob"), "{bob:#?}");
    assert!(bob.iter().any(|e| e["endpoint"] == "token"), "bob's code exchange");
    let by_id = api(&server, &format!("user={}", bob[0]["user_id"].as_str().unwrap())).await;
    assert_eq!(by_id.len(), bob.len(), "a user id filters like the username");
    let machines = api(&server, "client_id=machine").await;
    assert_eq!(machines.len(), 1, "{machines:#?}");
    assert_eq!(machines[0]["user"], Value::Null, "client credentials: no user");
    assert_eq!(token(&machines[0], "response access_token")["claims"]["sub"], "machine");
    let tokens = api(&server, "endpoint=token").await;
    assert_eq!(tokens.len(), 3, "{tokens:#?}");
    let newer = api(&server, &format!("since={before}")).await;
    assert_eq!(newer.len(), 1, "{newer:#?}");
    assert_eq!(newer[0]["client_id"], "machine");
    assert_eq!(api(&server, "limit=2").await.len(), 2);
    // The page filters alike.
    let http = admin(&server).await;
    let (_, page_bob) = page(&http, &server, "/admin/activity?user=bob").await;
    assert!(page_bob.contains("bob") && !page_bob.contains(">alice<"), "{page_bob}");
    server.stop().await;
}

async fn only_the_newest_entries_are_kept(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| {
        s.dev = true;
        s.activity_retention_count = 5;
    })
    .await;
    server.store.insert_admin_token("ci", &sha256_hex(TOKEN)).await.unwrap();
    flow::fixture(&server).await;
    let machine = machine_client(&server, "machine", "read:appointments", |_| {}).await;
    for _ in 0..8 {
        assert_eq!(client_credentials(&server, &machine, &[("resource", API)]).await.status, 200);
    }
    let entries = api(&server, "limit=100").await;
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert_eq!(ids, (ids[0] - 4..=ids[0]).rev().collect::<Vec<_>>(), "the newest five");
    server.stop().await;
}

/// A loopback endpoint answering every request with 200; sends each request body on.
async fn backchannel_endpoint() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/bc", listener.local_addr().unwrap().port());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if raw.len() >= end + 4 + length {
                        let _ = tx.send(text[end + 4..].to_owned());
                        break;
                    }
                }
            }
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
        }
    });
    (url, rx)
}

async fn a_back_channel_logout_delivery_is_recorded(backend: Backend) {
    let (endpoint, mut received) = backchannel_endpoint().await;
    let db = TestDb::create(backend).await;
    // dev_login: deliveries may reach a loopback endpoint (and development features are on).
    let server = TestServer::start_with(&db, |s| s.dev_login = true).await;
    server.store.insert_admin_token("ci", &sha256_hex(TOKEN)).await.unwrap();
    let fx = flow::fixture_with(&server, |c| c.backchannel_logout_uri = Some(endpoint.clone())).await;
    let browser = Browser::new(&server);
    let outcome = browser.sign_in(&flow::authorize_url(&server, "web", &[]), "alice").await;
    let (_, tokens) = flow::exchange(&server, &fx, &outcome.params()["code"], VERIFIER).await;
    let id_token = member(&tokens, "id_token").to_owned();
    let mut logout = url::Url::parse(&server.url("/logout")).unwrap();
    logout.query_pairs_mut().append_pair("id_token_hint", &id_token);
    browser.http.get(logout.as_str()).send().await.unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), received.recv()).await.expect("delivered").unwrap();
    let logout_token: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let logout_token = &logout_token["logout_token"];

    let mut delivered = Vec::new();
    for _ in 0..50 {
        delivered = api(&server, "endpoint=backchannel_logout").await;
        if !delivered.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered.len(), 1, "one delivery recorded");
    let entry = &delivered[0];
    assert_eq!((entry["status"].as_i64(), entry["method"].as_str()), (Some(200), Some("POST")));
    assert_eq!((entry["client_id"].as_str(), entry["user"].as_str()), (Some("web"), Some("alice")));
    assert_eq!(entry["path"], json!(endpoint));
    assert_masked(entry, "logout_token");
    let decoded = token(entry, "request logout_token");
    assert_eq!(decoded["kind"], "logout token", "{decoded:#}");
    assert_eq!(decoded["header"]["typ"], "logout+jwt");
    assert!(decoded["claims"]["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(entry["note"].as_str().unwrap().contains("HTTP 200 after 1 attempt"), "{entry:#}");
    // The logout request itself: its id_token_hint masked and decoded.
    let request = &api(&server, "endpoint=logout").await[0];
    assert_masked(request, "id_token_hint");
    assert_eq!(token(request, "request id_token_hint")["kind"], "id_token");
    assert_eq!((request["client_id"].as_str(), request["user"].as_str()), (Some("web"), Some("alice")));
    let (_, raw) = api_raw(&server, "").await;
    assert!(!raw.contains(logout_token.as_str()) && !raw.contains(&id_token), "no token kept whole");
    server.stop().await;
}

async fn without_development_features_nothing_is_recorded_and_the_recorder_is_refused(backend: Backend) {
    let (_db, server) = start(backend, false).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    let outcome = browser.sign_in(&flow::authorize_url(&server, "web", &[]), "alice").await;
    let (status, _) = flow::exchange(&server, &fx, &outcome.params()["code"], VERIFIER).await;
    assert_eq!(status, 200);

    let (status, body) = api_raw(&server, "").await;
    assert_eq!(status, 403, "{body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("--dev"), "{problem}");
    let (status, _) = api_raw(&server, "").await;
    assert_eq!(status, 403);
    let http = admin(&server).await;
    let (status, html) = page(&http, &server, "/admin/activity").await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("--dev") && html.contains("recorder is off"), "{html}");
    let (status, _) = page(&http, &server, "/admin/activity/1").await;
    assert_eq!(status, 404);
    let query = lanyard::store::activity::ActivityQuery { limit: 100, ..Default::default() };
    assert!(server.store.list_activity(&query).await.unwrap().is_empty(), "nothing was written");
    server.stop().await;
}

/// `activity_recorder = false` (the load benchmark's dev-login server): development
/// features stay on (the clock answers) but nothing is recorded.
async fn with_the_recorder_turned_off_a_dev_server_records_nothing(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| {
        s.dev = true;
        s.activity_recorder = false;
    })
    .await;
    server.store.insert_admin_token("ci", &sha256_hex(TOKEN)).await.unwrap();
    flow::fixture(&server).await;
    let machine = machine_client(&server, "machine", "read:appointments", |_| {}).await;
    assert_eq!(client_credentials(&server, &machine, &[("resource", API)]).await.status, 200);
    let (status, body) = api_raw(&server, "").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("LANYARD_ACTIVITY_RECORDER=false"), "{body}");
    let clock = server.http.get(server.url("/admin/api/clock")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(clock.status(), 200, "the rest of the test lab is on");
    let query = lanyard::store::activity::ActivityQuery { limit: 100, ..Default::default() };
    assert!(server.store.list_activity(&query).await.unwrap().is_empty(), "nothing was written");
    server.stop().await;
}

async fn servers_on_one_database_see_each_others_entries(backend: Backend) {
    let (db, one) = start(backend, true).await;
    let two = TestServer::start_with(&db, |s| s.dev = true).await;
    flow::fixture(&one).await;
    let first = machine_client(&one, "first", "read:appointments", |_| {}).await;
    let second = machine_client(&one, "second", "read:appointments", |_| {}).await;
    assert_eq!(client_credentials(&one, &first, &[("resource", API)]).await.status, 200);
    assert_eq!(client_credentials(&two, &second, &[("resource", API)]).await.status, 200);
    // Each server writes its own entries off the request path: the other sees them shortly.
    for (reader, client) in [(&two, "first"), (&one, "second")] {
        let mut seen = Vec::new();
        for _ in 0..50 {
            seen = api(reader, &format!("client_id={client}")).await;
            if !seen.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen.len(), 1, "{client}'s exchange seen by the other server");
        assert_eq!(seen[0]["endpoint"], "token");
    }
    let all = api(&two, "").await;
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1], "one id sequence for every server");
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_idp_lists_what_a_test_exchanged() {
    const CALLBACK: &str = "http://127.0.0.1:3000/callback";
    let idp = TestIdp::builder()
        .user("alice", "alice-password", json!({"name": "Alice"}))
        .client(ClientSpec {
            client_id: Some("web".into()),
            client_secret: Some("web-secret-for-tests-0123456789".into()),
            redirect_uris: vec![CALLBACK.into()],
            scope: Some("openid profile".into()),
            ..Default::default()
        })
        .start()
        .await
        .unwrap();
    let tokens = idp
        .sign_in(SignIn {
            client_id: "web".into(),
            client_secret: Some("web-secret-for-tests-0123456789".into()),
            redirect_uri: CALLBACK.into(),
            username: "alice".into(),
            scope: "openid profile".into(),
            resource: None,
        })
        .await
        .unwrap();
    let exchanged = idp.activity(ActivityFilter::endpoint("token")).await.unwrap();
    assert_eq!(exchanged.len(), 1, "{exchanged:#?}");
    let entry = &exchanged[0];
    assert_eq!((entry.client_id.as_deref(), entry.user.as_deref()), (Some("web"), Some("alice")));
    assert!(!entry.failed());
    assert!(entry.param("code").is_some_and(|c| c.contains("(masked, ")), "{entry:#?}");
    let id_token = entry.token("response id_token").expect("the id_token, decoded");
    assert_eq!(id_token.claims["aud"], "web");
    let all = idp.activity(ActivityFilter::user("alice")).await.unwrap();
    assert_eq!(all.iter().map(|e| e.endpoint.as_str()).collect::<Vec<_>>(), ["token", "authorize"]);
    let text = format!("{all:?}");
    assert!(!text.contains(&tokens.access_token) && !text.contains("web-secret-for-tests"), "no secrets kept");
    idp.stop().await;
}
