//! The `claim_scopes` table: custom scopes that release user claims.

use sqlx::Row;

use super::{Reach, Result, Store, StoreError};
use crate::oauth::scope::ClaimScope;

impl Store {
    /// Inserts a custom scope.
    pub async fn insert_claim_scope(&self, scope: &ClaimScope) -> Result<()> {
        let at = self.now();
        sqlx::query(
            "INSERT INTO claim_scopes (name, description, claims, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&scope.name)
        .bind(&scope.description)
        .bind(claims_json(scope))
        .bind(at)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::on_unique(e, format!("scope {:?}", scope.name)))?;
        self.registry_changed(Reach::Soon).await;
        Ok(())
    }

    /// Replaces a custom scope's description and claims; `false` if there is none by that name.
    pub async fn update_claim_scope(&self, scope: &ClaimScope) -> Result<bool> {
        let done =
            sqlx::query("UPDATE claim_scopes SET description = $1, claims = $2, updated_at = $3 WHERE name = $4")
                .bind(&scope.description)
                .bind(claims_json(scope))
                .bind(self.now())
                .bind(&scope.name)
                .execute(&self.pool)
                .await?;
        self.registry_changed(Reach::Soon).await;
        Ok(done.rows_affected() == 1)
    }

    /// Every custom scope, by name, read from the database (request paths use
    /// `registry::cache` instead).
    pub async fn list_claim_scopes(&self) -> Result<Vec<ClaimScope>> {
        let rows = sqlx::query("SELECT name, description, claims FROM claim_scopes ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let claims: String = row.try_get("claims")?;
                Ok(ClaimScope {
                    name: row.try_get("name")?,
                    description: row.try_get("description")?,
                    claims: serde_json::from_str(&claims)
                        .map_err(|e| StoreError::Corrupt(format!("scope claims: {e}")))?,
                })
            })
            .collect()
    }

    /// Deletes a custom scope and takes it out of the clients allowed it (as deleting an
    /// API does with its scopes), so that no client is left allowed a scope nothing defines.
    pub async fn delete_claim_scope(&self, name: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM claim_scopes WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if done.rows_affected() == 1 {
            for row in sqlx::query("SELECT client_id, scope FROM clients").fetch_all(&mut *tx).await? {
                let scope: String = row.try_get("scope")?;
                if scope.split(' ').any(|s| s == name) {
                    let kept: Vec<&str> = scope.split(' ').filter(|s| *s != name).collect();
                    let client_id: String = row.try_get("client_id")?;
                    sqlx::query("UPDATE clients SET scope = $1 WHERE client_id = $2")
                        .bind(kept.join(" "))
                        .bind(&client_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        self.registry_changed(Reach::Soon).await;
        Ok(done.rows_affected() == 1)
    }
}

/// A scope's claims as stored: a JSON array.
fn claims_json(scope: &ClaimScope) -> String {
    serde_json::to_string(&scope.claims).unwrap_or_else(|_| "[]".into())
}
