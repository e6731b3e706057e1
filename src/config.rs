//! Settings: defaults < TOML file (`--config`) < environment (`LANYARD_…`) < flags.
//! Everything is validated once, at start-up, into a [`Config`] the rest of the code trusts.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::oauth::issuer::Issuer;

/// The raw, layered settings as a user writes them (TOML keys = env suffixes = flag names).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The issuer URL: every token's `iss`, and the base of every endpoint. Unset: derived
    /// from `bind` when that is set (`http://IP:PORT`, `localhost` for 0.0.0.0 / `::`), else
    /// `http://localhost:8080`.
    pub issuer: Option<String>,
    /// Base URL other services (in a container network, say) use for the back-channel endpoints
    /// (token, userinfo, JWKS, introspection, revocation, registration) in discovery, while
    /// `issuer` and the browser-facing endpoints keep the public URL; unset: the issuer.
    pub backchannel_url: Option<String>,
    /// Address and port to listen on (unset: `127.0.0.1:8080`).
    pub bind: Option<String>,
    /// `sqlite://FILE`, `sqlite::memory:` or `postgres://…`.
    pub database_url: String,
    /// Maximum database connections per process.
    pub database_max_connections: u32,
    /// `text` or `json`.
    pub log_format: String,
    /// 32 bytes (base64 or 64 hex digits) that encrypt private signing keys at rest.
    pub key_encryption_key: Option<String>,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// Lifetime of a browser session, seconds.
    pub session_ttl: i64,
    /// Lifetime of an id_token, seconds.
    pub id_token_ttl: i64,
    /// Failed logins allowed per account (and, times 5, per IP) before a lock-out.
    pub login_max_failures: i64,
    /// Lock-out after too many failures, seconds.
    pub login_lockout: i64,
    /// Password of the `admin` user created on first start (random and printed if unset).
    pub admin_password: Option<String>,
    /// Dynamic client registration at `/register`: `off`, `token` (needs
    /// `registration_token`) or `open` (public clients only, rate-limited).
    pub registration: String,
    /// The initial access token that `/register` requires in `token` mode (RFC 7591 §3).
    pub registration_token: Option<String>,
    /// Whether confidential clients registered at `/register` must use PKCE unless they
    /// send `require_pkce: false` (public clients always must). `false` suits conformance
    /// suites, whose clients never send PKCE and have no standard metadata to say so.
    pub registration_require_pkce: bool,
    /// A seed file (TOML) applied at every start.
    pub seed: Option<PathBuf>,
    /// In-memory SQLite: nothing is written to disk.
    pub ephemeral: bool,
    /// Create a demo API, client and user on a database with no clients (and no seed).
    pub demo: bool,
    /// `/authorize?login_hint=USER` signs that user in without a password (loopback only).
    pub dev_login: bool,
    /// Allow `dev_login` with an issuer that is not loopback.
    pub dev_login_allow_non_loopback: bool,
    /// Development features (the playground) without `dev_login`; `dev_login` and
    /// `ephemeral` turn them on too.
    pub dev: bool,
    /// Deadline of a request's database work, seconds: past it the request answers 503 with
    /// `Retry-After` and its transaction rolls back.
    pub database_timeout: f64,
    /// After SIGTERM/SIGINT, seconds during which `/readyz` answers 503 while requests are
    /// still served (so a load balancer can stop sending them), before the server stops.
    pub shutdown_drain: f64,
    /// Seconds of clock difference tolerated when checking a token's `exp`, `nbf` and `iat`.
    pub clock_leeway: i64,
    /// Drop scopes a client may not request instead of refusing them with `invalid_scope`.
    pub scope_narrowing: bool,
    /// Every client must push its authorization requests (RFC 9126 §5): `/authorize` then
    /// takes only a `request_uri` from `/par`.
    pub require_pushed_authorization_requests: bool,
    /// Lifetime of a pushed request's `request_uri`, seconds (its `expires_in`).
    pub pushed_request_ttl: i64,
    /// DPoP (RFC 9449 §8, §9): every proof at `/token` and `/userinfo` must carry a nonce
    /// this server handed out (in `DPoP-Nonce`) within the last 5–10 minutes. Off by
    /// default: it costs each client one refused request to learn the first nonce.
    pub dpop_nonce: bool,
    /// The protocol recorder (development features only) keeps at most this many exchanges.
    pub activity_retention_count: i64,
    /// The protocol recorder keeps exchanges for at most this many seconds.
    pub activity_retention_seconds: i64,
    /// With development features, record protocol exchanges (`false`: the recorder is off,
    /// e.g. for load tests of a dev-login server, where it would be measured too).
    pub activity_recorder: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: None,
            backchannel_url: None,
            bind: None,
            database_url: "sqlite://lanyard.db".into(),
            database_max_connections: 10,
            log_format: "text".into(),
            key_encryption_key: None,
            workers: 0,
            session_ttl: 8 * 3600,
            id_token_ttl: 3600,
            login_max_failures: 5,
            login_lockout: 60,
            admin_password: None,
            registration: "token".into(),
            registration_token: None,
            registration_require_pkce: true,
            seed: None,
            ephemeral: false,
            demo: true,
            dev_login: false,
            dev_login_allow_non_loopback: false,
            dev: false,
            database_timeout: 5.0,
            shutdown_drain: 5.0,
            clock_leeway: 30,
            scope_narrowing: false,
            require_pushed_authorization_requests: false,
            pushed_request_ttl: 60,
            dpop_nonce: false,
            activity_retention_count: 1000,
            activity_retention_seconds: 86_400,
            activity_recorder: true,
        }
    }
}

/// Validated configuration.
#[derive(Clone)]
pub struct Config {
    pub issuer: Issuer,
    /// The back-channel base URL (validated like an issuer); `None`: the issuer serves both.
    pub backchannel_url: Option<Issuer>,
    pub bind: SocketAddr,
    pub database_url: String,
    pub database_max_connections: u32,
    pub log_format: LogFormat,
    pub key_encryption_key: Option<[u8; 32]>,
    pub workers: usize,
    pub session_ttl: i64,
    pub id_token_ttl: i64,
    pub login_max_failures: i64,
    pub login_lockout: i64,
    pub admin_password: Option<String>,
    pub registration: Registration,
    /// See [`Settings::registration_require_pkce`].
    pub registration_require_pkce: bool,
    /// The seed file, parsed and validated.
    pub seed: Option<crate::seed::Seed>,
    pub ephemeral: bool,
    pub demo: bool,
    pub dev_login: bool,
    /// Development features are on: `dev`, `dev_login` or `ephemeral` (see [`Config::dev_features`]).
    dev: bool,
    pub database_timeout: std::time::Duration,
    pub shutdown_drain: std::time::Duration,
    pub clock_leeway: i64,
    pub scope_narrowing: bool,
    /// See [`Settings::require_pushed_authorization_requests`].
    pub require_pushed_authorization_requests: bool,
    /// See [`Settings::pushed_request_ttl`].
    pub pushed_request_ttl: i64,
    /// See [`Settings::dpop_nonce`].
    pub dpop_nonce: bool,
    /// See [`Settings::activity_retention_count`].
    pub activity_retention_count: i64,
    /// See [`Settings::activity_retention_seconds`].
    pub activity_retention_seconds: i64,
    /// See [`Settings::activity_recorder`].
    pub activity_recorder: bool,
}

impl Config {
    /// Whether development features (the playground) are served: with `dev`, `dev_login`
    /// or `ephemeral`; off by default.
    pub fn dev_features(&self) -> bool {
        self.dev
    }

    /// Whether the protocol recorder runs: development features on and `activity_recorder`
    /// not turned off.
    pub fn records_activity(&self) -> bool {
        self.dev && self.activity_recorder
    }
}

/// How `/register` behaves.
#[derive(Clone, PartialEq, Eq)]
pub enum Registration {
    /// No `/register` endpoint.
    Off,
    /// `/register` with this initial access token (RFC 7591 §3); off when none is set.
    Token(Option<String>),
    /// Anyone may register a public client (rate-limited).
    Open,
}

impl Registration {
    /// Whether `/register` is served.
    pub fn enabled(&self) -> bool {
        matches!(self, Self::Open | Self::Token(Some(_)))
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Token(Some(_)) => f.write_str("token([REDACTED])"),
            Self::Token(None) => f.write_str("token(unset: off)"),
            Self::Open => f.write_str("open"),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("issuer", &self.issuer.as_str())
            .field("bind", &self.bind)
            .field("database_url", &redact_database_url(&self.database_url))
            .field("key_encryption_key", &self.key_encryption_key.map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A setting that is missing or wrong, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: `{setting}` {problem}")]
    Invalid { setting: &'static str, problem: String },
    #[error("invalid configuration: {0}")]
    Source(String),
}

fn invalid(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { setting, problem: problem.into() }
}

/// Values given on the command line; `None` leaves the lower layers in charge.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_login: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_login_allow_non_loopback: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<bool>,
}

impl Settings {
    /// Layers defaults, the TOML file, `LANYARD_*` variables and flags, in that order.
    pub fn load(file: Option<&PathBuf>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Source(format!("config file {} does not exist", path.display())));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("LANYARD_").only(&ENV_KEYS)).merge(Serialized::defaults(overrides));
        figment.extract().map_err(|e| ConfigError::Source(e.to_string()))
    }

    /// Checks every setting and returns the configuration the server runs with.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let bind_raw = self.bind.as_deref().map(str::trim).filter(|b| !b.is_empty());
        let bind: SocketAddr = bind_raw
            .unwrap_or(DEFAULT_BIND)
            .parse()
            .map_err(|_| invalid("bind", format!("must be IP:PORT, got {:?}", bind_raw.unwrap_or_default())))?;
        let issuer = match self.issuer.as_deref().map(str::trim).filter(|i| !i.is_empty()) {
            Some(raw) => Issuer::parse(raw).map_err(|e| invalid("issuer", e))?,
            // A server told only where to listen advertises that address, not port 8080.
            None => Issuer::parse(&derived_issuer(bind_raw.map(|_| bind))).map_err(|e| invalid("issuer", e))?,
        };
        let backchannel_url = match self.backchannel_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(raw) => Some(Issuer::parse(raw).map_err(|e| invalid("backchannel_url", e))?),
            None => None,
        };
        // Ephemeral mode: an in-memory database, whatever else was configured.
        let url = if self.ephemeral { "sqlite::memory:".to_owned() } else { self.database_url.trim().to_owned() };
        if self.dev_login && !issuer.is_loopback() && !self.dev_login_allow_non_loopback {
            return Err(invalid(
                "dev_login",
                format!(
                    "signs users in without a password, so it is refused for the non-loopback issuer {}; \
                     pass --dev-login-allow-non-loopback if this really is a test environment",
                    issuer.as_str()
                ),
            ));
        }
        let seed = match self.seed.as_deref() {
            Some(path) => Some(crate::seed::Seed::load(path).map_err(|e| ConfigError::Source(e.to_string()))?),
            None => None,
        };
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid("database_url", "must start with sqlite:, postgres:// or postgresql://"));
        }
        let log_format = match self.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid("log_format", format!("must be text or json, got {other:?}")));
            }
        };
        let key_encryption_key = self
            .key_encryption_key
            .as_deref()
            .filter(|k| !k.is_empty())
            .map(parse_key_encryption_key)
            .transpose()
            .map_err(|e| invalid("key_encryption_key", e))?;
        if let Some(password) = self.admin_password.as_deref().filter(|p| !p.is_empty()) {
            crate::registry::password::check_strength(password).map_err(|e| invalid("admin_password", e))?;
        }
        let registration_token = self.registration_token.filter(|t| !t.is_empty());
        let registration = match self.registration.as_str() {
            "off" => Registration::Off,
            "token" => Registration::Token(registration_token),
            "open" => Registration::Open,
            other => return Err(invalid("registration", format!("must be off, token or open, got {other:?}"))),
        };
        if self.database_max_connections == 0 {
            return Err(invalid("database_max_connections", "must be at least 1"));
        }
        for (name, value) in [
            ("session_ttl", self.session_ttl),
            ("id_token_ttl", self.id_token_ttl),
            ("login_max_failures", self.login_max_failures),
            ("login_lockout", self.login_lockout),
            ("activity_retention_count", self.activity_retention_count),
            ("activity_retention_seconds", self.activity_retention_seconds),
        ] {
            if value <= 0 {
                return Err(invalid(name, "must be a positive number"));
            }
        }
        let seconds = |setting: &'static str, value: f64, min: f64| {
            if value.is_finite() && (min..=3600.0).contains(&value) {
                Ok(std::time::Duration::from_secs_f64(value))
            } else {
                Err(invalid(setting, format!("must be a number of seconds from {min} to 3600, got {value}")))
            }
        };
        let database_timeout = seconds("database_timeout", self.database_timeout, 0.1)?;
        let shutdown_drain = seconds("shutdown_drain", self.shutdown_drain, 0.0)?;
        if !(0..=3600).contains(&self.clock_leeway) {
            return Err(invalid("clock_leeway", "must be a number of seconds from 0 to 3600"));
        }
        // RFC 9126 §2.2: a short lifetime (5 to 600 seconds is its advice), long enough
        // for a browser to get from the client to /authorize.
        if !(1..=600).contains(&self.pushed_request_ttl) {
            return Err(invalid("pushed_request_ttl", "must be a number of seconds from 1 to 600"));
        }
        Ok(Config {
            issuer,
            backchannel_url,
            bind,
            database_url: url,
            database_max_connections: self.database_max_connections,
            log_format,
            key_encryption_key,
            workers: self.workers,
            session_ttl: self.session_ttl,
            id_token_ttl: self.id_token_ttl,
            login_max_failures: self.login_max_failures,
            login_lockout: self.login_lockout,
            admin_password: self.admin_password.filter(|p| !p.is_empty()),
            registration,
            registration_require_pkce: self.registration_require_pkce,
            seed,
            ephemeral: self.ephemeral,
            demo: self.demo,
            dev_login: self.dev_login,
            dev: self.dev || self.dev_login || self.ephemeral,
            database_timeout,
            shutdown_drain,
            clock_leeway: self.clock_leeway,
            scope_narrowing: self.scope_narrowing,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            pushed_request_ttl: self.pushed_request_ttl,
            dpop_nonce: self.dpop_nonce,
            activity_retention_count: self.activity_retention_count,
            activity_retention_seconds: self.activity_retention_seconds,
            activity_recorder: self.activity_recorder,
        })
    }
}

/// Where the server listens when `bind` is unset.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// The issuer when none is configured: `http://localhost:8080` by default, else the address
/// the server was told to bind (an unspecified address is reached as `localhost`).
fn derived_issuer(bind: Option<SocketAddr>) -> String {
    let Some(bind) = bind else {
        return "http://localhost:8080".to_owned();
    };
    let port = bind.port();
    match bind.ip() {
        ip if ip.is_unspecified() => format!("http://localhost:{port}"),
        std::net::IpAddr::V4(ip) => format!("http://{ip}:{port}"),
        std::net::IpAddr::V6(ip) => format!("http://[{ip}]:{port}"),
    }
}

/// The environment variables read (as `LANYARD_` + upper-case name); others are ignored so
/// that unrelated `LANYARD_*` variables (seed files, admin passwords) don't trip the parser.
const ENV_KEYS: [&str; 32] = [
    "issuer",
    "backchannel_url",
    "bind",
    "database_url",
    "database_max_connections",
    "log_format",
    "key_encryption_key",
    "workers",
    "session_ttl",
    "id_token_ttl",
    "login_max_failures",
    "login_lockout",
    "admin_password",
    "registration",
    "registration_token",
    "registration_require_pkce",
    "seed",
    "ephemeral",
    "demo",
    "dev_login",
    "dev_login_allow_non_loopback",
    "dev",
    "database_timeout",
    "shutdown_drain",
    "clock_leeway",
    "scope_narrowing",
    "require_pushed_authorization_requests",
    "pushed_request_ttl",
    "dpop_nonce",
    "activity_retention_count",
    "activity_retention_seconds",
    "activity_recorder",
];

fn parse_key_encryption_key(raw: &str) -> Result<[u8; 32], String> {
    use base64::Engine;
    let raw = raw.trim();
    let bytes = if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&raw[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| e.to_string())?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw))
            .map_err(|_| "must be 32 bytes as base64 or 64 hex digits (e.g. `openssl rand -base64 32`)".to_string())?
    };
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("must be exactly 32 bytes, got {} (e.g. `openssl rand -base64 32`)", b.len()))
}

/// The database URL with any password replaced, for logs.
pub fn redact_database_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("********"));
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(f: impl FnOnce(&mut Settings)) -> Result<Config, ConfigError> {
        let mut s = Settings::default();
        f(&mut s);
        s.validate()
    }

    #[test]
    fn defaults_are_valid() {
        let config = settings(|_| {}).expect("defaults validate");
        assert_eq!(config.issuer.as_str(), "http://localhost:8080");
        assert_eq!(config.bind.port(), 8080);
    }

    #[test]
    fn without_an_issuer_the_bind_address_is_advertised() {
        let issuer = |bind: &str| settings(|s| s.bind = Some(bind.into())).expect(bind).issuer.as_str().to_owned();
        assert_eq!(issuer("127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(issuer("0.0.0.0:8081"), "http://localhost:8081");
        assert_eq!(issuer("[::1]:9001"), "http://[::1]:9001");
        let explicit = settings(|s| {
            s.bind = Some("127.0.0.1:9000".into());
            s.issuer = Some("https://id.example.test".into());
        });
        assert_eq!(explicit.expect("valid").issuer.as_str(), "https://id.example.test");
    }

    #[test]
    fn invalid_settings_are_named() {
        type Case = (&'static str, fn(&mut Settings));
        let cases: [Case; 7] = [
            ("pushed_request_ttl", |s| s.pushed_request_ttl = 0),
            ("issuer", |s| s.issuer = Some("https://id.example.test/?tenant=1".into())),
            ("issuer", |s| s.issuer = Some("not a url".into())),
            ("backchannel_url", |s| s.backchannel_url = Some("lanyard:8080".into())),
            ("bind", |s| s.bind = Some("localhost".into())),
            ("database_url", |s| s.database_url = "mysql://x".into()),
            ("key_encryption_key", |s| s.key_encryption_key = Some("c2hvcnQ=".into())),
        ];
        for (setting, case) in cases {
            let err = settings(case).expect_err(setting).to_string();
            assert!(err.contains(setting), "{err} should name {setting}");
        }
    }

    #[test]
    fn key_encryption_key_accepts_hex_and_base64() {
        assert!(parse_key_encryption_key(&"ab".repeat(32)).is_ok());
        assert!(parse_key_encryption_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_ok());
    }

    #[test]
    fn database_passwords_are_redacted() {
        let shown = redact_database_url("postgres://lanyard:hunter2@db:5432/lanyard");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
