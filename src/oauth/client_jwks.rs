//! Clients' `jwks_uri` documents: fetched SSRF-safely (the same rules as Client ID
//! Metadata Documents: public addresses only, loopback in dev mode, bounded size and time)
//! and cached in memory for a bounded time, refetched early once when an assertion names
//! a `kid` the cached set lacks (the client rotated its keys).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client_metadata::fetch_bounded;
use crate::registry::client_keys::ClientJwks;

/// The largest JWK Set accepted (twenty 4096-bit RSA keys fit).
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// How long a set is used without `Cache-Control: max-age`.
const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// The bounds on how long a set is cached, whatever its `max-age` says.
const MIN_TTL: Duration = Duration::from_secs(30);
const MAX_TTL: Duration = Duration::from_secs(3600);
/// An unknown `kid` refetches the set only if the cached one is at least this old, so
/// that assertions with made-up kids cannot make Lanyard fetch on every request.
pub const REFETCH_COOLDOWN: Duration = Duration::from_secs(2);
const MAX_CACHED_SETS: usize = 1000;

struct Entry {
    keys: Arc<ClientJwks>,
    fetched: Instant,
    until: Instant,
}

/// Fetches and caches JWK Sets by URL.
pub struct JwksCache {
    allow_loopback: bool,
    entries: Mutex<HashMap<String, Entry>>,
}

impl JwksCache {
    /// `allow_loopback`: dev mode, where `http://127.0.0.1…` sets are fetched.
    pub fn new(allow_loopback: bool) -> Self {
        Self { allow_loopback, entries: Mutex::new(HashMap::new()) }
    }

    /// The set at `uri`, from the cache while it is fresh.
    pub async fn keys(&self, uri: &str) -> Result<Arc<ClientJwks>, String> {
        if let Ok(entries) = self.entries.lock()
            && let Some(entry) = entries.get(uri)
            && entry.until > Instant::now()
        {
            return Ok(entry.keys.clone());
        }
        self.fetch(uri).await
    }

    /// The set fetched again because an assertion names `kid`, which the cached set lacks;
    /// `None` when the cached set is too recent to refetch (see [`REFETCH_COOLDOWN`]).
    pub async fn refetch_for_kid(&self, uri: &str, kid: &str) -> Result<Option<Arc<ClientJwks>>, String> {
        let recent = self
            .entries
            .lock()
            .ok()
            .and_then(|e| e.get(uri).map(|entry| entry.fetched.elapsed() < REFETCH_COOLDOWN))
            .unwrap_or(false);
        if recent {
            return Ok(None);
        }
        tracing::info!(jwks_uri = uri, kid, "unknown kid: fetching the client's JWK Set again");
        self.fetch(uri).await.map(Some)
    }

    async fn fetch(&self, uri: &str) -> Result<Arc<ClientJwks>, String> {
        let (body, max_age) = fetch_bounded(uri, "the jwks_uri", self.allow_loopback, MAX_JWKS_BYTES).await?;
        let text = std::str::from_utf8(&body).map_err(|_| "the JWK Set is not UTF-8".to_string())?;
        let keys = Arc::new(ClientJwks::parse_str(text).map_err(|e| format!("the JWK Set {e}"))?);
        let ttl = if max_age.is_zero() { DEFAULT_TTL } else { max_age.clamp(MIN_TTL, MAX_TTL) };
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_CACHED_SETS {
                entries.retain(|_, e| e.until > Instant::now());
            }
            if entries.len() < MAX_CACHED_SETS || entries.contains_key(uri) {
                let now = Instant::now();
                entries.insert(uri.to_owned(), Entry { keys: keys.clone(), fetched: now, until: now + ttl });
            }
        }
        Ok(keys)
    }
}
