//! Dynamic client registration (RFC 7591) at `POST /register`, and the client configuration
//! endpoint (RFC 7592) at `/register/{client_id}`, where a registration access token reads
//! or deletes its own client.
//!
//! Who may register depends on `registration`: in `token` mode, whoever holds the initial
//! access token (for automated test setups), any kind of client; in `open` mode, anyone,
//! public clients only, a few registrations per client IP. Otherwise `/register` is not
//! served at all (404).

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, AUTHORIZATION, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::redirect_uri::RedirectUri;
use super::scope::ScopeSet;
use crate::config::Registration;
use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::registry::client::{Client, ClientSpec};
use crate::registry::{self, RegistryError};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::throttle::Reservation;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/register", web::post().to(register))
        .service(web::resource("/register/{client_id}").get(read).delete(delete));
}

/// Registration requests one client IP may make in `open` mode within the login
/// throttle's window (15 minutes) before it must wait [`OPEN_LOCKOUT`]. Counted in the
/// database, so that the limit holds across replicas.
pub const OPEN_REGISTRATIONS_PER_IP: i64 = 10;
/// Seconds an IP waits once it reached [`OPEN_REGISTRATIONS_PER_IP`].
pub const OPEN_LOCKOUT: i64 = 3600;

/// The scopes a client registered at `/register` without `scope` may request.
const DEFAULT_SCOPE: &str = "openid profile email address phone";
/// … and with the refresh_token grant registered.
const DEFAULT_SCOPE_WITH_REFRESH: &str = "openid profile email address phone offline_access";

/// The client metadata `/register` understands. RFC 7591 §2: other members are ignored.
const UNDERSTOOD: [&str; 31] = [
    "client_name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "scope",
    "token_endpoint_auth_method",
    "default_api",
    "first_party",
    "require_pkce",
    "id_token_signed_response_alg",
    "refresh_token_ttl",
    "refresh_token_idle_ttl",
    "jwks",
    "jwks_uri",
    "token_endpoint_auth_signing_alg",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "frontchannel_logout_uri",
    "frontchannel_logout_session_required",
    "id_token_claims",
    // Pairwise subjects.
    "subject_type",
    "sector_identifier_uri",
    // Request objects:
    "request_uris",
    "request_object_signing_alg",
    // Signed userinfo and display metadata.
    "userinfo_signed_response_alg",
    "logo_uri",
    "client_uri",
    "policy_uri",
    "tos_uri",
    // Pushed authorization requests (RFC 9126 §6). Not `refresh_token_reuse_interval`:
    // Lanyard's own, it weakens refresh token rotation, so only an administrator sets it.
    "require_pushed_authorization_requests",
    // DPoP (RFC 9449 §5.2).
    "dpop_bound_access_tokens",
];

/// A client's registration as RFC 7591 §3.2.1 shows it (with Lanyard's own settings beside
/// the standard ones); the secret and the registration access token only in the response
/// that creates them. The admin API shows clients the same way.
#[derive(Debug, Serialize)]
pub struct ClientMetadata<'a> {
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    /// Required with a secret; 0: it never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_expires_at: Option<i64>,
    client_id_issued_at: i64,
    client_name: &'a str,
    redirect_uris: &'a [RedirectUri],
    post_logout_redirect_uris: &'a [RedirectUri],
    grant_types: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_types: Option<[&'static str; 1]>,
    scope: &'a ScopeSet,
    token_endpoint_auth_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_api: Option<&'a str>,
    first_party: bool,
    require_pkce: bool,
    id_token_signed_response_alg: &'static str,
    /// Lanyard's: scope claims in the id_token (`all`) or at userinfo only (`minimal`).
    id_token_claims: &'static str,
    refresh_token_ttl: i64,
    refresh_token_idle_ttl: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks: Option<&'a crate::registry::client_keys::ClientJwks>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_endpoint_auth_signing_alg: Option<&'static str>,
    backchannel_logout_uri: Option<&'a str>,
    backchannel_logout_session_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    frontchannel_logout_uri: Option<&'a str>,
    frontchannel_logout_session_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_access_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_client_uri: Option<String>,
    // Pairwise subjects.
    subject_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sector_identifier_uri: Option<&'a str>,
    // Request objects:
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    request_uris: &'a [crate::oauth::request_object::RequestUri],
    #[serde(skip_serializing_if = "Option::is_none")]
    request_object_signing_alg: Option<&'static str>,
    // Signed userinfo and display metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    userinfo_signed_response_alg: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logo_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tos_uri: Option<&'a str>,
    // Pushed authorization requests and refresh token reuse.
    require_pushed_authorization_requests: bool,
    /// Lanyard's own, set by an administrator only (`/register` ignores it).
    refresh_token_reuse_interval: i64,
    // DPoP (RFC 9449 §5.2).
    dpop_bound_access_tokens: bool,
}

impl<'a> ClientMetadata<'a> {
    /// `secret`: the client's secret in the clear, when it was just generated.
    pub fn new(client: &'a Client, secret: Option<&'a str>) -> Self {
        Self {
            client_id: &client.client_id,
            client_secret: secret,
            client_secret_expires_at: secret.map(|_| 0),
            client_id_issued_at: client.created_at,
            client_name: &client.name,
            redirect_uris: &client.redirect_uris,
            post_logout_redirect_uris: &client.post_logout_redirect_uris,
            grant_types: client.grant_types.iter().map(|g| g.as_str()).collect(),
            response_types: None,
            scope: &client.scope,
            token_endpoint_auth_method: client.auth_method.as_str(),
            default_api: client.default_api.as_deref(),
            first_party: client.first_party,
            require_pkce: client.require_pkce,
            id_token_signed_response_alg: client.id_token_alg.as_str(),
            id_token_claims: client.id_token_claims.as_str(),
            refresh_token_ttl: client.refresh_token_ttl,
            refresh_token_idle_ttl: client.refresh_token_idle_ttl,
            jwks: client.jwks.as_ref(),
            jwks_uri: client.jwks_uri.as_deref(),
            token_endpoint_auth_signing_alg: client.assertion_alg.map(|a| a.as_str()),
            backchannel_logout_uri: client.backchannel_logout_uri.as_ref().map(url::Url::as_str),
            backchannel_logout_session_required: client.backchannel_logout_session_required,
            frontchannel_logout_uri: client.frontchannel_logout_uri.as_ref().map(url::Url::as_str),
            frontchannel_logout_session_required: client.frontchannel_logout_session_required,
            registration_access_token: None,
            registration_client_uri: None,
            subject_type: client.subject_type.as_str(),
            sector_identifier_uri: client.sector_identifier_uri.as_ref().map(url::Url::as_str),
            request_uris: &client.request_uris,
            request_object_signing_alg: client.request_object_alg.map(|a| a.as_str()),
            // Signed userinfo and display metadata.
            userinfo_signed_response_alg: client.userinfo_alg.map(|a| a.as_str()),
            logo_uri: client.logo_uri.as_ref().map(url::Url::as_str),
            client_uri: client.client_uri.as_ref().map(url::Url::as_str),
            policy_uri: client.policy_uri.as_ref().map(url::Url::as_str),
            tos_uri: client.tos_uri.as_ref().map(url::Url::as_str),
            require_pushed_authorization_requests: client.require_par,
            refresh_token_reuse_interval: client.refresh_token_reuse_interval,
            dpop_bound_access_tokens: client.dpop_bound_access_tokens,
        }
    }

    /// Adds what RFC 7592 §3 tells a registered client: where its registration lives, and
    /// (once) the token that manages it.
    fn registered(mut self, state: &AppState, token: Option<&'a str>) -> Self {
        self.response_types = Some(["code"]);
        self.registration_access_token = token;
        self.registration_client_uri = Some(client_uri(state, self.client_id));
        self
    }
}

fn client_uri(state: &AppState, client_id: &str) -> String {
    state.config.issuer.endpoint(&format!("/register/{client_id}"))
}

/// The token of an `Authorization: Bearer …` header (RFC 6750 §2.1; the scheme is
/// case-insensitive), if one was sent.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let header = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// How a registration request was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// With the initial access token.
    Token,
    /// Without one: public clients only.
    Open,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Open => "open",
        }
    }
}

async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, RegisterError> {
    let mode = admit(&req, &state).await?;
    let spec = client_spec(&body, mode, state.config.registration_require_pkce)?;
    let fetch = registry::FetchPolicy::for_dev_mode(state.config.dev_login);
    let new = registry::create_client_with(&state.store, spec, fetch).await?;
    let client = &new.client;
    let token = random_token(32);
    if let Err(e) = state.store.set_registration_token(&client.client_id, Some(&sha256_hex(&token))).await {
        // A registered client that nobody can manage is worse than none.
        let _ = state.store.delete_client(&client.client_id).await;
        return Err(e.into());
    }
    let detail = format!("{} client, {} mode, from {}", client.client_type.as_str(), mode.as_str(), client_ip(&req));
    if let Err(e) = state.store.audit("registration", "client.register", &client.client_id, &detail).await {
        tracing::error!(error = %e, client = %client.client_id, "could not write the audit log");
    }
    tracing::info!(client = %client.client_id, mode = mode.as_str(), "client registered dynamically");
    let metadata = ClientMetadata::new(client, new.secret.as_deref()).registered(&state, Some(&token));
    Ok(no_store(HttpResponse::Created()).json(metadata))
}

/// RFC 7592 §2.1: the client's current registration (never its secret: only a hash is kept).
async fn read(
    req: HttpRequest,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
) -> Result<HttpResponse, RegisterError> {
    let client = managed_client(&req, &state, &client_id).await?;
    Ok(no_store(HttpResponse::Ok()).json(ClientMetadata::new(&client, None).registered(&state, None)))
}

/// RFC 7592 §2.3: deletes the client with its consents, codes and grants.
async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
) -> Result<HttpResponse, RegisterError> {
    let client = managed_client(&req, &state, &client_id).await?;
    state.store.delete_client(&client.client_id).await?;
    if let Err(e) = state.store.audit("registration", "client.delete", &client.client_id, "RFC 7592").await {
        tracing::error!(error = %e, client = %client.client_id, "could not write the audit log");
    }
    Ok(HttpResponse::NoContent().insert_header((header::CACHE_CONTROL, "no-store")).finish())
}

/// Lets a registration request in, or says why not.
async fn admit(req: &HttpRequest, state: &AppState) -> Result<Mode, RegisterError> {
    match &state.config.registration {
        Registration::Token(Some(expected)) => {
            // Hashes first: equal lengths, so the comparison leaks nothing about the length.
            let presented = bearer_token(req).ok_or(RegisterError::InvalidToken)?;
            let matches = constant_time_eq(sha256_hex(presented).as_bytes(), sha256_hex(expected.as_str()).as_bytes());
            if matches { Ok(Mode::Token) } else { Err(RegisterError::InvalidToken) }
        }
        Registration::Open => {
            let key = format!("register:{}", client_ip(req));
            // Every attempt counts, valid or not: the limit is on requests, not on clients.
            match state.store.reserve_attempt(&key, OPEN_REGISTRATIONS_PER_IP, OPEN_LOCKOUT).await? {
                Reservation::Granted { count } => {
                    state.store.lock_if_limit_reached(&key, count, OPEN_REGISTRATIONS_PER_IP, OPEN_LOCKOUT).await?;
                    Ok(Mode::Open)
                }
                Reservation::Refused { retry_after } => Err(RegisterError::RateLimited { retry_after }),
            }
        }
        Registration::Off | Registration::Token(None) => Err(RegisterError::NotServed),
    }
}

/// The client whose registration access token the request carries (RFC 7592 §3: a token
/// for another client, an unknown client and a missing token are all the same 401).
async fn managed_client(req: &HttpRequest, state: &AppState, client_id: &str) -> Result<Client, RegisterError> {
    if !state.config.registration.enabled() {
        return Err(RegisterError::NotServed);
    }
    let presented = bearer_token(req).ok_or(RegisterError::InvalidToken)?;
    let stored = state.store.registration_token_hash(client_id).await?.ok_or(RegisterError::InvalidToken)?;
    if !constant_time_eq(sha256_hex(presented).as_bytes(), stored.as_bytes()) {
        return Err(RegisterError::InvalidToken);
    }
    state.store.client(client_id).await?.ok_or(RegisterError::InvalidToken)
}

/// Reads the metadata a client sent (RFC 7591 §3.1) into a [`ClientSpec`], ignoring what
/// Lanyard does not understand (§2) and refusing what only the server may choose.
/// `require_pkce`: the `registration_require_pkce` setting, the default for confidential
/// clients that do not send Lanyard's own `require_pkce`.
fn client_spec(body: &[u8], mode: Mode, require_pkce: bool) -> Result<ClientSpec, RegisterError> {
    let invalid = RegisterError::InvalidMetadata;
    let metadata: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(invalid("the body must be a JSON object of client metadata".into())),
        Err(e) => return Err(invalid(format!("the body is not valid JSON: {e}"))),
    };
    for member in ["client_id", "client_secret"] {
        if metadata.contains_key(member) {
            return Err(invalid(format!("{member} is issued by the server and must not be sent")));
        }
    }
    // Only the authorization code flow exists here (RFC 7591 §2.1, RFC 9700 §2.1.2).
    if let Some(types) = metadata.get("response_types") {
        let only_code = types.as_array().is_some_and(|t| t.iter().all(|r| r.as_str() == Some("code")));
        if !only_code {
            return Err(invalid("response_types: only \"code\" is supported".into()));
        }
    }
    let understood: Map<String, Value> =
        metadata.into_iter().filter(|(name, _)| UNDERSTOOD.contains(&name.as_str())).collect();
    let mut spec: ClientSpec = serde_json::from_value(Value::Object(understood)).map_err(|e| invalid(e.to_string()))?;
    // RFC 7591 §2: without `scope` the server picks a default. A registered client may ask
    // for the OpenID Connect scopes (the user still consents), and for offline_access when
    // it registered the refresh grant: what a generic RP, and certification, expects.
    if spec.scope.is_none() {
        let refresh = spec.grant_types.iter().any(|g| g == "refresh_token");
        let scope = if refresh { DEFAULT_SCOPE_WITH_REFRESH } else { DEFAULT_SCOPE };
        spec.scope = Some(scope.to_owned());
    }
    // No standard metadata says "I won't send PKCE"; the operator's setting decides for
    // confidential clients (a public client always needs PKCE, RFC 9700 §2.1.1).
    let confidential = spec.token_endpoint_auth_method.as_deref() != Some("none");
    if !require_pkce && confidential && spec.require_pkce.is_none() {
        spec.require_pkce = Some(false);
    }
    if mode == Mode::Open {
        if spec.token_endpoint_auth_method.as_deref() != Some("none") {
            return Err(invalid(
                "open registration is for public clients only: send \"token_endpoint_auth_method\": \"none\"".into(),
            ));
        }
        if spec.first_party == Some(true) {
            return Err(invalid("first_party: an openly registered client always asks for consent".into()));
        }
    }
    Ok(spec)
}

/// The client IP counted by the open-mode limit: the TCP peer, as for login throttling.
fn client_ip(req: &HttpRequest) -> String {
    crate::web::login::client_ip(req)
}

fn no_store(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response.insert_header((header::CACHE_CONTROL, "no-store")).insert_header((header::PRAGMA, "no-cache"));
    response
}

/// A failure at `/register` (RFC 7591 §3.2.2) or `/register/{client_id}` (RFC 7592).
#[derive(Debug)]
pub enum RegisterError {
    /// Registration is off: the endpoint does not exist.
    NotServed,
    /// The initial or registration access token is missing or wrong (RFC 6750 §3.1).
    InvalidToken,
    InvalidRedirectUri(String),
    InvalidMetadata(String),
    /// Too many open registrations from this IP.
    RateLimited {
        retry_after: i64,
    },
    Unavailable,
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotServed => f.write_str("dynamic client registration is off"),
            Self::InvalidToken => f.write_str("invalid_token"),
            Self::InvalidRedirectUri(d) => write!(f, "invalid_redirect_uri: {d}"),
            Self::InvalidMetadata(d) => write!(f, "invalid_client_metadata: {d}"),
            Self::RateLimited { retry_after } => write!(f, "rate limited for {retry_after}s"),
            Self::Unavailable => f.write_str("temporarily unavailable"),
        }
    }
}

impl From<StoreError> for RegisterError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure at the registration endpoint");
        Self::Unavailable
    }
}

impl From<RegistryError> for RegisterError {
    fn from(e: RegistryError) -> Self {
        match e {
            // RFC 7591 §3.2.2: a redirect URI problem has its own error code.
            RegistryError::Invalid(errors) if errors.get("redirect_uris").is_some() => {
                Self::InvalidRedirectUri(errors.to_string())
            }
            RegistryError::Invalid(errors) => Self::InvalidMetadata(errors.to_string()),
            RegistryError::NotFound(what) => Self::InvalidMetadata(format!("{what} not found")),
            RegistryError::Conflict(what) => {
                // The client_id is 128 random bits: a collision means something else is wrong.
                tracing::error!(%what, "a generated client_id is already taken");
                Self::Unavailable
            }
            RegistryError::Store(e) => e.into(),
        }
    }
}

impl ResponseError for RegisterError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotServed => StatusCode::NOT_FOUND,
            Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InvalidRedirectUri(_) | Self::InvalidMetadata(_) => StatusCode::BAD_REQUEST,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = no_store(HttpResponse::build(self.status_code()));
        let (error, description) = match self {
            // As if the route did not exist.
            Self::NotServed => return HttpResponse::NotFound().finish(),
            Self::InvalidToken => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"lanyard\", error=\"invalid_token\""),
                ));
                ("invalid_token", "a valid access token is required (Authorization: Bearer …)".to_owned())
            }
            Self::InvalidRedirectUri(d) => ("invalid_redirect_uri", d.clone()),
            Self::InvalidMetadata(d) => ("invalid_client_metadata", d.clone()),
            Self::RateLimited { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
                (
                    "temporarily_unavailable",
                    format!("too many registrations from this address; retry in {retry_after} seconds"),
                )
            }
            Self::Unavailable => {
                ("temporarily_unavailable", "the server cannot reach its database; retry shortly".to_owned())
            }
        };
        response.json(json!({ "error": error, "error_description": description }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::client::ClientType;

    #[test]
    fn unknown_metadata_is_ignored_and_server_chosen_values_are_refused() {
        let spec = client_spec(
            br#"{"redirect_uris": ["https://app.example.test/cb"], "software_id": "x",
                 "response_types": ["code"], "contacts": ["ops@example.test"]}"#,
            Mode::Token,
            true,
        )
        .expect("unknown members are ignored");
        assert_eq!(spec.redirect_uris, ["https://app.example.test/cb"]);
        for body in [
            r#"{"client_id": "mine"}"#,
            r#"{"client_secret": "mine"}"#,
            r#"{"response_types": ["token"]}"#,
            r#"{"redirect_uris": "https://app.example.test/cb"}"#,
            r#"["not", "an", "object"]"#,
            "{not json",
        ] {
            let error = client_spec(body.as_bytes(), Mode::Token, true).expect_err(body);
            assert!(matches!(error, RegisterError::InvalidMetadata(_)), "{body}: {error}");
        }
    }

    #[test]
    fn registration_require_pkce_off_relaxes_confidential_clients_that_do_not_say_otherwise() {
        let pkce = |body: &str, setting: bool| client_spec(body.as_bytes(), Mode::Token, setting).unwrap().require_pkce;
        let confidential = r#"{"redirect_uris": ["https://a.example.test/cb"]}"#;
        assert_eq!(pkce(confidential, false), Some(false));
        assert_eq!(pkce(confidential, true), None, "the default stays with the registry: required");
        let insists = r#"{"redirect_uris": ["https://a.example.test/cb"], "require_pkce": true}"#;
        assert_eq!(pkce(insists, false), Some(true));
        let public = r#"{"redirect_uris": ["https://a.example.test/cb"], "token_endpoint_auth_method": "none"}"#;
        assert_eq!(pkce(public, false), None, "a public client always needs PKCE");
    }

    #[test]
    fn open_registration_takes_public_clients_that_ask_for_consent() {
        let public = br#"{"token_endpoint_auth_method": "none", "redirect_uris": ["http://127.0.0.1/cb"]}"#;
        assert!(client_spec(public, Mode::Open, true).is_ok());
        for body in [
            r#"{"redirect_uris": ["http://127.0.0.1/cb"]}"#,
            r#"{"token_endpoint_auth_method": "client_secret_post"}"#,
            r#"{"token_endpoint_auth_method": "none", "first_party": true}"#,
        ] {
            assert!(client_spec(body.as_bytes(), Mode::Open, true).is_err(), "{body}");
        }
    }

    #[test]
    fn a_public_client_has_no_secret_in_its_metadata() {
        let spec = ClientSpec {
            token_endpoint_auth_method: Some("none".into()),
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            ..Default::default()
        };
        let new = spec.validate().expect("valid");
        assert_eq!(new.client.client_type, ClientType::Public);
        let json = serde_json::to_value(ClientMetadata::new(&new.client, None)).unwrap();
        assert!(json.get("client_secret").is_none() && json.get("client_secret_expires_at").is_none());
        assert_eq!(json["token_endpoint_auth_method"], "none");
    }
}
