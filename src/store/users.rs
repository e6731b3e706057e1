//! The `users` table.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, StoreError};
use crate::registry::user::User;

const COLUMNS: &str = "id, username, password_hash, claims, is_admin, disabled, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<User> {
    let claims: String = row.try_get("claims")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        claims: serde_json::from_str(&claims).map_err(|e| StoreError::Corrupt(format!("user claims: {e}")))?,
        is_admin: super::get_flag(row, "is_admin")?,
        disabled: super::get_flag(row, "disabled")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    pub async fn insert_user(&self, user: &User) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, claims, is_admin, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(serde_json::Value::Object(user.claims.clone()).to_string())
        .bind(super::flag(user.is_admin))
        .bind(super::flag(user.disabled))
        .bind(user.created_at)
        .bind(user.updated_at)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::on_unique(e, format!("user {:?}", user.username)))?;
        Ok(())
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE username = $1");
        sqlx::query(&sql).bind(username).fetch_optional(&self.pool).await?.as_ref().map(from_row).transpose()
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?.as_ref().map(from_row).transpose()
    }

    /// Users whose username or claims contain `search` (all when empty), by username.
    pub async fn list_users(&self, search: &str, limit: i64) -> Result<Vec<User>> {
        let pattern = format!("%{}%", search.to_lowercase());
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE LOWER(username) LIKE $1 OR LOWER(claims) LIKE $1 ORDER BY username LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(pattern).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// Enabled users with the admin role.
    pub async fn count_admins(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM users WHERE is_admin = 1 AND disabled = 0")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(&self.pool).await?.try_get("n")?)
    }

    pub async fn set_user_password(&self, id: &str, password_hash: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(self.now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces claims, admin role and disabled flag.
    pub async fn update_user(&self, user: &User) -> Result<bool> {
        let done =
            sqlx::query("UPDATE users SET claims = $1, is_admin = $2, disabled = $3, updated_at = $4 WHERE id = $5")
                .bind(serde_json::Value::Object(user.claims.clone()).to_string())
                .bind(super::flag(user.is_admin))
                .bind(super::flag(user.disabled))
                .bind(self.now())
                .bind(&user.id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a user with their sessions, consents and grants, and revokes their tokens.
    pub async fn delete_user(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        super::grants::revoke_grants(&mut tx, super::grants::GrantOwner::User, id, self.now()).await?;
        for sql in [
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM consents WHERE user_id = $1",
            "DELETE FROM authorization_codes WHERE user_id = $1",
            "DELETE FROM device_codes WHERE user_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
