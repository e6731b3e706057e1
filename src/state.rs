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
    /// Set on SIGTERM: `/readyz` answers 503 while requests are still served.
    draining: AtomicBool,
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
        Self {
            config: Arc::new(config),
            registry: RegistryCache::new(store.clone()),
            store,
            keys,
            metadata,
            client_documents,
            client_jwks,
            replica_id: uuid::Uuid::new_v4().to_string(),
            subjects,
            draining: AtomicBool::new(false),
        }
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
        let mut scopes: Vec<String> = crate::oauth::scope::OIDC_SCOPES.iter().map(|(s, _)| (*s).to_owned()).collect();
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
