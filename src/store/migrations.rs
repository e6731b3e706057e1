//! The schema migrations, embedded at build time by `build.rs` and applied by sqlx's migrator.
//!
//! sqlx's `migrate!` macro would do the same, but it needs sqlx's "macros" feature, which
//! compiles sqlx's proc-macro crate with a second, host-side copy of sqlx's drivers, tokio,
//! url and more: about a tenth of the first build's crates. Versions, descriptions and
//! checksums are computed exactly as sqlx computes them from the directory, so databases
//! migrated by earlier builds stay valid (the test below compares the two).

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};

/// `(file name, SQL)` of every `migrations/*.sql`, in file-name (= version) order.
const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The migrator for the embedded migrations.
pub async fn migrator() -> Result<Migrator, MigrateError> {
    Migrator::new(Embedded).await
}

/// The embedded files, as a source sqlx's migrator resolves.
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async { FILES.iter().map(|(name, sql)| migration(name, sql)).collect() })
    }
}

/// `0001_signing_keys.sql` → version 1, description "signing keys": sqlx's naming rules.
fn migration(file_name: &str, sql: &'static str) -> Result<Migration, BoxDynError> {
    let (version, rest) = file_name
        .split_once('_')
        .ok_or_else(|| format!("migration {file_name:?} is not named VERSION_DESCRIPTION.sql"))?;
    let version: i64 = version.parse().map_err(|_| format!("migration {file_name:?} has no integer version prefix"))?;
    let migration_type = MigrationType::from_filename(rest);
    let description = rest.trim_end_matches(migration_type.suffix()).replace('_', " ");
    // sqlx's opt-out of the per-migration transaction.
    let no_tx = sql.starts_with("-- no-transaction");
    Ok(Migration::new(version, Cow::Owned(description), migration_type, Cow::Borrowed(sql), no_tx))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[tokio::test]
    async fn embedded_migrations_are_the_directory_as_sqlx_reads_it() {
        let embedded = migrator().await.expect("embedded migrations resolve");
        let dir = Migrator::new(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")))
            .await
            .expect("the migrations directory resolves");
        let summary = |m: &Migrator| {
            m.iter().map(|m| (m.version, m.description.to_string(), m.checksum.to_vec(), m.no_tx)).collect::<Vec<_>>()
        };
        assert!(!summary(&embedded).is_empty());
        assert_eq!(summary(&embedded), summary(&dir), "version, description, checksum and no_tx agree");
    }
}
