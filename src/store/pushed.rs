//! The `pushed_authorization_requests` table (RFC 9126): authorization requests a client
//! pushed to `/par`, known by the hash of their `request_uri`, used once.

use sqlx::Row;

use super::{Result, Store};

/// How long a pushed request is kept past its expiry, so that `/authorize` can say
/// "expired" (and answer at the client's redirect_uri) rather than "unknown".
pub const RETENTION_PAST_EXPIRY: i64 = 3600;

/// What taking a pushed request for `/authorize` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// This call consumed it: its parameters (form-encoded); nobody will use it again.
    Fresh(String),
    /// It was used already (single use, RFC 9126 §4).
    Used,
    /// It expired unused: its parameters, so that the refusal can reach the client.
    Expired(String),
    /// No such request for this client (never pushed, another client's, or purged).
    Unknown,
}

impl Store {
    /// Stores a pushed request of `client_id` for `ttl` seconds under `request_uri_hash`.
    pub async fn insert_pushed_request(
        &self,
        request_uri_hash: &str,
        client_id: &str,
        params: &str,
        ttl: i64,
    ) -> Result<()> {
        let now = self.now();
        sqlx::query(
            "INSERT INTO pushed_authorization_requests (request_uri_hash, client_id, params, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(request_uri_hash)
        .bind(client_id)
        .bind(params)
        .bind(now)
        .bind(now + ttl)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Consumes the pushed request `request_uri_hash` of `client_id` with one atomic UPDATE:
    /// of concurrent callers (on any replica) exactly one gets [`Taken::Fresh`]. Another
    /// client's request is [`Taken::Unknown`] to this one, and stays unused.
    pub async fn take_pushed_request(&self, request_uri_hash: &str, client_id: &str) -> Result<Taken> {
        let now = self.now();
        let taken = sqlx::query(
            "UPDATE pushed_authorization_requests SET used_at = $1 \
             WHERE request_uri_hash = $2 AND client_id = $3 AND used_at IS NULL AND expires_at > $1 \
             RETURNING params",
        )
        .bind(now)
        .bind(request_uri_hash)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = taken {
            return Ok(Taken::Fresh(row.try_get("params")?));
        }
        let row = sqlx::query(
            "SELECT params, used_at FROM pushed_authorization_requests WHERE request_uri_hash = $1 AND client_id = $2",
        )
        .bind(request_uri_hash)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(Taken::Unknown) };
        if row.try_get::<Option<i64>, _>("used_at")?.is_some() {
            return Ok(Taken::Used);
        }
        Ok(Taken::Expired(row.try_get("params")?))
    }

    /// Deletes pushed requests that expired before `cutoff`.
    pub async fn purge_pushed_requests(&self, cutoff: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM pushed_authorization_requests WHERE expires_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
