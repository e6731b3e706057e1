//! In-memory caches of clients and APIs for the hot paths (the token endpoint reads a
//! client and the API list on every request), above the store.
//!
//! An entry is trusted while the store's change generation is the one it was filled under
//! (a write by this process moves it at once; a write by another process, through the
//! shared registry version polled by [`watch`], within a fraction of a second) and for at
//! most [`TTL`], a backstop should an announcement be lost. What must hold at once on
//! every server (a rotated secret, a deleted client) is not decided from this cache: client
//! authentication re-reads the secret (`oauth::client_auth`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::api::Api;
use super::client::Client;
use crate::store::{Result, Store};

/// The longest an entry is trusted, whatever the generation says.
pub const TTL: Duration = Duration::from_secs(5);
/// How often each server reads the shared registry version.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
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
}

impl RegistryCache {
    pub fn new(store: Store) -> Self {
        Self { store, clients: RwLock::default(), apis: RwLock::default() }
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

    /// One API by its identifier.
    pub async fn api(&self, identifier: &str) -> Result<Option<Api>> {
        Ok(self.apis().await?.iter().find(|a| a.identifier == identifier).cloned())
    }
}

/// Polls the shared registry version every [`POLL_INTERVAL`]; when another process (a
/// replica, the CLI) changed clients, APIs or keys, marks this process's caches stale and
/// calls `on_change` (which reloads the signing keys). Runs until the task is dropped.
pub async fn watch<F, Fut>(store: Store, on_change: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut seen: Option<i64> = None;
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.registry_version().await {
            Ok(version) if seen.is_some_and(|s| s != version) => {
                seen = Some(version);
                store.note_external_change();
                on_change().await;
            }
            Ok(version) => seen = Some(version),
            // The database is away: readiness says so; the caches keep their TTL bound.
            Err(e) => tracing::debug!(error = %e, "could not read the registry version"),
        }
    }
}
