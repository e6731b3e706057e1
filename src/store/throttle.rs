//! Login throttling counters, shared by every replica.

use sqlx::Row;

use super::{Result, Store, now};

/// Failures are counted within this window (seconds).
const WINDOW: i64 = 15 * 60;

impl Store {
    /// Seconds until every key in `keys` may try again (0: now).
    pub async fn throttle_wait(&self, keys: &[&str]) -> Result<i64> {
        let now = now();
        let mut wait = 0;
        for key in keys {
            let row = sqlx::query("SELECT locked_until FROM login_throttle WHERE key = $1")
                .bind(*key)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(row) = row {
                wait = wait.max(row.try_get::<i64, _>("locked_until")? - now);
            }
        }
        Ok(wait.max(0))
    }

    /// Counts a failure for `key`; at `max_failures` within the window, locks it for `lockout`.
    pub async fn record_login_failure(&self, key: &str, max_failures: i64, lockout: i64) -> Result<()> {
        let now = now();
        let row = sqlx::query(
            "INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES ($1, 1, $2, 0) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_start < $3 THEN 1 ELSE login_throttle.failures + 1 END, \
               window_start = CASE WHEN login_throttle.window_start < $3 THEN $2 ELSE login_throttle.window_start END \
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(now - WINDOW)
        .fetch_one(&self.pool)
        .await?;
        let failures: i64 = row.try_get("failures")?;
        if failures >= max_failures {
            sqlx::query("UPDATE login_throttle SET locked_until = $1, failures = 0, window_start = $2 WHERE key = $3")
                .bind(now + lockout)
                .bind(now)
                .bind(key)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Forgets the failures of `key` (after a successful sign-in).
    pub async fn clear_login_failures(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(key).execute(&self.pool).await?;
        Ok(())
    }
}
