//! Black-box test helpers: the real server on a random port against a fresh database.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use lanyard::app::Application;
use lanyard::config::{Config, Settings};
use sqlx::Connection;

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl Backend {
    /// `Some(Postgres)` when a PostgreSQL server answers. Otherwise a loud SKIP locally,
    /// and a failure when `CI` is set (CI must never skip these silently).
    pub async fn postgres() -> Option<Backend> {
        let url = postgres_admin_url();
        let probe = tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&url)).await;
        match probe {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                Some(Backend::Postgres)
            }
            outcome => {
                let why = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".into(),
                };
                if std::env::var_os("CI").is_some() {
                    panic!("PostgreSQL is required in CI but {url} does not answer: {why}");
                }
                eprintln!("\n*** SKIP: PostgreSQL test skipped: {url} does not answer ({why}) ***\n");
                None
            }
        }
    }
}

/// A fresh database, removed when dropped.
pub struct TestDb {
    pub url: String,
    sqlite_dir: Option<PathBuf>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn create(backend: Backend) -> TestDb {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("lanyard-test-{id}"));
                std::fs::create_dir_all(&dir).expect("temp dir");
                let url = format!("sqlite://{}", dir.join("lanyard.db").display());
                TestDb { url, sqlite_dir: Some(dir), pg_name: None }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("lanyard_test_{id}");
                let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to PostgreSQL");
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
                let _ = conn.close().await;
                let mut url = url::Url::parse(&admin).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                TestDb { url: url.to_string(), sqlite_dir: None, pg_name: Some(name) }
            }
        }
    }

    /// Removes the database now, while servers may still be connected (for `/readyz`).
    pub fn destroy(&mut self) {
        if let Some(dir) = self.sqlite_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(name) = self.pg_name.take() {
            // Drop runs outside any runtime we may block: use a thread with its own.
            let admin = postgres_admin_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await
                        .ok()?;
                    conn.close().await.ok()
                })
            })
            .join();
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.destroy();
    }
}

/// Settings for a test server on `port`: loopback issuer, small pools, one worker pair.
pub fn test_settings(db: &TestDb, port: u16) -> Settings {
    Settings {
        issuer: Some(format!("http://127.0.0.1:{port}")),
        bind: Some(format!("127.0.0.1:{port}")),
        database_url: db.url.clone(),
        database_max_connections: 5,
        workers: 2,
        demo: false,
        // Tests stop servers at once; the drain period is for real deployments.
        shutdown_drain: 0.0,
        ..Settings::default()
    }
}

/// A running Lanyard.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub config: Config,
    /// Direct access to the server's database, to arrange what a test needs.
    pub store: lanyard::store::Store,
    handle: actix_web::dev::ServerHandle,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts a server on `db` with default test settings.
    pub async fn start(db: &TestDb) -> TestServer {
        Self::start_with(db, |_| {}).await
    }

    /// Starts a server on `db`, letting the test adjust the settings first.
    pub async fn start_with(db: &TestDb, adjust: impl FnOnce(&mut Settings)) -> TestServer {
        if std::env::var_os("RUST_LOG").is_some() {
            lanyard::telemetry::init(lanyard::config::LogFormat::Text, "info");
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a random port");
        let port = listener.local_addr().expect("local addr").port();
        let mut settings = test_settings(db, port);
        adjust(&mut settings);
        let config = settings.validate().expect("test settings are valid");
        let app = Application::build_with_listener(config.clone(), listener).await.expect("server starts");
        let handle = app.handle();
        let store = app.state().store.clone();
        let task = tokio::spawn(app.run_until_stopped());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("http client");
        TestServer { base: format!("http://127.0.0.1:{port}"), http, config, store, handle, task: Some(task) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.get(path).await;
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().await.expect("JSON body")
    }

    /// Stops the server gracefully and waits until it has.
    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.task.is_some() {
            let handle = self.handle.clone();
            // Best effort: a test that panicked still frees its port.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { handle.stop(false).await });
            }
        }
    }
}

/// Runs a test body once per backend: `sqlite` always; `postgres` when one answers
/// (SKIP locally otherwise; a failure under `CI`).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(backend) = $crate::helpers::Backend::postgres().await {
                    super::$name(backend).await
                }
            }
        }
    )* };
}

impl TestDb {
    /// A database someone else owns (a private cluster, a shared file): nothing is removed
    /// when dropped.
    pub fn at_url(url: impl Into<String>) -> TestDb {
        TestDb { url: url.into(), sqlite_dir: None, pg_name: None }
    }
}

/// A port free at the time of asking (for processes that bind it themselves).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a random port").local_addr().expect("local addr").port()
}

/// Awaits `future`, failing the test (instead of hanging it) when it takes longer than
/// `limit`. Returns the output and how long it took.
pub async fn within<T>(limit: Duration, what: &str, future: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = std::time::Instant::now();
    match tokio::time::timeout(limit, future).await {
        Ok(output) => (output, started.elapsed()),
        Err(_) => panic!("{what}: no answer within {limit:?} (a hang)"),
    }
}

/// Polls `GET url` until it answers `status`, for at most `limit`; returns whether it did.
pub async fn wait_for_status(http: &reqwest::Client, url: &str, status: u16, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        let probe = tokio::time::timeout(Duration::from_secs(2), http.get(url).send()).await;
        if let Ok(Ok(response)) = probe
            && response.status().as_u16() == status
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A signed-in user with a refresh token: `alice`, the appointments API (whose
/// introspection client is `api-introspector`) and the confidential `web` client allowed
/// the refresh grant; `tokens` is the code exchange's response.
pub struct SignedIn {
    pub fx: crate::flow::Fixture,
    pub web: crate::token_lifecycle::Creds,
    pub introspector: crate::token_lifecycle::Creds,
    pub tokens: serde_json::Value,
}

impl SignedIn {
    pub fn access_token(&self) -> &str {
        crate::token_lifecycle::member(&self.tokens, "access_token")
    }

    pub fn refresh_token(&self) -> &str {
        crate::token_lifecycle::member(&self.tokens, "refresh_token")
    }
}

/// Registers what [`SignedIn`] describes and signs alice in with `offline_access`.
pub async fn signed_in_with_refresh(server: &TestServer) -> SignedIn {
    use crate::flow;
    use crate::token_lifecycle::{Creds, INTROSPECTOR, machine_client, sign_in};
    let introspector = machine_client(server, INTROSPECTOR, "openid", |_| {}).await;
    let fx = flow::fixture_with(server, |c| {
        c.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
        c.scope = Some("openid profile email offline_access read:appointments".into());
    })
    .await;
    let mut api = server.store.api(flow::API).await.expect("store").expect("the fixture's API");
    api.introspection_client_id = Some(INTROSPECTOR.into());
    assert!(server.store.update_api(&api).await.expect("API updated"));
    let web = Creds::from(&fx);
    let browser = flow::Browser::new(server);
    let tokens = sign_in(
        server,
        &browser,
        &fx,
        &[("scope", "openid profile offline_access read:appointments"), ("resource", flow::API)],
    )
    .await;
    assert!(tokens["refresh_token"].is_string(), "a refresh token: {tokens}");
    SignedIn { fx, web, introspector, tokens }
}
