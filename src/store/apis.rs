//! The `apis` and `api_scopes` tables.

use std::collections::HashMap;

use sqlx::Row;

use super::{Result, Store, StoreError};
use crate::registry::api::{Api, ApiScope};

impl Store {
    /// Inserts an API and its scopes in one transaction.
    pub async fn insert_api(&self, api: &Api) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO apis (identifier, name, access_token_ttl, signing_alg, introspection_client_id, created_at, updated_at, \
             access_token_claims, token_exchange_audiences) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&api.identifier)
        .bind(&api.name)
        .bind(api.access_token_ttl)
        .bind(api.signing_alg.as_str())
        .bind(&api.introspection_client_id)
        .bind(api.created_at)
        .bind(api.updated_at)
        .bind(claims_json(api))
        .bind(audiences_json(api))
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::on_unique(e, format!("API {:?}", api.identifier)))?;
        insert_scopes(&mut tx, api).await?;
        tx.commit().await?;
        self.registry_changed(super::Reach::Soon).await;
        Ok(())
    }

    /// Replaces an API's name, lifetime, alg and scopes in one transaction.
    pub async fn update_api(&self, api: &Api) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE apis SET name = $1, access_token_ttl = $2, signing_alg = $3, introspection_client_id = $4, updated_at = $5, \
             access_token_claims = $7, token_exchange_audiences = $8 WHERE identifier = $6",
        )
        .bind(&api.name)
        .bind(api.access_token_ttl)
        .bind(api.signing_alg.as_str())
        .bind(&api.introspection_client_id)
        .bind(self.now())
        .bind(&api.identifier)
        .bind(claims_json(api))
        .bind(audiences_json(api))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM api_scopes WHERE api_identifier = $1").bind(&api.identifier).execute(&mut *tx).await?;
        insert_scopes(&mut tx, api).await?;
        tx.commit().await?;
        self.registry_changed(super::Reach::Soon).await;
        Ok(true)
    }

    /// One API, read from the database (request paths use `registry::cache` instead).
    pub async fn api(&self, identifier: &str) -> Result<Option<Api>> {
        Ok(self.list_apis().await?.into_iter().find(|a| a.identifier == identifier))
    }

    /// Every API with its scopes, read from the database (two queries).
    pub async fn list_apis(&self) -> Result<Vec<Api>> {
        let rows = sqlx::query(
            "SELECT identifier, name, access_token_ttl, signing_alg, introspection_client_id, created_at, updated_at, \
             access_token_claims, token_exchange_audiences FROM apis ORDER BY identifier",
        )
        .fetch_all(&self.pool)
        .await?;
        let scope_rows = sqlx::query("SELECT api_identifier, name, description FROM api_scopes ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut scopes: HashMap<String, Vec<ApiScope>> = HashMap::new();
        for row in &scope_rows {
            scopes
                .entry(row.try_get("api_identifier")?)
                .or_default()
                .push(ApiScope { name: row.try_get("name")?, description: row.try_get("description")? });
        }
        rows.iter()
            .map(|row| {
                let identifier: String = row.try_get("identifier")?;
                let alg: String = row.try_get("signing_alg")?;
                let claims: String = row.try_get("access_token_claims")?;
                let audiences: String = row.try_get("token_exchange_audiences")?;
                Ok(Api {
                    scopes: scopes.remove(&identifier).unwrap_or_default(),
                    identifier,
                    name: row.try_get("name")?,
                    access_token_ttl: row.try_get("access_token_ttl")?,
                    signing_alg: alg.parse().map_err(StoreError::Corrupt)?,
                    introspection_client_id: row.try_get("introspection_client_id")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                    access_token_claims: serde_json::from_str(&claims)
                        .map_err(|e| StoreError::Corrupt(format!("API access_token_claims: {e}")))?,
                    token_exchange_audiences: serde_json::from_str(&audiences)
                        .map_err(|e| StoreError::Corrupt(format!("API token_exchange_audiences: {e}")))?,
                })
            })
            .collect()
    }

    /// Deletes an API and its scopes, and takes those scopes (unless another API defines
    /// them too) out of the clients that were allowed them, so that no client is left
    /// allowed a scope nothing defines; and takes the API out of the other APIs'
    /// `token_exchange_audiences` (an identifier registered again later is not a target
    /// until an administrator lists it again).
    pub async fn delete_api(&self, identifier: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let orphaned: Vec<String> = sqlx::query(
            "SELECT name FROM api_scopes WHERE api_identifier = $1 \
             AND name NOT IN (SELECT name FROM api_scopes WHERE api_identifier <> $1)",
        )
        .bind(identifier)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("name"))
        .collect::<std::result::Result<_, _>>()?;
        if !orphaned.is_empty() {
            for row in sqlx::query("SELECT client_id, scope FROM clients").fetch_all(&mut *tx).await? {
                let scope: String = row.try_get("scope")?;
                let kept: Vec<&str> = scope.split(' ').filter(|s| !orphaned.iter().any(|o| o == s)).collect();
                if kept.len() != scope.split(' ').count() {
                    let client_id: String = row.try_get("client_id")?;
                    sqlx::query("UPDATE clients SET scope = $1 WHERE client_id = $2")
                        .bind(kept.join(" "))
                        .bind(&client_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        for row in sqlx::query("SELECT identifier, token_exchange_audiences FROM apis WHERE identifier <> $1")
            .bind(identifier)
            .fetch_all(&mut *tx)
            .await?
        {
            let audiences: String = row.try_get("token_exchange_audiences")?;
            let mut list: Vec<String> = serde_json::from_str(&audiences)
                .map_err(|e| StoreError::Corrupt(format!("API token_exchange_audiences: {e}")))?;
            if list.iter().any(|a| a == identifier) {
                list.retain(|a| a != identifier);
                let other: String = row.try_get("identifier")?;
                sqlx::query("UPDATE apis SET token_exchange_audiences = $1 WHERE identifier = $2")
                    .bind(serde_json::to_string(&list).unwrap_or_else(|_| "[]".into()))
                    .bind(&other)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("DELETE FROM api_scopes WHERE api_identifier = $1").bind(identifier).execute(&mut *tx).await?;
        sqlx::query("UPDATE clients SET default_api = NULL WHERE default_api = $1")
            .bind(identifier)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM apis WHERE identifier = $1").bind(identifier).execute(&mut *tx).await?;
        tx.commit().await?;
        self.registry_changed(super::Reach::Soon).await;
        Ok(done.rows_affected() == 1)
    }
}

/// An API's `access_token_claims` as stored: a JSON array.
fn claims_json(api: &Api) -> String {
    serde_json::to_string(&api.access_token_claims).unwrap_or_else(|_| "[]".into())
}

/// An API's `token_exchange_audiences` as stored: a JSON array.
fn audiences_json(api: &Api) -> String {
    serde_json::to_string(&api.token_exchange_audiences).unwrap_or_else(|_| "[]".into())
}

async fn insert_scopes(tx: &mut sqlx::Transaction<'_, sqlx::Any>, api: &Api) -> Result<()> {
    for scope in &api.scopes {
        sqlx::query("INSERT INTO api_scopes (api_identifier, name, description) VALUES ($1, $2, $3)")
            .bind(&api.identifier)
            .bind(&scope.name)
            .bind(&scope.description)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
