//! The `refresh_tokens` table: opaque tokens, stored hashed, rotated on every use.

use sqlx::Row;

use super::{Result, Store};

/// A refresh token as stored (the token itself is known only by its hash).
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub token_hash: String,
    /// The grant the token belongs to; every rotation keeps it.
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub sid: String,
    pub scope: String,
    pub resources: String,
    pub auth_time: i64,
    pub issued_at: i64,
    /// Idle expiry: this token must be used before then.
    pub expires_at: i64,
    /// Absolute expiry of the whole family.
    pub family_expires_at: i64,
    /// The DPoP key (RFC 7638 thumbprint) the token is bound to (a public client's, RFC
    /// 9449 §5); rotation keeps it.
    pub dpop_jkt: Option<String>,
}

const COLUMNS: &str = "token_hash, family_id, client_id, user_id, sid, scope, resources, auth_time, issued_at, \
    expires_at, family_expires_at, dpop_jkt";

fn from_row(row: &sqlx::any::AnyRow) -> Result<RefreshRecord> {
    Ok(RefreshRecord {
        token_hash: row.try_get("token_hash")?,
        family_id: row.try_get("family_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        sid: row.try_get("sid")?,
        scope: row.try_get("scope")?,
        resources: row.try_get("resources")?,
        auth_time: row.try_get("auth_time")?,
        issued_at: row.try_get("issued_at")?,
        expires_at: row.try_get("expires_at")?,
        family_expires_at: row.try_get("family_expires_at")?,
        dpop_jkt: row.try_get("dpop_jkt")?,
    })
}

pub(crate) async fn insert(tx: &mut sqlx::Transaction<'_, sqlx::Any>, r: &RefreshRecord) -> Result<()> {
    let sql =
        format!("INSERT INTO refresh_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)");
    sqlx::query(&sql)
        .bind(&r.token_hash)
        .bind(&r.family_id)
        .bind(&r.client_id)
        .bind(&r.user_id)
        .bind(&r.sid)
        .bind(&r.scope)
        .bind(&r.resources)
        .bind(r.auth_time)
        .bind(r.issued_at)
        .bind(r.expires_at)
        .bind(r.family_expires_at)
        .bind(&r.dpop_jkt)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A rotation to store: the presented token (by hash), its would-be successor, and the
/// access token minted with it.
#[derive(Debug)]
pub struct Rotate<'a> {
    pub old_hash: &'a str,
    /// The successor, for `successor.client_id` (the client that presented the token).
    pub successor: &'a RefreshRecord,
    /// The successor sealed for the holder of the presented token, kept for a replay
    /// within the client's reuse interval; `None` for a strict client.
    pub successor_sealed: Option<&'a str>,
    pub jti: &'a str,
    pub access_expires_at: i64,
    /// The client's `refresh_token_reuse_interval`, seconds (0: strict).
    pub reuse_interval: i64,
}

/// What presenting a refresh token came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// Rotated to the successor given; the access token is recorded.
    Rotated,
    /// Rotated already, within the reuse interval, by this client, to a successor that is
    /// still live: that successor, sealed as the first rotation stored it (the access
    /// token is recorded).
    Replayed { successor_sealed: String },
    /// Rotated already and not replayable, or the grant is revoked: reuse (nothing stored).
    Refused,
}

impl Store {
    /// A refresh token of `client_id`, and whether it has been rotated already (reuse).
    pub async fn find_refresh_token(&self, token_hash: &str, client_id: &str) -> Result<Option<(RefreshRecord, bool)>> {
        let sql = format!("SELECT {COLUMNS}, rotated_at FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2");
        let row = sqlx::query(&sql).bind(token_hash).bind(client_id).fetch_optional(&self.pool).await?;
        row.map(|row| Ok((from_row(&row)?, row.try_get::<Option<i64>, _>("rotated_at")?.is_some()))).transpose()
    }

    /// A live (unrotated) refresh token, for introspection and revocation.
    pub async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM refresh_tokens WHERE token_hash = $1 AND rotated_at IS NULL");
        sqlx::query(&sql).bind(token_hash).fetch_optional(&self.pool).await?.as_ref().map(from_row).transpose()
    }

    /// Rotates a refresh token to its successor and records the access token issued with
    /// it, in one transaction; or, for a token rotated already, answers whether it may be
    /// replayed (see [`Rotation`]).
    ///
    /// The grant's row is locked first (as `grants::revoke_grants` does), so a concurrent
    /// revocation either comes first, and this finds the grant revoked, or waits and then
    /// sees (and deletes) what this wrote. The rotation itself is one atomic UPDATE: of
    /// concurrent presentations of one token on any replica exactly one rotates it; the
    /// others, serialized behind it by the lock, see its successor.
    pub async fn rotate_refresh_token(&self, r: &Rotate<'_>) -> Result<Rotation> {
        let now = self.now();
        let family = r.successor.family_id.as_str();
        let mut tx = self.pool.begin().await?;
        // A no-op write: it takes the row lock (PostgreSQL) or the write lock (SQLite).
        let live = sqlx::query("UPDATE grants SET revoked_at = revoked_at WHERE id = $1 AND revoked_at IS NULL")
            .bind(family)
            .execute(&mut *tx)
            .await?;
        if live.rows_affected() != 1 {
            return Ok(Rotation::Refused);
        }
        let rotated = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = $1, successor_hash = $2, successor_sealed = $3 \
             WHERE token_hash = $4 AND client_id = $5 AND rotated_at IS NULL",
        )
        .bind(now)
        .bind(&r.successor.token_hash)
        .bind(r.successor_sealed)
        .bind(r.old_hash)
        .bind(&r.successor.client_id)
        .execute(&mut *tx)
        .await?;
        if rotated.rows_affected() == 1 {
            // The token just rotated is no longer the live one: its predecessor's sealed
            // copy of it can never be replayed again, so it is not kept.
            sqlx::query("UPDATE refresh_tokens SET successor_sealed = NULL WHERE successor_hash = $1")
                .bind(r.old_hash)
                .execute(&mut *tx)
                .await?;
            insert(&mut tx, r.successor).await?;
            super::grants::record_access_token(&mut tx, r.jti, family, r.access_expires_at).await?;
            tx.commit().await?;
            return Ok(Rotation::Rotated);
        }
        if r.reuse_interval <= 0 {
            return Ok(Rotation::Refused);
        }
        // The immediate predecessor of the live token, rotated within the interval.
        let replay = sqlx::query(
            "SELECT p.successor_sealed FROM refresh_tokens p JOIN refresh_tokens s ON s.token_hash = p.successor_hash \
             WHERE p.token_hash = $1 AND p.client_id = $2 AND p.rotated_at >= $3 AND s.rotated_at IS NULL \
             AND p.successor_sealed IS NOT NULL",
        )
        .bind(r.old_hash)
        .bind(&r.successor.client_id)
        .bind(now - r.reuse_interval)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = replay else {
            return Ok(Rotation::Refused);
        };
        let successor_sealed: String = row.try_get("successor_sealed")?;
        super::grants::record_access_token(&mut tx, r.jti, family, r.access_expires_at).await?;
        tx.commit().await?;
        Ok(Rotation::Replayed { successor_sealed })
    }
}
