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

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use josekit::jwk::Jwk;
use josekit::jws::{ES256, JwsVerifier, RS256};

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
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { .. } => f.write_str("an access token is required"),
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
        let mut challenge = String::from("Bearer realm=\"api\"");
        let (error, metadata) = match self {
            Self::Missing { resource_metadata } => (None, resource_metadata),
            Self::Invalid { resource_metadata, .. } => (Some("invalid_token"), resource_metadata),
            Self::InsufficientScope { resource_metadata, required } => {
                challenge.push_str(&format!(", scope=\"{required}\""));
                (Some("insufficient_scope"), resource_metadata)
            }
            Self::InsufficientRole { resource_metadata, .. } => (Some("insufficient_scope"), resource_metadata),
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
        })
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
    /// (`exp`, and `nbf`/`iat` not in the future).
    pub async fn verify(&self, token: &str) -> Result<AccessTokenClaims, Rejection> {
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

    /// Takes the bearer token from a request, verifies it and checks `required` scopes.
    pub async fn authorize(&self, req: &HttpRequest, required: &[&str]) -> Result<AccessTokenClaims, VerifyError> {
        let header = req.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
        self.authorize_header(header, required).await
    }

    /// As [`Verifier::authorize`], from the `Authorization` header's value (any framework).
    pub async fn authorize_header(
        &self,
        authorization: Option<&str>,
        required: &[&str],
    ) -> Result<AccessTokenClaims, VerifyError> {
        let resource_metadata = self.resource_metadata.clone();
        let Some(token) = authorization.and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        else {
            return Err(VerifyError::Missing { resource_metadata });
        };
        let claims = self
            .verify(token.trim())
            .await
            .map_err(|rejection| VerifyError::Invalid { rejection, resource_metadata: resource_metadata.clone() })?;
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
    pub fn resource_metadata(&self, scopes_supported: &[&str]) -> serde_json::Value {
        serde_json::json!({
            "resource": self.audience,
            "authorization_servers": [self.issuer],
            "scopes_supported": scopes_supported,
            "bearer_methods_supported": ["header"],
        })
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
