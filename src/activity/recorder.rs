//! The recorder's writer: one task per server that decodes and explains the tokens of each
//! exchange, finds its client and user, and writes it (off the request path, in the order
//! the exchanges finished). Readers flush it first.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::{ActivityContext, DecodedToken, Detail, Entry, Filter, TokenCheck};
use crate::config::Config;
use crate::store::activity::{ActivityQuery, ActivityRecord, Retention};
use crate::store::{Store, StoreError};
use crate::tokens::keys::KeyManager;
use crate::web::token_report::{self, Inspector};

/// Exchanges waiting to be written; beyond it new ones are dropped (and logged).
const QUEUE: usize = 1024;
/// How long a reader waits for the writer to catch up.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);
/// The most entries one read returns.
pub const MAX_LIMIT: i64 = 1000;

/// An exchange as the middleware (or a back-channel delivery) saw it, before analysis. It
/// holds the JWTs it carried in memory only: the writer keeps their decoded form.
#[derive(Debug, Default)]
pub struct Draft {
    pub at: i64,
    pub duration_ms: i64,
    pub endpoint: String,
    pub method: String,
    pub context: ActivityContext,
    /// A client id the request named (`client_id`, Basic credentials) when no handler did.
    pub client_hint: Option<String>,
    /// A username the request named (a login form).
    pub username_hint: Option<String>,
    pub status: u16,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub detail: Detail,
    /// (where it was seen, the token).
    pub jwts: Vec<(String, String)>,
}

enum Message {
    Record(Box<Draft>),
    Flush(oneshot::Sender<()>),
}

/// The recorder of one server: on only with development features. Clones share the writer.
#[derive(Clone)]
pub struct Recorder {
    sender: Option<mpsc::Sender<Message>>,
    store: Store,
}

impl Recorder {
    /// Starts the writer on the current runtime when development features are on.
    pub fn start(config: Arc<Config>, store: Store, keys: KeyManager) -> Self {
        if !config.records_activity() {
            return Self { sender: None, store };
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("the protocol recorder needs a runtime to write from: nothing will be recorded");
            return Self { sender: None, store };
        };
        let (sender, receiver) = mpsc::channel(QUEUE);
        let writer = Writer { config, store: store.clone(), keys };
        runtime.spawn(writer.run(receiver));
        Self { sender: Some(sender), store }
    }

    /// Whether exchanges are recorded.
    pub fn is_on(&self) -> bool {
        self.sender.is_some()
    }

    /// Hands an exchange to the writer (never waits: a full queue drops it, loudly).
    pub fn submit(&self, draft: Draft) {
        let Some(sender) = &self.sender else { return };
        if let Err(e) = sender.try_send(Message::Record(Box::new(draft))) {
            tracing::warn!(error = %e, "protocol recorder: an exchange was not recorded (the writer is behind)");
        }
    }

    /// Waits (briefly) until everything submitted so far is written.
    pub async fn flush(&self) {
        let Some(sender) = &self.sender else { return };
        let (done, written) = oneshot::channel();
        let wait = async {
            if sender.send(Message::Flush(done)).await.is_ok() {
                let _ = written.await;
            }
        };
        if tokio::time::timeout(FLUSH_LIMIT, wait).await.is_err() {
            tracing::warn!("protocol recorder: the writer did not catch up in time; the list may miss the newest");
        }
    }

    /// Entries matching `filter`, newest first (after a flush).
    pub async fn list(&self, filter: &Filter) -> Result<Vec<Entry>, StoreError> {
        self.flush().await;
        let query = ActivityQuery {
            client_id: filter.client_id.clone().filter(|c| !c.is_empty()),
            user: filter.user.clone().filter(|u| !u.is_empty()),
            endpoint: filter.endpoint.clone().filter(|e| !e.is_empty()),
            errors_only: filter.errors_only,
            since: filter.since,
            limit: filter.limit.unwrap_or(100).clamp(1, MAX_LIMIT),
        };
        Ok(self.store.list_activity(&query).await?.into_iter().map(entry).collect())
    }

    /// One entry (after a flush).
    pub async fn get(&self, id: i64) -> Result<Option<Entry>, StoreError> {
        self.flush().await;
        Ok(self.store.activity(id).await?.map(entry))
    }
}

/// A stored row as an [`Entry`] (a `detail` that no longer parses shows as empty).
fn entry(record: ActivityRecord) -> Entry {
    Entry {
        id: record.id,
        at: record.at,
        duration_ms: record.duration_ms,
        endpoint: record.endpoint,
        method: record.method,
        client_id: record.client_id,
        user: record.username,
        user_id: record.user_id,
        status: u16::try_from(record.status).unwrap_or(0),
        error: record.error,
        error_description: record.error_description,
        detail: serde_json::from_str(&record.detail).unwrap_or_default(),
    }
}

struct Writer {
    config: Arc<Config>,
    store: Store,
    keys: KeyManager,
}

impl Writer {
    async fn run(self, mut receiver: mpsc::Receiver<Message>) {
        while let Some(message) = receiver.recv().await {
            match message {
                Message::Record(draft) => {
                    let endpoint = draft.endpoint.clone();
                    if let Err(e) = self.write(*draft).await {
                        tracing::warn!(error = %e, %endpoint, "protocol recorder: an exchange was not recorded");
                    }
                }
                Message::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    async fn write(&self, mut draft: Draft) -> Result<(), StoreError> {
        let inspector = Inspector { store: &self.store, keys: &self.keys, config: &self.config };
        let mut client_id = draft.context.client_id.take().or(draft.client_hint.take());
        let mut user_id = draft.context.user_id.take();
        let mut username = draft.context.username.take().or(draft.username_hint.take());
        for (source, raw) in std::mem::take(&mut draft.jwts) {
            let Ok((header, claims)) = token_report::decode(&raw) else { continue };
            let Ok(report) = token_report::examine_with(&inspector, &raw).await? else { continue };
            if client_id.is_none() {
                client_id = client_of(report.kind, &claims);
            }
            if user_id.is_none() && username.is_none() {
                user_id = self.user_of(report.kind, &claims).await?;
            }
            draft.detail.tokens.push(DecodedToken {
                source,
                kind: report.kind.to_owned(),
                summary: report.summary,
                verdict: report.verdict.to_owned(),
                checks: report
                    .checks
                    .into_iter()
                    .map(|c| TokenCheck { name: c.name.to_owned(), outcome: c.outcome.to_owned(), text: c.text })
                    .collect(),
                times: report.times,
                header: Value::Object(header),
                claims: Value::Object(claims),
            });
        }
        match (&user_id, &username) {
            (Some(id), None) => username = self.store.user_by_id(id).await?.map(|u| u.username),
            (None, Some(name)) => user_id = self.store.user_by_username(name).await?.map(|u| u.id),
            _ => {}
        }
        let record = ActivityRecord {
            id: 0,
            at: draft.at,
            duration_ms: draft.duration_ms,
            endpoint: draft.endpoint,
            method: draft.method,
            client_id,
            user_id,
            username,
            status: i64::from(draft.status),
            error: draft.error,
            error_description: draft.error_description,
            detail: serde_json::to_string(&draft.detail).unwrap_or_else(|_| "{}".into()),
        };
        let retention =
            Retention { count: self.config.activity_retention_count, seconds: self.config.activity_retention_seconds };
        self.store.insert_activity(&record, retention).await?;
        Ok(())
    }

    /// The user a token is about: through its grant for an access token (a pairwise `sub`
    /// names nobody by itself), else its `sub` when that is a user's id.
    async fn user_of(&self, kind: &str, claims: &serde_json::Map<String, Value>) -> Result<Option<String>, StoreError> {
        if !matches!(kind, "access token" | "id_token" | "logout token") {
            return Ok(None);
        }
        if kind == "access token"
            && let Some(jti) = claims.get("jti").and_then(Value::as_str)
            && let Some((user_id, _)) = self.store.access_token_grant(jti).await?
        {
            return Ok(Some(user_id));
        }
        match claims.get("sub").and_then(Value::as_str) {
            Some(sub) => Ok(self.store.user_by_id(sub).await?.map(|u| u.id)),
            None => Ok(None),
        }
    }
}

/// The client a token names: `client_id` (access tokens), `azp` or `aud` (id_tokens, logout
/// tokens), `iss` (what a client signed itself).
fn client_of(kind: &str, claims: &serde_json::Map<String, Value>) -> Option<String> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    match kind {
        "access token" => text("client_id"),
        "id_token" | "logout token" => text("azp").or_else(|| text("aud")).or_else(|| {
            claims
                .get("aud")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .map(str::to_owned)
        }),
        "request object" | "client assertion" => text("iss"),
        _ => None,
    }
}
