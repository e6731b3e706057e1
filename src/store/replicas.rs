//! The `replicas` table: which servers run on this database and which registry version
//! each has applied (see `registry::cache::watch`).

use std::time::Duration;

use sqlx::Row;

use super::{Result, Store};
use crate::clock::real_now;

/// A server that has not said it is alive for this long is not waited for.
pub const ALIVE_FOR: i64 = 3;
/// The longest a security-relevant change waits for the other servers.
const WAIT_AT_MOST: Duration = Duration::from_secs(2);

impl Store {
    /// Names this process as server `id` (its own writes need not wait for itself: they
    /// reach its caches at once).
    pub fn set_replica_id(&self, id: &str) {
        let _ = self.replica.set(id.to_owned());
    }

    /// Records that server `id` is alive and has applied `seen_version` to its caches.
    pub async fn replica_heartbeat(&self, id: &str, seen_version: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO replicas (id, seen_version, heartbeat_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET seen_version = $2, heartbeat_at = $3",
        )
        .bind(id)
        .bind(seen_version)
        .bind(real_now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets server `id` (it is stopping).
    pub async fn remove_replica(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM replicas WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Waits (a bounded time) until every live server has applied registry `version`.
    pub(crate) async fn await_replicas(&self, version: i64) {
        let started = tokio::time::Instant::now();
        loop {
            let behind = sqlx::query(
                "SELECT COUNT(*) AS n FROM replicas WHERE seen_version < $1 AND heartbeat_at >= $2 AND id <> $3",
            )
            .bind(version)
            .bind(real_now() - ALIVE_FOR)
            .bind(self.replica.get().map_or("", String::as_str))
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get::<i64, _>("n"));
            match behind {
                Ok(0) => return,
                Ok(n) if started.elapsed() >= WAIT_AT_MOST => {
                    tracing::warn!(
                        servers = n,
                        "not every server confirmed a security-relevant change in time; theirs will expire by the cache TTL"
                    );
                    return;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(25)).await,
                Err(e) => {
                    tracing::warn!(error = %e, "could not confirm that every server saw a security-relevant change");
                    return;
                }
            }
        }
    }
}
