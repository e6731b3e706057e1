//! `Application::build`: one function that turns a [`Config`] into a bound server, used by
//! `lanyard serve` and by the tests alike.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, DefaultHeaders, NormalizePath, TrailingSlash, from_fn};
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::config::{Config, redact_database_url};
use crate::state::AppState;
use crate::store::Store;
use crate::tokens::keys::{KeyError, KeyManager};
use crate::tokens::subject::Subjects;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open database {url}: {source}")]
    Database { url: String, source: crate::store::StoreError },
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("cannot create the admin user: {0}")]
    Admin(String),
    #[error(transparent)]
    Seed(#[from] crate::seed::SeedError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("cannot load the pairwise subject salt: {0}")]
    Subjects(#[from] crate::tokens::subject::SubjectsError),
}

/// A server bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Opens the database (migrating it), loads or creates the signing keys and binds the
    /// listening socket. Port 0 picks a free port (see [`Application::port`]).
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let listener = TcpListener::bind(config.bind)
            .map_err(|source| StartError::Bind { addr: config.bind.to_string(), source })?;
        Self::build_with_listener(config, listener).await
    }

    /// As [`Application::build`], on a socket the caller bound already (tests bind first
    /// so that the issuer can name the port).
    pub async fn build_with_listener(config: Config, listener: TcpListener) -> Result<Self, StartError> {
        let store = open_store(&config).await?;
        load_test_clock(&store, &config).await?;
        if config.key_encryption_key.is_none() {
            tracing::warn!(
                "LANYARD_KEY_ENCRYPTION_KEY is not set: private signing keys and client_secret_jwt client secrets are stored unencrypted in the database"
            );
        }
        if let Some(seed) = &config.seed {
            let fixed = seed.signing_keys(config.key_encryption_key.as_ref())?;
            crate::tokens::keys::install_fixed(&store, &fixed).await?;
        }
        let keys = KeyManager::start(store.clone(), config.key_encryption_key).await?;
        let subjects = Subjects::load(&store, config.key_encryption_key.as_ref()).await?;
        if let Some(seed) = &config.seed {
            seed.apply(&store, crate::registry::FetchPolicy::for_dev_mode(config.dev_login)).await?;
        }
        // An ephemeral server built from a seed is what the seed says (and starts faster
        // without hashing a password nobody will see), plus the admin user that
        // `admin_password` asks for, so that its admin page can be used.
        if !(config.ephemeral && config.seed.is_some()) || config.admin_password.is_some() {
            bootstrap_admin(&store, &config).await?;
        } else if store.count_admins().await.map_err(|e| StartError::Admin(e.to_string()))? == 0 {
            tracing::info!(
                "no admin user: the admin page cannot be signed in to; set LANYARD_ADMIN_PASSWORD, or give a \
                 seeded user is_admin = true"
            );
        }
        if config.demo && config.seed.is_none() {
            crate::demo::create_if_empty(&store, &config).await.map_err(|e| StartError::Admin(e.to_string()))?;
        }
        if config.dev_features() {
            tracing::info!(
                "development features are on: try a sign-in in the playground at {}",
                config.issuer.endpoint("/playground")
            );
        }
        if config.dev_login {
            tracing::warn!(
                "--dev-login is on: /authorize?login_hint=USERNAME signs users in WITHOUT a password. Never use this in production."
            );
        }
        let port =
            listener.local_addr().map_err(|source| StartError::Bind { addr: config.bind.to_string(), source })?.port();
        let metadata = web::Bytes::from(crate::oauth::discovery::metadata(&config, &Default::default()).to_string());
        let state = web::Data::new(AppState::new(config, store, keys, subjects, metadata));
        let server = serve(listener, state.clone())?;
        Ok(Self { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Runs until SIGINT/SIGTERM or until stopped. On a signal the server drains: `/readyz`
    /// answers 503 at once while requests are still served for `shutdown_drain`, then it
    /// stops accepting and finishes what it has (a second signal cuts the drain short).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let state = self.state.clone();
        let background = [
            tokio::spawn(upkeep(state.clone())),
            tokio::spawn(watch_registry(state.clone())),
            tokio::spawn(drain_on_signal(state.clone(), self.server.handle())),
        ];
        let result = self.server.await;
        for task in background {
            task.abort();
        }
        // Logout tokens still being delivered get the drain period to arrive.
        let unfinished = state.finish_deliveries(state.config.shutdown_drain).await;
        if unfinished > 0 {
            tracing::warn!(unfinished, "stopping with back-channel logout deliveries unfinished");
        }
        crate::registry::cache::leave(&state.store, &state.replica_id).await;
        state.store.close().await;
        result
    }

    /// A handle that stops the server (used by tests to simulate a restart).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// Connects and migrates.
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    let url = redact_database_url(&config.database_url);
    let store =
        Store::connect_with_timeout(&config.database_url, config.database_max_connections, config.database_timeout)
            .await
            .map_err(|source| StartError::Database { url: url.clone(), source })?;
    store.migrate().await.map_err(|source| StartError::Database { url, source })?;
    Ok(store.with_key_encryption_key(config.key_encryption_key))
}

/// When no user has the admin role (an empty database, or a seed without admins), creates
/// the `admin` user (with `admin_password`, or a random one printed once here). Two
/// replicas racing: the username is unique, one wins.
async fn bootstrap_admin(store: &Store, config: &Config) -> Result<(), StartError> {
    let fail = |e: String| StartError::Admin(e);
    if store.count_admins().await.map_err(|e| fail(e.to_string()))? > 0 {
        return Ok(());
    }
    let (password, generated) = match &config.admin_password {
        Some(p) => (p.clone(), false),
        None => (crate::crypto::random_token(12), true),
    };
    let spec = crate::registry::user::UserSpec {
        username: "admin".into(),
        password: password.clone(),
        is_admin: true,
        claims: serde_json::Map::new(),
    };
    match crate::registry::create_user(store, spec).await {
        Ok(_) if generated => tracing::warn!(
            "created the admin user: sign in at {} as `admin` with password `{password}` (shown once; set LANYARD_ADMIN_PASSWORD to choose it)",
            config.issuer.endpoint("/admin")
        ),
        Ok(_) => tracing::info!("created the admin user with LANYARD_ADMIN_PASSWORD"),
        Err(crate::registry::RegistryError::Conflict(_)) => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    Ok(())
}

/// Background upkeep, off the request path: picks up keys rotated by another replica
/// (every 30 s) and deletes what can no longer matter (every 10 minutes): expired codes,
/// pending requests, sessions and revocation entries, recorded exchanges past their
/// retention, and retired keys older than the longest token lifetime (24 h access tokens +
/// skew).
async fn upkeep(state: web::Data<AppState>) {
    const RETIRED_KEY_GRACE: i64 = 86_400 + 3_600;
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    tick.tick().await;
    let mut rounds: u64 = 0;
    loop {
        tick.tick().await;
        rounds += 1;
        if let Err(e) = state.keys.reload().await {
            tracing::warn!(error = %e, "could not refresh signing keys");
        }
        if rounds.is_multiple_of(20) {
            let store = &state.store;
            let purge = async {
                store.purge_expired().await?;
                if state.activity.is_on() {
                    store.purge_activity(state.config.activity_retention_seconds).await?;
                }
                store.purge_retired_keys(store.now() - RETIRED_KEY_GRACE).await
            };
            if let Err(e) = purge.await {
                tracing::warn!(error = %e, "could not purge expired rows");
            }
        }
    }
}

/// The test lab's clock, as another server or a CLI set it on this database: with
/// development features only; without them, a stored setting is ignored (and said so).
async fn load_test_clock(store: &Store, config: &Config) -> Result<(), StartError> {
    let fail = |source| StartError::Database { url: redact_database_url(&config.database_url), source };
    if config.dev_features() {
        let setting = store.load_clock().await.map_err(fail)?;
        if !setting.is_real() {
            let view = crate::clock::ClockView::of(setting, crate::clock::real_now());
            tracing::warn!(now = %view.now_utc, offset_seconds = view.offset_seconds, frozen = view.frozen, "the test clock is set: this server's time is not the wall clock's");
        }
    } else if !store.clock_setting().await.map_err(fail)?.is_real() {
        tracing::warn!("a test clock is stored in this database but ignored: development features are off");
    }
    Ok(())
}

/// Keeps this server's caches, keys and test clock in step with changes made by other
/// processes.
async fn watch_registry(state: web::Data<AppState>) {
    let reload = || async {
        if let Err(e) = state.keys.reload().await {
            tracing::warn!(error = %e, "could not reload signing keys after a change");
        }
        if state.config.dev_features()
            && let Err(e) = state.store.load_clock().await
        {
            tracing::warn!(error = %e, "could not reload the test clock after a change");
        }
    };
    crate::registry::cache::watch(state.store.clone(), state.replica_id.clone(), reload).await;
}

/// Waits for SIGTERM or SIGINT, drains, then stops the server gracefully.
async fn drain_on_signal(state: web::Data<AppState>, server: actix_web::dev::ServerHandle) {
    if wait_for_signal().await.is_err() {
        tracing::warn!("cannot listen for shutdown signals; stop the server by other means");
        return;
    }
    state.start_draining();
    let drain = state.config.shutdown_drain;
    if !drain.is_zero() {
        tracing::info!(?drain, "shutdown requested: /readyz now answers 503; still serving during the drain");
        tokio::select! {
            _ = tokio::time::sleep(drain) => {}
            _ = wait_for_signal() => tracing::info!("second signal: ending the drain early"),
        }
    }
    tracing::info!("stopping: no new connections; finishing the requests in flight");
    server.stop(true).await;
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

fn serve(listener: TcpListener, state: web::Data<AppState>) -> Result<Server, StartError> {
    let workers = state.config.workers;
    let dev_login = state.config.dev_login;
    let records_activity = state.config.records_activity();
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let mut server = HttpServer::new(move || {
        App::new()
            // Innermost: the edge filter, then the deadline around it (so that reading a
            // body is bounded too); every layer below adds its headers to what they answer.
            .wrap(from_fn(crate::web::input_guard::guard))
            .wrap(from_fn(crate::web::deadline::deadline))
            // The protocol recorder (development features only; otherwise not in the chain),
            // outside the deadline so that what it answered is recorded too.
            .wrap(Condition::new(records_activity, from_fn(crate::activity::record)))
            .wrap(
                // Every response: no framing, no sniffing, no referrer (codes travel in URLs).
                DefaultHeaders::new()
                    .add(("X-Frame-Options", "DENY"))
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "no-referrer"))
                    .add(("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'")),
            )
            .wrap(Condition::new(dev_login, from_fn(crate::web::dev_banner::inject)))
            .wrap(from_fn(crate::web::cors::cors))
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            .wrap(TracingLogger::default())
            .app_data(state.clone())
            .configure(crate::web::health::configure)
            .configure(crate::oauth::discovery::configure)
            .configure(crate::oauth::authorize::configure)
            .configure(crate::oauth::token::configure)
            .configure(crate::oauth::device::configure)
            .configure(crate::oauth::par::configure)
            .configure(crate::oauth::userinfo::configure)
            .configure(crate::oauth::introspect::configure)
            .configure(crate::oauth::revoke::configure)
            .configure(crate::oauth::logout::configure)
            .configure(crate::oauth::register::configure)
            .configure(crate::web::login::configure)
            .configure(crate::web::playground::configure)
            .configure(crate::web::consent::configure)
            .configure(crate::web::device::configure)
            .configure(crate::admin_api::configure)
            .configure(crate::web::admin::configure)
            .configure(crate::web::assets::configure)
    })
    // Signals are ours (drain_on_signal): actix's own would stop without draining.
    .disable_signals()
    .shutdown_timeout(10);
    if workers > 0 {
        server = server.workers(workers);
    }
    let server = server.listen(listener).map_err(|source| StartError::Bind { addr, source })?.run();
    Ok(server)
}
