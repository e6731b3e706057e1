//! Admin bookkeeping: the audit log, admin API tokens, and dashboard figures.

use sqlx::Row;

use super::{Result, Store, StoreError};

/// One audit log entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// A recent event for the dashboard: a sign-in or a grant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Activity {
    pub at: i64,
    pub kind: &'static str,
    pub user: String,
    pub client: String,
}

/// An admin API token (the token itself is known only by its hash).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdminToken {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

impl Store {
    pub async fn audit(&self, actor: &str, action: &str, target: &str, detail: &str) -> Result<()> {
        sqlx::query("INSERT INTO audit_log (id, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(self.now())
            .bind(actor)
            .bind(action)
            .bind(target)
            .bind(detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query("SELECT at, actor, action, target, detail FROM audit_log ORDER BY at DESC, id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Recent sign-ins (sessions) and grants (code exchanges), newest first.
    pub async fn recent_activity(&self, limit: i64) -> Result<Vec<Activity>> {
        let sign_ins = sqlx::query(
            "SELECT s.created_at AS at, u.username AS username FROM sessions s JOIN users u ON u.id = s.user_id \
             ORDER BY s.created_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let grants = sqlx::query(
            "SELECT g.created_at AS at, u.username AS username, g.client_id AS client_id FROM grants g \
             JOIN users u ON u.id = g.user_id ORDER BY g.created_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut events = Vec::new();
        for r in &sign_ins {
            events.push(Activity {
                at: r.try_get("at")?,
                kind: "sign-in",
                user: r.try_get("username")?,
                client: String::new(),
            });
        }
        for r in &grants {
            events.push(Activity {
                at: r.try_get("at")?,
                kind: "tokens issued",
                user: r.try_get("username")?,
                client: r.try_get("client_id")?,
            });
        }
        events.sort_by_key(|e| std::cmp::Reverse(e.at));
        events.truncate(usize::try_from(limit).unwrap_or(10));
        Ok(events)
    }

    pub async fn insert_admin_token(&self, name: &str, token_hash: &str) -> Result<AdminToken> {
        let token = AdminToken { id: uuid::Uuid::new_v4().to_string(), name: name.to_owned(), created_at: self.now() };
        sqlx::query("INSERT INTO admin_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&token.id)
            .bind(&token.name)
            .bind(token_hash)
            .bind(token.created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::on_unique(e, format!("admin token {name:?}")))?;
        Ok(token)
    }

    /// The admin token with this hash, if any (one indexed look-up; the hash is of a
    /// 256-bit random value, so the look-up leaks nothing useful).
    pub async fn admin_token_by_hash(&self, token_hash: &str) -> Result<Option<AdminToken>> {
        let row = sqlx::query("SELECT id, name, created_at FROM admin_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(AdminToken { id: r.try_get("id")?, name: r.try_get("name")?, created_at: r.try_get("created_at")? })
        })
        .transpose()
    }

    pub async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>> {
        let rows =
            sqlx::query("SELECT id, name, created_at FROM admin_tokens ORDER BY name").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(AdminToken { id: r.try_get("id")?, name: r.try_get("name")?, created_at: r.try_get("created_at")? })
            })
            .collect()
    }

    pub async fn delete_admin_token(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM admin_tokens WHERE name = $1").bind(name).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn count_apis(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM apis").fetch_one(&self.pool).await?.try_get("n")?)
    }

    pub async fn count_active_sessions(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM sessions WHERE ended_at IS NULL AND expires_at > $1")
            .bind(self.now())
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Sets (or clears) a client's RFC 7592 registration access token hash.
    pub async fn set_registration_token(&self, client_id: &str, token_hash: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE clients SET registration_token_hash = $1 WHERE client_id = $2")
            .bind(token_hash)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn registration_token_hash(&self, client_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT registration_token_hash FROM clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<Option<String>, _>("registration_token_hash")).transpose()?.flatten())
    }
}
