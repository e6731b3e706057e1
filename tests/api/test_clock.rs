//! The test lab's clock (development features only): moving "now" makes tokens, codes,
//! refresh tokens and throttle windows expire without waiting, on every server on the
//! database; without development features it is refused.

use std::process::Command;

use serde_json::{Value, json};

use crate::both_backends;
use crate::flow::{self, API, Browser, authorize_url};
use crate::helpers::{Backend, TestDb, TestServer, signed_in_with_refresh};
use crate::token_lifecycle::{Reply, post_form};

both_backends!(
    advancing_past_exp_makes_userinfo_refuse_the_access_token_while_the_refresh_token_still_works,
    codes_and_refresh_tokens_expire_by_the_clock,
    a_login_lockout_ends_when_the_clock_passes_it,
    the_clock_api_advances_freezes_and_resets_and_refuses_nonsense,
    the_clock_is_refused_without_development_features,
    servers_on_one_database_keep_one_clock_set_by_the_api_or_the_cli,
);

const TOKEN: &str = "test-clock-admin-token-with-plenty-of-entropy";

async fn dev_server(db: &TestDb) -> TestServer {
    let server = TestServer::start_with(db, |s| s.dev = true).await;
    server.store.insert_admin_token("ci", &lanyard::crypto::sha256_hex(TOKEN)).await.unwrap();
    server
}

async fn clock(server: &TestServer, body: Option<Value>) -> (u16, Value) {
    let request = match body {
        Some(body) => server.http.post(server.url("/admin/api/clock")).json(&body),
        None => server.http.get(server.url("/admin/api/clock")),
    };
    let response = request.bearer_auth(TOKEN).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn advance(server: &TestServer, seconds: i64) -> Value {
    let (status, view) = clock(server, Some(json!({"advance_seconds": seconds}))).await;
    assert_eq!(status, 200, "{view}");
    view
}

async fn userinfo(server: &TestServer, token: &str) -> Reply {
    Reply::read(server.http.get(server.url("/userinfo")).bearer_auth(token).send().await.unwrap()).await
}

fn wall_clock() -> i64 {
    lanyard::clock::real_now()
}

async fn advancing_past_exp_makes_userinfo_refuse_the_access_token_while_the_refresh_token_still_works(
    backend: Backend,
) {
    let db = TestDb::create(backend).await;
    let server = dev_server(&db).await;
    let signed_in = signed_in_with_refresh(&server).await;
    let access = signed_in.access_token().to_owned();
    assert_eq!(userinfo(&server, &access).await.status, 200, "valid before the clock moves");
    let (_, claims) = flow::decode_jwt(&access);
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();

    // Past exp and the leeway: refused, and the answer says why.
    let view = advance(&server, lifetime + server.config.clock_leeway + 1).await;
    assert!(view["now"].as_i64().unwrap() - wall_clock() >= lifetime, "{view}");
    let refused = userinfo(&server, &access).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert!(refused.challenge().contains("expired"), "{}", refused.challenge());
    let introspected = post_form(&server, "/introspect", Some(&signed_in.introspector), &[("token", &access)]).await;
    assert_eq!(introspected.body, json!({"active": false}));

    // The refresh token outlives it: a new access token, issued at the moved time.
    let refresh = signed_in.refresh_token().to_owned();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str()), ("resource", API)];
    let refreshed = post_form(&server, "/token", Some(&signed_in.web), &form).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let fresh = refreshed.str("access_token").to_owned();
    let (_, fresh_claims) = flow::decode_jwt(&fresh);
    let iat = fresh_claims["iat"].as_i64().unwrap();
    assert!((iat - view["now"].as_i64().unwrap()).abs() <= 2, "iat {iat} on the moved clock: {view}");
    if let Some(id_token) = refreshed.body["id_token"].as_str() {
        let (_, id_claims) = flow::decode_jwt(id_token);
        assert!((id_claims["iat"].as_i64().unwrap() - iat).abs() <= 2, "{id_claims}");
    }
    assert_eq!(userinfo(&server, &fresh).await.status, 200);

    // Back to the wall clock, the new token is "issued in the future" beyond the leeway.
    let (status, _) = clock(&server, Some(json!({"reset": true}))).await;
    assert_eq!(status, 200);
    let early = userinfo(&server, &fresh).await;
    assert_eq!(early.status, 401, "{}", early.text);
}

async fn codes_and_refresh_tokens_expire_by_the_clock(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = dev_server(&db).await;
    let signed_in = signed_in_with_refresh(&server).await;

    // A code lives 60 s: a minute and a bit later it is refused, without waiting.
    let browser = Browser::new(&server);
    let outcome = browser.sign_in(&authorize_url(&server, &signed_in.fx.client_id, &[]), "alice").await;
    let code = outcome.params()["code"].clone();
    advance(&server, 61).await;
    let (status, body) = flow::exchange(&server, &signed_in.fx, &code, flow::VERIFIER).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("expired"), "{body}");

    // The refresh token's idle lifetime (14 days by default) passes: refused as expired.
    let client = server.store.client(&signed_in.fx.client_id).await.unwrap().unwrap();
    advance(&server, client.refresh_token_idle_ttl + 1).await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", signed_in.refresh_token())];
    let refused = post_form(&server, "/token", Some(&signed_in.web), &form).await;
    assert_eq!((refused.status, refused.error()), (400, "invalid_grant"), "{}", refused.text);
    assert!(refused.str("error_description").contains("expired"), "{}", refused.text);
}

async fn a_login_lockout_ends_when_the_clock_passes_it(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = dev_server(&db).await;
    let fx = flow::fixture(&server).await;
    let url = authorize_url(&server, &fx.client_id, &[]);
    let browser = Browser::new(&server);
    let mut page = browser.open(&url).await;
    for _ in 0..server.config.login_max_failures {
        page = browser.login(&page, "alice", "guess").await;
        assert_eq!(page.status(), 401, "{}", page.html());
    }
    let locked = browser.login(&page, "alice", flow::PASSWORD).await;
    assert_eq!(locked.status(), 429, "locked: {}", locked.html());

    advance(&server, server.config.login_lockout + 1).await;
    let page = browser.open(&url).await;
    let signed_in = browser.login(&page, "alice", flow::PASSWORD).await;
    // The consent page (200) or the redirect with a code (303): no longer 429.
    let status = signed_in.status();
    assert!(status == 200 || status == 303, "the lockout has passed on the moved clock: {status}");
}

async fn the_clock_api_advances_freezes_and_resets_and_refuses_nonsense(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = dev_server(&db).await;
    let (status, view) = clock(&server, None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!((view["offset_seconds"].as_i64(), view["frozen"].as_bool()), (Some(0), Some(false)), "{view}");
    assert!((view["now"].as_i64().unwrap() - view["real_now"].as_i64().unwrap()).abs() <= 1, "{view}");
    assert!(view["now_utc"].as_str().unwrap().ends_with('Z'), "{view}");

    let view = advance(&server, 3600).await;
    assert_eq!(view["offset_seconds"], 3600);
    let (_, frozen) = clock(&server, Some(json!({"freeze": true}))).await;
    assert_eq!(frozen["frozen"], true, "{frozen}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, still) = clock(&server, None).await;
    assert_eq!(still["now"], frozen["now"], "a frozen clock stands still");
    // Tokens minted now carry the frozen instant.
    let fx = flow::fixture(&server).await;
    let minted = server
        .http
        .post(server.url("/admin/api/tokens/mint"))
        .bearer_auth(TOKEN)
        .json(&json!({"user": "alice", "client": fx.client_id, "api": API, "scope": "read:appointments"}))
        .send()
        .await
        .unwrap();
    let minted: Value = minted.json().await.unwrap();
    let (_, claims) = flow::decode_jwt(minted["access_token"].as_str().unwrap());
    assert_eq!(claims["iat"], frozen["now"], "{claims}");
    let (_, stepped) = clock(&server, Some(json!({"advance_seconds": 30}))).await;
    assert_eq!(stepped["now"].as_i64(), frozen["now"].as_i64().map(|n| n + 30), "{stepped}");
    let (_, running) = clock(&server, Some(json!({"freeze": false}))).await;
    assert_eq!(running["frozen"], false);
    assert!(running["now"].as_i64().unwrap() >= stepped["now"].as_i64().unwrap(), "runs on from where it stood");

    for (body, said) in [
        (json!({}), "say what to change"),
        (json!({"reset": true, "advance_seconds": 5}), "reset goes alone"),
        (json!({"advance_seconds": -5}), "must be positive"),
        (json!({"offset_seconds": 400_000_000}), "ten years"),
    ] {
        let (status, problem) = clock(&server, Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert!(problem["detail"].as_str().unwrap_or_default().contains(said), "{body}: {problem}");
    }
    let (status, problem) = clock(&server, Some(json!({"advance": 5}))).await;
    assert_eq!(status, 400, "an unknown member: {problem}");

    let (status, reset) = clock(&server, Some(json!({"reset": true}))).await;
    assert_eq!(status, 200);
    assert_eq!((reset["offset_seconds"].as_i64(), reset["frozen"].as_bool()), (Some(0), Some(false)));
    // Every change is in the audit log.
    let audit = server.store.recent_audit(10).await.unwrap();
    assert!(audit.iter().filter(|e| e.action == "clock.set").count() >= 5, "{audit:?}");
}

async fn the_clock_is_refused_without_development_features(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    server.store.insert_admin_token("ci", &lanyard::crypto::sha256_hex(TOKEN)).await.unwrap();
    for body in [None, Some(json!({"advance_seconds": 3600}))] {
        let (status, problem) = clock(&server, body).await;
        assert_eq!(status, 403, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("--dev"), "{problem}");
    }
    let check = server
        .http
        .post(server.url("/admin/api/check-api"))
        .bearer_auth(TOKEN)
        .json(&json!({"url": "http://127.0.0.1:9/x", "audience": API}))
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), 403);
    assert_eq!(server.store.clock_setting().await.unwrap(), Default::default(), "nothing stored");

    // The CLI refuses too, and a setting stored behind a server's back is ignored by it.
    let output = lanyard_cli(&db.url, &["clock", "advance", "1h"], false);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--dev"), "{output:?}");
    let stored = lanyard::clock::ClockSetting { offset_seconds: 86_400, frozen_at: None };
    server.store.set_clock_setting(stored).await.unwrap();
    let restarted = TestServer::start(&db).await;
    let before = wall_clock();
    let fx = flow::fixture(&restarted).await;
    let signed_in = Browser::new(&restarted).sign_in(&authorize_url(&restarted, &fx.client_id, &[]), "alice").await;
    let (_, tokens) = flow::exchange(&restarted, &fx, &signed_in.params()["code"], flow::VERIFIER).await;
    let (_, claims) = flow::decode_jwt(tokens["access_token"].as_str().unwrap());
    assert!((claims["iat"].as_i64().unwrap() - before).abs() <= 5, "the wall clock's time: {claims}");
}

/// Runs the real `lanyard` binary with `--dev` or not; returns its output.
fn lanyard_cli(database_url: &str, args: &[&str], dev: bool) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lanyard"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LANYARD_") {
            command.env_remove(key);
        }
    }
    command.args(args).args(["--database-url", database_url]).env_remove("RUST_LOG");
    if dev {
        command.arg("--dev");
    }
    command.output().expect("run lanyard")
}

async fn servers_on_one_database_keep_one_clock_set_by_the_api_or_the_cli(backend: Backend) {
    let db = TestDb::create(backend).await;
    let one = dev_server(&db).await;
    let two = TestServer::start_with(&db, |s| s.dev = true).await;
    flow::fixture(&one).await;

    // Set on one server: the other keeps the same time as soon as the call returns.
    let view = advance(&one, 7200).await;
    let (status, seen) = clock(&two, None).await;
    assert_eq!(status, 200);
    assert_eq!(seen["offset_seconds"], 7200, "{seen}");
    let token = mint_on(&two).await;
    let (_, claims) = flow::decode_jwt(&token);
    assert!((claims["iat"].as_i64().unwrap() - view["now"].as_i64().unwrap()).abs() <= 2, "{claims} vs {view}");

    // The CLI writes the database: both servers follow before it returns.
    let output = lanyard_cli(&db.url, &["clock", "advance", "1d", "--json"], true);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(printed["offset_seconds"], 7200 + 86_400, "{printed}");
    for server in [&one, &two] {
        let (_, seen) = clock(server, None).await;
        assert_eq!(seen["offset_seconds"], 7200 + 86_400, "{seen}");
    }
    let output = lanyard_cli(&db.url, &["clock", "show"], true);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("wall clock +93600 s"), "{text}");
    let output = lanyard_cli(&db.url, &["clock", "reset"], true);
    assert!(output.status.success());
    let (_, seen) = clock(&two, None).await;
    assert_eq!(seen["offset_seconds"], 0, "{seen}");
}

async fn mint_on(server: &TestServer) -> String {
    let body = json!({"user": "alice", "client": "web", "api": API, "scope": "read:appointments"});
    let response =
        server.http.post(server.url("/admin/api/tokens/mint")).bearer_auth(TOKEN).json(&body).send().await.unwrap();
    let minted: Value = response.json().await.unwrap();
    minted["access_token"].as_str().unwrap_or_else(|| panic!("{minted}")).to_owned()
}
