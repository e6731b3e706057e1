//! Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0 §2.5): a logout
//! token POSTed as `application/x-www-form-urlencoded` (`logout_token=…`) to the client's
//! `backchannel_logout_uri`.
//!
//! Off the request path (a tokio task), each attempt bounded by [`ATTEMPT_TIMEOUT`], at
//! most [`ATTEMPTS`] attempts with a doubling backoff. The URI is the client's, so the same
//! SSRF rules as for Client ID Metadata Documents apply (no private or link-local
//! addresses; loopback only in dev mode; the connection pinned to the checked address; no
//! redirects). Each delivery's outcome is recorded (`backchannel_deliveries`) and shown on
//! the client's admin page, and, with development features, in the protocol recorder.

use std::time::Duration;

use super::client_metadata::checked_address;
use crate::activity::{ActivityContext, Draft, Recorder};
use crate::registry::client::Client;
use crate::state::AppState;
use crate::store::Store;
use crate::store::logout::Delivery;
use crate::tokens::claims::{LOGOUT_TOKEN_TYP, LogoutTokenClaims};

/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per delivery.
pub const ATTEMPTS: i64 = 3;
/// The wait before the second attempt; doubled before each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Signs a logout token for `client` about session `sid` of user `user_id` and starts
/// delivering it. Returns at once; the delivery is awaited on shutdown. The token's `sub` is the one the client knows the user
/// by (pairwise for a pairwise client: §2.4 wants it to match the id_token's).
pub fn dispatch(state: &AppState, client: &Client, user_id: &str, sid: &str) {
    let Some(target) = client.backchannel_logout_uri.clone() else { return };
    let sub = state.subjects.for_client(client, user_id);
    let sub = sub.as_str();
    // Always `sid` and `sub`: a client that requires the session id gets it, and one that
    // does not may use either (§2.4 asks for at least one).
    let claims = LogoutTokenClaims::new(state.config.issuer.as_str(), &client.client_id, sub, sid, state.now());
    let token = match state.keys.ring().sign(client.id_token_alg, LOGOUT_TOKEN_TYP, &claims) {
        Ok(token) => token,
        Err(e) => {
            tracing::error!(client_id = %client.client_id, error = %e, "logout token not signed: not delivered");
            return;
        }
    };
    let job = Job {
        store: state.store.clone(),
        activity: state.activity.clone(),
        user_id: user_id.to_owned(),
        allow_loopback: state.config.dev_login,
        target,
        token,
        client_id: client.client_id.clone(),
        sid: sid.to_owned(),
    };
    state.track_delivery(tokio::spawn(job.run()));
}

struct Job {
    store: Store,
    activity: Recorder,
    user_id: String,
    allow_loopback: bool,
    target: url::Url,
    token: String,
    client_id: String,
    sid: String,
}

/// Why an attempt failed, and whether another one may fare better.
struct Failure {
    reason: String,
    retry: bool,
}

impl Job {
    async fn run(self) {
        let started = (self.store.now(), std::time::Instant::now());
        let mut attempts = 0;
        let mut backoff = FIRST_BACKOFF;
        let outcome = loop {
            attempts += 1;
            match self.attempt().await {
                Ok(outcome) => break Ok(outcome),
                Err(failure) if failure.retry && attempts < ATTEMPTS => {
                    tracing::debug!(client_id = %self.client_id, reason = %failure.reason, "back-channel logout: retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(failure) => break Err(failure.reason),
            }
        };
        let delivered = outcome.is_ok();
        let outcome = outcome.unwrap_or_else(|reason| reason);
        self.record_activity(started, attempts, delivered, &outcome);
        if delivered {
            tracing::info!(client_id = %self.client_id, sid = %self.sid, attempts, "back-channel logout delivered");
        } else {
            tracing::warn!(client_id = %self.client_id, sid = %self.sid, attempts, %outcome, "back-channel logout failed");
        }
        let record = Delivery {
            client_id: self.client_id.clone(),
            sid: self.sid.clone(),
            attempts,
            delivered,
            outcome,
            created_at: self.store.now(),
        };
        if let Err(e) = self.store.record_backchannel_delivery(&record).await {
            tracing::warn!(client_id = %self.client_id, error = %e, "back-channel logout outcome not recorded");
        }
    }

    /// The delivery as one exchange of the protocol recorder (development features only).
    fn record_activity(&self, started: (i64, std::time::Instant), attempts: i64, delivered: bool, outcome: &str) {
        if !self.activity.is_on() {
            return;
        }
        let mut draft = Draft {
            at: started.0,
            duration_ms: i64::try_from(started.1.elapsed().as_millis()).unwrap_or(i64::MAX),
            endpoint: "backchannel_logout".into(),
            method: "POST".into(),
            context: ActivityContext {
                client_id: Some(self.client_id.clone()),
                user_id: Some(self.user_id.clone()),
                username: None,
            },
            // "HTTP 400" names the client's answer; no status: it never answered.
            status: outcome.strip_prefix("HTTP ").and_then(|code| code.parse().ok()).unwrap_or(0),
            jwts: vec![("request logout_token".into(), self.token.clone())],
            ..Draft::default()
        };
        if !delivered {
            draft.error = Some("delivery_failed".into());
            draft.error_description = Some(format!("{outcome} after {attempts} attempt(s)"));
        }
        draft.detail.path = self.target.to_string();
        draft.detail.params = vec![crate::activity::mask::param("logout_token", &self.token, "form").0];
        draft.detail.note = Some(format!(
            "Back-channel logout token for session {} sent to {}: {outcome} after {attempts} attempt(s).",
            self.sid, self.target
        ));
        self.activity.submit(draft);
    }

    async fn attempt(&self) -> Result<String, Failure> {
        let permanent = |reason: String| Failure { reason, retry: false };
        let transient = |reason: String| Failure { reason, retry: true };
        let (host, addr) = checked_address(&self.target, self.allow_loopback).await.map_err(permanent)?;
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, addr)
            .build()
            .map_err(|e| permanent(e.to_string()))?;
        let response =
            http.post(self.target.clone()).form(&[("logout_token", self.token.as_str())]).send().await.map_err(
                |e| transient(if e.is_timeout() { "timed out".into() } else { format!("request failed ({e})") }),
            )?;
        let status = response.status();
        let outcome = format!("HTTP {}", status.as_u16());
        if status.is_success() {
            Ok(outcome)
        } else if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            Err(transient(outcome))
        } else {
            // §2.8: a 400 means the client could not log the session out; another copy of
            // the same token will not change its mind. A redirect is not followed.
            Err(permanent(outcome))
        }
    }
}
