//! The server under database faults: a database that is stopped, frozen (SIGSTOP) or holds
//! a lock answers 503 with `Retry-After` within the query deadline, never a 401/400 that
//! blames the caller and never a hang; the server recovers by itself, and a refresh that
//! failed during the fault was rolled back (no lost and no duplicated grant).

use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::both_backends;
use crate::flow::{self, API, Browser};
use crate::helpers::{Backend, SignedIn, TestDb, TestServer, signed_in_with_refresh, wait_for_status, within};
use crate::pg_cluster::PrivateCluster;
use crate::token_lifecycle::{Creds, Reply, machine_client, machine_token, member, post_form};

both_backends!(a_locked_token_table_gets_a_503_within_the_deadline_and_the_refresh_token_survives);

/// The query deadline the servers here run with, seconds.
const DATABASE_TIMEOUT: f64 = 1.0;
/// Past the deadline, time for an answer to arrive on a loaded CI machine.
const MARGIN: Duration = Duration::from_secs(2);
/// How long a lock is held: well past the deadline and past `deadline()`.
const LOCK_HELD: Duration = Duration::from_secs(5);

/// The longest a request may take while the database does not answer.
fn deadline() -> Duration {
    Duration::from_secs_f64(DATABASE_TIMEOUT) + MARGIN
}

/// `/readyz` has its own deadline, min(1 s, database_timeout).
fn readyz_deadline() -> Duration {
    Duration::from_secs_f64(DATABASE_TIMEOUT.min(1.0)) + MARGIN
}

async fn start_server(db: &TestDb) -> TestServer {
    TestServer::start_with(db, |s| s.database_timeout = DATABASE_TIMEOUT).await
}

async fn userinfo(server: &TestServer, token: &str) -> Reply {
    Reply::read(server.http.get(server.url("/userinfo")).bearer_auth(token).send().await.expect("sent")).await
}

async fn refresh(server: &TestServer, creds: &Creds, refresh_token: &str) -> Reply {
    post_form(server, "/token", Some(creds), &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
}

/// Asserts a JSON 503 `temporarily_unavailable` with `Retry-After`.
#[track_caller]
fn assert_json_unavailable(reply: &Reply, took: Duration, what: &str) {
    assert_eq!(reply.status, 503, "{what}: {} (after {took:?})", reply.text);
    assert_eq!(reply.error(), "temporarily_unavailable", "{what}: {}", reply.text);
    assert!(reply.header("content-type").unwrap_or("").starts_with("application/json"), "{what}");
    assert!(reply.header("retry-after").is_some_and(|v| !v.is_empty()), "{what}: no Retry-After");
    // A figure for whoever runs with --nocapture (never a timed assertion beyond `within`).
    eprintln!("{what}: 503 after {took:?}");
}

/// A JSON endpoint asked during a fault: what, path, who asks, and the form.
type JsonCase<'a> = (&'a str, &'a str, &'a Creds, Vec<(&'a str, &'a str)>);

/// What an outage test arranges before the fault: a signed-in user with a refresh token,
/// and a machine client with a token of its own.
struct Arranged {
    s: SignedIn,
    machine: Creds,
    machine_token: String,
}

async fn arrange(server: &TestServer) -> Arranged {
    let s = signed_in_with_refresh(server).await;
    let machine = machine_client(server, "reminders", "read:appointments", |_| {}).await;
    let machine_token = machine_token(server, &machine, &[("resource", API)]).await;
    let before = userinfo(server, s.access_token()).await;
    assert_eq!(before.status, 200, "userinfo before the fault: {}", before.text);
    Arranged { s, machine, machine_token }
}

/// Every endpoint that needs the database answers 503 with `Retry-After` within the
/// deadline; `/readyz` says 503 within its own; `/healthz` stays 200.
async fn assert_unavailable_everywhere(server: &TestServer, a: &Arranged, fault: &str) {
    // The refresh first: the one whose late commit would lose the grant.
    let (reply, took) =
        within(deadline(), &format!("{fault}: refresh"), refresh(server, &a.s.web, a.s.refresh_token())).await;
    assert_json_unavailable(&reply, took, &format!("{fault}: /token refresh_token"));

    let (reply, took) = within(deadline(), &format!("{fault}: userinfo"), userinfo(server, a.s.access_token())).await;
    assert_json_unavailable(&reply, took, &format!("{fault}: /userinfo"));

    // client_credentials needs no database when the client and the API are cached (it
    // writes nothing): it may still be served, and must never blame the caller.
    let what = format!("{fault}: /token client_credentials");
    let form = [("grant_type", "client_credentials"), ("resource", API)];
    let (reply, took) = within(deadline(), &what, post_form(server, "/token", Some(&a.machine), &form)).await;
    match reply.status {
        200 => eprintln!("{what}: served from the cache after {took:?}"),
        _ => assert_json_unavailable(&reply, took, &what),
    }

    let cases: [JsonCase; 2] = [
        ("/introspect", "/introspect", &a.s.introspector, vec![("token", a.s.access_token())]),
        ("/revoke", "/revoke", &a.machine, vec![("token", a.machine_token.as_str())]),
    ];
    for (what, path, creds, form) in cases {
        let what = format!("{fault}: {what}");
        let (reply, took) = within(deadline(), &what, post_form(server, path, Some(creds), &form)).await;
        assert_json_unavailable(&reply, took, &what);
    }

    let browser = Browser::new(server);
    let url = flow::authorize_url(server, &a.s.fx.client_id, &[]);
    let what = format!("{fault}: /authorize");
    let (response, took) =
        within(deadline(), &what, async { browser.http.get(&url).send().await.expect("sent") }).await;
    let reply = Reply::read(response).await;
    assert_eq!(reply.status, 503, "{what}: {} (after {took:?})", reply.text);
    assert!(reply.header("location").is_none(), "{what}: a page, not a redirect");
    assert!(reply.header("content-type").unwrap_or("").starts_with("text/html"), "{what}: the HTML error page");
    assert!(reply.header("retry-after").is_some_and(|v| !v.is_empty()), "{what}: no Retry-After");
    eprintln!("{what}: 503 page after {took:?}");

    let what = format!("{fault}: /readyz");
    let (response, took) = within(readyz_deadline(), &what, server.http.get(server.url("/readyz")).send()).await;
    assert_eq!(response.expect("sent").status().as_u16(), 503, "{what} (after {took:?})");
    eprintln!("{what}: 503 after {took:?}");

    let what = format!("{fault}: /healthz");
    let (response, _) = within(Duration::from_secs(5), &what, server.http.get(server.url("/healthz")).send()).await;
    assert_eq!(response.expect("sent").status().as_u16(), 200, "{what}: the process itself is alive");
}

/// After the fault: `/readyz` turns 200 by itself, the refresh token that failed during
/// the fault works exactly once, and its family is alive.
async fn assert_recovers_without_losing_a_grant(server: &TestServer, a: &Arranged, fault: &str) {
    assert!(
        wait_for_status(&server.http, &server.url("/readyz"), 200, Duration::from_secs(20)).await,
        "{fault}: /readyz did not turn 200 within 20 s of the database coming back"
    );
    let (reply, _) =
        within(deadline(), &format!("{fault}: refresh after"), refresh(server, &a.s.web, a.s.refresh_token())).await;
    assert_eq!(
        reply.status, 200,
        "{fault}: the refresh that failed during the fault was rolled back, so the token still works: {}",
        reply.text
    );
    let next = member(&reply.body, "refresh_token");
    assert_ne!(next, a.s.refresh_token(), "{fault}: rotated");
    let after = userinfo(server, member(&reply.body, "access_token")).await;
    assert_eq!(after.status, 200, "{fault}: the new access token works: {}", after.text);

    let again = refresh(server, &a.s.web, a.s.refresh_token()).await;
    assert_eq!(
        (again.status, again.error()),
        (400, "invalid_grant"),
        "{fault}: the old refresh token was used exactly once: {}",
        again.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_gets_503s_with_retry_after_and_the_server_recovers_without_losing_a_grant() {
    let Some(cluster) = PrivateCluster::start() else { return };
    let db = TestDb::at_url(cluster.url());
    let server = start_server(&db).await;
    let arranged = arrange(&server).await;

    cluster.stop();
    assert_unavailable_everywhere(&server, &arranged, "database stopped").await;

    cluster.restart();
    assert_recovers_without_losing_a_grant(&server, &arranged, "database restarted").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_gets_503s_within_the_deadline_and_the_server_recovers_after_the_thaw() {
    let Some(mut cluster) = PrivateCluster::start() else { return };
    let db = TestDb::at_url(cluster.url());
    let server = start_server(&db).await;
    let arranged = arrange(&server).await;

    cluster.freeze();
    assert_unavailable_everywhere(&server, &arranged, "database frozen").await;

    cluster.thaw();
    assert_recovers_without_losing_a_grant(&server, &arranged, "database thawed").await;
    server.stop().await;
}

/// A connection of its own holding a lock on the refresh tokens, until released.
enum TableLock {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl TableLock {
    async fn take(backend: Backend, url: &str) -> TableLock {
        match backend {
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(url).await.expect("a second connection");
                sqlx::raw_sql("BEGIN; LOCK TABLE refresh_tokens IN ACCESS EXCLUSIVE MODE;")
                    .execute(&mut conn)
                    .await
                    .expect("lock taken");
                TableLock::Postgres(conn)
            }
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(url).await.expect("a second connection");
                sqlx::raw_sql("BEGIN EXCLUSIVE").execute(&mut conn).await.expect("lock taken");
                TableLock::Sqlite(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            TableLock::Postgres(mut conn) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.expect("released");
                let _ = conn.close().await;
            }
            TableLock::Sqlite(mut conn) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.expect("released");
                let _ = conn.close().await;
            }
        }
    }
}

async fn a_locked_token_table_gets_a_503_within_the_deadline_and_the_refresh_token_survives(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = start_server(&db).await;
    let s = signed_in_with_refresh(&server).await;

    let lock = TableLock::take(backend, &db.url).await;
    let locked_at = Instant::now();
    let (reply, took) =
        within(deadline(), "a refresh under the lock", refresh(&server, &s.web, s.refresh_token())).await;
    let (readyz, readyz_took) =
        within(readyz_deadline(), "/readyz under the lock", server.http.get(server.url("/readyz")).send()).await;
    let readyz = readyz.expect("sent").status().as_u16();
    // Hold the lock well past the deadline: a refresh that outlived it must not commit later.
    tokio::time::sleep(LOCK_HELD.saturating_sub(locked_at.elapsed())).await;
    lock.release().await;

    assert_json_unavailable(&reply, took, "a refresh under the lock");

    let (after, _) = within(deadline(), "a refresh after the lock", refresh(&server, &s.web, s.refresh_token())).await;
    assert_eq!(after.status, 200, "the refresh under the lock was rolled back, the token still works: {}", after.text);
    let fresh = userinfo(&server, member(&after.body, "access_token")).await;
    assert_eq!(fresh.status, 200, "the family was not revoked: {}", fresh.text);

    // A lock on one table leaves the database answering, so readiness may stay 200 (the
    // frozen and stopped databases above turn it 503); what matters here is that it
    // answered within its own deadline (`within` above) instead of queueing behind the lock.
    assert!(matches!(readyz, 200 | 503), "/readyz answered {readyz} after {readyz_took:?}");
}
