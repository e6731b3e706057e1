//! Refresh tokens for parallel clients: a client's `refresh_token_reuse_interval` lets the
//! token just rotated away be presented again (two tabs refreshing at once) and answers it
//! with the same successor; everything else rotated is still reuse, which revokes the grant.

use std::time::Duration;

use lanyard::crypto::sha256_hex;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row;

use crate::both_backends;
use crate::flow::{self, Browser, Fixture, REDIRECT_URI};
use crate::helpers::{Backend, TestDb, TestServer};
use crate::token_lifecycle::{Creds, INTROSPECTOR, Reply, machine_client, member, post_form, sign_in};

both_backends!(
    parallel_refreshes_with_one_token_all_get_the_same_successor_within_the_interval,
    a_strict_client_gets_one_success_and_a_revoked_family_from_two_parallel_refreshes,
    the_predecessor_of_the_predecessor_revokes_the_family_even_with_a_reuse_interval,
    a_rotated_token_presented_after_the_interval_revokes_the_family,
    a_replay_is_only_for_the_client_the_token_was_issued_to,
    the_successor_is_stored_sealed_never_in_the_clear,
    the_reuse_interval_is_bounded_set_by_administrators_and_ignored_at_registration,
);

const OFFLINE: [(&str, &str); 2] =
    [("scope", "openid profile offline_access read:appointments"), ("resource", flow::API)];

/// A signed-in alice whose `web` client has `interval` seconds of reuse.
struct Grant {
    fx: Fixture,
    web: Creds,
    tokens: Value,
}

async fn signed_in(server: &TestServer, interval: i64) -> Grant {
    machine_client(server, INTROSPECTOR, "openid", |_| {}).await;
    let fx = flow::fixture_with(server, |c| {
        c.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
        c.scope = Some("openid profile email offline_access read:appointments".into());
        c.refresh_token_reuse_interval = Some(interval);
    })
    .await;
    let web = Creds::from(&fx);
    let tokens = sign_in(server, &Browser::new(server), &fx, &OFFLINE).await;
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    Grant { fx, web, tokens }
}

async fn refresh(server: &TestServer, creds: &Creds, refresh_token: &str) -> Reply {
    post_form(server, "/token", Some(creds), &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
}

#[track_caller]
fn assert_ok(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text);
}

#[track_caller]
fn assert_invalid_grant(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 400, "{what}: {}", reply.text);
    assert_eq!(reply.error(), "invalid_grant", "{what}: {}", reply.text);
}

async fn userinfo_status(server: &TestServer, access_token: &str) -> u16 {
    server.http.get(server.url("/userinfo")).bearer_auth(access_token).send().await.unwrap().status().as_u16()
}

/// Asserts the grant is revoked: its newest refresh token and an access token refused.
async fn assert_revoked(server: &TestServer, grant: &Grant, newest: &str, access_token: &str, what: &str) {
    assert_invalid_grant(&refresh(server, &grant.web, newest).await, &format!("{what}: the newest refresh token"));
    assert_eq!(userinfo_status(server, access_token).await, 401, "{what}: an access token of the grant");
}

async fn parallel_refreshes_with_one_token_all_get_the_same_successor_within_the_interval(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let grant = signed_in(&server, 30).await;
    let mut current = member(&grant.tokens, "refresh_token").to_owned();
    for round in 0..3 {
        // Four tabs wake up together and refresh with the token they share.
        let replies = futures_util::future::join_all((0..4).map(|_| refresh(&server, &grant.web, &current))).await;
        for (i, reply) in replies.iter().enumerate() {
            assert_ok(reply, &format!("round {round}, tab {i}"));
        }
        let successors: Vec<&str> = replies.iter().map(|r| r.str("refresh_token")).collect();
        assert!(successors.iter().all(|s| *s == successors[0]), "round {round}: one successor for all: {successors:?}");
        assert_ne!(successors[0], current, "round {round}: rotated");
        let access: Vec<&str> = replies.iter().map(|r| r.str("access_token")).collect();
        for (i, token) in access.iter().enumerate() {
            assert_eq!(userinfo_status(&server, token).await, 200, "round {round}: tab {i}'s fresh access token");
            assert!(access[..i].iter().all(|t| t != token), "round {round}: each tab its own access token");
        }
        // A late tab, still within the interval, gets the same successor too.
        let late = refresh(&server, &grant.web, &current).await;
        assert_ok(&late, &format!("round {round}: a late tab"));
        assert_eq!(late.str("refresh_token"), successors[0]);
        current = successors[0].to_owned();
    }
}

async fn a_strict_client_gets_one_success_and_a_revoked_family_from_two_parallel_refreshes(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let grant = signed_in(&server, 0).await;
    let token = member(&grant.tokens, "refresh_token");
    let (a, b) = tokio::join!(refresh(&server, &grant.web, token), refresh(&server, &grant.web, token));
    let (winner, loser) = if a.status == 200 { (a, b) } else { (b, a) };
    assert_ok(&winner, "one of the two");
    assert_invalid_grant(&loser, "the other: reuse");
    assert_revoked(&server, &grant, winner.str("refresh_token"), winner.str("access_token"), "strict").await;
}

async fn the_predecessor_of_the_predecessor_revokes_the_family_even_with_a_reuse_interval(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let grant = signed_in(&server, 60).await;
    let first = member(&grant.tokens, "refresh_token");
    let second = refresh(&server, &grant.web, first).await;
    assert_ok(&second, "first rotation");
    let third = refresh(&server, &grant.web, second.str("refresh_token")).await;
    assert_ok(&third, "second rotation");
    // `first` was rotated seconds ago, but its successor is no longer the live token.
    assert_invalid_grant(&refresh(&server, &grant.web, first).await, "the predecessor of the predecessor");
    assert_revoked(&server, &grant, third.str("refresh_token"), third.str("access_token"), "after an old ancestor")
        .await;
    assert_eq!(userinfo_status(&server, member(&grant.tokens, "access_token")).await, 401, "the first access token");
}

async fn a_rotated_token_presented_after_the_interval_revokes_the_family(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let grant = signed_in(&server, 1).await;
    let first = member(&grant.tokens, "refresh_token");
    let second = refresh(&server, &grant.web, first).await;
    assert_ok(&second, "rotation");
    // Past the one-second interval (times are whole seconds: > 1 s after the rotation).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_invalid_grant(&refresh(&server, &grant.web, first).await, "after the interval");
    assert_revoked(&server, &grant, second.str("refresh_token"), second.str("access_token"), "after the interval")
        .await;
}

async fn a_replay_is_only_for_the_client_the_token_was_issued_to(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let grant = signed_in(&server, 30).await;
    let other = machine_client(&server, "other", "openid", |c| {
        c.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
        c.redirect_uris = vec![REDIRECT_URI.into()];
        c.refresh_token_reuse_interval = Some(30);
    })
    .await;
    let first = member(&grant.tokens, "refresh_token");
    let second = refresh(&server, &grant.web, first).await;
    assert_ok(&second, "rotation");
    assert_invalid_grant(&refresh(&server, &other, first).await, "another client replaying the rotated token");
    let replay = refresh(&server, &grant.web, first).await;
    assert_ok(&replay, "the token's own client, within the interval");
    assert_eq!(replay.str("refresh_token"), second.str("refresh_token"));
}

async fn the_successor_is_stored_sealed_never_in_the_clear(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let grant = signed_in(&server, 30).await;
    let first = member(&grant.tokens, "refresh_token");
    let second = refresh(&server, &grant.web, first).await;
    assert_ok(&second, "rotation");
    let successor = second.str("refresh_token");

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("the test database");
    let row = sqlx::query("SELECT successor_hash, successor_sealed FROM refresh_tokens WHERE token_hash = $1")
        .bind(sha256_hex(first))
        .fetch_one(&pool)
        .await
        .expect("the rotated token's row");
    let sealed: String = row.try_get("successor_sealed").expect("a sealed successor");
    assert_eq!(row.try_get::<String, _>("successor_hash").unwrap(), sha256_hex(successor));
    assert!(sealed.starts_with("v1:"), "{sealed}");
    let everything: Vec<String> = sqlx::query("SELECT token_hash, successor_sealed FROM refresh_tokens")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .flat_map(|r| {
            [r.try_get::<String, _>(0).unwrap(), r.try_get::<Option<String>, _>(1).unwrap().unwrap_or_default()]
        })
        .collect();
    assert!(everything.iter().all(|v| !v.contains(successor) && !v.contains(first)), "no token in the clear");

    // Once the successor is rotated in turn, its sealed copy is of no use and is gone.
    let third = refresh(&server, &grant.web, successor).await;
    assert_ok(&third, "second rotation");
    let row = sqlx::query("SELECT successor_sealed FROM refresh_tokens WHERE token_hash = $1")
        .bind(sha256_hex(first))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.try_get::<Option<String>, _>(0).unwrap(), None);
    pool.close().await;

    // A strict client's rotation keeps no sealed successor at all.
    let strict = TestDb::create(backend).await;
    let server = TestServer::start(&strict).await;
    let grant = signed_in(&server, 0).await;
    assert_ok(&refresh(&server, &grant.web, member(&grant.tokens, "refresh_token")).await, "strict rotation");
    let pool = sqlx::AnyPool::connect(&strict.url).await.unwrap();
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM refresh_tokens WHERE successor_sealed IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(n, 0);
    pool.close().await;
    let _ = grant.fx;
}

async fn the_reuse_interval_is_bounded_set_by_administrators_and_ignored_at_registration(backend: Backend) {
    const ADMIN: &str = "refresh-grace-admin-token-with-plenty-of-entropy-0123";
    const INITIAL: &str = "refresh-grace-initial-access-token-0123456789";
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.registration_token = Some(INITIAL.into())).await;
    server.store.insert_admin_token("ci", &sha256_hex(ADMIN)).await.expect("admin token stored");
    let admin = |method: Method, path: &str, body: Value| {
        let request = server.http.request(method, server.url(path)).bearer_auth(ADMIN).json(&body);
        async move { Reply::read(request.send().await.unwrap()).await }
    };
    let created = admin(
        Method::POST,
        "/admin/api/clients",
        json!({"client_id": "tabs", "redirect_uris": [REDIRECT_URI], "grant_types": ["authorization_code", "refresh_token"]}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["refresh_token_reuse_interval"], 0, "strict by default");
    assert_eq!(created.body["require_pushed_authorization_requests"], false);

    for bad in [301, -1] {
        let reply = admin(Method::PATCH, "/admin/api/clients/tabs", json!({"refresh_token_reuse_interval": bad})).await;
        assert_eq!(reply.status, 422, "{bad}: {}", reply.text);
        assert!(reply.text.contains("refresh_token_reuse_interval") && reply.text.contains("300"), "{}", reply.text);
    }
    let patched = admin(
        Method::PATCH,
        "/admin/api/clients/tabs",
        json!({"refresh_token_reuse_interval": 30, "require_pushed_authorization_requests": true}),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let read = admin(Method::GET, "/admin/api/clients/tabs", Value::Null).await;
    assert_eq!(read.body["refresh_token_reuse_interval"], 30);
    assert_eq!(read.body["require_pushed_authorization_requests"], true);
    // A PATCH of something else keeps both.
    let renamed = admin(Method::PATCH, "/admin/api/clients/tabs", json!({"client_name": "Tabs"})).await;
    assert_eq!(renamed.body["refresh_token_reuse_interval"], 30, "{}", renamed.text);
    assert_eq!(renamed.body["require_pushed_authorization_requests"], true);
    let exported = lanyard::seed::export(&server.store).await.expect("seed export");
    assert!(exported.contains("refresh_token_reuse_interval = 30"), "{exported}");
    assert!(exported.contains("require_pushed_authorization_requests = true"), "{exported}");

    // /register: the RFC 9126 metadata is honoured; Lanyard's reuse interval is not
    // metadata a client may set for itself (RFC 7591 §2: ignored).
    let registered = Reply::read(
        server
            .http
            .post(server.url("/register"))
            .bearer_auth(INITIAL)
            .json(&json!({
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "require_pushed_authorization_requests": true,
                "refresh_token_reuse_interval": 120,
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    assert_eq!(registered.body["require_pushed_authorization_requests"], true);
    assert_eq!(registered.body["refresh_token_reuse_interval"], 0, "ignored: {}", registered.text);
    let client_id = registered.str("client_id");
    let stored = server.store.client(client_id).await.unwrap().expect("registered");
    assert!(stored.require_par);
    assert_eq!(stored.refresh_token_reuse_interval, 0);
}
