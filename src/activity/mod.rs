//! The protocol recorder (test lab, development features only): every protocol exchange
//! (authorize and its sign-in and consent steps, token, userinfo, introspect, revoke,
//! logout, register, and the back-channel logout tokens Lanyard sends) is kept in the
//! database (`activity`) with its parameters, its outcome and the tokens it carried, decoded
//! and explained, so that a failed flow shows why in one click (`/admin/activity`), one
//! request (`GET /admin/api/activity`) or one call (`TestIdp::activity`).
//!
//! Secrets never reach the table: passwords, client secrets, codes, refresh tokens, PKCE
//! verifiers, assertions and credentials are masked (`abcd…(masked, 43 chars)`, see
//! [`mask`]), and a JWT is kept only as its decoded header and claims with the token
//! inspector's report (`crate::web::token_report`): without its signature it is no token.
//!
//! [`middleware::record`] wraps the app (on only with development features: off, it is not
//! even in the chain); it records the paths in [`middleware::RECORDED`]. Handlers that
//! know the client and the user may say so with [`note_client`] and [`note_user`]; otherwise
//! the recorder finds them in the parameters and the tokens. Entries are analysed and written
//! by one task per server ([`Recorder`]), off the request path and in order; readers call
//! [`Recorder::flush`] first, so a test reading right after a request sees it.

pub mod mask;
pub mod middleware;
mod recorder;

use actix_web::{HttpMessage, HttpRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::middleware::record;
pub use self::recorder::{Draft, Recorder};
use crate::registry::user::User;

/// Who an exchange was about, as the handler knows it (a request extension).
#[derive(Debug, Clone, Default)]
pub struct ActivityContext {
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub username: Option<String>,
}

/// Names the client of the request being handled, for the recorder (cheap: one request
/// extension; nothing is recorded unless development features are on).
pub fn note_client(req: &HttpRequest, client_id: &str) {
    update(req, |context| context.client_id = Some(client_id.to_owned()));
}

/// Names the user of the request being handled, for the recorder.
pub fn note_user(req: &HttpRequest, user: &User) {
    update(req, |context| {
        context.user_id = Some(user.id.clone());
        context.username = Some(user.username.clone());
    });
}

/// Names the user of the request being handled by id (the recorder finds the username).
pub fn note_user_id(req: &HttpRequest, user_id: &str) {
    update(req, |context| context.user_id = Some(user_id.to_owned()));
}

fn update(req: &HttpRequest, change: impl FnOnce(&mut ActivityContext)) {
    let mut extensions = req.extensions_mut();
    let mut context = extensions.remove::<ActivityContext>().unwrap_or_default();
    change(&mut context);
    extensions.insert(context);
}

/// An HTML page's title and sentence (set on the response by `pages::message`), which the
/// recorder reads as the error of a failed exchange that answered with a page.
#[derive(Debug, Clone)]
pub struct PageMessage {
    pub title: String,
    pub message: String,
}

/// A form_post authorization response (OAuth 2.0 Form Post Response Mode): where it goes
/// and what it carries, as a redirect's Location says it for the query mode.
#[derive(Debug, Clone)]
pub struct FormPosted {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

/// One recorded exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub id: i64,
    /// Protocol clock, seconds since the Unix epoch.
    pub at: i64,
    pub duration_ms: i64,
    /// `authorize`, `login`, `consent`, `token`, `userinfo`, `introspect`, `revoke`,
    /// `logout`, `register` or `backchannel_logout`.
    pub endpoint: String,
    pub method: String,
    pub client_id: Option<String>,
    /// The user's username, when known.
    pub user: Option<String>,
    /// The user's id (the public `sub`), when known.
    pub user_id: Option<String>,
    pub status: u16,
    pub error: Option<String>,
    pub error_description: Option<String>,
    #[serde(flatten)]
    pub detail: Detail,
}

impl Entry {
    /// Whether the exchange failed: a status of 400 or more, or an error (a redirect).
    pub fn failed(&self) -> bool {
        self.status >= 400 || self.error.is_some()
    }

    /// The decoded token that came from `source` (e.g. `"response access_token"`).
    pub fn token(&self, source: &str) -> Option<&DecodedToken> {
        self.detail.tokens.iter().find(|t| t.source == source)
    }

    /// The (masked) value of a parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.detail.params.iter().find(|p| p.name == name).map(|p| p.value.as_str())
    }
}

/// What an entry holds beyond its columns (stored as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Detail {
    /// The request path (or, for a back-channel delivery, the URL it was sent to).
    pub path: String,
    /// Query, form, header and redirect parameters, secrets masked.
    #[serde(default)]
    pub params: Vec<Param>,
    /// A JSON request body (registration), secrets masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Where the browser was sent, without the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    /// A JSON response body, secrets masked and tokens replaced by their masked form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    /// The JWTs the exchange carried, decoded and explained.
    #[serde(default)]
    pub tokens: Vec<DecodedToken>,
    /// A sentence about the outcome (the page shown; a delivery's attempts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A parameter as recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    /// The value, or its masked form.
    pub value: String,
    /// `query`, `form`, `header` or `redirect` (parameters sent back to the client).
    pub source: String,
    pub masked: bool,
}

/// A JWT, decoded (never its signature) and explained as the token inspector does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecodedToken {
    /// Where it was seen: `request id_token_hint`, `response access_token`, …
    pub source: String,
    /// `access token`, `id_token`, `logout token`, `request object`, `client assertion`, `JWT`.
    pub kind: String,
    pub summary: String,
    /// `valid`, `expired`, `revoked`, `not-yet-valid`, `invalid` or `client-signed`.
    pub verdict: String,
    pub checks: Vec<TokenCheck>,
    /// (claim, time in words) for the time claims.
    pub times: Vec<(String, String)>,
    pub header: Value,
    pub claims: Value,
}

/// One check of a [`DecodedToken`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenCheck {
    pub name: String,
    /// `ok`, `bad` or `info`.
    pub outcome: String,
    pub text: String,
}

/// Which entries to read ([`Recorder::list`]); every filter is optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filter {
    pub client_id: Option<String>,
    /// A username or a user id.
    pub user: Option<String>,
    pub endpoint: Option<String>,
    #[serde(default)]
    pub errors_only: bool,
    /// Only entries newer than this id.
    pub since: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

impl Filter {
    /// Entries of one client.
    pub fn client(client_id: &str) -> Self {
        Self { client_id: Some(client_id.to_owned()), ..Self::default() }
    }

    /// Entries of one user (username or id).
    pub fn user(user: &str) -> Self {
        Self { user: Some(user.to_owned()), ..Self::default() }
    }

    /// Entries of one endpoint (`token`, …).
    pub fn endpoint(endpoint: &str) -> Self {
        Self { endpoint: Some(endpoint.to_owned()), ..Self::default() }
    }
}
