//! `lanyard::verify`: the tenet, as a library for Rust APIs.
//!
//! An API accepts only Lanyard **access tokens** meant for **its own audience**: the
//! verifier fetches and caches the issuer's JWKS (refetching when it meets an unknown
//! `kid`), checks the signature, `typ: at+jwt`, `iss`, `aud`, `exp` and the scopes the
//! route needs, and refuses an id_token by name.
//!
//! ```no_run
//! use actix_web::{HttpRequest, HttpResponse, web};
//! use lanyard::verify::{Verifier, VerifyError};
//!
//! async fn appointments(req: HttpRequest, verifier: web::Data<Verifier>) -> Result<HttpResponse, VerifyError> {
//!     let token = verifier.authorize(&req, &["read:appointments"]).await?;
//!     Ok(HttpResponse::Ok().json(serde_json::json!({ "owner": token.sub })))
//! }
//!
//! # async fn setup() -> Result<(), lanyard::verify::SetupError> {
//! let verifier = Verifier::discover("http://localhost:8080", "https://api.example.test/appointments").await?;
//! # Ok(()) }
//! ```
//!
//! A token carries the user claims its API lists in `access_token_claims` (`roles`,
//! `tenant`, …), in [`AccessTokenClaims::claims`]; [`Verifier::require_role`] checks the
//! `roles` claim (an array of strings, or one string):
//!
//! ```no_run
//! # use actix_web::{HttpRequest, HttpResponse, web};
//! # use lanyard::verify::{Verifier, VerifyError};
//! async fn delete_everything(req: HttpRequest, verifier: web::Data<Verifier>) -> Result<HttpResponse, VerifyError> {
//!     let token = verifier.authorize(&req, &["write:appointments"]).await?;
//!     verifier.require_role(&token, "admin")?; // 403 insufficient_scope otherwise
//!     Ok(HttpResponse::NoContent().finish())
//! }
//! ```
//!
//! Revocation is not visible to a JWT verifier: APIs that must honour it at once call
//! Lanyard's `/introspect` instead (with their introspection client).
//!
//! ## DPoP (RFC 9449)
//!
//! A token Lanyard issued with a DPoP proof is bound to the client's key (`cnf.jkt`) and
//! arrives as `Authorization: DPoP <token>` with a fresh proof in the `DPoP` header.
//! [`Verifier::authorize`] accepts it after checking the proof (signature under its `jwk`,
//! `typ`, `htm` = the method, `htu` = the URL, `iat` within 60 s plus the leeway, `ath` =
//! the token's hash, the key = the token's `cnf.jkt`) and that the proof's `jti` is new;
//! the same token presented as `Bearer` is refused. [`Verifier::require_dpop`] refuses
//! bearer tokens altogether.
//!
//! The `jti` check is the API's own: by default a [`MemoryReplayCache`] in this process.
//! An API running on several replicas must share it (a proof replayed to another replica
//! is otherwise accepted there once more): implement [`ProofReplayGuard`] on a shared
//! store (an `INSERT … ON CONFLICT DO NOTHING` into a table keyed by thumbprint and jti)
//! and pass it to [`Verifier::with_dpop_replay_guard`].
//!
//! ```no_run
//! # use actix_web::{HttpRequest, HttpResponse, web};
//! # use lanyard::verify::{Verifier, VerifyError};
//! # async fn setup() -> Result<(), lanyard::verify::SetupError> {
//! let verifier = Verifier::discover("http://localhost:8080", "https://api.example.test/appointments")
//!     .await?
//!     // The URL clients call (the proof's htu); else taken from the request's Host.
//!     .with_public_url("https://api.example.test")
//!     .require_dpop();
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use futures_util::future::BoxFuture;
use josekit::jwk::Jwk;
use josekit::jws::{ES256, JwsVerifier, RS256};

pub use crate::oauth::dpop::ProofError;
use crate::oauth::dpop::{ProofCheck, VerifiedProof};
pub use crate::tokens::claims::AccessTokenClaims;
pub use crate::tokens::verify::Rejection;

/// Refetch the JWKS for an unknown `kid` at most this often (a forged `kid` must not
/// turn every request into a fetch).
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// Setting the verifier up failed: discovery or the JWKS could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot fetch {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// Why a request was refused; renders as an RFC 6750 Bearer challenge.
#[derive(Debug)]
pub enum VerifyError {
    /// No bearer token (401 without an error code, RFC 6750 §3.1).
    Missing { resource_metadata: Option<String> },
    /// The token is not a valid access token for this API (401 `invalid_token`).
    Invalid { rejection: Rejection, resource_metadata: Option<String> },
    /// Valid, but lacks a scope the route needs (403 `insufficient_scope`).
    InsufficientScope { required: String, resource_metadata: Option<String> },
    /// Valid, but its `roles` claim lacks the role the route needs: 403 with RFC 6750's
    /// `insufficient_scope` (the token lacks the privileges; no scope would help, so the
    /// challenge names none).
    InsufficientRole { required: String, resource_metadata: Option<String> },
    /// A DPoP failure (RFC 9449 §7.1): 401 with a `DPoP` challenge.
    Dpop { failure: DpopFailure, resource_metadata: Option<String> },
}

/// What went wrong with DPoP (RFC 9449 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpopFailure {
    /// DPoP is required here, and no token was sent (a challenge without an error code).
    Missing,
    /// The token, or the way it was presented, is refused (`invalid_token`): a bearer token
    /// where DPoP is required, a bound token as `Bearer`, a proof of another key, or a
    /// token that fails its own checks.
    Token(String),
    /// The proof is refused (`invalid_dpop_proof`): missing, malformed, for another
    /// request, too old, or replayed.
    Proof(String),
}

impl DpopFailure {
    fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::Missing => None,
            Self::Token(_) => Some("invalid_token"),
            Self::Proof(_) => Some("invalid_dpop_proof"),
        }
    }
}

impl fmt::Display for DpopFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("a DPoP-bound access token is required"),
            Self::Token(reason) | Self::Proof(reason) => f.write_str(reason),
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { .. } => f.write_str("an access token is required"),
            Self::Dpop { failure, .. } => write!(f, "{failure}"),
            Self::Invalid { rejection, .. } => write!(f, "{rejection}"),
            Self::InsufficientScope { required, .. } => write!(f, "the access token lacks the scope(s) {required}"),
            Self::InsufficientRole { required, .. } => write!(f, "the access token lacks the role {required}"),
        }
    }
}

impl VerifyError {
    /// The `WWW-Authenticate` challenge (RFC 6750 §3, with RFC 9728's `resource_metadata`),
    /// for APIs on other frameworks than actix-web.
    pub fn www_authenticate(&self) -> String {
        let description = self.to_string().replace(['"', '\\'], "'");
        if let Self::Dpop { failure, resource_metadata } = self {
            // RFC 9449 §7.1: the DPoP scheme, with the algorithms a proof may use.
            let mut challenge = String::from("DPoP realm=\"api\"");
            if let Some(error) = failure.error_code() {
                challenge.push_str(&format!(", error=\"{error}\", error_description=\"{description}\""));
            }
            challenge.push_str(&format!(", algs=\"{}\"", crate::oauth::dpop::algs_supported().join(" ")));
            if let Some(url) = resource_metadata {
                challenge.push_str(&format!(", resource_metadata=\"{url}\""));
            }
            return challenge;
        }
        let mut challenge = String::from("Bearer realm=\"api\"");
        let (error, metadata) = match self {
            Self::Missing { resource_metadata } => (None, resource_metadata),
            Self::Invalid { resource_metadata, .. } => (Some("invalid_token"), resource_metadata),
            Self::InsufficientScope { resource_metadata, required } => {
                challenge.push_str(&format!(", scope=\"{required}\""));
                (Some("insufficient_scope"), resource_metadata)
            }
            Self::InsufficientRole { resource_metadata, .. } => (Some("insufficient_scope"), resource_metadata),
            Self::Dpop { resource_metadata, .. } => (None, resource_metadata),
        };
        if let Some(error) = error {
            challenge.push_str(&format!(", error=\"{error}\", error_description=\"{description}\""));
        }
        if let Some(url) = metadata {
            challenge.push_str(&format!(", resource_metadata=\"{url}\""));
        }
        challenge
    }

    /// The HTTP status: 401, or 403 for a missing scope or role.
    pub fn status(&self) -> u16 {
        match self {
            Self::InsufficientScope { .. } | Self::InsufficientRole { .. } => 403,
            _ => 401,
        }
    }

    /// The JSON body: `error` (absent when no token was sent, RFC 6750 §3.1) and a description.
    pub fn body(&self) -> serde_json::Value {
        match self.error_code() {
            Some(error) => serde_json::json!({ "error": error, "error_description": self.to_string() }),
            None => serde_json::json!({ "error_description": self.to_string() }),
        }
    }

    fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::Missing { .. } => None,
            Self::Dpop { failure, .. } => failure.error_code(),
            Self::Invalid { .. } => Some("invalid_token"),
            Self::InsufficientScope { .. } | Self::InsufficientRole { .. } => Some("insufficient_scope"),
        }
    }
}

impl ResponseError for VerifyError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::UNAUTHORIZED)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Ok(value) = HeaderValue::from_str(&self.www_authenticate()) {
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
        response.json(self.body())
    }
}

/// Remembers the DPoP proofs an API accepted, so that a proof is accepted once
/// (RFC 9449 §11.1). One guard per API; shared by every replica of it (see the module doc).
pub trait ProofReplayGuard: Send + Sync {
    /// Records the proof `jti` of the key `jkt`; `true` the first time. `expires_at`
    /// (seconds since the epoch): when the record may be forgotten, since a replay after
    /// it fails its `iat` check anyway.
    fn first_use<'a>(&'a self, jkt: &'a str, jti: &'a str, expires_at: i64) -> BoxFuture<'a, bool>;
}

/// A [`ProofReplayGuard`] in this process's memory: right for an API with one replica.
/// Expired records are dropped as new ones arrive; past `capacity` live records, proofs
/// are refused (fail closed) until some expire.
pub struct MemoryReplayCache {
    seen: Mutex<HashMap<(String, String), i64>>,
    capacity: usize,
    /// "Now" for expiry, seconds since the epoch.
    now: fn() -> i64,
}

impl MemoryReplayCache {
    /// A cache of at most `capacity` live proofs (a proof lives about two minutes).
    pub fn new(capacity: usize) -> Self {
        Self { seen: Mutex::new(HashMap::new()), capacity, now: crate::clock::real_now }
    }
}

impl Default for MemoryReplayCache {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl ProofReplayGuard for MemoryReplayCache {
    fn first_use<'a>(&'a self, jkt: &'a str, jti: &'a str, expires_at: i64) -> BoxFuture<'a, bool> {
        let fresh = match self.seen.lock() {
            Ok(mut seen) => {
                let now = (self.now)();
                seen.retain(|_, until| *until >= now);
                let key = (jkt.to_owned(), jti.to_owned());
                if seen.contains_key(&key) || seen.len() >= self.capacity {
                    false
                } else {
                    seen.insert(key, expires_at);
                    true
                }
            }
            Err(_) => false,
        };
        Box::pin(std::future::ready(fresh))
    }
}

struct KeyCache {
    keys: HashMap<String, Arc<dyn JwsVerifier>>,
    fetched_at: Option<Instant>,
}

/// Verifies access tokens for one API (audience). Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Verifier {
    issuer: String,
    audience: String,
    jwks_uri: String,
    resource_metadata: Option<String>,
    /// Seconds of clock difference tolerated.
    leeway: i64,
    http: reqwest::Client,
    cache: Arc<RwLock<KeyCache>>,
    refetch: Arc<tokio::sync::Mutex<()>>,
    /// Bearer tokens are refused: DPoP-bound ones only.
    dpop_required: bool,
    /// Where the API is reached (scheme and host), for the proofs' `htu`; `None`: from the
    /// request.
    public_url: Option<String>,
    replay: Arc<dyn ProofReplayGuard>,
}

/// What [`Verifier::authorize_parts`] needs of a request, on any framework.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The `Authorization` header's value.
    pub authorization: Option<&'a str>,
    /// Every `DPoP` header value (more than one is refused, RFC 9449 §4.3).
    pub dpop: &'a [&'a str],
    /// The request's method, e.g. `GET`.
    pub method: &'a str,
    /// The URL the request was sent to, as the client named it (query and fragment are
    /// ignored).
    pub url: &'a str,
}

impl Verifier {
    /// Reads `jwks_uri` from the issuer's discovery document and fetches the keys.
    pub async fn discover(issuer: &str, audience: &str) -> Result<Self, SetupError> {
        let issuer = issuer.trim_end_matches('/').to_owned();
        let http = http_client()?;
        let url = format!("{issuer}/.well-known/openid-configuration");
        let metadata: serde_json::Value = fetch_json(&http, &url).await?;
        if metadata["issuer"].as_str() != Some(issuer.as_str()) {
            return Err(SetupError::Invalid(format!("{url} names issuer {} instead of {issuer}", metadata["issuer"])));
        }
        let jwks_uri = metadata["jwks_uri"]
            .as_str()
            .ok_or_else(|| SetupError::Invalid(format!("{url} has no jwks_uri")))?
            .to_owned();
        let verifier = Self::with_jwks_uri(&issuer, audience, &jwks_uri)?;
        verifier.refresh_keys().await?;
        Ok(verifier)
    }

    /// A verifier with a known JWKS URL; keys are fetched on first use.
    pub fn with_jwks_uri(issuer: &str, audience: &str, jwks_uri: &str) -> Result<Self, SetupError> {
        Ok(Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            jwks_uri: jwks_uri.to_owned(),
            resource_metadata: None,
            leeway: crate::tokens::verify::DEFAULT_LEEWAY,
            http: http_client()?,
            cache: Arc::new(RwLock::new(KeyCache { keys: HashMap::new(), fetched_at: None })),
            refetch: Arc::new(tokio::sync::Mutex::new(())),
            dpop_required: false,
            public_url: None,
            replay: Arc::new(MemoryReplayCache::default()),
        })
    }

    /// Accepts DPoP-bound tokens only (RFC 9449 §7.1): a bearer token is refused with a
    /// `DPoP` challenge.
    pub fn require_dpop(mut self) -> Self {
        self.dpop_required = true;
        self
    }

    /// The replay guard for DPoP proofs (default: a [`MemoryReplayCache`], which only an
    /// API with a single replica should rely on).
    pub fn with_dpop_replay_guard(mut self, guard: Arc<dyn ProofReplayGuard>) -> Self {
        self.replay = guard;
        self
    }

    /// The scheme and host clients reach the API at (`https://api.example.test`), for the
    /// `htu` of their DPoP proofs. Unset, [`Verifier::authorize`] takes them from the
    /// request (its `Host`, or `Forwarded` / `X-Forwarded-*` headers, which a proxy in
    /// front of the API must then set and a client must not be able to).
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// Seconds of clock difference tolerated when checking `exp`, `nbf` and `iat`
    /// (default 30).
    pub fn with_leeway(mut self, seconds: u32) -> Self {
        self.leeway = i64::from(seconds);
        self
    }

    /// Names the API's protected-resource metadata URL (RFC 9728) in every challenge.
    pub fn with_resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata = Some(url.into());
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies a token: a Lanyard access token for this audience, within its lifetime
    /// (`exp`, and `nbf`/`iat` not in the future). A DPoP-bound token is refused
    /// ([`Rejection::DpopBound`]): it is only good with its proof, see
    /// [`Verifier::verify_dpop`].
    pub async fn verify(&self, token: &str) -> Result<AccessTokenClaims, Rejection> {
        let claims = self.verify_token(token).await?;
        if claims.dpop_jkt().is_some() {
            return Err(Rejection::DpopBound);
        }
        Ok(claims)
    }

    /// Verifies a DPoP-bound token with the proof that came with it (RFC 9449 §4.3, §7.1):
    /// the token as [`Verifier::verify`] checks it, the proof (signed with its `jwk`,
    /// `typ`, `htm` = `method`, `htu` = `url`, `iat` within 60 s plus the leeway, `ath` =
    /// the token's hash), the proof's key = the token's `cnf.jkt`, and the proof's `jti`
    /// new to the replay guard.
    pub async fn verify_dpop(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        url: &str,
    ) -> Result<AccessTokenClaims, DpopFailure> {
        let claims = self.verify_token(token).await.map_err(|r| DpopFailure::Token(r.to_string()))?;
        let Some(jkt) = claims.dpop_jkt() else {
            return Err(DpopFailure::Token("this access token is not DPoP-bound: present it as a Bearer token".into()));
        };
        let urls = [url.to_owned()];
        let check = ProofCheck {
            method,
            urls: &urls,
            now: crate::clock::real_now(),
            leeway: self.leeway,
            access_token: Some(token),
            nonces: None,
        };
        let proof = VerifiedProof::verify(proof, &check).map_err(|e| DpopFailure::Proof(e.to_string()))?;
        if proof.jkt() != jkt {
            return Err(DpopFailure::Token("the DPoP proof's key is not the one the token is bound to".into()));
        }
        if !self.replay.first_use(proof.jkt(), proof.jti(), proof.replay_until()).await {
            return Err(DpopFailure::Proof("this DPoP proof was already used (its jti was seen before)".into()));
        }
        Ok(claims)
    }

    /// The token checks every presentation shares.
    async fn verify_token(&self, token: &str) -> Result<AccessTokenClaims, Rejection> {
        let header = josekit::jws::JwsHeader::from_bytes(&header_bytes(token)?)
            .map_err(|_| Rejection::Signature("the token header is malformed".into()))?;
        let kid = header.key_id().ok_or_else(|| Rejection::Signature("the token has no kid".into()))?.to_owned();
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refetch_for(&kid).await;
                self.key(&kid)
                    .ok_or_else(|| Rejection::Signature("the token was not signed by a key of the issuer".into()))?
            }
        };
        if header.algorithm() != Some(key.algorithm().name()) {
            return Err(Rejection::Signature("the token's alg does not match its key".into()));
        }
        let (payload, header) = josekit::jws::deserialize_compact(token, key.as_ref())
            .map_err(|_| Rejection::Signature("signature does not verify".into()))?;
        let at = crate::tokens::verify::Validity::wall_clock(self.leeway);
        crate::tokens::verify::check_claims(header.token_type(), &payload, &self.issuer, &self.audience, at)
    }

    /// Takes the access token from a request (`Bearer`, or `DPoP` with its proof),
    /// verifies it and checks `required` scopes.
    pub async fn authorize(&self, req: &HttpRequest, required: &[&str]) -> Result<AccessTokenClaims, VerifyError> {
        let header = req.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
        let dpop: Vec<&str> =
            req.headers().get_all(crate::oauth::dpop::DPOP_HEADER).map(|v| v.to_str().unwrap_or("")).collect();
        let url = match &self.public_url {
            Some(base) => format!("{base}{}", req.path()),
            None => {
                let info = req.connection_info();
                format!("{}://{}{}", info.scheme(), info.host(), req.path())
            }
        };
        let parts = RequestParts { authorization: header, dpop: &dpop, method: req.method().as_str(), url: &url };
        self.authorize_parts(&parts, required).await
    }

    /// As [`Verifier::authorize`], from the `Authorization` header's value (any framework).
    /// Bearer tokens only: a DPoP token needs its proof, method and URL
    /// ([`Verifier::authorize_parts`]).
    pub async fn authorize_header(
        &self,
        authorization: Option<&str>,
        required: &[&str],
    ) -> Result<AccessTokenClaims, VerifyError> {
        let parts = RequestParts { authorization, dpop: &[], method: "", url: "" };
        self.authorize_parts(&parts, required).await
    }

    /// As [`Verifier::authorize`], from the parts of a request (any framework).
    pub async fn authorize_parts(
        &self,
        request: &RequestParts<'_>,
        required: &[&str],
    ) -> Result<AccessTokenClaims, VerifyError> {
        let resource_metadata = self.resource_metadata.clone();
        let dpop_error = |failure| VerifyError::Dpop { failure, resource_metadata: resource_metadata.clone() };
        let (scheme, token) = match request.authorization.and_then(|h| h.split_once(' ')) {
            Some((scheme, token)) if !token.trim().is_empty() => (scheme, token.trim()),
            _ if self.dpop_required => return Err(dpop_error(DpopFailure::Missing)),
            _ => return Err(VerifyError::Missing { resource_metadata }),
        };
        let claims = if scheme.eq_ignore_ascii_case("DPoP") {
            let proof = match request.dpop {
                [one] => *one,
                [] => return Err(dpop_error(DpopFailure::Proof("the DPoP header (the proof) is missing".into()))),
                _ => return Err(dpop_error(DpopFailure::Proof("send one DPoP header, not several".into()))),
            };
            self.verify_dpop(token, proof, request.method, request.url).await.map_err(dpop_error)?
        } else if scheme.eq_ignore_ascii_case("Bearer") {
            if self.dpop_required {
                return Err(dpop_error(DpopFailure::Token(
                    "this API accepts DPoP-bound access tokens only (Authorization: DPoP with a proof)".into(),
                )));
            }
            self.verify(token).await.map_err(|rejection| match rejection {
                Rejection::DpopBound => dpop_error(DpopFailure::Token(rejection.to_string())),
                rejection => VerifyError::Invalid { rejection, resource_metadata: resource_metadata.clone() },
            })?
        } else if self.dpop_required {
            return Err(dpop_error(DpopFailure::Missing));
        } else {
            return Err(VerifyError::Missing { resource_metadata });
        };
        let missing: Vec<&str> = required.iter().copied().filter(|s| !claims.has_scope(s)).collect();
        if !missing.is_empty() {
            return Err(VerifyError::InsufficientScope { required: required.join(" "), resource_metadata });
        }
        Ok(claims)
    }

    /// Checks that a verified token's `roles` claim (an array of strings, or one string)
    /// names `role`; a 403 `insufficient_scope` challenge otherwise. The claim reaches the
    /// token when the API lists `roles` in its `access_token_claims`.
    pub fn require_role(&self, claims: &AccessTokenClaims, role: &str) -> Result<(), VerifyError> {
        if claims.has_role(role) {
            return Ok(());
        }
        Err(VerifyError::InsufficientRole {
            required: role.to_owned(),
            resource_metadata: self.resource_metadata.clone(),
        })
    }

    /// The API's protected resource metadata (RFC 9728 §2): its identifier, Lanyard as its
    /// authorization server, the scopes it defines, and bearer tokens in the header only.
    /// With [`Verifier::require_dpop`], also the DPoP algorithms and that DPoP is required.
    pub fn resource_metadata(&self, scopes_supported: &[&str]) -> serde_json::Value {
        let mut metadata = serde_json::json!({
            "resource": self.audience,
            "authorization_servers": [self.issuer],
            "scopes_supported": scopes_supported,
            "bearer_methods_supported": ["header"],
        });
        if self.dpop_required {
            metadata["dpop_signing_alg_values_supported"] = serde_json::json!(crate::oauth::dpop::algs_supported());
            metadata["dpop_bound_access_tokens_required"] = serde_json::Value::Bool(true);
        }
        metadata
    }

    fn key(&self, kid: &str) -> Option<Arc<dyn JwsVerifier>> {
        self.cache.read().ok()?.keys.get(kid).cloned()
    }

    async fn refetch_for(&self, kid: &str) {
        let _one_at_a_time = self.refetch.lock().await;
        let recent = self.cache.read().ok().and_then(|c| c.fetched_at).is_some_and(|t| t.elapsed() < REFETCH_INTERVAL);
        if self.key(kid).is_some() || recent {
            return;
        }
        if let Err(e) = self.refresh_keys().await {
            tracing::warn!(error = %e, "could not refresh the issuer's JWKS");
        }
    }

    /// Fetches the JWKS now.
    pub async fn refresh_keys(&self) -> Result<(), SetupError> {
        let jwks: serde_json::Value = fetch_json(&self.http, &self.jwks_uri).await?;
        let mut keys: HashMap<String, Arc<dyn JwsVerifier>> = HashMap::new();
        for key in jwks["keys"].as_array().into_iter().flatten() {
            let (Some(kid), Some(alg)) = (key["kid"].as_str(), key["alg"].as_str()) else { continue };
            let Ok(jwk) = Jwk::from_bytes(key.to_string().as_bytes()) else { continue };
            let verifier: Option<Arc<dyn JwsVerifier>> = match alg {
                "RS256" => RS256.verifier_from_jwk(&jwk).ok().map(|v| Arc::new(v) as Arc<dyn JwsVerifier>),
                "ES256" => ES256.verifier_from_jwk(&jwk).ok().map(|v| Arc::new(v) as Arc<dyn JwsVerifier>),
                _ => None,
            };
            if let Some(v) = verifier {
                keys.insert(kid.to_owned(), v);
            }
        }
        if let Ok(mut cache) = self.cache.write() {
            *cache = KeyCache { keys, fetched_at: Some(Instant::now()) };
        }
        Ok(())
    }
}

fn header_bytes(token: &str) -> Result<Vec<u8>, Rejection> {
    use base64::Engine;
    let header = token.split('.').next().unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| Rejection::Signature("the token is not a compact JWS".into()))
}

fn http_client() -> Result<reqwest::Client, SetupError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| SetupError::Invalid(e.to_string()))
}

async fn fetch_json(http: &reqwest::Client, url: &str) -> Result<serde_json::Value, SetupError> {
    let fail = |reason: String| SetupError::Fetch { url: url.to_owned(), reason };
    let response = http.get(url).send().await.map_err(|e| fail(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fail(format!("HTTP {}", response.status())));
    }
    response.json().await.map_err(|e| fail(e.to_string()))
}
