//! Grants, the access tokens issued under them, and the revocation list.

use sqlx::{Any, Row, Transaction};

use super::{Result, Store};

/// A user grant about to receive tokens.
#[derive(Debug, Clone)]
pub struct GrantRecord<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub sid: &'a str,
    pub context: &'a GrantContext,
}

/// What a grant's tokens say about its sign-in, as stored: the `claims` request parameter
/// (JSON), the `acr`, and the session's `amr` method. `None` on grants from before these
/// were recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantContext {
    pub claims: Option<String>,
    pub acr: Option<String>,
    pub amr: Option<String>,
}

fn context_from_row(row: &sqlx::any::AnyRow) -> Result<GrantContext> {
    Ok(GrantContext { claims: row.try_get("claims")?, acr: row.try_get("acr")?, amr: row.try_get("amr")? })
}

/// The grant an access token was issued under, as token exchange reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    /// Revoked (its tokens are on the revocation list, its refresh tokens gone).
    pub revoked: bool,
}

/// Which column identifies the grants to revoke (never caller-supplied text).
#[derive(Debug, Clone, Copy)]
pub(crate) enum GrantOwner {
    Id,
    User,
    Client,
    Session,
}

impl GrantOwner {
    fn column(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::User => "user_id",
            Self::Client => "client_id",
            Self::Session => "sid",
        }
    }
}

/// Marks grants revoked, puts their live access tokens on the revocation list and deletes
/// their refresh tokens, inside the caller's transaction.
pub(crate) async fn revoke_grants(
    tx: &mut Transaction<'_, Any>,
    owner: GrantOwner,
    value: &str,
    now: i64,
) -> Result<()> {
    let column = owner.column();
    // The grants' rows first: a refresh rotating under one of them locks it first too
    // (`Store::rotate_refresh_token`), so the two serialize, and whichever comes second
    // sees all the other wrote (no successor survives a revocation, no deadlock).
    sqlx::query(&format!("UPDATE grants SET revoked_at = $1 WHERE {column} = $2 AND revoked_at IS NULL"))
        .bind(now)
        .bind(value)
        .execute(&mut **tx)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO revoked_tokens (jti, expires_at) \
         SELECT a.jti, a.expires_at FROM access_tokens a JOIN grants g ON g.id = a.grant_id \
         WHERE g.{column} = $1 AND a.expires_at > $2 ON CONFLICT DO NOTHING"
    ))
    .bind(value)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(&format!("DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM grants WHERE {column} = $1)"))
        .bind(value)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Records a new grant, its first access token and its first refresh token, atomically.
    /// Returns `false` (and records nothing) when the grant id exists already.
    pub async fn record_grant(
        &self,
        grant: &GrantRecord<'_>,
        jti: &str,
        expires_at: i64,
        refresh: Option<&super::refresh::RefreshRecord>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO grants (id, client_id, user_id, sid, created_at, claims, acr, amr) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(grant.id)
        .bind(grant.client_id)
        .bind(grant.user_id)
        .bind(grant.sid)
        .bind(self.now())
        .bind(&grant.context.claims)
        .bind(&grant.context.acr)
        .bind(&grant.context.amr)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(false);
        }
        record_access_token(&mut tx, jti, grant.id, expires_at).await?;
        if let Some(refresh) = refresh {
            super::refresh::insert(&mut tx, refresh).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes one grant and everything issued under it. A grant not recorded yet (its
    /// code's first redemption still in flight) is left alone: of two concurrent
    /// redemptions one must succeed, and that one has issued nothing yet to revoke.
    pub async fn revoke_grant(&self, grant_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        revoke_grants(&mut tx, GrantOwner::Id, grant_id, self.now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes every grant of a user (sessions ended by an admin, for example).
    pub async fn revoke_user_grants(&self, user_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        revoke_grants(&mut tx, GrantOwner::User, user_id, self.now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The sign-in context of a grant (a refresh re-issues its id_token with it).
    pub async fn grant_context(&self, grant_id: &str) -> Result<GrantContext> {
        let row = sqlx::query("SELECT claims, acr, amr FROM grants WHERE id = $1")
            .bind(grant_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| context_from_row(&row)).transpose()?.unwrap_or_default())
    }

    /// The user and sign-in context of the grant an access token was issued under; `None`
    /// for a token recorded under no grant (client_credentials). Userinfo finds the user
    /// this way (a pairwise `sub` names nobody by itself) and honours the grant's claims
    /// request.
    pub async fn access_token_grant(&self, jti: &str) -> Result<Option<(String, GrantContext)>> {
        let row = sqlx::query(
            "SELECT g.user_id, g.claims, g.acr, g.amr FROM access_tokens a JOIN grants g ON g.id = a.grant_id \
             WHERE a.jti = $1",
        )
        .bind(jti)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((row.try_get("user_id")?, context_from_row(&row)?))).transpose()
    }

    /// The grant an access token was issued under (token exchange checks it is still the
    /// user's); `None` for a token recorded under no grant (client_credentials).
    pub async fn grant_of_access_token(&self, jti: &str) -> Result<Option<TokenGrant>> {
        let row = sqlx::query(
            "SELECT g.id, g.client_id, g.user_id, g.revoked_at FROM access_tokens a JOIN grants g ON g.id = a.grant_id \
             WHERE a.jti = $1",
        )
        .bind(jti)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(TokenGrant {
                id: row.try_get("id")?,
                client_id: row.try_get("client_id")?,
                user_id: row.try_get("user_id")?,
                revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
            })
        })
        .transpose()
    }

    /// Records an access token issued by token exchange (RFC 8693) under the grant of the
    /// token it was exchanged for, so that whatever revokes that grant (logout, a reused
    /// refresh token, a removed user or client) revokes it too. One statement: returns
    /// `false`, recording nothing, when the grant has been revoked meanwhile.
    pub async fn record_exchanged_access_token(&self, grant_id: &str, jti: &str, expires_at: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO access_tokens (jti, grant_id, expires_at) \
             SELECT $1, id, $2 FROM grants WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(jti)
        .bind(expires_at)
        .bind(grant_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts one access token on the revocation list until it expires.
    pub async fn revoke_access_token(&self, jti: &str, expires_at: i64) -> Result<()> {
        sqlx::query("INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(jti)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn is_revoked(&self, jti: &str) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM revoked_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Deletes what can no longer matter: expired codes, requests, sessions, revocations,
    /// client assertion and DPoP proof jtis, device codes, pushed requests expired an hour ago.
    pub async fn purge_expired(&self) -> Result<()> {
        let now = self.now();
        for sql in [
            "DELETE FROM authorization_codes WHERE expires_at < $1",
            "DELETE FROM authorization_requests WHERE expires_at < $1",
            "DELETE FROM revoked_tokens WHERE expires_at < $1",
            "DELETE FROM access_tokens WHERE expires_at < $1",
            "DELETE FROM sessions WHERE expires_at < $1",
            "DELETE FROM client_assertion_jtis WHERE expires_at < $1",
            "DELETE FROM device_codes WHERE expires_at < $1",
            "DELETE FROM dpop_proof_jtis WHERE expires_at < $1",
        ] {
            sqlx::query(sql).bind(now).execute(&self.pool).await?;
        }
        self.purge_pushed_requests(now - super::pushed::RETENTION_PAST_EXPIRY).await?;
        Ok(())
    }
}

pub(crate) async fn record_access_token(
    tx: &mut Transaction<'_, Any>,
    jti: &str,
    grant_id: &str,
    expires_at: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO access_tokens (jti, grant_id, expires_at) VALUES ($1, $2, $3)")
        .bind(jti)
        .bind(grant_id)
        .bind(expires_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
