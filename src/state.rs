//! The state every request handler shares. Its own module, apart from `app` (which wires
//! the handlers into a server), so that handlers import it without importing the app.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::web;

use crate::config::Config;
use crate::oauth::client_jwks::JwksCache;
use crate::oauth::client_metadata::MetadataResolver;
use crate::registry::cache::RegistryCache;
use crate::registry::client::Client;
use crate::store::Store;
use crate::tokens::keys::KeyManager;
use crate::tokens::subject::Subjects;

/// Shared state of every request handler.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    /// Clients and APIs as the hot paths read them (cached, invalidated on change).
    pub registry: RegistryCache,
    pub keys: KeyManager,
    /// The discovery document, serialized once.
    pub metadata: web::Bytes,
    /// Client ID Metadata Documents, fetched and cached.
    pub client_documents: MetadataResolver,
    /// Clients' `jwks_uri` key sets (private_key_jwt), fetched and cached.
    pub client_jwks: JwksCache,
    /// This server's id among the servers on the database (`replicas`).
    pub replica_id: String,
    /// The `sub` each client sees for a user (public or pairwise; the salt, loaded once).
    pub subjects: Subjects,
    /// The protocol clock (the store's: one per server, moved by the test lab).
    pub clock: crate::clock::Clock,
    /// The key of DPoP nonces, shared by every replica through the database; loaded on
    /// first use (see `oauth::dpop::nonce_key`).
    pub dpop_nonce_key: tokio::sync::OnceCell<crate::oauth::dpop_nonce::NonceKey>,
    /// The protocol recorder (test lab): on only with development features.
    pub activity: crate::activity::Recorder,
    /// Set on SIGTERM: `/readyz` answers 503 while requests are still served.
    draining: AtomicBool,
    /// Set once a browser page was asked for under a host that is not the issuer's.
    host_mismatch_logged: AtomicBool,
    /// Back-channel logout deliveries under way, awaited on shutdown so that none is cut off.
    deliveries: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Why a client could not be found.
#[derive(Debug, thiserror::Error)]
pub enum FindClientError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Metadata(#[from] crate::oauth::client_metadata::MetadataError),
}

impl AppState {
    pub fn new(config: Config, store: Store, keys: KeyManager, subjects: Subjects, metadata: web::Bytes) -> Self {
        let client_documents = MetadataResolver::new(config.dev_login);
        let client_jwks = JwksCache::new(config.dev_login);
        let config = Arc::new(config);
        let activity = crate::activity::Recorder::start(config.clone(), store.clone(), keys.clone());
        Self {
            config,
            registry: RegistryCache::new(store.clone()),
            clock: store.clock().clone(),
            activity,
            store,
            keys,
            metadata,
            client_documents,
            client_jwks,
            replica_id: uuid::Uuid::new_v4().to_string(),
            subjects,
            dpop_nonce_key: tokio::sync::OnceCell::new(),
            draining: AtomicBool::new(false),
            host_mismatch_logged: AtomicBool::new(false),
            deliveries: Default::default(),
        }
    }

    /// The state a management command needs to act as the server would (sign and send
    /// logout tokens): the keys and the pairwise salt from the database, no listener.
    pub async fn for_command(config: &Config, store: &Store) -> anyhow::Result<Self> {
        let keys = KeyManager::start(store.clone(), config.key_encryption_key).await?;
        let subjects = Subjects::load(store, config.key_encryption_key.as_ref()).await?;
        if config.dev_features() {
            store.load_clock().await?;
        }
        Ok(Self::new(config.clone(), store.clone(), keys, subjects, web::Bytes::new()))
    }

    /// "Now" on the protocol clock, in seconds since the Unix epoch: what every expiry,
    /// `iat` and `exp` is computed from (never the wall clock, so the test lab can move it).
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Keeps a back-channel logout delivery's task, for [`AppState::finish_deliveries`].
    pub fn track_delivery(&self, task: tokio::task::JoinHandle<()>) {
        if let Ok(mut tasks) = self.deliveries.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
    }

    /// Waits, at most `limit`, for the back-channel deliveries under way (on shutdown, and
    /// at the end of a CLI command that logged users out), and for the protocol recorder to
    /// write what it holds; returns how many deliveries did not finish.
    pub async fn finish_deliveries(&self, limit: std::time::Duration) -> usize {
        let tasks: Vec<_> = match self.deliveries.lock() {
            Ok(mut tasks) => tasks.drain(..).collect(),
            Err(_) => return 0,
        };
        let deadline = tokio::time::Instant::now() + limit;
        let mut unfinished = 0;
        for task in tasks {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                unfinished += 1;
            }
        }
        self.activity.flush().await;
        unfinished
    }

    /// Logs, once per process, a browser page requested under a `Host` other than the
    /// issuer's: its cookies are then not the issuer's, so sign-ins and the admin page break
    /// in ways that are hard to trace (e.g. opened at 127.0.0.1 with a localhost issuer).
    pub fn note_host(&self, host: &str) {
        let issuer = &self.config.issuer;
        let backchannel = self.config.backchannel_url.as_ref().map(|b| b.authority());
        if host.eq_ignore_ascii_case(issuer.authority())
            || backchannel.is_some_and(|b| host.eq_ignore_ascii_case(b))
            || self.host_mismatch_logged.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let scheme = if issuer.is_https() { "https" } else { "http" };
        tracing::warn!(
            host,
            issuer = issuer.as_str(),
            "a browser page was requested at {host}, but the issuer is {}: cookies set there are not sent to \
             the issuer, so sign-in breaks. Open {} instead, or start Lanyard with --issuer {scheme}://{host} \
             (logged once)",
            issuer.as_str(),
            issuer.as_str(),
        );
    }

    /// A registered client, or else (for a URL client_id) the client its metadata document
    /// describes.
    pub async fn find_client(&self, client_id: &str) -> Result<Option<Client>, FindClientError> {
        if let Some(client) = self.registry.client(client_id).await? {
            return Ok(Some(client));
        }
        if !crate::oauth::client_metadata::is_metadata_url(client_id) {
            return Ok(None);
        }
        let catalog = self.registry.scopes().await?;
        let mut scopes: Vec<String> = catalog.scope_names().into_iter().map(str::to_owned).collect();
        for api in self.registry.apis().await?.iter() {
            scopes.extend(api.scopes.iter().map(|s| s.name.clone()));
        }
        let known = crate::oauth::scope::ScopeSet::parse(&scopes.join(" ")).unwrap_or_default();
        Ok(Some(self.client_documents.resolve(client_id, known).await?))
    }

    /// Starts the drain before a shutdown: readiness fails from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}
