//! What logout needs from storage: which clients took part in a session (they are told
//! when it ends), and the record of back-channel logout deliveries.

use sqlx::Row;

use super::{Result, Store};

/// A client that was issued a code or tokens in one session of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub client_id: String,
    pub sid: String,
    pub user_id: String,
}

/// One back-channel logout delivery, as recorded when it was over.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub client_id: String,
    pub sid: String,
    pub attempts: i64,
    pub delivered: bool,
    /// "HTTP 200", or why the last attempt failed.
    pub outcome: String,
    pub created_at: i64,
}

/// Codes and grants both count: a client whose code was issued but not yet redeemed may
/// still hold a session of its own by the time it is.
const PARTICIPANTS: &str = "SELECT client_id, sid, user_id FROM grants WHERE {filter} \
     UNION SELECT client_id, sid, user_id FROM authorization_codes WHERE {filter}";

impl Store {
    /// The clients that took part in session `sid` (live or not).
    pub async fn session_participants(&self, sid: &str) -> Result<Vec<Participant>> {
        self.participants("sid = $1", sid).await
    }

    /// The clients that took part in the live sessions of a user.
    pub async fn user_participants(&self, user_id: &str) -> Result<Vec<Participant>> {
        let live = "user_id = $1 AND sid IN (SELECT sid FROM sessions WHERE user_id = $1 AND ended_at IS NULL)";
        self.participants(live, user_id).await
    }

    async fn participants(&self, filter: &str, value: &str) -> Result<Vec<Participant>> {
        let sql = PARTICIPANTS.replace("{filter}", filter);
        let rows = sqlx::query(&sql).bind(value).fetch_all(&self.pool).await?;
        let mut found: Vec<Participant> = rows
            .iter()
            .map(|r| {
                Ok(Participant {
                    client_id: r.try_get("client_id")?,
                    sid: r.try_get("sid")?,
                    user_id: r.try_get("user_id")?,
                })
            })
            .collect::<Result<_>>()?;
        found.sort_by(|a, b| (&a.sid, &a.client_id).cmp(&(&b.sid, &b.client_id)));
        found.dedup();
        Ok(found)
    }

    /// Records the outcome of one back-channel logout delivery.
    pub async fn record_backchannel_delivery(&self, d: &Delivery) -> Result<()> {
        sqlx::query(
            "INSERT INTO backchannel_deliveries (id, client_id, sid, attempts, delivered, outcome, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(crate::crypto::random_token(16))
        .bind(&d.client_id)
        .bind(&d.sid)
        .bind(d.attempts)
        .bind(super::flag(d.delivered))
        .bind(&d.outcome)
        .bind(d.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest `limit` back-channel logout deliveries to a client, newest first.
    pub async fn backchannel_deliveries(&self, client_id: &str, limit: i64) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(
            "SELECT client_id, sid, attempts, delivered, outcome, created_at FROM backchannel_deliveries \
             WHERE client_id = $1 ORDER BY created_at DESC, id LIMIT $2",
        )
        .bind(client_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Delivery {
                    client_id: r.try_get("client_id")?,
                    sid: r.try_get("sid")?,
                    attempts: r.try_get("attempts")?,
                    delivered: super::get_flag(r, "delivered")?,
                    outcome: r.try_get("outcome")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}
