//! The `sessions` table: browser sign-ins, looked up by the hash of the cookie value.

use sqlx::Row;

use super::{Result, Store};

/// A live browser session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Public session id (the `sid` claim).
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub expires_at: i64,
    /// How the user signed in (`pwd`, `dev`): the `amr` claim's source.
    pub amr: String,
}

impl Store {
    pub async fn insert_session(&self, id_hash: &str, session: &Session) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, sid, user_id, auth_time, created_at, expires_at, amr) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id_hash)
        .bind(&session.sid)
        .bind(&session.user_id)
        .bind(session.auth_time)
        .bind(self.now())
        .bind(session.expires_at)
        .bind(&session.amr)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session for a cookie's hash, if it is live and its user is enabled.
    pub async fn session(&self, id_hash: &str) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT s.sid, s.user_id, s.auth_time, s.expires_at, s.amr FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2 AND u.disabled = $3",
        )
        .bind(id_hash)
        .bind(self.now())
        .bind(super::flag(false))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Session {
                sid: row.try_get("sid")?,
                user_id: row.try_get("user_id")?,
                auth_time: row.try_get("auth_time")?,
                expires_at: row.try_get("expires_at")?,
                amr: row.try_get("amr")?,
            })
        })
        .transpose()
    }

    /// Ends a session and revokes what was issued under it.
    pub async fn end_session(&self, sid: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE sessions SET ended_at = $1 WHERE sid = $2 AND ended_at IS NULL")
            .bind(self.now())
            .bind(sid)
            .execute(&mut *tx)
            .await?;
        super::grants::revoke_grants(&mut tx, super::grants::GrantOwner::Session, sid, self.now()).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends every session of a user and revokes everything issued to them.
    pub async fn end_user_sessions(&self, user_id: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL")
            .bind(self.now())
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        super::grants::revoke_grants(&mut tx, super::grants::GrantOwner::User, user_id, self.now()).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
