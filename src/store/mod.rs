//! Storage: the only module that speaks SQL. One portable schema (`migrations/`) runs on
//! SQLite and PostgreSQL through sqlx's `Any` driver; placeholders are `$1…` for both.

pub mod activity;
pub mod admin;
pub mod apis;
pub mod assertions;
pub mod authorization;
pub mod clients;
pub mod device_codes;
pub mod dpop;
pub mod grants;
pub mod keys;
pub mod logout;
mod migrations;
pub mod pushed;
pub mod refresh;
pub mod replicas;
pub mod scopes;
pub mod secrets;
pub mod sessions;
pub mod test_clock;
pub mod throttle;
pub mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

/// Which database engine a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Failures of the store. Callers map them to 503 (retry-safe) or to domain errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database could not be reached at start-up, with the cause in words.
    #[error("{0}")]
    Unreachable(String),
    #[error("cannot seal a secret for storage: {0}")]
    Seal(#[from] crate::crypto::SealError),
}

impl StoreError {
    /// Turns a unique-constraint violation into `Conflict(what)`.
    pub(crate) fn on_unique(err: sqlx::Error, what: impl Into<String>) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(what.into()),
            _ => Self::Database(err),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the database: cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// Moves after every change to clients, APIs or keys known to this process (its own
    /// writes, and others' seen through `registry_version`); caches above the store compare
    /// it with the value they were filled under.
    generation: Arc<AtomicU64>,
    /// This server's id in `replicas`, once its watcher runs (none for the CLI).
    replica: Arc<std::sync::OnceLock<String>>,
    /// The key-encryption key that secrets are sealed with before they are written
    /// (`LANYARD_KEY_ENCRYPTION_KEY`), so that every writer of a client, the server, the
    /// CLI and a seed alike, seals with the one key.
    kek: Option<[u8; 32]>,
    /// The protocol clock (moved by the test lab), shared with the server's `AppState`.
    clock: crate::clock::Clock,
}

/// Connects once to PostgreSQL and says in words why that failed, if it did.
async fn probe_postgres(options: &AnyConnectOptions, database_url: &str, timeout: Duration) -> Result<()> {
    use sqlx::Connection;
    let url = url::Url::parse(database_url).ok();
    let host = url.as_ref().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_else(|| "localhost".into());
    let port = url.as_ref().and_then(url::Url::port).unwrap_or(5432);
    let database = url.as_ref().map(|u| u.path().trim_start_matches('/').to_owned()).unwrap_or_default();
    match tokio::time::timeout(timeout, sqlx::AnyConnection::connect_with(options)).await {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(StoreError::Unreachable(explain_connect_error(&e, &host, port, &database))),
        Err(_) => Err(StoreError::Unreachable(format!(
            "no answer from PostgreSQL at {host}:{port} within {:.1} s (is the host reachable, or a firewall dropping packets?)",
            timeout.as_secs_f64()
        ))),
    }
}

/// The cause of a failed PostgreSQL connection, once, in words, with the fix when it is known.
fn explain_connect_error(error: &sqlx::Error, host: &str, port: u16, database: &str) -> String {
    match error {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused at {host}:{port}: is PostgreSQL running and listening there?")
        }
        sqlx::Error::Io(io) => format!("cannot reach PostgreSQL at {host}:{port}: {io}"),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("3D000") => format!(
                "database \"{database}\" does not exist at {host}:{port} — create it with `createdb -h {host} -p {port} {database}` \
                 (or `CREATE DATABASE \"{database}\";` in psql)"
            ),
            Some("28P01" | "28000") => format!("PostgreSQL at {host}:{port} refused the credentials: {}", db.message()),
            _ => format!("PostgreSQL at {host}:{port} refused the connection: {}", db.message()),
        },
        other => format!("cannot connect to PostgreSQL at {host}:{port}: {other}"),
    }
}

/// The deadline of a database call when none is configured (the CLI, tests).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Connects (creating a SQLite file if needed) without running migrations.
    pub async fn connect(database_url: &str, max_connections: u32) -> Result<Self> {
        Self::connect_with_timeout(database_url, max_connections, DEFAULT_TIMEOUT).await
    }

    /// Connects with `timeout` bounding every database call: waiting for a pooled
    /// connection, a lock (SQLite's busy timeout; PostgreSQL's `lock_timeout`) and a
    /// statement (`statement_timeout`), so that the database itself gives up on work whose
    /// request has given up, and rolls it back.
    pub async fn connect_with_timeout(database_url: &str, max_connections: u32, timeout: Duration) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if database_url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let millis = timeout.as_millis().max(1);
        let url = match backend {
            Backend::Sqlite => sqlite_url(database_url),
            Backend::Postgres => postgres_url(database_url, millis),
        };
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let mut pool_options = AnyPoolOptions::new().max_connections(max_connections).acquire_timeout(timeout);
        if backend == Backend::Sqlite {
            // WAL lets readers proceed during a write; the busy timeout queues writers
            // instead of failing them (up to the deadline); foreign keys are off by default.
            let pragmas = format!(
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = {millis}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
            );
            pool_options = pool_options.after_connect(move |conn, _| {
                let pragmas = pragmas.clone();
                Box::pin(async move {
                    conn.execute(pragmas.as_str()).await?;
                    Ok(())
                })
            });
            if url.contains("mode=memory") {
                // Every connection to a private in-memory database would see its own.
                pool_options = pool_options.max_connections(1).idle_timeout(None).max_lifetime(None);
            }
        }
        if backend == Backend::Postgres {
            // One plain connection first: the pool would retry until its timeout and report
            // only "pool timed out", hiding a refused connection or a missing database.
            probe_postgres(&options, database_url, timeout).await?;
        }
        let pool = pool_options.connect_with(options).await?;
        Ok(Self {
            pool,
            backend,
            generation: Default::default(),
            replica: Default::default(),
            kek: None,
            clock: Default::default(),
        })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<()> {
        // PostgreSQL serializes concurrent migrators with an advisory lock; SQLite has no
        // such lock, so a second process starting on the same new file may lose the race
        // for a migration: it then re-reads what was applied and carries on.
        let migrator = migrations::migrator().await?;
        let mut attempts = 0;
        loop {
            match migrator.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(e) if self.backend == Backend::Sqlite && attempts < 5 => {
                    attempts += 1;
                    tracing::debug!(error = %e, "retrying SQLite migration after a concurrent start");
                    tokio::time::sleep(Duration::from_millis(50 * attempts)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// This store with the key-encryption key that secrets are sealed with (see the field).
    pub fn with_key_encryption_key(mut self, kek: Option<[u8; 32]>) -> Self {
        self.kek = kek;
        self
    }

    /// The protocol clock every expiry and timestamp is read from.
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.clock
    }

    /// "Now" on the protocol clock, in seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The key-encryption key, if one is configured.
    pub fn key_encryption_key(&self) -> Option<&[u8; 32]> {
        self.kek.as_ref()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// See [`Store::generation`]'s field: compare with a value read before filling a cache.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The shared counter of registry changes (polled by every server).
    pub async fn registry_version(&self) -> Result<i64> {
        use sqlx::Row;
        let row = sqlx::query("SELECT version FROM registry_version WHERE id = 1").fetch_one(&self.pool).await?;
        Ok(row.try_get("version")?)
    }

    /// Another process changed the registry: this process's caches are stale.
    pub fn note_external_change(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// After a committed write to clients, APIs or keys: this process's caches drop what
    /// they hold at once, and other processes learn of it through the shared version. With
    /// [`Reach::AtOnce`] the call returns only when every live server has applied it (within
    /// a bound), so that a rotated secret or a deleted client is refused everywhere from
    /// then on. Best effort: if the announcement fails, the caches' TTL is the bound.
    pub(crate) async fn registry_changed(&self, reach: Reach) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let bumped = sqlx::query("UPDATE registry_version SET version = version + 1 WHERE id = 1 RETURNING version")
            .fetch_one(&self.pool)
            .await
            .and_then(|row| sqlx::Row::try_get::<i64, _>(&row, "version"));
        match (bumped, reach) {
            (Ok(version), Reach::AtOnce) => self.await_replicas(version).await,
            (Ok(_), Reach::Soon) => {}
            (Err(e), _) => tracing::warn!(error = %e, "could not announce a registry change to other servers"),
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// How soon a registry change must hold on every server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Within a poll of the registry version (a fraction of a second).
    Soon,
    /// Before the write is reported done: security-relevant changes.
    AtOnce,
}

/// PostgreSQL URLs get server-side deadlines: a statement or a lock wait longer than the
/// request's deadline is cancelled (and its transaction rolled back), and a transaction
/// left idle by a vanished client is ended. A user's own `options` are kept.
fn postgres_url(raw: &str, millis: u128) -> String {
    let options = format!(
        "-c statement_timeout={millis} -c lock_timeout={millis} -c idle_in_transaction_session_timeout={}",
        millis * 4
    );
    match url::Url::parse(raw) {
        Ok(mut url) => {
            let existing: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            let mut merged = false;
            {
                let mut query = url.query_pairs_mut();
                query.clear();
                for (key, value) in &existing {
                    if key == "options" {
                        merged = true;
                        query.append_pair(key, &format!("{value} {options}"));
                    } else {
                        query.append_pair(key, value);
                    }
                }
                if !merged {
                    query.append_pair("options", &options);
                }
            }
            url.to_string()
        }
        Err(_) => raw.to_owned(),
    }
}

/// SQLite URLs get `mode=rwc` so that the file is created on first start.
fn sqlite_url(raw: &str) -> String {
    if raw == "sqlite::memory:" {
        // A unique name: two in-memory servers in one process must not share a database.
        return format!("sqlite:file:lanyard-{}?mode=memory&cache=shared", uuid::Uuid::new_v4());
    }
    if raw.contains("mode=") {
        return raw.to_owned();
    }
    let sep = if raw.contains('?') { '&' } else { '?' };
    format!("{raw}{sep}mode=rwc")
}

/// A flag as stored (BIGINT 0/1: portable where BOOLEAN is not, under sqlx's Any driver).
pub(crate) fn flag(value: bool) -> i64 {
    i64::from(value)
}

/// Reads a 0/1 flag column.
pub(crate) fn get_flag(row: &sqlx::any::AnyRow, column: &str) -> Result<bool> {
    use sqlx::Row;
    Ok(row.try_get::<i64, _>(column)? != 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_files_are_created_on_first_start() {
        assert_eq!(super::sqlite_url("sqlite://lanyard.db"), "sqlite://lanyard.db?mode=rwc");
        assert_eq!(super::sqlite_url("sqlite://x.db?mode=ro"), "sqlite://x.db?mode=ro");
    }

    #[test]
    fn postgres_urls_get_server_side_deadlines_and_keep_their_options() {
        let url = super::postgres_url("postgres://u@h/db?sslmode=disable", 1500);
        let parsed = url::Url::parse(&url).unwrap();
        let options: Vec<_> =
            parsed.query_pairs().filter(|(k, _)| k == "options").map(|(_, v)| v.into_owned()).collect();
        assert_eq!(options.len(), 1, "{url}");
        assert!(options[0].contains("statement_timeout=1500") && options[0].contains("lock_timeout=1500"), "{url}");
        assert!(parsed.query_pairs().any(|(k, v)| k == "sslmode" && v == "disable"), "{url}");
        let url = super::postgres_url("postgres://u@h/db?options=-c%20search_path%3Dx", 10);
        assert!(
            url::Url::parse(&url).unwrap().query_pairs().any(|(k, v)| k == "options"
                && v.starts_with("-c search_path=x ")
                && v.contains("statement_timeout=10")),
            "{url}"
        );
    }
}
