//! Device authorization requests (RFC 8628): created at `/device_authorization`, decided on
//! the `/device` page, polled for and consumed at `/token`. Every change of status is one
//! atomic UPDATE guarded on the old status, so that of concurrent callers on any replica
//! exactly one approves, denies or redeems.

use sqlx::Row;

use super::grants::GrantContext;
use super::{Result, Store};

/// How much longer the interval becomes after each `slow_down` (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: i64 = 5;

/// A device authorization request about to be stored (its codes only as hashes).
#[derive(Debug, Clone)]
pub struct NewDeviceCode<'a> {
    pub device_code_hash: &'a str,
    pub user_code_hash: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    /// JSON array of API identifiers.
    pub resources: &'a str,
    pub grant_id: &'a str,
    pub expires_at: i64,
    pub poll_interval: i64,
}

/// Where a device authorization request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for the user.
    Pending,
    /// The user approved; the device has not collected its tokens yet.
    Approved,
    Denied,
    /// The device has its tokens.
    Redeemed,
}

impl DeviceStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Redeemed => "redeemed",
        }
    }

    fn parse(raw: &str) -> Result<Self> {
        [Self::Pending, Self::Approved, Self::Denied, Self::Redeemed]
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| super::StoreError::Corrupt(format!("device code status {raw:?}")))
    }
}

/// A device authorization request as the `/device` page sees it (found by its user code).
#[derive(Debug, Clone)]
pub struct DeviceRequest {
    pub client_id: String,
    pub scope: String,
    /// JSON array of API identifiers.
    pub resources: String,
    pub status: DeviceStatus,
    pub expires_at: i64,
}

/// Who approved a request, in which session and how they signed in.
#[derive(Debug, Clone)]
pub struct DeviceApproval<'a> {
    pub user_id: &'a str,
    pub sid: &'a str,
    pub auth_time: i64,
    pub acr: &'a str,
    pub amr: &'a str,
    /// Whether the approval is remembered as the user's consent to the client (as
    /// `/consent` remembers one; never for a client known only by its metadata document).
    pub remember_consent: bool,
}

/// An approved request, consumed: what its tokens are issued for.
#[derive(Debug, Clone)]
pub struct DeviceGrant {
    pub grant_id: String,
    pub scope: String,
    /// JSON array of API identifiers.
    pub resources: String,
    pub user_id: String,
    pub sid: String,
    pub auth_time: i64,
    pub context: GrantContext,
}

/// What one poll at `/token` found (RFC 8628 §3.5).
#[derive(Debug)]
pub enum Poll {
    /// No such device code for this client.
    Unknown,
    Expired,
    /// Still waiting; `too_fast` when this poll came before the interval had passed (the
    /// interval has then grown to `interval`).
    Pending {
        too_fast: bool,
        interval: i64,
    },
    Denied,
    /// This poll consumed the approved request; nobody else ever will.
    Approved(DeviceGrant),
    /// Consumed before (a replay): the grant its tokens were recorded under.
    Redeemed {
        grant_id: String,
    },
}

impl Store {
    /// Stores a new request. `false` when its user code (or device code) is taken already:
    /// the caller draws new codes.
    pub async fn insert_device_code(&self, new: &NewDeviceCode<'_>) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO device_codes (device_code_hash, user_code_hash, client_id, scope, resources, grant_id, \
             created_at, expires_at, status, poll_interval) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT DO NOTHING",
        )
        .bind(new.device_code_hash)
        .bind(new.user_code_hash)
        .bind(new.client_id)
        .bind(new.scope)
        .bind(new.resources)
        .bind(new.grant_id)
        .bind(self.now())
        .bind(new.expires_at)
        .bind(DeviceStatus::Pending.as_str())
        .bind(new.poll_interval)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The request a user code names (expired or not: the page says which).
    pub async fn device_request(&self, user_code_hash: &str) -> Result<Option<DeviceRequest>> {
        let row = sqlx::query(
            "SELECT client_id, scope, resources, status, expires_at FROM device_codes WHERE user_code_hash = $1",
        )
        .bind(user_code_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(DeviceRequest {
                client_id: r.try_get("client_id")?,
                scope: r.try_get("scope")?,
                resources: r.try_get("resources")?,
                status: DeviceStatus::parse(&r.try_get::<String, _>("status")?)?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Records the user's decision on a pending, live request: approved by `approval` (with
    /// the consent it stands for, in the same transaction), or denied when it is `None`.
    /// `false` when the request was no longer pending (decided in another tab, expired).
    pub async fn decide_device_request(
        &self,
        user_code_hash: &str,
        approval: Option<&DeviceApproval<'_>>,
    ) -> Result<bool> {
        let now = self.now();
        let status = if approval.is_some() { DeviceStatus::Approved } else { DeviceStatus::Denied };
        let mut tx = self.pool.begin().await?;
        let decided = sqlx::query(
            "UPDATE device_codes SET status = $1, user_id = $2, sid = $3, auth_time = $4, acr = $5, amr = $6, \
             decided_at = $7 WHERE user_code_hash = $8 AND status = $9 AND expires_at > $7 \
             RETURNING client_id, scope, resources",
        )
        .bind(status.as_str())
        .bind(approval.map(|a| a.user_id))
        .bind(approval.map(|a| a.sid))
        .bind(approval.map(|a| a.auth_time))
        .bind(approval.map(|a| a.acr))
        .bind(approval.map(|a| a.amr))
        .bind(now)
        .bind(user_code_hash)
        .bind(DeviceStatus::Pending.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = decided else { return Ok(false) };
        if let Some(approval) = approval.filter(|a| a.remember_consent) {
            let (client_id, scope, resources): (String, String, String) =
                (row.try_get("client_id")?, row.try_get("scope")?, row.try_get("resources")?);
            super::authorization::save_consent(&mut tx, approval.user_id, &client_id, &scope, &resources, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// One poll by `client_id` with a device code. The poll itself is recorded by one
    /// UPDATE that also decides whether it came too early and, if so, lengthens the
    /// interval (every SET expression sees the row as it was, so they agree); an approved
    /// request is then consumed by a second UPDATE guarded on its status. A code of another
    /// client is `Unknown` and left untouched.
    pub async fn poll_device_code(&self, device_code_hash: &str, client_id: &str) -> Result<Poll> {
        let now = self.now();
        let early = "status = $4 AND last_polled_at IS NOT NULL AND $1 < last_polled_at + poll_interval";
        let sql = format!(
            "UPDATE device_codes SET \
               polled_too_fast = CASE WHEN {early} THEN 1 ELSE 0 END, \
               poll_interval = CASE WHEN {early} THEN poll_interval + $5 ELSE poll_interval END, \
               last_polled_at = $1 \
             WHERE device_code_hash = $2 AND client_id = $3 \
             RETURNING status, expires_at, polled_too_fast, poll_interval, grant_id"
        );
        let Some(row) = sqlx::query(&sql)
            .bind(now)
            .bind(device_code_hash)
            .bind(client_id)
            .bind(DeviceStatus::Pending.as_str())
            .bind(SLOW_DOWN_STEP)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(Poll::Unknown);
        };
        let status = DeviceStatus::parse(&row.try_get::<String, _>("status")?)?;
        let grant_id: String = row.try_get("grant_id")?;
        if status == DeviceStatus::Redeemed {
            return Ok(Poll::Redeemed { grant_id });
        }
        if row.try_get::<i64, _>("expires_at")? <= now {
            return Ok(Poll::Expired);
        }
        match status {
            DeviceStatus::Pending => Ok(Poll::Pending {
                too_fast: super::get_flag(&row, "polled_too_fast")?,
                interval: row.try_get("poll_interval")?,
            }),
            DeviceStatus::Denied => Ok(Poll::Denied),
            DeviceStatus::Redeemed => Ok(Poll::Redeemed { grant_id }),
            DeviceStatus::Approved => self.consume_device_code(device_code_hash, client_id, now, grant_id).await,
        }
    }

    async fn consume_device_code(
        &self,
        device_code_hash: &str,
        client_id: &str,
        now: i64,
        grant_id: String,
    ) -> Result<Poll> {
        let row = sqlx::query(
            "UPDATE device_codes SET status = $1, redeemed_at = $2 \
             WHERE device_code_hash = $3 AND client_id = $4 AND status = $5 AND expires_at > $2 \
             RETURNING grant_id, scope, resources, user_id, sid, auth_time, acr, amr",
        )
        .bind(DeviceStatus::Redeemed.as_str())
        .bind(now)
        .bind(device_code_hash)
        .bind(client_id)
        .bind(DeviceStatus::Approved.as_str())
        .fetch_optional(&self.pool)
        .await?;
        // Another poll consumed it between the two statements.
        let Some(row) = row else { return Ok(Poll::Redeemed { grant_id }) };
        let missing = |column: &str| super::StoreError::Corrupt(format!("approved device code without {column}"));
        Ok(Poll::Approved(DeviceGrant {
            grant_id: row.try_get("grant_id")?,
            scope: row.try_get("scope")?,
            resources: row.try_get("resources")?,
            user_id: row.try_get::<Option<String>, _>("user_id")?.ok_or_else(|| missing("user_id"))?,
            sid: row.try_get::<Option<String>, _>("sid")?.ok_or_else(|| missing("sid"))?,
            auth_time: row.try_get::<Option<i64>, _>("auth_time")?.ok_or_else(|| missing("auth_time"))?,
            context: GrantContext { claims: None, acr: row.try_get("acr")?, amr: row.try_get("amr")? },
        }))
    }
}
