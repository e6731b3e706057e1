//! Protocol errors and how each reaches the wire: an HTML page, an error redirect
//! (RFC 6749 §4.1.2.1), a JSON body (§5.2) or a Bearer challenge (RFC 6750 §3).

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::store::StoreError;
use crate::web::pages;

/// A failure at `/authorize` (and the login and consent steps that continue it).
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect_uri cannot be trusted: show a page, never redirect
    /// (RFC 6749 §4.1.2.1).
    Page { status: StatusCode, title: &'static str, message: String },
    /// Tell the client, at its registered redirect_uri.
    Redirect(ErrorRedirect),
    /// The store failed; nothing the caller did.
    Unavailable,
}

/// An error sent back to a verified redirect_uri, with `state` and `iss` (RFC 9207).
#[derive(Debug)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub error: &'static str,
    pub description: String,
    pub state: Option<String>,
    pub iss: String,
    /// How the client asked to be answered (errors travel the same way as codes).
    pub response_mode: ResponseMode,
}

impl AuthorizeError {
    pub fn page(title: &'static str, message: impl Into<String>) -> Self {
        Self::Page { status: StatusCode::BAD_REQUEST, title, message: message.into() }
    }
}

impl fmt::Display for AuthorizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Page { message, .. } => f.write_str(message),
            Self::Redirect(r) => write!(f, "{}: {}", r.error, r.description),
            Self::Unavailable => f.write_str("temporarily unavailable"),
        }
    }
}

impl From<crate::state::FindClientError> for AuthorizeError {
    fn from(e: crate::state::FindClientError) -> Self {
        match e {
            crate::state::FindClientError::Store(e) => e.into(),
            crate::state::FindClientError::Metadata(e) => {
                Self::page("Unknown application (invalid_client)", format!("The client could not be used: {e}."))
            }
        }
    }
}

impl From<crate::state::FindClientError> for TokenError {
    fn from(e: crate::state::FindClientError) -> Self {
        match e {
            crate::state::FindClientError::Store(e) => e.into(),
            crate::state::FindClientError::Metadata(e) => TokenError::invalid_client(e.to_string()),
        }
    }
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure during authorization");
        Self::Unavailable
    }
}

/// How an authorization response reaches a verified redirect_uri (OAuth 2.0 Multiple
/// Response Type Encoding Practices §2.1): query parameters on a redirect (the default for
/// `response_type=code`), or a form the browser POSTs (OAuth 2.0 Form Post Response Mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    #[default]
    Query,
    FormPost,
}

impl ResponseMode {
    /// The mode named by `response_mode`, if Lanyard supports it.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "query" => Some(Self::Query),
            "form_post" => Some(Self::FormPost),
            _ => None,
        }
    }

    /// Sends `params` to `redirect_uri` (already verified against the client) this way.
    pub fn respond(self, redirect_uri: &str, params: &[(&str, &str)]) -> HttpResponse {
        match self {
            Self::Query => redirect_with(redirect_uri, params),
            Self::FormPost => form_post(redirect_uri, params),
        }
    }
}

/// Form Post Response Mode §2: an HTML page whose form POSTs `params` to the redirect_uri.
/// The CSP allows no inline script, so a static script submits it; a visible button does
/// the same without JavaScript. `no-store`: the page holds a code.
fn form_post(redirect_uri: &str, params: &[(&str, &str)]) -> HttpResponse {
    let page = pages::FormPostPage { action: redirect_uri, fields: params.iter().map(|(k, v)| (*k, *v)).collect() };
    let mut response = pages::html(StatusCode::OK, &page);
    // What the protocol recorder reads as this response's redirect.
    let fields = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    response.extensions_mut().insert(crate::activity::FormPosted { action: redirect_uri.to_owned(), fields });
    response
}

/// Appends parameters to a redirect URI, keeping its own query (RFC 6749 §3.1.2).
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> HttpResponse {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            // Without parameters the URI is left exactly as registered (no stray `?`).
            if !params.is_empty() {
                let mut query = url.query_pairs_mut();
                for (k, v) in params {
                    query.append_pair(k, v);
                }
            }
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, url.as_str()))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish()
        }
        Err(_) => pages::message(StatusCode::BAD_REQUEST, "Invalid redirect", "The redirect URI is not valid."),
    }
}

impl ResponseError for AuthorizeError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Page { status, .. } => *status,
            Self::Redirect(r) if r.response_mode == ResponseMode::FormPost => StatusCode::OK,
            Self::Redirect(_) => StatusCode::SEE_OTHER,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Page { status, title, message } => pages::message(*status, title, message),
            Self::Redirect(r) => {
                let mut params = vec![("error", r.error), ("error_description", r.description.as_str())];
                if let Some(state) = &r.state {
                    params.push(("state", state));
                }
                params.push(("iss", &r.iss));
                r.response_mode.respond(&r.redirect_uri, &params)
            }
            Self::Unavailable => pages::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Lanyard cannot reach its database right now. Please try again in a moment.",
            ),
        }
    }
}

/// An RFC 6749 §5.2 error from the token endpoint (and introspection, revocation).
#[derive(Debug)]
pub struct TokenError {
    pub error: &'static str,
    pub description: String,
    /// A DPoP nonce to send along (`DPoP-Nonce`, RFC 9449 §8), when nonces are required.
    pub dpop_nonce: Option<String>,
}

impl TokenError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self { error, description: description.into(), dpop_nonce: None }
    }

    /// This error, answered with `DPoP-Nonce: nonce` when there is one.
    pub fn with_dpop_nonce(mut self, nonce: Option<String>) -> Self {
        self.dpop_nonce = nonce;
        self
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new("invalid_client", description)
    }

    /// RFC 9449 §5: the DPoP proof is missing where it is required, or invalid.
    pub fn invalid_dpop_proof(description: impl Into<String>) -> Self {
        Self::new("invalid_dpop_proof", description)
    }
}

impl From<crate::oauth::dpop::DpopRefusal> for TokenError {
    fn from(e: crate::oauth::dpop::DpopRefusal) -> Self {
        use crate::oauth::dpop::{DpopRefusal, ProofError};
        match e {
            DpopRefusal::Proof(ProofError::Invalid(reason)) => Self::invalid_dpop_proof(reason),
            // §8: 400 use_dpop_nonce; the handler adds the nonce to every answer.
            DpopRefusal::Proof(ProofError::UseNonce(reason)) => Self::new("use_dpop_nonce", reason),
            DpopRefusal::Unavailable(e) => e.into(),
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure at a token endpoint");
        Self::new("temporarily_unavailable", "the server cannot reach its database; retry shortly")
    }
}

impl From<crate::tokens::keys::KeyError> for TokenError {
    fn from(e: crate::tokens::keys::KeyError) -> Self {
        tracing::error!(error = %e, "signing failed");
        Self::new("server_error", "the token could not be signed")
    }
}

impl ResponseError for TokenError {
    fn status_code(&self) -> StatusCode {
        match self.error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store")).insert_header((header::PRAGMA, "no-cache"));
        // RFC 9110 §15.5.2: every 401 carries a challenge (RFC 6749 §5.2: Basic).
        if self.error == "invalid_client" {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"lanyard\"")));
        }
        if let Some(nonce) = self.dpop_nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
            response.insert_header((crate::oauth::dpop::NONCE_HEADER, nonce));
        }
        response.json(json!({ "error": self.error, "error_description": self.description }))
    }
}

/// An RFC 6750 §3 error for a protected resource (userinfo), or its DPoP twin (RFC 9449
/// §7.1): the challenge's scheme is the one the token was (or must be) presented with.
#[derive(Debug)]
pub struct BearerError {
    /// `None`: no token was sent (§3.1: no error code then).
    pub error: Option<&'static str>,
    pub description: String,
    pub status: StatusCode,
    /// Challenge with `DPoP` (RFC 9449 §7.1) instead of `Bearer`.
    pub dpop: bool,
    /// A DPoP nonce to send along (`DPoP-Nonce`, RFC 9449 §9).
    pub dpop_nonce: Option<String>,
}

impl BearerError {
    fn new(error: Option<&'static str>, description: impl Into<String>, status: StatusCode) -> Self {
        Self { error, description: description.into(), status, dpop: false, dpop_nonce: None }
    }

    pub fn missing() -> Self {
        Self::new(None, "an access token is required", StatusCode::UNAUTHORIZED)
    }

    pub fn invalid_token(description: impl Into<String>) -> Self {
        Self::new(Some("invalid_token"), description, StatusCode::UNAUTHORIZED)
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(Some("invalid_request"), description, StatusCode::BAD_REQUEST)
    }

    pub fn insufficient_scope(description: impl Into<String>) -> Self {
        Self::new(Some("insufficient_scope"), description, StatusCode::FORBIDDEN)
    }

    /// This error with a `DPoP` challenge (the token is, or must be, DPoP-bound).
    pub fn dpop(mut self) -> Self {
        self.dpop = true;
        self
    }

    /// This error, answered with `DPoP-Nonce: nonce` when there is one.
    pub fn with_dpop_nonce(mut self, nonce: Option<String>) -> Self {
        self.dpop_nonce = nonce;
        self
    }
}

impl From<crate::oauth::dpop::DpopRefusal> for BearerError {
    fn from(e: crate::oauth::dpop::DpopRefusal) -> Self {
        use crate::oauth::dpop::{DpopRefusal, ProofError};
        match e {
            // RFC 9449 §7.1 and §9: 401 with a DPoP challenge.
            DpopRefusal::Proof(ProofError::Invalid(reason)) => {
                Self::new(Some("invalid_dpop_proof"), reason, StatusCode::UNAUTHORIZED).dpop()
            }
            DpopRefusal::Proof(ProofError::UseNonce(reason)) => {
                Self::new(Some("use_dpop_nonce"), reason, StatusCode::UNAUTHORIZED).dpop()
            }
            DpopRefusal::Unavailable(e) => e.into(),
        }
    }
}

impl fmt::Display for BearerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error.unwrap_or("unauthorized"), self.description)
    }
}

impl From<StoreError> for BearerError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure at a protected resource");
        Self::new(
            Some("temporarily_unavailable"),
            "the server cannot reach its database; retry shortly",
            StatusCode::SERVICE_UNAVAILABLE,
        )
    }
}

impl From<crate::tokens::keys::KeyError> for BearerError {
    fn from(e: crate::tokens::keys::KeyError) -> Self {
        tracing::error!(error = %e, "could not sign a response at a protected resource");
        Self::new(
            Some("temporarily_unavailable"),
            "the server cannot sign the response; retry shortly",
            StatusCode::SERVICE_UNAVAILABLE,
        )
    }
}

impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        // Quotes and backslashes can't appear in a quoted-string unescaped; descriptions are
        // ours, but keep the header well-formed whatever they say.
        let description = self.description.replace(['"', '\\'], "'");
        // RFC 9449 §7.1: a DPoP challenge names the algorithms proofs may use.
        let algs = crate::oauth::dpop::algs_supported().join(" ");
        let dpop = format!("DPoP realm=\"lanyard\", algs=\"{algs}\"");
        let challenges = match (self.error, self.dpop) {
            // No token: either scheme will do (RFC 9110 §11.6.1: one header per challenge).
            (None, _) => vec!["Bearer realm=\"lanyard\"".to_owned(), dpop],
            (Some(error), false) => {
                vec![format!("Bearer realm=\"lanyard\", error=\"{error}\", error_description=\"{description}\"")]
            }
            (Some(error), true) => vec![format!(
                "DPoP realm=\"lanyard\", error=\"{error}\", error_description=\"{description}\", algs=\"{algs}\""
            )],
        };
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        for challenge in challenges {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.append_header((header::WWW_AUTHENTICATE, value));
            }
        }
        if let Some(nonce) = self.dpop_nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
            response.insert_header((crate::oauth::dpop::NONCE_HEADER, nonce));
        }
        // RFC 6750 §3.1: a request without a token gets no error code.
        match self.error {
            Some(error) => response.json(json!({ "error": error, "error_description": self.description })),
            None => response.json(json!({ "error_description": self.description })),
        }
    }
}
