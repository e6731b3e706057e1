//! In-memory caches of clients, APIs and custom scopes for the hot paths (the token
//! endpoint reads a client and the API list on every request), above the store.
//!
//! An entry is trusted while the store's change generation is the one it was filled under
//! (a write by this process moves it at once; a write by another process, through the
//! shared registry version polled by [`watch`], within a fraction of a second) and for at
//! most [`TTL`], a backstop should an announcement be lost. What must hold at once on
//! every server (a rotated secret, a deleted client, a key retired) is written with
//! `Reach::AtOnce`: the write returns only when every live server has applied it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::api::Api;
use super::client::Client;
use crate::oauth::scope::ScopeCatalog;
use crate::store::{Result, Store};

/// The longest an entry is trusted, whatever the generation says.
pub const TTL: Duration = Duration::from_secs(5);
/// How often each server reads the shared registry version (and so the longest a
/// security-relevant write waits for it).
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Beyond this many cached clients the cache is emptied (a bound, not an LRU).
const MAX_CLIENTS: usize = 10_000;

/// A cached value, the generation it was read under, and when.
struct Entry<T> {
    value: T,
    generation: u64,
    at: Instant,
}

impl<T: Clone> Entry<T> {
    fn fresh(&self, generation: u64) -> Option<T> {
        (self.generation == generation && self.at.elapsed() < TTL).then(|| self.value.clone())
    }
}

/// Clients and APIs as the request paths read them.
pub struct RegistryCache {
    store: Store,
    clients: RwLock<HashMap<String, Entry<Client>>>,
    apis: RwLock<Option<Entry<Arc<Vec<Api>>>>>,
    scopes: RwLock<Option<Entry<Arc<ScopeCatalog>>>>,
}

impl RegistryCache {
    pub fn new(store: Store) -> Self {
        Self { store, clients: RwLock::default(), apis: RwLock::default(), scopes: RwLock::default() }
    }

    /// A registered client (not one known by a metadata document: see `AppState::find_client`).
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>> {
        // Read before the query: a change committed meanwhile makes the entry stale at once.
        let generation = self.store.generation();
        if let Some(client) = self.clients.read().ok().and_then(|c| c.get(client_id)?.fresh(generation)) {
            return Ok(Some(client));
        }
        let client = self.store.client(client_id).await?;
        if let (Some(client), Ok(mut clients)) = (&client, self.clients.write()) {
            if clients.len() >= MAX_CLIENTS {
                clients.clear();
            }
            clients.insert(client.client_id.clone(), Entry { value: client.clone(), generation, at: Instant::now() });
        }
        Ok(client)
    }

    /// Every API, shared without copying.
    pub async fn apis(&self) -> Result<Arc<Vec<Api>>> {
        let generation = self.store.generation();
        if let Some(list) = self.apis.read().ok().and_then(|a| a.as_ref()?.fresh(generation)) {
            return Ok(list);
        }
        let list = Arc::new(self.store.list_apis().await?);
        if let Ok(mut apis) = self.apis.write() {
            *apis = Some(Entry { value: list.clone(), generation, at: Instant::now() });
        }
        Ok(list)
    }

    /// Every scope that releases user claims (OpenID Connect's and the custom ones).
    pub async fn scopes(&self) -> Result<Arc<ScopeCatalog>> {
        let generation = self.store.generation();
        if let Some(catalog) = self.scopes.read().ok().and_then(|s| s.as_ref()?.fresh(generation)) {
            return Ok(catalog);
        }
        let catalog = Arc::new(ScopeCatalog::new(self.store.list_claim_scopes().await?));
        if let Ok(mut scopes) = self.scopes.write() {
            *scopes = Some(Entry { value: catalog.clone(), generation, at: Instant::now() });
        }
        Ok(catalog)
    }

    /// One API by its identifier.
    pub async fn api(&self, identifier: &str) -> Result<Option<Api>> {
        Ok(self.apis().await?.iter().find(|a| a.identifier == identifier).cloned())
    }
}

/// How often a server says it is alive when nothing changes.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Polls the shared registry version every [`POLL_INTERVAL`]; when another process (a
/// replica, the CLI) changed clients, APIs or keys, marks this process's caches stale,
/// calls `on_change` (which reloads the signing keys), and then records in `replicas`
/// that this server has applied the change: a security-relevant write waits for that
/// (`Store::registry_changed`), so it holds on every server once it is reported done.
/// Runs until the task is dropped; [`leave`] removes the server's row.
pub async fn watch<F, Fut>(store: Store, replica_id: String, on_change: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    store.set_replica_id(&replica_id);
    let mut seen: Option<i64> = None;
    let mut last_heartbeat: Option<Instant> = None;
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let version = match store.registry_version().await {
            Ok(version) => version,
            // The database is away: readiness says so; the caches keep their TTL bound.
            Err(e) => {
                tracing::debug!(error = %e, "could not read the registry version");
                continue;
            }
        };
        let changed = seen.is_some_and(|s| s != version);
        if changed {
            store.note_external_change();
            on_change().await;
        }
        if changed || seen.is_none() || last_heartbeat.is_none_or(|at| at.elapsed() >= HEARTBEAT) {
            match store.replica_heartbeat(&replica_id, version).await {
                Ok(()) => last_heartbeat = Some(Instant::now()),
                Err(e) => tracing::debug!(error = %e, "could not record this server's heartbeat"),
            }
        }
        seen = Some(version);
    }
}

/// Takes a stopping server out of `replicas`, so that no change waits for it.
pub async fn leave(store: &Store, replica_id: &str) {
    if let Err(e) = store.remove_replica(replica_id).await {
        tracing::debug!(error = %e, "could not remove this server from the replicas");
    }
}
