//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, as the MCP
//! authorization spec uses them): a `client_id` that is an `https` URL with a path names a
//! JSON document describing the client, fetched on demand.
//!
//! The fetch is SSRF-safe: the host is resolved first and refused when any address is
//! private, loopback, link-local or otherwise not global (loopback is allowed in dev mode,
//! `--dev-login`, for local testing, with a warning), the connection is pinned to the
//! checked address, redirects are not followed, and size and time are bounded. Documents
//! are cached in memory as long as their `Cache-Control: max-age` says (at most an hour).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::redirect_uri::RedirectUri;
use super::scope::ScopeSet;
use crate::registry::client::{AuthMethod, Client, ClientType, GrantType};
use crate::tokens::keys::SigningAlg;

/// The largest document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024;
/// How long a fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CACHE: Duration = Duration::from_secs(3600);
const MAX_CACHED_DOCUMENTS: usize = 1000;

/// Whether a client_id names a metadata document rather than a registered client.
pub fn is_metadata_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Why a document could not be used; shown to the caller as `invalid_client`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("client metadata document {url}: {reason}")]
pub struct MetadataError {
    pub url: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
struct Document {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    /// RFC 9449 §5.2: the client always uses DPoP.
    #[serde(default)]
    dpop_bound_access_tokens: bool,
}

/// Fetches, validates and caches metadata documents.
pub struct MetadataResolver {
    allow_loopback: bool,
    cache: Mutex<HashMap<String, (Client, Instant)>>,
}

impl MetadataResolver {
    /// `allow_loopback`: dev mode, where `http://localhost…` documents are accepted.
    pub fn new(allow_loopback: bool) -> Self {
        Self { allow_loopback, cache: Mutex::new(HashMap::new()) }
    }

    /// The client a metadata URL describes. `known_scopes` are the scopes it may ask for
    /// (OpenID Connect's and every registered API's: consent is always asked).
    pub async fn resolve(&self, url: &str, known_scopes: ScopeSet) -> Result<Client, MetadataError> {
        if let Ok(cache) = self.cache.lock()
            && let Some((client, until)) = cache.get(url)
            && *until > Instant::now()
        {
            return Ok(client.clone());
        }
        let fail = |reason: String| MetadataError { url: url.to_owned(), reason };
        let (document, max_age) = self.fetch(url).await.map_err(fail)?;
        let client = to_client(url, document, known_scopes).map_err(fail)?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED_DOCUMENTS {
                cache.retain(|_, (_, until)| *until > Instant::now());
            }
            if max_age > Duration::ZERO && cache.len() < MAX_CACHED_DOCUMENTS {
                cache.insert(url.to_owned(), (client.clone(), Instant::now() + max_age.min(MAX_CACHE)));
            }
        }
        Ok(client)
    }

    async fn fetch(&self, raw: &str) -> Result<(Document, Duration), String> {
        let url = url::Url::parse(raw).map_err(|_| "the client_id is not a valid URL".to_string())?;
        if url.path().len() <= 1 {
            return Err("the client_id URL must have a path".into());
        }
        let (body, max_age) = fetch_bounded(raw, "the client_id URL", self.allow_loopback, MAX_DOCUMENT_BYTES).await?;
        let document =
            serde_json::from_slice(&body).map_err(|e| format!("it is not a valid metadata document ({e})"))?;
        Ok((document, max_age))
    }
}

/// GETs a JSON document SSRF-safely: `https` only (`http` and loopback addresses only when
/// `allow_loopback`, i.e. dev mode), every address the host resolves to must be public, the
/// connection is pinned to the checked address, no redirects, at most `max_bytes` and
/// [`FETCH_TIMEOUT`] per step. Returns the body and its `Cache-Control: max-age` (zero when
/// absent). `name` says what the URL is, in error messages.
pub async fn fetch_bounded(
    raw: &str,
    name: &str,
    allow_loopback: bool,
    max_bytes: usize,
) -> Result<(Vec<u8>, Duration), String> {
    fetch_bounded_as(raw, name, "application/json", allow_loopback, max_bytes).await
}

/// [`fetch_bounded`], asking for the media type `accept` (a request object is
/// `application/oauth-authz-req+jwt` or `application/jwt`, RFC 9101 §5.2.3).
pub async fn fetch_bounded_as(
    raw: &str,
    name: &str,
    accept: &str,
    allow_loopback: bool,
    max_bytes: usize,
) -> Result<(Vec<u8>, Duration), String> {
    let url = url::Url::parse(raw).map_err(|_| format!("{name} is not a valid URL"))?;
    let loopback_ok = allow_loopback;
    match url.scheme() {
        "https" => {}
        "http" if loopback_ok => {}
        _ => return Err(format!("{name} must use https")),
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{name} must not have a fragment or credentials"));
    }
    let (lookup_host, first) = checked_address(&url, loopback_ok).await?;
    if classify(first.ip()) == Reach::Loopback {
        tracing::warn!(url = raw, "dev mode: fetching {name} from loopback");
    }
    // Pin the connection to the address just checked (no DNS rebinding in between).
    let http = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&lookup_host, first)
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = http.get(url.clone()).header(reqwest::header::ACCEPT, accept).send().await.map_err(|e| {
        if e.is_timeout() { "fetching it timed out".to_string() } else { format!("fetching it failed ({e})") }
    })?;
    if !response.status().is_success() {
        return Err(format!("fetching it answered HTTP {}", response.status()));
    }
    let max_age = response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map_or(Duration::ZERO, max_age);
    let mut body = Vec::new();
    loop {
        let chunk = tokio::time::timeout(FETCH_TIMEOUT, response.chunk())
            .await
            .map_err(|_| "fetching it timed out".to_string())?
            .map_err(|e| format!("reading it failed ({e})"))?;
        let Some(chunk) = chunk else { break };
        body.extend_from_slice(&chunk);
        if body.len() > max_bytes {
            return Err(format!("it is larger than {max_bytes} bytes"));
        }
    }
    Ok((body, max_age))
}

/// Resolves the host of `url` and checks every address it has: refused when any is
/// private, link-local or otherwise not global, or loopback unless `allow_loopback` (dev
/// mode). Returns the host as a resolver override wants it and the address to pin the
/// connection to (no DNS rebinding between the check and the request). Shared by every
/// server-side request to a URL a client supplied (metadata documents, back-channel logout).
pub async fn checked_address(url: &url::Url, allow_loopback: bool) -> Result<(String, SocketAddr), String> {
    let host = url.host_str().ok_or("the URL has no host")?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup_host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let addrs: Vec<SocketAddr> =
        tokio::time::timeout(FETCH_TIMEOUT, tokio::net::lookup_host((lookup_host.as_str(), port)))
            .await
            .map_err(|_| "resolving its host timed out".to_string())?
            .map_err(|e| format!("its host does not resolve ({e})"))?
            .collect();
    let first = *addrs.first().ok_or("its host has no address")?;
    for addr in &addrs {
        match classify(addr.ip()) {
            Reach::Global => {}
            Reach::Loopback if allow_loopback => {}
            Reach::Loopback => {
                return Err(format!(
                    "its host resolves to the loopback address {} (allowed only in dev mode)",
                    addr.ip()
                ));
            }
            Reach::Private => return Err(format!("its host resolves to the non-public address {}", addr.ip())),
        }
    }
    Ok((lookup_host, first))
}

/// `max-age` of a Cache-Control value (`no-store`/`no-cache`: none).
fn max_age(cache_control: &str) -> Duration {
    let mut age = Duration::ZERO;
    for directive in cache_control.split(',').map(str::trim) {
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache") {
            return Duration::ZERO;
        }
        if let Some(value) = directive.strip_prefix("max-age=").and_then(|v| v.parse::<u64>().ok()) {
            age = Duration::from_secs(value);
        }
    }
    age
}

#[derive(Debug, PartialEq, Eq)]
enum Reach {
    Global,
    Loopback,
    Private,
}

fn classify(ip: IpAddr) -> Reach {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Reach::Loopback,
        IpAddr::V4(v4) => {
            let o = v4.octets();
            let shared = o[0] == 100 && (64..128).contains(&o[1]); // 100.64.0.0/10
            let benchmarking = o[0] == 198 && (o[1] == 18 || o[1] == 19);
            if v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || o[0] >= 240
                || shared
                || benchmarking
            {
                Reach::Private
            } else {
                Reach::Global
            }
        }
        IpAddr::V6(v6) if v6.is_loopback() => Reach::Loopback,
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            let unique_local = (first & 0xfe00) == 0xfc00;
            let link_local = (first & 0xffc0) == 0xfe80;
            if v6.is_unspecified() || v6.is_multicast() || unique_local || link_local {
                Reach::Private
            } else {
                Reach::Global
            }
        }
    }
}

fn to_client(url: &str, doc: Document, known_scopes: ScopeSet) -> Result<Client, String> {
    if doc.client_id != url {
        return Err(format!("its client_id {:?} differs from the URL it was fetched from", doc.client_id));
    }
    match doc.token_endpoint_auth_method.as_deref().unwrap_or("none") {
        "none" => {}
        "private_key_jwt" => {
            return Err("token_endpoint_auth_method private_key_jwt is not supported yet: use none".into());
        }
        other => return Err(format!("token_endpoint_auth_method {other:?} is not allowed: use none")),
    }
    if doc.redirect_uris.is_empty() {
        return Err("it lists no redirect_uris".into());
    }
    let redirect_uris = doc.redirect_uris.iter().map(|u| RedirectUri::parse(u)).collect::<Result<Vec<_>, _>>()?;
    let mut grant_types = vec![GrantType::AuthorizationCode];
    if doc.grant_types.iter().any(|g| g == "refresh_token") {
        grant_types.push(GrantType::RefreshToken);
    }
    let scope = match &doc.scope {
        Some(s) => ScopeSet::parse(s)?.filter(|s| known_scopes.contains(s)),
        None => known_scopes,
    };
    let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
    let name = doc.client_name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| host.clone());
    // Record-keeping (when it was created), not protocol time: the wall clock.
    let now = crate::clock::real_now();
    Ok(Client {
        client_id: url.to_owned(),
        // The host is what the user can check: it is shown with the name on consent.
        name: format!("{} ({host})", name.chars().take(100).collect::<String>()),
        client_type: ClientType::Public,
        secret_hash: None,
        auth_method: AuthMethod::None,
        redirect_uris,
        post_logout_redirect_uris: Vec::new(),
        grant_types,
        scope,
        default_api: None,
        require_pkce: true,
        first_party: false,
        id_token_alg: SigningAlg::RS256,
        id_token_claims: crate::registry::client::IdTokenClaimsPolicy::All,
        refresh_token_ttl: crate::registry::client::DEFAULT_REFRESH_TOKEN_TTL,
        refresh_token_idle_ttl: crate::registry::client::DEFAULT_REFRESH_TOKEN_IDLE_TTL,
        jwks: None,
        jwks_uri: None,
        assertion_alg: None,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
        frontchannel_logout_uri: None,
        frontchannel_logout_session_required: false,
        created_at: now,
        updated_at: now,
        from_metadata_document: true,
        // Pairwise subjects: a document client sees public ones.
        subject_type: crate::registry::client::SubjectType::Public,
        sector_identifier_uri: None,
        request_uris: Vec::new(),
        request_object_alg: None,
        // Signed userinfo and display metadata: not taken from a metadata document (its
        // logo would be a third party's image on the consent page, unvetted).
        userinfo_alg: None,
        logo_uri: None,
        client_uri: None,
        policy_uri: None,
        tos_uri: None,
        secret_sealed: None,
        // The server-wide PAR requirement still applies; the reuse interval is an
        // administrator's choice, which a document client never gets.
        require_par: false,
        refresh_token_reuse_interval: 0,
        dpop_bound_access_tokens: doc.dpop_bound_access_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_refused() {
        for ip in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert_eq!(classify(ip.parse().unwrap()), Reach::Private, "{ip}");
        }
        for ip in ["127.0.0.1", "::1"] {
            assert_eq!(classify(ip.parse().unwrap()), Reach::Loopback, "{ip}");
        }
        assert_eq!(classify("93.184.215.14".parse().unwrap()), Reach::Global);
    }

    #[test]
    fn cache_control_max_age_is_honoured() {
        assert_eq!(max_age("public, max-age=600"), Duration::from_secs(600));
        assert_eq!(max_age("no-store, max-age=600"), Duration::ZERO);
        assert_eq!(max_age(""), Duration::ZERO);
    }

    #[test]
    fn the_document_must_name_its_own_url() {
        let doc = Document {
            client_id: "https://other.example/client".into(),
            client_name: None,
            redirect_uris: vec!["https://app.example/cb".into()],
            grant_types: vec![],
            token_endpoint_auth_method: None,
            scope: None,
            dpop_bound_access_tokens: false,
        };
        assert!(to_client("https://app.example/client", doc, ScopeSet::default()).unwrap_err().contains("differs"));
    }
}
