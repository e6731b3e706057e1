//! In-memory caches of clients and APIs for the hot paths (the token endpoint reads a
//! client on every request). Writes through this store invalidate them at once; other
//! replicas see a change within [`TTL`], the price of needing no cross-replica channel.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::registry::api::Api;
use crate::registry::client::Client;

/// How long a cached entry is trusted (the staleness bound across replicas).
pub const TTL: Duration = Duration::from_secs(5);
/// Beyond this many cached clients the cache is emptied (a bound, not an LRU).
const MAX_CLIENTS: usize = 10_000;

#[derive(Default)]
pub(crate) struct RegistryCache {
    clients: RwLock<HashMap<String, (Client, Instant)>>,
    apis: RwLock<Option<(Arc<Vec<Api>>, Instant)>>,
}

impl RegistryCache {
    pub(crate) fn client(&self, client_id: &str) -> Option<Client> {
        let clients = self.clients.read().ok()?;
        let (client, at) = clients.get(client_id)?;
        (at.elapsed() < TTL).then(|| client.clone())
    }

    pub(crate) fn put_client(&self, client: &Client) {
        if let Ok(mut clients) = self.clients.write() {
            if clients.len() >= MAX_CLIENTS {
                clients.clear();
            }
            clients.insert(client.client_id.clone(), (client.clone(), Instant::now()));
        }
    }

    pub(crate) fn forget_client(&self, client_id: &str) {
        if let Ok(mut clients) = self.clients.write() {
            clients.remove(client_id);
        }
    }

    pub(crate) fn apis(&self) -> Option<Arc<Vec<Api>>> {
        let apis = self.apis.read().ok()?;
        let (list, at) = apis.as_ref()?;
        (at.elapsed() < TTL).then(|| list.clone())
    }

    pub(crate) fn put_apis(&self, list: Arc<Vec<Api>>) {
        if let Ok(mut apis) = self.apis.write() {
            *apis = Some((list, Instant::now()));
        }
    }

    /// Forgets the API list, and the clients (whose default API may have changed with it).
    pub(crate) fn forget_apis(&self) {
        if let Ok(mut apis) = self.apis.write() {
            *apis = None;
        }
        if let Ok(mut clients) = self.clients.write() {
            clients.clear();
        }
    }
}
