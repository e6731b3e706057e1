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

    /// Rotates `old_hash` to `successor` and records the access token issued with it, in
    /// one transaction. The rotation is one atomic UPDATE: of concurrent presentations of
    /// one token exactly one succeeds. Returns `false` (nothing stored) when the token was
    /// rotated meanwhile or its grant has been revoked.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        successor: &RefreshRecord,
        jti: &str,
        access_expires_at: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let rotated =
            sqlx::query("UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 AND rotated_at IS NULL")
                .bind(now())
                .bind(old_hash)
                .execute(&mut *tx)
                .await?;
        let live = sqlx::query("SELECT COUNT(*) AS n FROM grants WHERE id = $1 AND revoked_at IS NULL")
            .bind(&successor.family_id)
            .fetch_one(&mut *tx)
            .await?;
        if rotated.rows_affected() != 1 || live.try_get::<i64, _>("n")? == 0 {
            return Ok(false);
        }
        insert(&mut tx, successor).await?;
        super::grants::record_access_token(&mut tx, jti, &successor.family_id, access_expires_at).await?;
        tx.commit().await?;
        Ok(true)
    }
}
