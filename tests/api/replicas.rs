//! Several servers on one database: a change written elsewhere (the CLI, another replica)
//! is seen at once when it is about security (a rotated secret) and within a second
//! otherwise (a new API), despite the servers' caches.

use std::process::Command;
use std::time::{Duration, Instant};

use lanyard::registry::{self, client::ClientSpec};
use serde_json::Value;

use crate::both_backends;
use crate::flow::{self, API};
use crate::helpers::{Backend, TestDb, TestServer};
use crate::token_lifecycle::{Creds, Reply, client_credentials, machine_client};

both_backends!(
    a_secret_rotated_with_the_cli_is_refused_at_once_by_every_server_on_the_database,
    an_api_added_with_the_cli_is_usable_on_a_running_server_within_a_second,
);

const ORDERS: &str = "https://api.example.test/orders";

/// Runs `lanyard ARGS --database-url URL --json`, which must succeed; returns its JSON.
fn cli_json(url: &str, args: &[&str]) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lanyard"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LANYARD_") {
            command.env_remove(key);
        }
    }
    let output = command
        .args(args)
        .args(["--database-url", url, "--json"])
        .env_remove("RUST_LOG")
        .output()
        .expect("run lanyard");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "lanyard {args:?}: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("lanyard {args:?}: not JSON ({e}): {stderr}"))
}

#[track_caller]
fn assert_refused(reply: &Reply, what: &str) {
    assert_eq!((reply.status, reply.error()), (401, "invalid_client"), "{what}: {}", reply.text);
}

async fn a_secret_rotated_with_the_cli_is_refused_at_once_by_every_server_on_the_database(backend: Backend) {
    let db = TestDb::create(backend).await;
    let one = TestServer::start(&db).await;
    let two = TestServer::start(&db).await;
    flow::fixture(&one).await;
    let old = machine_client(&one, "reminders", "read:appointments", |_| {}).await;
    let servers = [("the first server", &one), ("the second server", &two)];
    // Both servers have the client in their caches now.
    for (name, server) in servers {
        let reply = client_credentials(server, &old, &[("resource", API)]).await;
        assert_eq!(reply.status, 200, "{name} before the rotation: {}", reply.text);
    }

    let rotated = cli_json(&db.url, &["client", "rotate-secret", "reminders"]);
    let new = Creds { id: old.id.clone(), secret: rotated["client_secret"].as_str().expect("a new secret").to_owned() };

    for (name, server) in servers {
        let reply = client_credentials(server, &old, &[("resource", API)]).await;
        assert_refused(&reply, &format!("{name}: the old secret right after the rotation"));
        let reply = client_credentials(server, &new, &[("resource", API)]).await;
        assert_eq!(reply.status, 200, "{name}: the new secret right after the rotation: {}", reply.text);
    }
}

async fn an_api_added_with_the_cli_is_usable_on_a_running_server_within_a_second(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    flow::fixture(&server).await;
    let reminders = machine_client(&server, "reminders", "read:appointments", |_| {}).await;
    // The server knows the APIs there are, and that ORDERS is not one of them.
    assert_eq!(client_credentials(&server, &reminders, &[("resource", API)]).await.status, 200);
    let unknown = client_credentials(&server, &reminders, &[("resource", ORDERS)]).await;
    assert_eq!((unknown.status, unknown.error()), (400, "invalid_target"), "{}", unknown.text);

    cli_json(&db.url, &["api", "add", ORDERS, "--name", "Orders", "--scope", "read:orders"]);
    let added = Instant::now();
    // A client of the new API, registered by another process (not through the server's store).
    let elsewhere = lanyard::store::Store::connect(&db.url, 1).await.expect("open the database");
    let bot = registry::create_client(
        &elsewhere,
        ClientSpec {
            client_id: Some("orders-bot".into()),
            grant_types: vec!["client_credentials".into()],
            scope: Some("read:orders".into()),
            ..Default::default()
        },
    )
    .await
    .expect("client registered");
    elsewhere.close().await;
    let bot = Creds { id: bot.client.client_id, secret: bot.secret.expect("a secret") };

    let last = loop {
        let reply = client_credentials(&server, &bot, &[("resource", ORDERS)]).await;
        if reply.status == 200 || added.elapsed() > Duration::from_millis(1500) {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        last.status,
        200,
        "the API added with the CLI is still unknown to the server {:?} later: {}",
        added.elapsed(),
        last.text
    );
    assert_eq!(flow::decode_jwt(last.str("access_token")).1["aud"], ORDERS);
    eprintln!("an API added with the CLI was usable after {:?}", added.elapsed());
}
