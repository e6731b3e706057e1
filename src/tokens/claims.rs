//! The two token types, as distinct types: nothing takes "a JWT" and decides later.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `typ` of access tokens (RFC 9068 §2.1): what keeps them from passing as id_tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// `typ` of id_tokens.
pub const ID_TOKEN_TYP: &str = "JWT";
/// `typ` of signed userinfo responses: a plain JWT, never `at+jwt`, so it cannot pass as
/// an access token; and without `exp`, `iat` or `nonce` it cannot pass as an id_token.
pub const USERINFO_TYP: &str = "JWT";

/// Claims a user, a custom scope or an API can never set: the ones Lanyard itself puts in
/// its tokens (RFC 7519 §4.1, RFC 9068 §2.2, OIDC Core §2 and §3.1.3.6, RFC 8693 §4, RFC
/// 7800 §3, Back-Channel Logout §2.4), the aggregated-claims members (OIDC Core §5.6.2),
/// and the JOSE header names that libraries mix up with claims. A user claim named `aud`
/// or `scope` would let whoever edits users widen what a token grants.
pub const RESERVED_CLAIMS: [&str; 29] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "scope",
    "scp",
    "client_id",
    "azp",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "at_hash",
    "c_hash",
    "s_hash",
    "sid",
    "cnf",
    "act",
    "may_act",
    "events",
    "typ",
    "alg",
    "kid",
    "_claim_names",
    "_claim_sources",
    "token_type",
];

/// Whether Lanyard reserves `name` (see [`RESERVED_CLAIMS`]).
pub fn is_reserved_claim(name: &str) -> bool {
    RESERVED_CLAIMS.contains(&name)
}

/// The longest claim name accepted.
pub const MAX_CLAIM_NAME: usize = 128;

/// Checks the name of a claim that an administrator sets (on a user, in a custom scope, in
/// an API's `access_token_claims`): not reserved, 1–128 characters, a letter first, then
/// letters, digits and `_ - . : /` (so that namespaced names such as
/// `https://example.test/roles` work, and the name survives a command line and a URL).
pub fn check_claim_name(name: &str) -> Result<(), String> {
    if is_reserved_claim(name) {
        return Err(format!("{name:?} is a reserved claim: Lanyard sets it, so it cannot be set or released"));
    }
    if name.is_empty() || name.len() > MAX_CLAIM_NAME {
        return Err(format!("claim name {name:?} must be 1–{MAX_CLAIM_NAME} characters"));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || "_-.:/".contains(c)) || name.ends_with(':') {
        return Err(format!("claim name {name:?} must start with a letter and use only letters, digits and _ - . : /"));
    }
    Ok(())
}

/// One audience or several (RFC 7519 §4.1.3): a string when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn from_list(mut list: Vec<String>) -> Self {
        if list.len() == 1 { Self::One(list.remove(0)) } else { Self::Many(list) }
    }

    pub fn contains(&self, value: &str) -> bool {
        match self {
            Self::One(a) => a == value,
            Self::Many(list) => list.iter().any(|a| a == value),
        }
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Self::One(a) => Box::new(std::iter::once(a.as_str())),
            Self::Many(list) => Box::new(list.iter().map(String::as_str)),
        }
    }
}

/// An RFC 9068 access token: for the API named in `aud`, about a grant. No profile claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    /// Not before (RFC 7519 §4.1.5): Lanyard sets none, but honours one when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub client_id: String,
    pub azp: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The session the grant was made in (absent for client_credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The sign-in's Authentication Context Class Reference (RFC 9068 §2.2.3.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// RFC 8693 §4.1: who acts on the subject's behalf, on a token issued by token
    /// exchange (the exchanging API's client); absent on every other token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The key the token is bound to (RFC 9449 §6.1, RFC 7800 §3.1): present on DPoP
    /// tokens, which are refused without a proof of that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The user's claims the API lists in its `access_token_claims` (`roles`, `tenant`, …;
    /// never for client_credentials tokens). When a token is read, any member not named
    /// above lands here.
    #[serde(flatten)]
    pub claims: Map<String, Value>,
}

/// `cnf` (RFC 7800 §3.1) as Lanyard issues it: the RFC 7638 thumbprint of a DPoP key. A
/// token whose `cnf` holds anything else fails to parse, and so is refused: a binding the
/// verifier does not understand must not be ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// base64url SHA-256 JWK thumbprint (RFC 9449 §6.1).
    pub jkt: String,
}

impl AccessTokenClaims {
    /// The thumbprint of the DPoP key the token is bound to, if it is bound.
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.cnf.as_ref().map(|c| c.jkt.as_str())
    }

    /// A claim beyond the registered ones (`roles`, `tenant`, …), if the token has it.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// The `roles` claim: an array of strings, or one string (non-strings are ignored).
    pub fn roles(&self) -> Vec<&str> {
        match self.claims.get("roles") {
            Some(Value::String(role)) => vec![role.as_str()],
            Some(Value::Array(roles)) => roles.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the `roles` claim names `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles().contains(&role)
    }

    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// The clients that acted on the user's behalf to obtain this token by token exchange
    /// (RFC 8693 §4.1), the one that exchanged it last first; empty for a token issued to
    /// `client_id` directly.
    pub fn actors(&self) -> Vec<&str> {
        self.act.as_ref().map(Actor::chain).unwrap_or_default()
    }
}

/// The `act` claim (RFC 8693 §4.1): the party acting for the token's subject, identified by
/// `sub` (a client_id at Lanyard); its own `act` names the actor before it when a token
/// was exchanged more than once (§4.1: "the most recent actor is the top-level one").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// `sub` acting now, after the actors of `prior` (the subject token's `act`, if any).
    pub fn after(sub: &str, prior: Option<&Actor>) -> Self {
        Self { sub: sub.to_owned(), act: prior.map(|p| Box::new(p.clone())) }
    }

    /// The actors' `sub`s, the current one first.
    pub fn chain(&self) -> Vec<&str> {
        let mut chain = vec![self.sub.as_str()];
        let mut next = self.act.as_deref();
        while let Some(actor) = next {
            chain.push(actor.sub.as_str());
            next = actor.act.as_deref();
        }
        chain
    }
}

/// An OIDC id_token: for the client in `aud`, about the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    pub sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// Authentication Context Class Reference and Methods References (OIDC Core §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// Standard claims released by the granted scopes.
    #[serde(flatten)]
    pub profile: Map<String, Value>,
}

/// `typ` of logout tokens (Back-Channel Logout 1.0 §2.4): what keeps them from passing as
/// id_tokens (and id_tokens from passing as logout tokens).
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";
/// The one event a logout token carries (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A Back-Channel Logout 1.0 logout token: for the client in `aud`, saying that session
/// `sid` of user `sub` ended. Never a `nonce` (§2.4: it would let it pass as an id_token).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// `{"http://schemas.openid.net/event/backchannel-logout": {}}`.
    pub events: Map<String, Value>,
    pub sid: String,
}

impl LogoutTokenClaims {
    /// How long a logout token is valid: long enough for the retries, short enough that a
    /// captured one is soon worthless.
    pub const LIFETIME: i64 = 120;

    pub fn new(issuer: &str, client_id: &str, sub: &str, sid: &str, now: i64) -> Self {
        let mut events = Map::new();
        events.insert(BACKCHANNEL_LOGOUT_EVENT.to_owned(), Value::Object(Map::new()));
        Self {
            iss: issuer.to_owned(),
            sub: sub.to_owned(),
            aud: Audience::One(client_id.to_owned()),
            iat: now,
            exp: now + Self::LIFETIME,
            jti: crate::crypto::random_token(16),
            events,
            sid: sid.to_owned(),
        }
    }
}

/// A signed userinfo response (OIDC Core §5.3.2): the user's claims, plus `iss` and `aud`
/// (= the client) so the client can tell it was made by this server for it. No `nonce`,
/// `exp` or `iat`: it is an answer, not a token.
#[derive(Debug, Clone, Serialize)]
pub struct UserinfoClaims {
    pub iss: String,
    pub aud: Audience,
    #[serde(flatten)]
    pub claims: Map<String, Value>,
}
