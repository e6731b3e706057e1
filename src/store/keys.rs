//! The `signing_keys` table.

use sqlx::Row;

use super::{Result, Store};

/// A signing key as stored; the private JWK may be encrypted (see `tokens::keys`).
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    pub public_jwk: String,
    pub private_jwk: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// Life cycle of a key: `next` is published in JWKS before it signs, `active` signs,
/// `retired` is still published (until the tokens it signed expire) but never signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Next,
    Active,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "next" => Some(Self::Next),
            "active" => Some(Self::Active),
            "retired" => Some(Self::Retired),
            _ => None,
        }
    }
}

impl Store {
    /// Every key, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>> {
        let rows = sqlx::query(
            "SELECT kid, alg, state, public_jwk, private_jwk, created_at, retired_at \
             FROM signing_keys ORDER BY created_at DESC, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                Ok(StoredKey {
                    kid: row.try_get("kid")?,
                    alg: row.try_get("alg")?,
                    state: KeyState::parse(&state)
                        .ok_or_else(|| super::StoreError::Corrupt(format!("key state {state:?}")))?,
                    public_jwk: row.try_get("public_jwk")?,
                    private_jwk: row.try_get("private_jwk")?,
                    created_at: row.try_get("created_at")?,
                    retired_at: row.try_get("retired_at")?,
                })
            })
            .collect()
    }

    /// Whether an algorithm has an active key.
    pub async fn has_active_key(&self, alg: &str) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM signing_keys WHERE alg = $1 AND state = 'active'")
            .bind(alg)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Inserts a key in the given state. For `active` keys a concurrent insert by another
    /// replica may win (unique index per alg); then this returns `false` and nothing changes.
    pub async fn insert_signing_key(&self, key: &StoredKey) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_jwk, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(key.state.as_str())
        .bind(&key.public_jwk)
        .bind(&key.private_jwk)
        .bind(key.created_at)
        .execute(&self.pool)
        .await?;
        let inserted = done.rows_affected() == 1;
        if inserted {
            self.registry_changed(super::Reach::Soon).await;
        }
        Ok(inserted)
    }

    /// Makes `kid` the active key of its algorithm and retires the previous one, atomically.
    pub async fn activate_signing_key(&self, kid: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query("SELECT alg FROM signing_keys WHERE kid = $1 AND state = 'next'")
            .bind(kid)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let alg: String = row.try_get("alg")?;
        sqlx::query("UPDATE signing_keys SET state = 'retired', retired_at = $1 WHERE alg = $2 AND state = 'active'")
            .bind(self.now())
            .bind(&alg)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE signing_keys SET state = 'active' WHERE kid = $1").bind(kid).execute(&mut *tx).await?;
        tx.commit().await?;
        self.registry_changed(super::Reach::AtOnce).await;
        Ok(true)
    }

    /// Retires a key that is not active (an active key must be replaced by rotation first).
    pub async fn retire_signing_key(&self, kid: &str) -> Result<bool> {
        let done =
            sqlx::query("UPDATE signing_keys SET state = 'retired', retired_at = $1 WHERE kid = $2 AND state = 'next'")
                .bind(self.now())
                .bind(kid)
                .execute(&self.pool)
                .await?;
        self.registry_changed(super::Reach::AtOnce).await;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes retired keys retired before `cutoff` (no token they signed is still valid).
    pub async fn purge_retired_keys(&self, cutoff: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM signing_keys WHERE state = 'retired' AND retired_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Makes `key` the active key of its algorithm, retiring the current one (or, if the
    /// key is stored already, re-activating it), in one transaction.
    pub async fn install_active_key(&self, key: &StoredKey) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE signing_keys SET state = 'retired', retired_at = $1 WHERE alg = $2 AND state = 'active'")
            .bind(self.now())
            .bind(&key.alg)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_jwk, created_at) VALUES ($1, $2, 'active', $3, $4, $5) \
             ON CONFLICT (kid) DO UPDATE SET state = 'active', retired_at = NULL",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.public_jwk)
        .bind(&key.private_jwk)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.registry_changed(super::Reach::Soon).await;
        Ok(())
    }
}
