//! Throttling counters (sign-in attempts per account and per IP, open registrations per
//! IP), shared by every replica.
//!
//! An attempt reserves its slot *before* the costly or risky work (hashing a password)
//! with one atomic statement, so the number of attempts evaluated per window never
//! exceeds the limit, however many arrive at once: a check-then-count design lets every
//! concurrent attempt pass the check before any is counted.

use sqlx::Row;

use super::{Result, Store};

/// Attempts are counted within this window (seconds).
const WINDOW: i64 = 15 * 60;

/// The answer to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Go ahead; this is attempt number `count` of the window.
    Granted { count: i64 },
    /// Refused; the key may try again in `retry_after` seconds.
    Refused { retry_after: i64 },
}

impl Store {
    /// Reserves one attempt for `key`: granted while fewer than `limit` were reserved in
    /// the window and the key is not locked. `lockout` is the wait announced when the
    /// limit is taken by attempts still being evaluated.
    pub async fn reserve_attempt(&self, key: &str, limit: i64, lockout: i64) -> Result<Reservation> {
        let now = self.now();
        let attempt = uuid::Uuid::new_v4().to_string();
        // Every SET expression sees the row as it was: the three CASEs agree on whether
        // this attempt took a slot, and `last_attempt` says so to exactly one caller.
        let row = sqlx::query(
            "INSERT INTO login_throttle (key, failures, window_start, locked_until, last_attempt) VALUES ($1, 1, $2, 0, $5) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.locked_until > $2 THEN login_throttle.failures \
                               WHEN login_throttle.window_start < $3 THEN 1 \
                               WHEN login_throttle.failures < $4 THEN login_throttle.failures + 1 \
                               ELSE login_throttle.failures END, \
               window_start = CASE WHEN login_throttle.locked_until <= $2 AND login_throttle.window_start < $3 THEN $2 \
                                   ELSE login_throttle.window_start END, \
               last_attempt = CASE WHEN login_throttle.locked_until > $2 THEN login_throttle.last_attempt \
                                   WHEN login_throttle.window_start < $3 OR login_throttle.failures < $4 THEN $5 \
                                   ELSE login_throttle.last_attempt END \
             RETURNING failures, locked_until, last_attempt",
        )
        .bind(key)
        .bind(now)
        .bind(now - WINDOW)
        .bind(limit)
        .bind(&attempt)
        .fetch_one(&self.pool)
        .await?;
        let locked_until: i64 = row.try_get("locked_until")?;
        if locked_until > now {
            return Ok(Reservation::Refused { retry_after: locked_until - now });
        }
        if row.try_get::<String, _>("last_attempt")? == attempt {
            return Ok(Reservation::Granted { count: row.try_get("failures")? });
        }
        Ok(Reservation::Refused { retry_after: lockout.max(1) })
    }

    /// After a failed attempt (or, for limits on requests, any attempt): the attempt that
    /// took the last slot locks `key` for `lockout` seconds and starts a new count.
    pub async fn lock_if_limit_reached(&self, key: &str, count: i64, limit: i64, lockout: i64) -> Result<()> {
        if count < limit {
            return Ok(());
        }
        let now = self.now();
        sqlx::query("UPDATE login_throttle SET locked_until = $1, failures = 0, window_start = $2 WHERE key = $3")
            .bind(now + lockout)
            .bind(now)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Gives a reserved slot back (the attempt succeeded, or was not evaluated).
    pub async fn release_attempt(&self, key: &str) -> Result<()> {
        sqlx::query(
            "UPDATE login_throttle SET failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END WHERE key = $1",
        )
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets every attempt of `key` (after a successful sign-in to that account).
    pub async fn clear_attempts(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(key).execute(&self.pool).await?;
        Ok(())
    }
}
