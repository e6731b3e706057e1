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
            "INSERT INTO apis (identifier, name, access_token_ttl, signing_alg, introspection_client_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&api.identifier)
        .bind(&api.name)
        .bind(api.access_token_ttl)
        .bind(api.signing_alg.as_str())
        .bind(&api.introspection_client_id)
        .bind(api.created_at)
        .bind(api.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::on_unique(e, format!("API {:?}", api.identifier)))?;
        insert_scopes(&mut tx, api).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces an API's name, lifetime, alg and scopes in one transaction.
    pub async fn update_api(&self, api: &Api) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE apis SET name = $1, access_token_ttl = $2, signing_alg = $3, introspection_client_id = $4, updated_at = $5 \
             WHERE identifier = $6",
        )
        .bind(&api.name)
        .bind(api.access_token_ttl)
        .bind(api.signing_alg.as_str())
        .bind(&api.introspection_client_id)
        .bind(super::now())
        .bind(&api.identifier)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM api_scopes WHERE api_identifier = $1").bind(&api.identifier).execute(&mut *tx).await?;
        insert_scopes(&mut tx, api).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn api(&self, identifier: &str) -> Result<Option<Api>> {
        Ok(self.apis_where(Some(identifier)).await?.into_iter().next())
    }

    pub async fn list_apis(&self) -> Result<Vec<Api>> {
        self.apis_where(None).await
    }

    async fn apis_where(&self, identifier: Option<&str>) -> Result<Vec<Api>> {
        let filter = if identifier.is_some() { "WHERE identifier = $1" } else { "" };
        let sql = format!(
            "SELECT identifier, name, access_token_ttl, signing_alg, introspection_client_id, created_at, updated_at \
             FROM apis {filter} ORDER BY identifier"
        );
        let scope_sql = format!(
            "SELECT api_identifier, name, description FROM api_scopes {} ORDER BY name",
            if identifier.is_some() { "WHERE api_identifier = $1" } else { "" }
        );
        let (rows, scope_rows) = match identifier {
            Some(id) => (
                sqlx::query(&sql).bind(id).fetch_all(&self.pool).await?,
                sqlx::query(&scope_sql).bind(id).fetch_all(&self.pool).await?,
            ),
            None => {
                (sqlx::query(&sql).fetch_all(&self.pool).await?, sqlx::query(&scope_sql).fetch_all(&self.pool).await?)
            }
        };
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
                Ok(Api {
                    scopes: scopes.remove(&identifier).unwrap_or_default(),
                    identifier,
                    name: row.try_get("name")?,
                    access_token_ttl: row.try_get("access_token_ttl")?,
                    signing_alg: alg.parse().map_err(StoreError::Corrupt)?,
                    introspection_client_id: row.try_get("introspection_client_id")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    pub async fn delete_api(&self, identifier: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM api_scopes WHERE api_identifier = $1").bind(identifier).execute(&mut *tx).await?;
        sqlx::query("UPDATE clients SET default_api = NULL WHERE default_api = $1")
            .bind(identifier)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM apis WHERE identifier = $1").bind(identifier).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
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
