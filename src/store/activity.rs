//! The protocol recorder's table (`activity`): written by `crate::activity`'s writer,
//! read by the admin page, the admin API and `TestIdp`. Bounded on every write.

use sqlx::Row;

use super::{Result, Store};

/// A recorded exchange as stored; `detail` is the recorder's JSON (masked already).
#[derive(Debug, Clone)]
pub struct ActivityRecord {
    pub id: i64,
    pub at: i64,
    pub duration_ms: i64,
    pub endpoint: String,
    pub method: String,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub status: i64,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub detail: String,
}

/// Which entries to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct ActivityQuery {
    pub client_id: Option<String>,
    /// A username or a user id.
    pub user: Option<String>,
    pub endpoint: Option<String>,
    /// Only exchanges that failed: a status of 400 or more, or an `error` (error redirects).
    pub errors_only: bool,
    /// Only entries with a greater id.
    pub since: Option<i64>,
    pub limit: i64,
}

/// How much to keep: at most `count` entries, none older than `seconds`.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub count: i64,
    pub seconds: i64,
}

const COLUMNS: &str =
    "id, at, duration_ms, endpoint, method, client_id, user_id, username, status, error, error_description, detail";

impl Store {
    /// Writes an entry (its `id` is assigned here and returned) and, in the same
    /// transaction, deletes what the retention no longer keeps: two indexed range deletes.
    pub async fn insert_activity(&self, entry: &ActivityRecord, retention: Retention) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query("UPDATE activity_sequence SET last_id = last_id + 1 WHERE id = 1 RETURNING last_id")
            .fetch_one(&mut *tx)
            .await?
            .try_get("last_id")?;
        sqlx::query(&format!(
            "INSERT INTO activity ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(id)
        .bind(entry.at)
        .bind(entry.duration_ms)
        .bind(&entry.endpoint)
        .bind(&entry.method)
        .bind(&entry.client_id)
        .bind(&entry.user_id)
        .bind(&entry.username)
        .bind(entry.status)
        .bind(&entry.error)
        .bind(&entry.error_description)
        .bind(&entry.detail)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM activity WHERE id <= $1").bind(id - retention.count).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM activity WHERE at < $1").bind(entry.at - retention.seconds).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Deletes entries older than `seconds` (the periodic purge; writes purge too).
    pub async fn purge_activity(&self, seconds: i64) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM activity WHERE at < $1").bind(self.now() - seconds).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// Entries matching `query`, newest first.
    pub async fn list_activity(&self, query: &ActivityQuery) -> Result<Vec<ActivityRecord>> {
        let mut conditions = Vec::new();
        let mut values: Vec<String> = Vec::new();
        let placeholder = |values: &mut Vec<String>, value: &str| {
            values.push(value.to_owned());
            format!("${}", values.len())
        };
        if let Some(client_id) = &query.client_id {
            conditions.push(format!("client_id = {}", placeholder(&mut values, client_id)));
        }
        if let Some(user) = &query.user {
            let p = placeholder(&mut values, user);
            conditions.push(format!("(username = {p} OR user_id = {p})"));
        }
        if let Some(endpoint) = &query.endpoint {
            conditions.push(format!("endpoint = {}", placeholder(&mut values, endpoint)));
        }
        if query.errors_only {
            conditions.push("(status >= 400 OR error IS NOT NULL)".to_owned());
        }
        if query.since.is_some() {
            conditions.push(format!("id > ${}", values.len() + 1));
        }
        let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        let limit = format!("${}", values.len() + usize::from(query.since.is_some()) + 1);
        let sql = format!("SELECT {COLUMNS} FROM activity{filter} ORDER BY id DESC LIMIT {limit}");
        let mut statement = sqlx::query(&sql);
        for value in &values {
            statement = statement.bind(value);
        }
        if let Some(since) = query.since {
            statement = statement.bind(since);
        }
        let rows = statement.bind(query.limit).fetch_all(&self.pool).await?;
        rows.iter().map(record).collect()
    }

    /// One entry by id.
    pub async fn activity(&self, id: i64) -> Result<Option<ActivityRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM activity WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }
}

fn record(r: &sqlx::any::AnyRow) -> Result<ActivityRecord> {
    Ok(ActivityRecord {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        duration_ms: r.try_get("duration_ms")?,
        endpoint: r.try_get("endpoint")?,
        method: r.try_get("method")?,
        client_id: r.try_get("client_id")?,
        user_id: r.try_get("user_id")?,
        username: r.try_get("username")?,
        status: r.try_get("status")?,
        error: r.try_get("error")?,
        error_description: r.try_get("error_description")?,
        detail: r.try_get("detail")?,
    })
}
