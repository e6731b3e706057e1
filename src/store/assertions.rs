//! The `client_assertion_jtis` table: the jti of every accepted client assertion, until
//! the assertion expires (RFC 7523 §3 item 7).

use super::{Result, Store};

impl Store {
    /// Records `jti` for `client_id`, kept until `expires_at`; `false` when it was already
    /// recorded (a replay). One atomic statement: of two requests racing with one
    /// assertion, on any replica, exactly one gets `true`.
    pub async fn consume_assertion_jti(&self, client_id: &str, jti: &str, expires_at: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO client_assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(client_id)
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
