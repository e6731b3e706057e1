//! Pending authorization requests, remembered consents and authorization codes.

use sqlx::Row;

use super::{Result, Store};

/// A stored authorization code (the code itself is only known by its hash).
#[derive(Debug, Clone)]
pub struct CodeRecord {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub sid: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub scope: String,
    /// JSON array of API identifiers.
    pub resources: String,
    pub auth_time: i64,
    pub expires_at: i64,
    /// The `claims` request parameter as JSON, the `acr` established and the session's
    /// `amr` method (what the tokens will say about the sign-in).
    pub context: super::grants::GrantContext,
    /// `dpop_jkt` from the authorization request (RFC 9449 §10): the key whose proof must
    /// come with the code's redemption.
    pub dpop_jkt: Option<String>,
}

/// A pending authorization request as stored.
#[derive(Debug, Clone)]
pub struct PendingRecord {
    /// The validated request, as JSON.
    pub params: String,
    pub created_at: i64,
    pub authenticated_sid: Option<String>,
    pub consented: bool,
}

/// What redeeming a code found.
#[derive(Debug)]
pub enum Redemption {
    /// This call consumed the code; nobody else ever will.
    Redeemed(CodeRecord),
    /// The code was consumed before: a replay.
    Replayed(CodeRecord),
    Unknown,
}

const CODE_COLUMNS: &str = "code_hash, grant_id, client_id, user_id, sid, redirect_uri, code_challenge, nonce, scope, \
    resources, auth_time, expires_at, claims, acr, amr, dpop_jkt";

fn code_from_row(row: &sqlx::any::AnyRow) -> Result<CodeRecord> {
    Ok(CodeRecord {
        code_hash: row.try_get("code_hash")?,
        grant_id: row.try_get("grant_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        sid: row.try_get("sid")?,
        redirect_uri: row.try_get("redirect_uri")?,
        code_challenge: row.try_get("code_challenge")?,
        nonce: row.try_get("nonce")?,
        scope: row.try_get("scope")?,
        resources: row.try_get("resources")?,
        auth_time: row.try_get("auth_time")?,
        expires_at: row.try_get("expires_at")?,
        context: super::grants::GrantContext {
            claims: row.try_get("claims")?,
            acr: row.try_get("acr")?,
            amr: row.try_get("amr")?,
        },
        dpop_jkt: row.try_get("dpop_jkt")?,
    })
}

/// Remembers (or replaces) a user's consent to a client, inside the caller's transaction.
pub(crate) async fn save_consent(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
    client_id: &str,
    scope: &str,
    resources: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO consents (user_id, client_id, scope, resources, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id, client_id) DO UPDATE SET scope = $3, resources = $4, updated_at = $5",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(scope)
    .bind(resources)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    pub async fn insert_authorization_request(&self, id: &str, client_id: &str, params: &str, ttl: i64) -> Result<()> {
        let now = self.now();
        sqlx::query(
            "INSERT INTO authorization_requests (id, client_id, params, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(client_id)
        .bind(params)
        .bind(now)
        .bind(now + ttl)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A pending request, while it has not expired.
    pub async fn authorization_request(&self, id: &str) -> Result<Option<PendingRecord>> {
        let row = sqlx::query(
            "SELECT params, created_at, authenticated_sid, consented FROM authorization_requests \
             WHERE id = $1 AND expires_at > $2",
        )
        .bind(id)
        .bind(self.now())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(PendingRecord {
                params: r.try_get("params")?,
                created_at: r.try_get("created_at")?,
                authenticated_sid: r.try_get("authenticated_sid")?,
                consented: super::get_flag(&r, "consented")?,
            })
        })
        .transpose()
    }

    /// Records that the user signed in (session `sid`) during this request.
    pub async fn mark_request_authenticated(&self, id: &str, sid: &str) -> Result<()> {
        sqlx::query("UPDATE authorization_requests SET authenticated_sid = $1 WHERE id = $2")
            .bind(sid)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that the user consented during this request.
    pub async fn mark_request_consented(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE authorization_requests SET consented = 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_authorization_request(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM authorization_requests WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// The consent a user gave a client: granted scopes, resources (JSON) and when.
    pub async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<(String, String, i64)>> {
        let row =
            sqlx::query("SELECT scope, resources, updated_at FROM consents WHERE user_id = $1 AND client_id = $2")
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| Ok((r.try_get("scope")?, r.try_get("resources")?, r.try_get("updated_at")?))).transpose()
    }

    pub async fn save_consent(&self, user_id: &str, client_id: &str, scope: &str, resources: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        save_consent(&mut tx, user_id, client_id, scope, resources, self.now()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn insert_code(&self, code: &CodeRecord) -> Result<()> {
        let sql = format!(
            "INSERT INTO authorization_codes ({CODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        );
        sqlx::query(&sql)
            .bind(&code.code_hash)
            .bind(&code.grant_id)
            .bind(&code.client_id)
            .bind(&code.user_id)
            .bind(&code.sid)
            .bind(&code.redirect_uri)
            .bind(&code.code_challenge)
            .bind(&code.nonce)
            .bind(&code.scope)
            .bind(&code.resources)
            .bind(code.auth_time)
            .bind(code.expires_at)
            .bind(&code.context.claims)
            .bind(&code.context.acr)
            .bind(&code.context.amr)
            .bind(&code.dpop_jkt)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Consumes a code of `client_id` with one atomic UPDATE: of concurrent callers exactly
    /// one gets `Redeemed`; the others (and every later caller) get `Replayed`. A code of
    /// another client is `Unknown` and stays unconsumed.
    pub async fn redeem_code(&self, code_hash: &str, client_id: &str) -> Result<Redemption> {
        let sql = format!(
            "UPDATE authorization_codes SET redeemed_at = $1 WHERE code_hash = $2 AND client_id = $3 AND redeemed_at IS NULL \
             RETURNING {CODE_COLUMNS}"
        );
        if let Some(row) =
            sqlx::query(&sql).bind(self.now()).bind(code_hash).bind(client_id).fetch_optional(&self.pool).await?
        {
            return Ok(Redemption::Redeemed(code_from_row(&row)?));
        }
        let sql = format!("SELECT {CODE_COLUMNS} FROM authorization_codes WHERE code_hash = $1 AND client_id = $2");
        match sqlx::query(&sql).bind(code_hash).bind(client_id).fetch_optional(&self.pool).await? {
            Some(row) => Ok(Redemption::Replayed(code_from_row(&row)?)),
            None => Ok(Redemption::Unknown),
        }
    }
}
