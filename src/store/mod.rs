//! Storage: the only module that speaks SQL. One portable schema (`migrations/`) runs on
//! SQLite and PostgreSQL through sqlx's `Any` driver; placeholders are `$1…` for both.

pub mod admin;
pub mod apis;
pub mod authorization;
mod cache;
pub mod clients;
pub mod grants;
pub mod keys;
mod migrations;
pub mod refresh;
pub mod sessions;
pub mod throttle;
pub mod users;

use std::str::FromStr;
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
    cache: std::sync::Arc<cache::RegistryCache>,
}

impl Store {
    /// Connects (creating a SQLite file if needed) without running migrations.
    pub async fn connect(database_url: &str, max_connections: u32) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if database_url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let url = match backend {
            Backend::Sqlite => sqlite_url(database_url),
            Backend::Postgres => database_url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let mut pool_options =
            AnyPoolOptions::new().max_connections(max_connections).acquire_timeout(Duration::from_secs(5));
        if backend == Backend::Sqlite {
            // WAL lets readers proceed during a write; the busy timeout queues writers
            // instead of failing them; foreign keys are off by default in SQLite.
            pool_options = pool_options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
                        .await?;
                    Ok(())
                })
            });
            if url.contains("mode=memory") {
                // Every connection to a private in-memory database would see its own.
                pool_options = pool_options.max_connections(1).idle_timeout(None).max_lifetime(None);
            }
        }
        let pool = pool_options.connect_with(options).await?;
        Ok(Self { pool, backend, cache: Default::default() })
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

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
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

/// Seconds since the Unix epoch: every timestamp in the schema.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_files_are_created_on_first_start() {
        assert_eq!(super::sqlite_url("sqlite://lanyard.db"), "sqlite://lanyard.db?mode=rwc");
        assert_eq!(super::sqlite_url("sqlite://x.db?mode=ro"), "sqlite://x.db?mode=ro");
    }
}
