//! Clients (relying parties) and the rules a registration must satisfy.

use serde::{Deserialize, Serialize};

use super::client_keys::{AssertionAlg, AuthSigningAlg, ClientJwks, MacAlg, parse_jwks_uri};
use super::client_secret::SealedSecret;
use super::field_errors::FieldErrors;
use crate::oauth::redirect_uri::RedirectUri;
use crate::oauth::request_object::RequestUri;
use crate::oauth::scope::ScopeSet;
use crate::tokens::alg::SigningAlg;

pub const DEFAULT_REFRESH_TOKEN_TTL: i64 = 30 * 24 * 3600;
pub const DEFAULT_REFRESH_TOKEN_IDLE_TTL: i64 = 14 * 24 * 3600;
/// The longest refresh token reuse interval: a grace for parallel requests and retries,
/// never a second credential (Hydra caps its grace period at 5 minutes as well).
pub const MAX_REFRESH_TOKEN_REUSE_INTERVAL: i64 = 300;

/// RFC 6749 §2.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    Confidential,
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }
}

/// `token_endpoint_auth_method` (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT assertion signed with one of the client's registered keys (RFC 7523 §2.2).
    PrivateKeyJwt,
    None,
    /// A JWT assertion MACed with the client's secret (RFC 7523 §2.2, OIDC Core §9).
    ClientSecretJwt,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
            Self::ClientSecretJwt => "client_secret_jwt",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            "none" => Some(Self::None),
            "client_secret_jwt" => Some(Self::ClientSecretJwt),
            _ => None,
        }
    }

    /// Whether the client has a shared secret: sent as it is (Basic or in the body), or
    /// keying the MAC of its assertions (client_secret_jwt).
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost | Self::ClientSecretJwt)
    }

    /// Whether the client authenticates with a JWT assertion (RFC 7523 §2.2), never with
    /// a secret sent as it is.
    pub fn uses_assertion(self) -> bool {
        matches!(self, Self::PrivateKeyJwt | Self::ClientSecretJwt)
    }
}

/// The `grant_type` of token exchange (RFC 8693 §2.1).
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The grants Lanyard implements (no implicit, no password: RFC 9700 §2.1.2, §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    /// Token exchange (RFC 8693 §2.1), for an API (authenticating as its introspection
    /// client) that calls another API on its user's behalf.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
    /// The device authorization grant (RFC 8628), for CLIs and TVs: named by its URN.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
}

impl GrantType {
    pub const ALL: [GrantType; 5] =
        [Self::AuthorizationCode, Self::RefreshToken, Self::ClientCredentials, Self::TokenExchange, Self::DeviceCode];

    /// The name used in `grant_types` and as `grant_type` at `/token`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::TokenExchange => TOKEN_EXCHANGE_GRANT,
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    /// Every name, for messages that list them.
    pub fn names() -> String {
        Self::ALL.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", ")
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == raw)
    }
}

/// Whether the claims the scopes release go into the id_token too (they always go to
/// userinfo). Claims named by the `claims` request parameter are honoured either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdTokenClaimsPolicy {
    /// In the id_token as well (the default: as Keycloak, Auth0 and Google do, because
    /// many RP libraries read the profile from the id_token alone).
    #[default]
    All,
    /// OIDC Core §5.4's leaner form: at userinfo only, since an access token is issued.
    Minimal,
}

impl IdTokenClaimsPolicy {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "all" => Some(Self::All),
            "minimal" => Some(Self::Minimal),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Minimal => "minimal",
        }
    }
}

/// `subject_type` (OIDC Core §8): which `sub` the client sees for a user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    /// The user's own id, the same for every client (the default).
    #[default]
    Public,
    /// A different, stable `sub` per sector (§8.1), so that clients of different sectors
    /// cannot correlate their users through it.
    Pairwise,
}

impl SubjectType {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "public" => Some(Self::Public),
            "pairwise" => Some(Self::Pairwise),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Pairwise => "pairwise",
        }
    }
}

/// A registered client.
#[derive(Debug, Clone, Serialize)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub client_type: ClientType,
    #[serde(skip)]
    pub secret_hash: Option<String>,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    pub scope: ScopeSet,
    pub default_api: Option<String>,
    pub require_pkce: bool,
    pub first_party: bool,
    pub id_token_alg: SigningAlg,
    /// Scope claims in the id_token (`all`) or at userinfo only (`minimal`).
    pub id_token_claims: IdTokenClaimsPolicy,
    pub refresh_token_ttl: i64,
    pub refresh_token_idle_ttl: i64,
    /// The client's public keys, registered inline (`jwks`) …
    pub jwks: Option<ClientJwks>,
    /// … or published at a URL (`jwks_uri`), fetched SSRF-safely and cached.
    pub jwks_uri: Option<String>,
    /// `token_endpoint_auth_signing_alg`: the one algorithm its assertions may use (any
    /// of [`AssertionAlg::ALL`] for private_key_jwt, of [`MacAlg::ALL`] for
    /// client_secret_jwt, when unset).
    pub assertion_alg: Option<AuthSigningAlg>,
    /// Back-Channel Logout 1.0: where logout tokens are POSTed when a session ends.
    pub backchannel_logout_uri: Option<url::Url>,
    pub backchannel_logout_session_required: bool,
    /// Front-Channel Logout 1.0: loaded in an iframe of the "signed out" page.
    pub frontchannel_logout_uri: Option<url::Url>,
    pub frontchannel_logout_session_required: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Not registered: described by a Client ID Metadata Document at its client_id URL
    /// (consent is then always asked, showing the document's host).
    #[serde(skip)]
    pub from_metadata_document: bool,
    // Pairwise subjects.
    /// `public` or `pairwise` (OIDC Core §8).
    pub subject_type: SubjectType,
    /// OIDC Registration §2: its host is the client's sector; it lists the client's
    /// redirect URIs (checked when they or it change: `registry::sector::check_sector_document`).
    pub sector_identifier_uri: Option<url::Url>,
    // Request objects (OIDC Core §6):
    /// `request_uris`: the only URLs accepted (and fetched) as `request_uri`.
    pub request_uris: Vec<RequestUri>,
    /// `request_object_signing_alg`: the one algorithm its request objects may use (any
    /// of [`AssertionAlg::ALL`] when unset; never `none`).
    pub request_object_alg: Option<AssertionAlg>,
    // Signed userinfo and display metadata (migration 0014).
    /// `userinfo_signed_response_alg`: userinfo answers a JWS signed with this algorithm
    /// (OIDC Core §5.3.2); `None`: plain JSON.
    pub userinfo_alg: Option<SigningAlg>,
    /// RFC 7591 §2 display metadata: the logo shown on the login and consent pages …
    pub logo_uri: Option<url::Url>,
    /// … the client's home page …
    pub client_uri: Option<url::Url>,
    /// … and its privacy policy and terms of service, linked from those pages.
    pub policy_uri: Option<url::Url>,
    pub tos_uri: Option<url::Url>,
    // client_secret_jwt
    /// The secret again, sealed under the key-encryption key: a client_secret_jwt client's
    /// HMAC key (see `client_secret`). `None` for every other client.
    #[serde(skip)]
    pub secret_sealed: Option<SealedSecret>,
    // Pushed authorization requests and refresh token reuse (migration 0021).
    /// RFC 9126 §6 `require_pushed_authorization_requests`: `/authorize` takes this
    /// client's requests only by a `request_uri` from `/par`.
    pub require_par: bool,
    /// Lanyard's own (not RFC 7591 metadata, so admin-only): seconds during which the
    /// refresh token just rotated away may be presented again by this client and is
    /// answered with the same successor (see `oauth::token::refresh_token`); 0 = strict.
    pub refresh_token_reuse_interval: i64,
    // DPoP (migration 0022)
    /// `dpop_bound_access_tokens` (RFC 9449 §5.2): the client always uses DPoP, so a token
    /// request of it without a proof is refused.
    pub dpop_bound_access_tokens: bool,
}

impl Client {
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// The registered redirect URI that `requested` matches, if any.
    pub fn redirect_uri(&self, requested: &str) -> Option<&RedirectUri> {
        self.redirect_uris.iter().find(|r| r.matches(requested))
    }

    /// The sector identifier a pairwise `sub` is computed for (OIDC Core §8.1): the host of
    /// the `sector_identifier_uri`, else the host of the redirect URIs (validation makes a
    /// pairwise client's redirect URIs share one), else, for a client with neither (no
    /// user flow: minted tokens only), its client_id.
    pub fn sector_identifier(&self) -> String {
        self.sector_identifier_uri
            .as_ref()
            .and_then(|u| u.host_str().map(str::to_owned))
            .or_else(|| self.redirect_uris.iter().find_map(RedirectUri::host))
            .unwrap_or_else(|| self.client_id.clone())
    }

    /// Whether this client, replacing `before`, needs a new secret to authenticate at
    /// all: it now uses a secret that `before` never had (a public or private_key_jwt
    /// client), or client_secret_jwt, whose HMAC key exists only in the sealed copy (a
    /// client_secret_basic client's secret is known by its hash alone).
    pub fn needs_new_secret(&self, before: &Client) -> bool {
        self.auth_method.uses_secret()
            && (before.secret_hash.is_none()
                || (self.auth_method == AuthMethod::ClientSecretJwt && before.secret_sealed.is_none()))
    }

    /// Checks a presented secret against the stored SHA-256, in constant time.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret_hash {
            Some(stored) => {
                crate::crypto::constant_time_eq(crate::crypto::sha256_hex(presented).as_bytes(), stored.as_bytes())
            }
            None => false,
        }
    }

    /// What the login and consent pages show about the client. A URL is shown only if the
    /// browser can fetch it safely: `https`, or an `http` loopback URL in dev mode (outside
    /// it, a page must not make the user's browser probe their own machine).
    pub fn display(&self, dev_mode: bool) -> ClientDisplay {
        let shown = |url: &Option<url::Url>| {
            url.as_ref().filter(|u| u.scheme() == "https" || (dev_mode && is_loopback_http(u))).cloned()
        };
        ClientDisplay {
            name: self.name.clone(),
            logo_uri: shown(&self.logo_uri),
            client_uri: shown(&self.client_uri),
            policy_uri: shown(&self.policy_uri),
            tos_uri: shown(&self.tos_uri),
        }
    }
}

/// The client as the sign-in pages present it: its name and the display metadata the
/// browser may load or follow.
#[derive(Debug, Clone, Default)]
pub struct ClientDisplay {
    pub name: String,
    pub logo_uri: Option<url::Url>,
    pub client_uri: Option<url::Url>,
    pub policy_uri: Option<url::Url>,
    pub tos_uri: Option<url::Url>,
}

impl ClientDisplay {
    /// A target without a client (the admin page's sign-in).
    pub fn named(name: &str) -> Self {
        Self { name: name.to_owned(), ..Default::default() }
    }

    /// The origin the logo is loaded from, for the page's `img-src` (nothing else of the
    /// client's is loaded by the browser: the other URLs are links).
    pub fn logo_origin(&self) -> Option<String> {
        self.logo_uri.as_ref().map(|u| u.origin().ascii_serialization())
    }
}

fn is_loopback_http(url: &url::Url) -> bool {
    url.scheme() == "http" && matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// A URL a client registers for the server or a browser to fetch (`jwks_uri`, `logo_uri`,
/// `policy_uri`, …): absolute, `https` or `http` on a loopback host (usable only in dev
/// mode), without a fragment or credentials.
pub fn parse_client_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|_| "must be an absolute URL".to_string())?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_http(&url) => {}
        _ => return Err("must use https".into()),
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("must not have a fragment or credentials".into());
    }
    Ok(url)
}

/// A registration request, with RFC 7591 field names (plus Lanyard's `default_api`,
/// `first_party`, `require_pkce`, token lifetimes and, for seeds, a fixed secret).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub default_api: Option<String>,
    #[serde(default)]
    pub first_party: Option<bool>,
    #[serde(default)]
    pub require_pkce: Option<bool>,
    #[serde(default)]
    pub id_token_signed_response_alg: Option<String>,
    /// `all` (default) or `minimal`: see [`IdTokenClaimsPolicy`].
    #[serde(default)]
    pub id_token_claims: Option<String>,
    #[serde(default)]
    pub refresh_token_ttl: Option<i64>,
    #[serde(default)]
    pub refresh_token_idle_ttl: Option<i64>,
    /// A JWK Set of public keys (RFC 7591 §2), for private_key_jwt.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_signing_alg: Option<String>,
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub backchannel_logout_session_required: Option<bool>,
    #[serde(default)]
    pub frontchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub frontchannel_logout_session_required: Option<bool>,
    // Pairwise subjects.
    /// `public` (default) or `pairwise`: see [`SubjectType`].
    #[serde(default)]
    pub subject_type: Option<String>,
    /// An https URL whose host is the pairwise sector, serving a JSON array that lists
    /// every redirect URI (OIDC Registration §5).
    #[serde(default)]
    pub sector_identifier_uri: Option<String>,
    // Request objects (OIDC Core §6):
    #[serde(default)]
    pub request_uris: Vec<String>,
    #[serde(default)]
    pub request_object_signing_alg: Option<String>,
    // Signed userinfo and display metadata (migration 0014).
    /// `RS256` or `ES256`: userinfo answers a signed JWT; unset: plain JSON.
    #[serde(default)]
    pub userinfo_signed_response_alg: Option<String>,
    #[serde(default)]
    pub logo_uri: Option<String>,
    #[serde(default)]
    pub client_uri: Option<String>,
    #[serde(default)]
    pub policy_uri: Option<String>,
    #[serde(default)]
    pub tos_uri: Option<String>,
    // Pushed authorization requests and refresh token reuse.
    /// RFC 9126 §6: `/authorize` accepts only pushed requests from this client.
    #[serde(default)]
    pub require_pushed_authorization_requests: Option<bool>,
    /// Seconds (0 to [`MAX_REFRESH_TOKEN_REUSE_INTERVAL`]) during which a just-rotated
    /// refresh token is answered with its successor; Lanyard's own, admin-only [default: 0].
    #[serde(default)]
    pub refresh_token_reuse_interval: Option<i64>,
    /// RFC 9449 §5.2: `true` refuses this client's token requests that carry no DPoP proof.
    #[serde(default)]
    pub dpop_bound_access_tokens: Option<bool>,
}

/// A validated client and, for confidential clients, the secret in the clear (shown once).
#[derive(Debug, Clone)]
pub struct NewClient {
    pub client: Client,
    pub secret: Option<String>,
}

impl ClientSpec {
    /// Checks every field against the rules; scopes and `default_api` against registered
    /// APIs are checked by the caller that can see the store (`registry::client::create`).
    pub fn validate(self) -> Result<NewClient, FieldErrors> {
        let mut errors = FieldErrors::default();
        let client_id = match self.client_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(id) if id.len() > 255 || !id.bytes().all(|b| b.is_ascii_graphic()) => {
                errors.add("client_id", "must be 1–255 visible ASCII characters without spaces");
                id.to_owned()
            }
            Some(id) => id.to_owned(),
            None => crate::crypto::random_token(16),
        };
        let name = self.client_name.as_deref().map(str::trim).unwrap_or_default().to_owned();
        let name = if name.is_empty() { client_id.clone() } else { name };
        if name.chars().count() > 200 {
            errors.add("client_name", "must be at most 200 characters");
        }
        let auth_method = match self.token_endpoint_auth_method.as_deref() {
            None | Some("") => AuthMethod::ClientSecretBasic,
            Some(raw) => AuthMethod::parse(raw).unwrap_or_else(|| {
                errors.add(
                    "token_endpoint_auth_method",
                    format!(
                        "{raw:?} is not supported: use client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt or none"
                    ),
                );
                AuthMethod::ClientSecretBasic
            }),
        };
        let (jwks, jwks_uri, assertion_alg) = self.keys(auth_method, &mut errors);
        let (request_uris, request_object_alg) = self.request_objects(&mut errors);
        let client_type = if auth_method == AuthMethod::None { ClientType::Public } else { ClientType::Confidential };
        let parse_uris = |field: &'static str, raw: &[String], errors: &mut FieldErrors| -> Vec<RedirectUri> {
            let mut uris: Vec<RedirectUri> = Vec::new();
            for uri in raw.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
                match RedirectUri::parse(uri) {
                    Ok(u) if uris.contains(&u) => {}
                    Ok(u) => uris.push(u),
                    Err(e) => errors.add(field, e),
                }
            }
            uris
        };
        let redirect_uris = parse_uris("redirect_uris", &self.redirect_uris, &mut errors);
        let post_logout_redirect_uris =
            parse_uris("post_logout_redirect_uris", &self.post_logout_redirect_uris, &mut errors);
        let mut grant_types = Vec::new();
        let requested_grants =
            if self.grant_types.is_empty() { vec!["authorization_code".to_owned()] } else { self.grant_types };
        for raw in &requested_grants {
            match GrantType::parse(raw.trim()) {
                Some(g) if !grant_types.contains(&g) => grant_types.push(g),
                Some(_) => {}
                None => {
                    errors.add("grant_types", format!("{raw:?} is not supported: use one of {}", GrantType::names()))
                }
            }
        }
        if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
            errors.add("redirect_uris", "at least one redirect URI is needed for the authorization_code grant");
        }
        if client_type == ClientType::Public && grant_types.contains(&GrantType::ClientCredentials) {
            errors.add("grant_types", "a public client (auth method none) cannot use client_credentials");
        }
        // RFC 8693 §2.1: the exchanging party is an API authenticating as its (confidential)
        // introspection client; a public client proves nothing about who exchanges.
        if client_type == ClientType::Public && grant_types.contains(&GrantType::TokenExchange) {
            errors.add("grant_types", format!("a public client (auth method none) cannot use {TOKEN_EXCHANGE_GRANT}"));
        }
        let scope = match ScopeSet::parse(self.scope.as_deref().unwrap_or("openid")) {
            Ok(s) => s,
            Err(e) => {
                errors.add("scope", e);
                ScopeSet::default()
            }
        };
        let require_pkce = self.require_pkce.unwrap_or(true);
        if client_type == ClientType::Public && !require_pkce {
            errors.add("require_pkce", "PKCE is always required for public clients");
        }
        let id_token_alg =
            signing_alg("id_token_signed_response_alg", self.id_token_signed_response_alg.as_deref(), &mut errors)
                .unwrap_or(SigningAlg::RS256);
        let userinfo_alg =
            signing_alg("userinfo_signed_response_alg", self.userinfo_signed_response_alg.as_deref(), &mut errors);
        let display_url = |field: &'static str, raw: Option<&str>, errors: &mut FieldErrors| {
            let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
            parse_client_url(raw).map_err(|e| errors.add(field, e)).ok()
        };
        let logo_uri = display_url("logo_uri", self.logo_uri.as_deref(), &mut errors);
        let client_uri = display_url("client_uri", self.client_uri.as_deref(), &mut errors);
        let policy_uri = display_url("policy_uri", self.policy_uri.as_deref(), &mut errors);
        let tos_uri = display_url("tos_uri", self.tos_uri.as_deref(), &mut errors);
        let id_token_claims = match self.id_token_claims.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => IdTokenClaimsPolicy::All,
            Some(raw) => IdTokenClaimsPolicy::parse(raw).unwrap_or_else(|| {
                errors.add("id_token_claims", format!("{raw:?} is not supported: use all or minimal"));
                IdTokenClaimsPolicy::All
            }),
        };
        let ttl = |field: &'static str, value: Option<i64>, default: i64, errors: &mut FieldErrors| {
            let value = value.unwrap_or(default);
            if !(60..=365 * 24 * 3600).contains(&value) {
                errors.add(field, "must be between 60 seconds and 365 days");
            }
            value
        };
        let refresh_token_ttl =
            ttl("refresh_token_ttl", self.refresh_token_ttl, DEFAULT_REFRESH_TOKEN_TTL, &mut errors);
        let refresh_token_idle_ttl =
            ttl("refresh_token_idle_ttl", self.refresh_token_idle_ttl, DEFAULT_REFRESH_TOKEN_IDLE_TTL, &mut errors);
        let backchannel_logout_uri =
            logout_channel_uri("backchannel_logout_uri", self.backchannel_logout_uri.as_deref(), &mut errors);
        let frontchannel_logout_uri =
            logout_channel_uri("frontchannel_logout_uri", self.frontchannel_logout_uri.as_deref(), &mut errors);
        let refresh_token_reuse_interval = self.refresh_token_reuse_interval.unwrap_or(0);
        if !(0..=MAX_REFRESH_TOKEN_REUSE_INTERVAL).contains(&refresh_token_reuse_interval) {
            errors.add(
                "refresh_token_reuse_interval",
                format!(
                    "must be between 0 (strict rotation: a reused refresh token revokes its grant) and \
                     {MAX_REFRESH_TOKEN_REUSE_INTERVAL} seconds"
                ),
            );
        }
        let (subject_type, sector_identifier_uri) =
            subject(self.subject_type.as_deref(), self.sector_identifier_uri.as_deref(), &redirect_uris, &mut errors);
        let secret = match (client_type, self.client_secret.filter(|s| !s.is_empty())) {
            (_, Some(_)) if auth_method == AuthMethod::PrivateKeyJwt => {
                errors.add("client_secret", "a private_key_jwt client authenticates with its keys, not a secret");
                None
            }
            (_, None) if auth_method == AuthMethod::PrivateKeyJwt => None,
            (ClientType::Public, Some(_)) => {
                errors.add("client_secret", "a public client (auth method none) has no secret");
                None
            }
            (ClientType::Public, None) => None,
            (ClientType::Confidential, Some(fixed)) if auth_method == AuthMethod::ClientSecretJwt => {
                check_mac_key(&fixed, assertion_alg, &mut errors);
                Some(fixed)
            }
            (ClientType::Confidential, Some(fixed)) => Some(fixed),
            // 512 bits: a key for HS512 too (RFC 7518 §3.2: as long as the hash output).
            (ClientType::Confidential, None) if auth_method == AuthMethod::ClientSecretJwt => {
                Some(crate::crypto::random_token(CLIENT_SECRET_JWT_BYTES))
            }
            (ClientType::Confidential, None) => Some(crate::crypto::random_token(32)),
        };
        // Record-keeping (when it was created), not protocol time: the wall clock.
        let now = crate::clock::real_now();
        let client = Client {
            client_id,
            name,
            client_type,
            secret_hash: secret.as_deref().map(crate::crypto::sha256_hex),
            auth_method,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            scope,
            default_api: self.default_api.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
            require_pkce,
            first_party: self.first_party.unwrap_or(false),
            id_token_alg,
            id_token_claims,
            refresh_token_ttl,
            refresh_token_idle_ttl,
            jwks,
            jwks_uri,
            assertion_alg,
            backchannel_logout_uri,
            backchannel_logout_session_required: self.backchannel_logout_session_required.unwrap_or(false),
            frontchannel_logout_uri,
            frontchannel_logout_session_required: self.frontchannel_logout_session_required.unwrap_or(false),
            created_at: now,
            updated_at: now,
            from_metadata_document: false,
            subject_type,
            sector_identifier_uri,
            request_uris,
            request_object_alg,
            userinfo_alg,
            logo_uri,
            client_uri,
            policy_uri,
            tos_uri,
            // Sealed by `registry::create_client`, which has the key-encryption key.
            secret_sealed: None,
            require_par: self.require_pushed_authorization_requests.unwrap_or(false),
            refresh_token_reuse_interval,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens.unwrap_or(false),
        };
        errors.into_result(NewClient { client, secret })
    }

    /// The key fields: `private_key_jwt` needs exactly one of `jwks` and `jwks_uri`
    /// (RFC 7591 §2: both together are an error); other clients may register keys for
    /// other uses.
    #[allow(clippy::type_complexity)]
    fn keys(
        &self,
        auth_method: AuthMethod,
        errors: &mut FieldErrors,
    ) -> (Option<ClientJwks>, Option<String>, Option<AuthSigningAlg>) {
        let jwks = self.jwks.as_ref().filter(|v| !v.is_null()).and_then(|v| {
            // A seed or a form may hold the set as JSON text.
            let parsed = match v.as_str() {
                Some(text) => ClientJwks::parse_str(text),
                None => ClientJwks::parse(v),
            };
            parsed.map_err(|e| errors.add("jwks", e)).ok()
        });
        let jwks_uri =
            self.jwks_uri.as_deref().map(str::trim).filter(|u| !u.is_empty()).and_then(|raw| {
                parse_jwks_uri(raw).map(|_| raw.to_owned()).map_err(|e| errors.add("jwks_uri", e)).ok()
            });
        let sent_jwks = self.jwks.as_ref().is_some_and(|v| !v.is_null());
        let sent_uri = self.jwks_uri.as_deref().is_some_and(|u| !u.trim().is_empty());
        if sent_jwks && sent_uri {
            errors.add("jwks", "send jwks or jwks_uri, not both");
        } else if auth_method == AuthMethod::PrivateKeyJwt && !sent_jwks && !sent_uri {
            errors.add("jwks", "a private_key_jwt client needs its public keys: jwks or jwks_uri");
        }
        let assertion_alg = self.token_endpoint_auth_signing_alg.as_deref().filter(|a| !a.is_empty()).and_then(|raw| {
            // Each method verifies one family: an HMAC is keyed with a secret, never with
            // a registered public key, and a secret never checks a signature.
            let (alg, family) = match auth_method {
                AuthMethod::ClientSecretJwt => (MacAlg::parse(raw).map(AuthSigningAlg::Mac), "HS256, HS384 or HS512"),
                _ => (AssertionAlg::parse(raw).map(AuthSigningAlg::Key), "RS256, PS256, ES256 or EdDSA"),
            };
            if alg.is_none() {
                errors.add(
                    "token_endpoint_auth_signing_alg",
                    format!("{raw:?} is not supported for {}: use {family}", auth_method.as_str()),
                );
            }
            alg
        });
        (jwks, jwks_uri, assertion_alg)
    }

    /// `request_uris` and `request_object_signing_alg` (OIDC Dynamic Client Registration
    /// §2). Request objects are only accepted signed, so `none` is refused here, where the
    /// client learns it, rather than at every request.
    fn request_objects(&self, errors: &mut FieldErrors) -> (Vec<RequestUri>, Option<AssertionAlg>) {
        let mut uris: Vec<RequestUri> = Vec::new();
        for raw in self.request_uris.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
            match RequestUri::parse(raw) {
                Ok(u) if uris.contains(&u) => {}
                Ok(u) => uris.push(u),
                Err(e) => errors.add("request_uris", format!("{raw:?} {e}")),
            }
        }
        let alg = match self.request_object_signing_alg.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            None => None,
            Some("none") => {
                errors.add(
                    "request_object_signing_alg",
                    "\"none\" is not accepted: request objects must be signed with one of the client's registered keys \
                     (RS256, PS256, ES256 or EdDSA)",
                );
                None
            }
            Some(raw) => AssertionAlg::parse(raw).or_else(|| {
                errors.add(
                    "request_object_signing_alg",
                    format!("{raw:?} is not supported: use RS256, PS256, ES256 or EdDSA"),
                );
                None
            }),
        };
        (uris, alg)
    }
}

/// The subject type and `sector_identifier_uri`. The URI is `https` (or `http` on a
/// loopback host, which only dev mode will fetch, as for `jwks_uri`); its document is
/// fetched by `registry` (validation does no I/O). A pairwise client without one needs
/// redirect URIs on a single host: that host is its sector (OIDC Core §8.1), and with
/// several there would be no telling which.
fn subject(
    subject_type: Option<&str>,
    sector_identifier_uri: Option<&str>,
    redirect_uris: &[RedirectUri],
    errors: &mut FieldErrors,
) -> (SubjectType, Option<url::Url>) {
    let subject_type = match subject_type.map(str::trim).filter(|s| !s.is_empty()) {
        None => SubjectType::Public,
        Some(raw) => SubjectType::parse(raw).unwrap_or_else(|| {
            errors.add("subject_type", format!("{raw:?} is not supported: use public or pairwise"));
            SubjectType::Public
        }),
    };
    let sector_uri = sector_identifier_uri
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .and_then(|raw| parse_jwks_uri(raw).map_err(|e| errors.add("sector_identifier_uri", e)).ok());
    if subject_type == SubjectType::Pairwise && sector_identifier_uri.is_none_or(|s| s.trim().is_empty()) {
        let mut hosts: Vec<String> = redirect_uris.iter().filter_map(RedirectUri::host).collect();
        hosts.sort_unstable();
        hosts.dedup();
        if hosts.len() > 1 {
            errors.add(
                "sector_identifier_uri",
                format!(
                    "a pairwise client whose redirect URIs are on several hosts ({}) needs a sector_identifier_uri \
                     naming its sector (OIDC Core §8.1)",
                    hosts.join(", ")
                ),
            );
        }
    }
    (subject_type, sector_uri)
}

/// A signing algorithm a client asked for (`id_token_signed_response_alg`,
/// `userinfo_signed_response_alg`); unset or empty: `None`. `none` is refused by name:
/// Lanyard signs everything it issues (RFC 9700 §2.5; the discovery document never lists it).
fn signing_alg(field: &'static str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<SigningAlg> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    if raw.eq_ignore_ascii_case("none") {
        errors.add(
            field,
            "\"none\" is not supported: Lanyard signs every token and response it issues (use RS256 or ES256)",
        );
        return None;
    }
    raw.parse::<SigningAlg>().map_err(|e| errors.add(field, e)).ok()
}

/// The length in bytes of a generated client_secret_jwt secret.
pub const CLIENT_SECRET_JWT_BYTES: usize = 64;

/// A fixed client_secret_jwt secret must be a key the MAC can use (RFC 7518 §3.2): at least
/// 32 bytes, and as long as the registered algorithm's hash output.
fn check_mac_key(secret: &str, alg: Option<AuthSigningAlg>, errors: &mut FieldErrors) {
    let needed = match alg {
        Some(AuthSigningAlg::Mac(alg)) => alg.min_secret_bytes(),
        _ => MacAlg::HS256.min_secret_bytes(),
    };
    if secret.len() < needed {
        errors.add(
            "client_secret",
            format!("a client_secret_jwt secret keys an HMAC: at least {needed} bytes (RFC 7518 §3.2)"),
        );
    }
}

/// A `backchannel_logout_uri` or `frontchannel_logout_uri`: an absolute http(s) URL without
/// a fragment (Back-Channel Logout 1.0 §2.2, Front-Channel Logout 1.0 §2). A query is
/// allowed (and kept). Empty: none.
fn logout_channel_uri(field: &'static str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<url::Url> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    match url::Url::parse(raw) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            errors.add(field, "must be an http or https URL");
            None
        }
        Ok(url) if url.fragment().is_some() => {
            errors.add(field, "must not contain a fragment");
            None
        }
        Ok(url) if !url.username().is_empty() || url.password().is_some() || url.host_str().is_none() => {
            errors.add(field, "must name a host, without credentials");
            None
        }
        Ok(url) => Some(url),
        Err(_) => {
            errors.add(field, "must be an absolute http or https URL");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ClientSpec {
        ClientSpec {
            client_id: Some("web".into()),
            redirect_uris: vec!["https://app.example.test/cb".into()],
            scope: Some("openid profile".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_confidential_client_gets_a_256_bit_secret_stored_as_sha256() {
        let new = spec().validate().unwrap();
        let secret = new.secret.expect("secret");
        assert_eq!(secret.len(), 43);
        assert!(new.client.secret_matches(&secret));
        assert!(!new.client.secret_matches("wrong"));
        assert_eq!(new.client.secret_hash.unwrap(), crate::crypto::sha256_hex(&secret));
    }

    #[test]
    fn the_token_exchange_grant_has_its_rfc_8693_name_everywhere() {
        let mut s = spec();
        s.grant_types = vec![TOKEN_EXCHANGE_GRANT.into()];
        s.redirect_uris.clear();
        let client = s.validate().expect("a confidential client may exchange tokens").client;
        assert!(client.allows_grant(GrantType::TokenExchange));
        assert_eq!(GrantType::parse("urn:ietf:params:oauth:grant-type:token-exchange"), Some(GrantType::TokenExchange));
        assert_eq!(GrantType::parse("token_exchange"), None);
        assert_eq!(serde_json::to_value(GrantType::TokenExchange).unwrap(), TOKEN_EXCHANGE_GRANT);
    }

    #[test]
    fn a_device_client_needs_no_redirect_uri_and_its_grant_is_named_by_the_rfc_urn() {
        let device = |grant: &str| ClientSpec {
            token_endpoint_auth_method: Some("none".into()),
            redirect_uris: vec![],
            grant_types: vec![grant.into()],
            ..spec()
        };
        let new = device("urn:ietf:params:oauth:grant-type:device_code").validate().expect("a valid device client");
        assert_eq!(new.client.grant_types, vec![GrantType::DeviceCode]);
        assert!(new.client.allows_grant(GrantType::DeviceCode));
        assert!(!new.client.allows_grant(GrantType::AuthorizationCode));
        assert_eq!(GrantType::parse(GrantType::DeviceCode.as_str()), Some(GrantType::DeviceCode));
        let errors = device("device_code").validate().expect_err("a short name is refused");
        assert!(errors.to_string().contains("urn:ietf:params:oauth:grant-type:device_code"), "{errors}");
    }

    #[test]
    fn invalid_registrations_name_their_fields() {
        type Case = (&'static str, fn(&mut ClientSpec));
        let cases: [Case; 16] = [
            ("refresh_token_reuse_interval", |s| s.refresh_token_reuse_interval = Some(301)),
            ("refresh_token_reuse_interval", |s| s.refresh_token_reuse_interval = Some(-1)),
            ("backchannel_logout_uri", |s| s.backchannel_logout_uri = Some("/relative".into())),
            ("backchannel_logout_uri", |s| s.backchannel_logout_uri = Some("https://rp.example.test/bc#x".into())),
            ("frontchannel_logout_uri", |s| s.frontchannel_logout_uri = Some("javascript:alert(1)".into())),
            ("redirect_uris", |s| s.redirect_uris = vec!["http://evil.example.test/cb".into()]),
            ("redirect_uris", |s| s.redirect_uris.clear()),
            ("grant_types", |s| s.grant_types = vec!["password".into()]),
            ("token_endpoint_auth_method", |s| s.token_endpoint_auth_method = Some("private_key_jwt2".into())),
            ("require_pkce", |s| {
                s.token_endpoint_auth_method = Some("none".into());
                s.require_pkce = Some(false);
            }),
            ("grant_types", |s| {
                s.token_endpoint_auth_method = Some("none".into());
                s.grant_types = vec!["client_credentials".into()];
            }),
            ("grant_types", |s| {
                s.token_endpoint_auth_method = Some("none".into());
                s.grant_types = vec![TOKEN_EXCHANGE_GRANT.into()];
            }),
            ("scope", |s| s.scope = Some("open\"id".into())),
            ("subject_type", |s| s.subject_type = Some("ephemeral".into())),
            ("sector_identifier_uri", |s| s.sector_identifier_uri = Some("http://rp.example.test/uris.json".into())),
            ("sector_identifier_uri", |s| {
                s.subject_type = Some("pairwise".into());
                s.redirect_uris.push("https://other.example.test/cb".into());
            }),
        ];
        for (field, mutate) in cases {
            let mut s = spec();
            mutate(&mut s);
            let errors = s.validate().expect_err(field);
            assert!(errors.get(field).is_some(), "{field}: {errors}");
        }
    }

    #[test]
    fn the_sector_is_the_sector_uri_host_else_the_redirect_uris_host() {
        let mut s = spec();
        s.subject_type = Some("pairwise".into());
        s.redirect_uris.push("https://APP.example.test/other".into());
        let client = s.clone().validate().expect("one host (case aside): no sector URI needed").client;
        assert_eq!(client.subject_type, SubjectType::Pairwise);
        assert_eq!(client.sector_identifier(), "app.example.test");
        s.redirect_uris.push("https://elsewhere.example.test/cb".into());
        s.sector_identifier_uri = Some("https://sector.example.test/uris.json".into());
        let client = s.validate().expect("several hosts with a sector URI").client;
        assert_eq!(client.sector_identifier(), "sector.example.test");
        assert_eq!(spec().validate().unwrap().client.subject_type, SubjectType::Public, "the default");
    }

    #[test]
    fn unsigned_responses_are_refused_by_name_and_display_urls_must_be_https() {
        for field in ["id_token_signed_response_alg", "userinfo_signed_response_alg"] {
            let mut s = spec();
            if field == "id_token_signed_response_alg" {
                s.id_token_signed_response_alg = Some("none".into());
            } else {
                s.userinfo_signed_response_alg = Some("none".into());
            }
            let errors = s.validate().expect_err(field).to_string();
            assert!(errors.contains(field) && errors.contains("\"none\" is not supported"), "{errors}");
        }
        let mut s = spec();
        s.userinfo_signed_response_alg = Some("ES256".into());
        s.logo_uri = Some("https://app.example.test/logo.png".into());
        s.policy_uri = Some("http://127.0.0.1:8000/policy".into());
        let client = s.validate().unwrap().client;
        assert_eq!(client.userinfo_alg, Some(SigningAlg::ES256));
        assert!(client.display(false).policy_uri.is_none(), "a loopback page only in dev mode");
        assert!(client.display(true).policy_uri.is_some());
        assert_eq!(client.display(false).logo_origin().as_deref(), Some("https://app.example.test"));
        for (field, bad) in [("logo_uri", "http://cdn.example.test/l.png"), ("tos_uri", "javascript:alert(1)")] {
            let mut s = spec();
            if field == "logo_uri" {
                s.logo_uri = Some(bad.into());
            } else {
                s.tos_uri = Some(bad.into());
            }
            let errors = s.validate().expect_err(field).to_string();
            assert!(errors.contains(field), "{errors}");
        }
    }

    #[test]
    fn a_client_secret_jwt_client_gets_a_512_bit_secret_and_an_hmac_alg_only() {
        let mut s = spec();
        s.token_endpoint_auth_method = Some("client_secret_jwt".into());
        s.token_endpoint_auth_signing_alg = Some("HS512".into());
        let new = s.clone().validate().unwrap();
        assert_eq!(new.client.auth_method, AuthMethod::ClientSecretJwt);
        assert_eq!(new.secret.as_deref().map(str::len), Some(86), "64 random bytes, base64url");
        assert_eq!(new.client.assertion_alg, Some(AuthSigningAlg::Mac(MacAlg::HS512)));
        assert!(new.client.secret_sealed.is_none(), "sealed by the registry, which has the key");
        type Case = (&'static str, fn(&mut ClientSpec));
        let cases: [Case; 4] = [
            ("token_endpoint_auth_signing_alg", |s| s.token_endpoint_auth_signing_alg = Some("RS256".into())),
            ("client_secret", |s| s.client_secret = Some("x".repeat(31))),
            ("client_secret", |s| s.client_secret = Some("x".repeat(40))),
            ("token_endpoint_auth_signing_alg", |s| {
                s.token_endpoint_auth_method = Some("private_key_jwt".into());
                s.jwks_uri = Some("https://rp.example.test/jwks".into());
            }),
        ];
        for (field, mutate) in cases {
            let mut s = s.clone();
            mutate(&mut s);
            let errors = s.validate().expect_err(field);
            assert!(errors.get(field).is_some(), "{field}: {errors}");
        }
        s.client_secret = Some("x".repeat(64));
        assert!(s.validate().is_ok(), "a fixed 64-byte secret for HS512");
    }

    #[test]
    fn switching_to_client_secret_jwt_needs_a_new_secret() {
        let basic = spec().validate().unwrap().client;
        let mut jwt = basic.clone();
        jwt.auth_method = AuthMethod::ClientSecretJwt;
        assert!(jwt.needs_new_secret(&basic), "the basic client's secret is only a hash");
        let mut sealed = jwt.clone();
        sealed.secret_sealed = Some(SealedSecret::seal(None, "web", &"s".repeat(43)).unwrap());
        assert!(!jwt.needs_new_secret(&sealed), "already client_secret_jwt");
        assert!(!basic.needs_new_secret(&sealed), "back to basic: the hash is still there");
        let mut public = basic.clone();
        public.secret_hash = None;
        assert!(basic.needs_new_secret(&public));
    }

    #[test]
    fn public_clients_have_no_secret() {
        let mut s = spec();
        s.token_endpoint_auth_method = Some("none".into());
        let new = s.validate().unwrap();
        assert_eq!(new.client.client_type, ClientType::Public);
        assert!(new.secret.is_none());
        assert!(!new.client.secret_matches(""));
    }
}
