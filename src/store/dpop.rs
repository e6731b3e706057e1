//! The `dpop_proof_jtis` table: every DPoP proof accepted, by key and `jti`, until its
//! `iat` leaves the acceptance window (RFC 9449 §11.1).

use super::{Result, Store};

impl Store {
    /// Records the proof `jti` of the key `jkt` until `expires_at`; `false` when it was
    /// already recorded (a replay). One atomic statement: of two requests racing with one
    /// proof, on any replica, exactly one gets `true`. The jti is stored hashed: it is the
    /// client's text, of any length.
    pub async fn consume_dpop_jti(&self, jkt: &str, jti: &str, expires_at: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO dpop_proof_jtis (jkt, jti_hash, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(jkt)
        .bind(crate::crypto::sha256_hex(jti))
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
