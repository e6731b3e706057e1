//! The `refresh_tokens` table: opaque tokens, stored hashed, rotated on every use.

use sqlx::Row;

use super::{Result, Store, now};

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
}

/// What presenting a refresh token found.
#[derive(Debug)]
pub enum Rotation {
    /// This call rotated the token; its successor must be stored by the caller.
    Rotated(RefreshRecord),
    /// The token was rotated before: reuse, so the family must be revoked.
    Reused(RefreshRecord),
    Unknown,
}

const COLUMNS: &str = "token_hash, family_id, client_id, user_id, sid, scope, resources, auth_time, issued_at, \
    expires_at, family_expires_at";

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
    })
}

pub(crate) async fn insert(tx: &mut sqlx::Transaction<'_, sqlx::Any>, r: &RefreshRecord) -> Result<()> {
    let sql = format!("INSERT INTO refresh_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
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
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Marks a token of `client_id` rotated with one atomic UPDATE: of concurrent
    /// presentations exactly one rotates it; every other one is reuse.
    pub async fn rotate_refresh_token(&self, token_hash: &str, client_id: &str) -> Result<Rotation> {
        let sql = format!(
            "UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 AND client_id = $3 AND rotated_at IS NULL \
             RETURNING {COLUMNS}"
        );
        if let Some(row) =
            sqlx::query(&sql).bind(now()).bind(token_hash).bind(client_id).fetch_optional(&self.pool).await?
        {
            return Ok(Rotation::Rotated(from_row(&row)?));
        }
        let sql = format!("SELECT {COLUMNS} FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2");
        match sqlx::query(&sql).bind(token_hash).bind(client_id).fetch_optional(&self.pool).await? {
            Some(row) => Ok(Rotation::Reused(from_row(&row)?)),
            None => Ok(Rotation::Unknown),
        }
    }

    /// A live (unrotated) refresh token, for introspection and revocation.
    pub async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM refresh_tokens WHERE token_hash = $1 AND rotated_at IS NULL");
        sqlx::query(&sql).bind(token_hash).fetch_optional(&self.pool).await?.as_ref().map(from_row).transpose()
    }

    /// Stores a refresh token and records the access token issued with it, atomically,
    /// unless the grant has been revoked meanwhile (then `false`, nothing stored).
    pub async fn store_refresh_token(&self, record: &RefreshRecord, jti: &str, access_expires_at: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let live = sqlx::query("SELECT COUNT(*) AS n FROM grants WHERE id = $1 AND revoked_at IS NULL")
            .bind(&record.family_id)
            .fetch_one(&mut *tx)
            .await?;
        if live.try_get::<i64, _>("n")? == 0 {
            return Ok(false);
        }
        insert(&mut tx, record).await?;
        super::grants::record_access_token(&mut tx, jti, &record.family_id, access_expires_at).await?;
        tx.commit().await?;
        Ok(true)
    }
}
