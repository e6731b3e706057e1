//! The `server_secrets` table: secrets the server generates once, shared by every replica.

use sqlx::Row;

use super::{Result, Store};

impl Store {
    /// The secret stored under `name`, storing `candidate` first if there is none. Replicas
    /// starting at once each offer their own candidate; the primary key lets exactly one
    /// INSERT win, and every replica then reads (and uses) the winner's value.
    pub async fn server_secret_or_insert(&self, name: &str, candidate: &str) -> Result<String> {
        sqlx::query("INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(candidate)
            .bind(self.now())
            .execute(&self.pool)
            .await?;
        let row =
            sqlx::query("SELECT value FROM server_secrets WHERE name = $1").bind(name).fetch_one(&self.pool).await?;
        Ok(row.try_get("value")?)
    }
}
