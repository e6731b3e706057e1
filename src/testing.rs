//! `TestIdp`: a real Lanyard inside your test process (feature `testing`).
//!
//! It listens on a random loopback port with an in-memory database (`ephemeral`), without
//! demo data and with `dev_login` on, so that a test can sign a user in headlessly through
//! the real authorization code flow (or, for a CLI or TV client, the device flow:
//! [`TestIdp::device_flow`]), or mint a token without a flow, and then check what its own
//! code does with the result. Nothing is written to disk; every `TestIdp` has a database
//! and signing keys of its own.
//!
//! ```
//! use lanyard::testing::{ApiSpec, ClientSpec, ScopeSpec, SignIn, TestIdp};
//! use serde_json::json;
//!
//! const NOTES: &str = "https://api.example.test/notes";
//! const CALLBACK: &str = "http://127.0.0.1:3000/callback";
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     tokio::runtime::Runtime::new()?.block_on(async {
//!         let idp = TestIdp::builder()
//!             .user("alice", "alice-password", json!({ "name": "Alice Example", "email": "alice@example.test" }))
//!             .api(ApiSpec {
//!                 identifier: NOTES.into(),
//!                 name: "Notes".into(),
//!                 scopes: vec![ScopeSpec::Name("read:notes".into())],
//!                 ..Default::default()
//!             })
//!             .client(ClientSpec {
//!                 client_id: Some("web".into()),
//!                 client_secret: Some("web-secret-for-tests".into()),
//!                 redirect_uris: vec![CALLBACK.into()],
//!                 scope: Some("openid profile read:notes".into()),
//!                 ..Default::default()
//!             })
//!             .start()
//!             .await?;
//!
//!         // The whole code flow, headless: /authorize with login_hint (dev-login), the
//!         // code from the redirect, /token with the PKCE verifier.
//!         let tokens = idp
//!             .sign_in(SignIn {
//!                 client_id: "web".into(),
//!                 client_secret: Some("web-secret-for-tests".into()),
//!                 redirect_uri: CALLBACK.into(),
//!                 username: "alice".into(),
//!                 scope: "openid profile read:notes".into(),
//!                 resource: Some(NOTES.into()),
//!             })
//!             .await?;
//!         assert!(tokens.id_token.is_some());
//!
//!         // An API accepts the access token (and would refuse the id_token).
//!         let verifier = lanyard::verify::Verifier::discover(idp.issuer(), NOTES).await?;
//!         let claims = verifier.verify(&tokens.access_token).await?;
//!         assert!(claims.has_scope("read:notes"));
//!
//!         // For API tests, a token without a flow: same claims, same keys.
//!         let token = idp.mint_access_token("alice", "web", NOTES, "read:notes").await?;
//!         assert_eq!(verifier.verify(&token).await?.sub, claims.sub);
//!
//!         idp.stop().await;
//!         Ok(())
//!     })
//! }
//! ```
//!
//! DPoP (RFC 9449): [`DpopKey`] is a client's key pair, [`TestIdp::sign_in_dpop`] the same
//! sign-in with the token request proving it (the tokens come back bound to the key, `token_type`
//! `DPoP`), and [`TestIdp::dpop_proof`] a proof for any later request (userinfo, an API):
//!
//! ```no_run
//! # use lanyard::testing::{DpopKey, SignIn, TestIdp};
//! # async fn example(idp: TestIdp, sign_in: SignIn) -> Result<(), lanyard::testing::TestIdpError> {
//! let key = DpopKey::generate()?;
//! let tokens = idp.sign_in_dpop(sign_in, &key).await?;
//! assert_eq!(tokens.token_type, "DPoP");
//! let userinfo = idp.url("/userinfo");
//! let proof = idp.dpop_proof(&key, "GET", &userinfo, Some(&tokens.access_token)).await?;
//! let response = reqwest::Client::new()
//!     .get(&userinfo)
//!     .header("Authorization", format!("DPoP {}", tokens.access_token))
//!     .header("DPoP", proof)
//!     .send()
//!     .await?;
//! assert!(response.status().is_success());
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::TcpListener;

use actix_web::dev::ServerHandle;
use actix_web::web;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::app::{Application, StartError};
use crate::config::{ConfigError, Settings};
use crate::crypto::{random_token, sha256_b64};
use crate::registry::client::AuthMethod;
use crate::registry::{self, FieldErrors, RegistryError};
use crate::state::AppState;
use crate::store::Store;
use crate::tokens::mint::{MintError, mint};

pub use crate::activity::{DecodedToken, Entry as ActivityEntry, Filter as ActivityFilter};
pub use crate::clock::{ClockChange, ClockView};
pub use crate::registry::api::{ApiSpec, ScopeSpec};
pub use crate::registry::client::{ClientSpec, TOKEN_EXCHANGE_GRANT};
pub use crate::registry::scope::ClaimScopeSpec;
pub use crate::registry::user::UserSpec;
pub use crate::tokens::defects::Defect;
pub use crate::tokens::mint::{MintRequest, MintedTokens};

/// Why a `TestIdp` could not start or do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum TestIdpError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot register {what}: {source}")]
    Register { what: String, source: RegistryError },
    #[error("cannot mint a token: {0}")]
    Mint(#[from] MintError),
    #[error("request to the test IdP failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("sign-in failed: {0}")]
    SignIn(String),
    #[error("cannot set the clock: {0}")]
    Clock(#[from] crate::lab::ClockError),
    #[error("cannot read the protocol recorder: {0}")]
    Activity(#[from] crate::store::StoreError),
}

type Adjust = Box<dyn FnOnce(&mut Settings) + Send>;

/// What a [`TestIdp`] starts with: users, APIs, clients and settings.
#[derive(Default)]
pub struct TestIdpBuilder {
    users: Vec<(String, String, Value)>,
    user_specs: Vec<UserSpec>,
    apis: Vec<ApiSpec>,
    clients: Vec<ClientSpec>,
    adjust: Vec<Adjust>,
    /// Claims given with [`TestIdpBuilder::claims`]: (username, JSON object).
    claims: Vec<(String, Value)>,
    scopes: Vec<ClaimScopeSpec>,
    /// Given with [`TestIdpBuilder::token_exchange`]: (API, its client, downstream APIs).
    exchanges: Vec<(String, String, Vec<String>)>,
}

impl TestIdpBuilder {
    /// A user; `claims` is a JSON object of standard claims (`name`, `email`,
    /// `email_verified`, …), or `null` for none.
    pub fn user(mut self, username: &str, password: &str, claims: Value) -> Self {
        self.users.push((username.to_owned(), password.to_owned(), claims));
        self
    }

    /// More claims for a user given with [`TestIdpBuilder::user`] or
    /// [`TestIdpBuilder::user_spec`]: a JSON object such as `{"roles": ["admin"], "tenant":
    /// "acme"}`, merged into the user's (a name given twice takes the later value).
    pub fn claims(mut self, username: &str, claims: Value) -> Self {
        self.claims.push((username.to_owned(), claims));
        self
    }

    /// A custom scope that releases user claims to the id_token and userinfo (allow it to a
    /// client in its `scope`), e.g. `name: "roles", claims: ["roles"]`.
    pub fn scope(mut self, spec: ClaimScopeSpec) -> Self {
        self.scopes.push(spec);
        self
    }

    /// A user with every field under the caller's control (admins, for instance).
    pub fn user_spec(mut self, spec: UserSpec) -> Self {
        self.user_specs.push(spec);
        self
    }

    /// An API (resource server): the audience of the access tokens it accepts.
    pub fn api(mut self, spec: ApiSpec) -> Self {
        self.apis.push(spec);
        self
    }

    /// Lets the API `from` (given with [`TestIdpBuilder::api`]) exchange its users' tokens
    /// for tokens for `to` (RFC 8693), through its introspection client `client_id` (given
    /// with [`TestIdpBuilder::client`], which must be allowed the token-exchange grant:
    /// `grant_types: vec![TOKEN_EXCHANGE_GRANT.into()]`). The same as setting the API's
    /// `introspection_client_id` and `token_exchange_audiences`.
    pub fn token_exchange(mut self, from: &str, client_id: &str, to: &[&str]) -> Self {
        self.exchanges.push((from.to_owned(), client_id.to_owned(), to.iter().map(|a| (*a).to_owned()).collect()));
        self
    }

    /// A client, with RFC 7591 field names. Give `client_id` (and `client_secret` for a
    /// confidential client) to know them in the test; otherwise they are generated.
    pub fn client(mut self, spec: ClientSpec) -> Self {
        self.clients.push(spec);
        self
    }

    /// Adjusts the settings after TestIdp's own (ephemeral, no demo, dev_login, loopback
    /// issuer on the random port): a seed file with fixed signing keys, token lifetimes, ….
    pub fn settings(mut self, adjust: impl FnOnce(&mut Settings) + Send + 'static) -> Self {
        self.adjust.push(Box::new(adjust));
        self
    }

    /// Starts the server and registers everything; returns once it accepts requests.
    pub async fn start(self) -> Result<TestIdp, TestIdpError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|source| StartError::Bind { addr: "127.0.0.1:0".into(), source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: "127.0.0.1:0".into(), source })?;
        let base = format!("http://{addr}");
        let mut settings = Settings {
            issuer: Some(base.clone()),
            bind: Some(addr.to_string()),
            ephemeral: true,
            demo: false,
            dev_login: true,
            workers: 2,
            ..Settings::default()
        };
        for adjust in self.adjust {
            adjust(&mut settings);
        }
        let config = settings.validate()?;
        let base = config.issuer.as_str().to_owned();
        let app = Application::build_with_listener(config, listener).await?;
        let state = app.state();
        let handle = app.handle();
        let task = tokio::spawn(app.run_until_stopped());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(TestIdpError::Http)?;
        let idp = TestIdp { base, state, handle, task: Some(task), http };
        let mut users = self.user_specs;
        for (username, password, claims) in self.users {
            let claims = match claims {
                Value::Object(map) => map,
                Value::Null => Map::new(),
                other => {
                    let errors = FieldErrors::single("claims", format!("must be a JSON object, got {other}"));
                    return Err(TestIdpError::Register { what: format!("user {username:?}"), source: errors.into() });
                }
            };
            users.push(UserSpec { username, password, is_admin: false, claims });
        }
        for (username, claims) in self.claims {
            let failed = |message: String| TestIdpError::Register {
                what: format!("claims of user {username:?}"),
                source: FieldErrors::single("claims", message).into(),
            };
            let Value::Object(claims) = claims else {
                return Err(failed("must be a JSON object".into()));
            };
            let user = users
                .iter_mut()
                .find(|u| u.username == username)
                .ok_or_else(|| failed("no such user in the builder: add it with .user(…) first".into()))?;
            user.claims.extend(claims);
        }
        for spec in self.scopes {
            let what = format!("scope {:?}", spec.name);
            registry::create_claim_scope(idp.store(), spec)
                .await
                .map_err(|source| TestIdpError::Register { what, source })?;
        }
        let mut apis = self.apis;
        for (from, client_id, to) in self.exchanges {
            let Some(api) = apis.iter_mut().find(|a| a.identifier == from) else {
                let errors = FieldErrors::single("identifier", "no such API in the builder: add it with .api(…) first");
                return Err(TestIdpError::Register {
                    what: format!("token exchange of API {from:?}"),
                    source: errors.into(),
                });
            };
            api.introspection_client_id = Some(client_id);
            api.token_exchange_audiences.extend(to);
        }
        register(idp.store(), apis, self.clients, users).await?;
        Ok(idp)
    }
}

/// APIs first (clients name their scopes), then clients, then the APIs' introspection
/// clients (which must exist by then) and token exchange audiences (every API exists by
/// then), then users.
async fn register(
    store: &Store,
    apis: Vec<ApiSpec>,
    clients: Vec<ClientSpec>,
    users: Vec<UserSpec>,
) -> Result<(), TestIdpError> {
    let failed = |what: String| move |source| TestIdpError::Register { what, source };
    for spec in &apis {
        let first = ApiSpec { introspection_client_id: None, token_exchange_audiences: Vec::new(), ..spec.clone() };
        registry::create_api(store, first).await.map_err(failed(format!("API {:?}", spec.identifier)))?;
    }
    for spec in clients {
        let what = format!("client {:?}", spec.client_id.as_deref().unwrap_or("(generated id)"));
        registry::create_client(store, spec).await.map_err(failed(what))?;
    }
    for spec in
        apis.into_iter().filter(|a| a.introspection_client_id.is_some() || !a.token_exchange_audiences.is_empty())
    {
        let what = format!("API {:?}", spec.identifier);
        registry::update_api(store, spec).await.map_err(failed(what))?;
    }
    for spec in users {
        let what = format!("user {:?}", spec.username);
        registry::create_user(store, spec).await.map_err(failed(what))?;
    }
    Ok(())
}

/// A headless sign-in: the authorization code flow with PKCE, `login_hint` = `username`.
#[derive(Debug, Clone, Default)]
pub struct SignIn {
    pub client_id: String,
    /// The secret of a confidential client; `None` for a public one.
    pub client_secret: Option<String>,
    /// One of the client's registered redirect URIs (nothing needs to listen there).
    pub redirect_uri: String,
    pub username: String,
    /// Space-separated scopes, e.g. `"openid profile read:notes"`.
    pub scope: String,
    /// The API (RFC 8707 `resource`) the access token is for; the client's default if `None`.
    pub resource: Option<String>,
}

/// A headless device flow (RFC 8628) for a client allowed the grant
/// `urn:ietf:params:oauth:grant-type:device_code`.
#[derive(Debug, Clone, Default)]
pub struct DeviceFlow {
    pub client_id: String,
    /// The secret of a confidential client; `None` for a public one (a CLI, a TV app).
    pub client_secret: Option<String>,
    /// Who approves on the device page (dev-login signs them in with `login_hint`).
    pub username: String,
    /// Space-separated scopes, e.g. `"openid profile read:notes"`.
    pub scope: String,
    /// The API (RFC 8707 `resource`) the access token is for; the client's default if `None`.
    pub resource: Option<String>,
}

/// What `/device_authorization` answered (RFC 8628 §3.2).
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// What `/par` answered (RFC 9126 §2.2): the reference to pass to `/authorize`.
#[derive(Debug, Clone, Deserialize)]
pub struct PushedRequest {
    /// `urn:ietf:params:oauth:request_uri:…`, good once.
    pub request_uri: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// What `/token` answered (RFC 6749 §5.1).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    pub scope: String,
    /// What a token exchange issued (`urn:ietf:params:oauth:token-type:access_token`);
    /// absent from every other grant's answer.
    #[serde(default)]
    pub issued_token_type: Option<String>,
}

/// A token exchange (RFC 8693) as an API performs it: authenticated as its introspection
/// client, it trades a user's access token for itself for one for a downstream API.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// The exchanging API's introspection client (allowed the token-exchange grant).
    pub client_id: String,
    pub client_secret: String,
    /// The user's access token for the exchanging API.
    pub subject_token: String,
    /// The downstream API's identifier (one of the exchanging API's
    /// `token_exchange_audiences`).
    pub resource: String,
    /// Fewer scopes than the subject token's; `None`: every one the downstream API defines.
    pub scope: Option<String>,
}

/// A refused token request: the status and the RFC 6749 §5.2 error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRefusal {
    pub status: u16,
    pub error: String,
    pub error_description: String,
}

/// A running Lanyard for tests. Stop it with [`TestIdp::stop`]; dropping it stops it too
/// (without waiting for in-flight requests).
pub struct TestIdp {
    base: String,
    state: web::Data<AppState>,
    handle: ServerHandle,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    http: reqwest::Client,
}

impl TestIdp {
    pub fn builder() -> TestIdpBuilder {
        TestIdpBuilder::default()
    }

    /// The issuer URL (`http://127.0.0.1:PORT`): the `iss` of every token, and what an
    /// OpenID Connect library discovers from.
    pub fn issuer(&self) -> &str {
        &self.base
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        self.url("/.well-known/openid-configuration")
    }

    /// The absolute URL of a path on the server, such as `/userinfo`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Exchanges a user's access token (RFC 8693) as `exchange` describes, authenticating
    /// with client_secret_basic. `Ok(Err(refusal))` when `/token` refused (the error it
    /// gave, for tests of refusals); `Err` when the request could not be made.
    pub async fn exchange_token(
        &self,
        exchange: &Exchange,
    ) -> Result<Result<TokenResponse, TokenRefusal>, TestIdpError> {
        let mut form = vec![
            ("grant_type", crate::registry::client::TOKEN_EXCHANGE_GRANT),
            ("subject_token", exchange.subject_token.as_str()),
            ("subject_token_type", crate::oauth::token::token_exchange::ACCESS_TOKEN_TYPE),
            ("resource", exchange.resource.as_str()),
        ];
        if let Some(scope) = &exchange.scope {
            form.push(("scope", scope));
        }
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let response = self
            .http
            .post(self.url("/token"))
            .basic_auth(encode(&exchange.client_id), Some(encode(&exchange.client_secret)))
            .form(&form)
            .send()
            .await?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(Ok(response.json().await?));
        }
        let body: Value = response.json().await.unwrap_or_default();
        let member = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
        Ok(Err(TokenRefusal { status, error: member("error"), error_description: member("error_description") }))
    }

    /// The server's database, to arrange what a test needs beyond the builder.
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// An access token for `user` issued to `client` for `api` with `scope` (space-separated;
    /// each scope allowed for the client and defined by the API or OpenID Connect), exactly as
    /// a flow would have issued it. An empty `api` means the client's default API.
    pub async fn mint_access_token(
        &self,
        user: &str,
        client: &str,
        api: &str,
        scope: &str,
    ) -> Result<String, TestIdpError> {
        let request = MintRequest {
            user: Some(user.to_owned()),
            client: client.to_owned(),
            api: Some(api.to_owned()).filter(|a| !a.is_empty()),
            scope: scope.to_owned(),
            id_token: false,
            defect: None,
        };
        Ok(self.mint(&request).await?.access_token)
    }

    /// A token an API must refuse (test lab): otherwise a perfect access token for `user`
    /// (or, with `None`, a client_credentials token of `client`) for `api` with `scope`,
    /// broken as `defect` says. `MintedTokens::expected_status` is what a correct API
    /// answers. Needs development features, which `TestIdp` always has.
    pub async fn mint_defective(
        &self,
        defect: Defect,
        user: Option<&str>,
        client: &str,
        api: &str,
        scope: &str,
    ) -> Result<MintedTokens, TestIdpError> {
        let request = MintRequest {
            user: user.map(str::to_owned),
            client: client.to_owned(),
            api: Some(api.to_owned()).filter(|a| !a.is_empty()),
            scope: scope.to_owned(),
            id_token: false,
            defect: Some(defect),
        };
        self.mint(&request).await
    }

    /// Moves the server's clock forward by `by` (test lab): every expiry, `iat` and `exp`
    /// from now on is computed from the moved time, so a test can sign in, advance an hour
    /// and see the access token refused while the refresh token still works. Whole seconds.
    pub async fn advance_clock(&self, by: std::time::Duration) -> Result<ClockView, TestIdpError> {
        let seconds = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.set_clock(ClockChange { advance_seconds: Some(seconds), ..Default::default() }).await
    }

    /// Changes the server's clock as `POST /admin/api/clock` does (offset, advance, freeze,
    /// reset) and returns it as it then is.
    pub async fn set_clock(&self, change: ClockChange) -> Result<ClockView, TestIdpError> {
        Ok(crate::lab::set_clock(&self.state.store, &change).await?)
    }

    /// "Now" on the server's clock, in seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        self.state.now()
    }

    /// Any token a flow could issue: a user's (with an id_token if asked) or, without a
    /// user, a client_credentials token.
    pub async fn mint(&self, request: &MintRequest) -> Result<MintedTokens, TestIdpError> {
        let config = &self.state.config;
        let ring = self.state.keys.ring();
        Ok(mint(&self.state.store, &ring, &config.issuer, &self.state.subjects, config.id_token_ttl, request).await?)
    }

    /// Runs the authorization code flow over HTTP as a browser and a client would, without
    /// a browser: `GET /authorize` with `login_hint` (dev-login signs the user in and skips
    /// consent), the code from the 303's `Location` (its `state` and `iss` checked), then
    /// `POST /token` with the PKCE verifier. The id_token's signature and nonce are checked.
    pub async fn sign_in(&self, request: SignIn) -> Result<TokenResponse, TestIdpError> {
        self.sign_in_with(request, false, None).await
    }

    /// [`TestIdp::sign_in`] with the request pushed first (RFC 9126): its parameters go to
    /// `/par` with the client's authentication, and `/authorize` gets only `client_id` and
    /// the `request_uri` it returned. For clients that require pushed requests (or a
    /// server that does, `require_pushed_authorization_requests`).
    pub async fn sign_in_pushed(&self, request: SignIn) -> Result<TokenResponse, TestIdpError> {
        self.sign_in_with(request, true, None).await
    }

    /// Pushes an authorization request to `/par` (RFC 9126 §2) as `client_id`, with
    /// `client_secret` for a confidential client (sent the way the client is registered to
    /// authenticate), and `params` (`response_type`, `redirect_uri`, `scope`, PKCE, …;
    /// `client_id` is added if missing). Then send the browser to
    /// `/authorize?client_id=…&request_uri=…`.
    pub async fn push_authorization_request(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
        params: &[(&str, &str)],
    ) -> Result<PushedRequest, TestIdpError> {
        let mut form: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        if !form.iter().any(|(k, _)| k == "client_id") {
            form.push(("client_id".into(), client_id.to_owned()));
        }
        let response = self.post_as_client("/par", client_id, client_secret, form, None).await?;
        let status = response.status();
        if status != reqwest::StatusCode::CREATED {
            let body = response.text().await.unwrap_or_default();
            return Err(TestIdpError::SignIn(format!("/par answered {status}: {body}")));
        }
        Ok(response.json().await?)
    }

    /// [`TestIdp::sign_in`] with DPoP (RFC 9449): the code is requested with `dpop_jkt`
    /// (§10) and redeemed with a proof of `key` (the server's nonce included when it
    /// requires one), so the tokens are bound to the key.
    pub async fn sign_in_dpop(&self, request: SignIn, key: &DpopKey) -> Result<TokenResponse, TestIdpError> {
        self.sign_in_with(request, false, Some(key)).await
    }

    /// A DPoP proof of `key` for one request (`method` to `url`, with `access_token` when it
    /// goes to a resource), made now on the server's clock, with the server's nonce when it
    /// requires one.
    pub async fn dpop_proof(
        &self,
        key: &DpopKey,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<String, TestIdpError> {
        let nonce = crate::oauth::dpop::current_nonce(&self.state).await;
        key.proof(method, url, self.state.now(), access_token, nonce.as_deref())
    }

    async fn sign_in_with(
        &self,
        request: SignIn,
        pushed: bool,
        dpop: Option<&DpopKey>,
    ) -> Result<TokenResponse, TestIdpError> {
        let fail = |m: String| TestIdpError::SignIn(m);
        let verifier = random_token(32);
        let state = random_token(16);
        let nonce = random_token(16);
        let mut query = vec![
            ("response_type", "code".to_owned()),
            ("client_id", request.client_id.clone()),
            ("redirect_uri", request.redirect_uri.clone()),
            ("scope", request.scope.clone()),
            ("state", state.clone()),
            ("nonce", nonce.clone()),
            ("code_challenge", sha256_b64(verifier.as_bytes())),
            ("code_challenge_method", "S256".to_owned()),
            ("login_hint", request.username.clone()),
        ];
        if let Some(resource) = &request.resource {
            query.push(("resource", resource.clone()));
        }
        if let Some(key) = dpop {
            query.push(("dpop_jkt", key.jkt().to_owned()));
        }
        if pushed {
            let params: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let secret = request.client_secret.as_deref();
            let pushed = self.push_authorization_request(&request.client_id, secret, &params).await?;
            query = vec![("client_id", request.client_id.clone()), ("request_uri", pushed.request_uri)];
        }
        let response = self.http.get(self.url("/authorize")).query(&query).send().await?;
        let status = response.status();
        let location = response.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned);
        let Some(location) = location.filter(|_| status.is_redirection()) else {
            let body = response.text().await.unwrap_or_default();
            return Err(fail(if body.contains("name=\"password\"") {
                format!("/authorize showed the login page: is {:?} a registered, enabled user?", request.username)
            } else {
                format!("/authorize answered {status} instead of redirecting: {}", page_text(&body))
            }));
        };
        let params: HashMap<String, String> = url::Url::parse(&location)
            .map_err(|e| fail(format!("/authorize redirected to {location:?}: {e}")))?
            .query_pairs()
            .into_owned()
            .collect();
        if let Some(error) = params.get("error") {
            let description = params.get("error_description").map(String::as_str).unwrap_or("");
            return Err(fail(format!("/authorize answered {error}: {description}")));
        }
        if params.get("state") != Some(&state) || params.get("iss").map(String::as_str) != Some(self.issuer()) {
            return Err(fail(format!("the redirect {location:?} lacks the request's state or this issuer")));
        }
        let code = params.get("code").ok_or_else(|| fail(format!("no code in the redirect {location:?}")))?;
        let tokens = self.exchange(&request, code, &verifier, dpop).await?;
        if let Some(id_token) = &tokens.id_token {
            let (_, payload) = self.state.keys.ring().verify(id_token).map_err(|e| fail(format!("id_token: {e}")))?;
            let claims: Value = serde_json::from_slice(&payload).map_err(|e| fail(format!("id_token: {e}")))?;
            if claims["nonce"].as_str() != Some(nonce.as_str()) {
                return Err(fail("the id_token does not carry the request's nonce".into()));
            }
        }
        Ok(tokens)
    }

    /// The device flow as a device and its user run it, without a browser: the device's
    /// codes from `/device_authorization`, the user's approval on the device page (opened at
    /// `verification_uri_complete` with `login_hint`, which dev-login signs in), then the
    /// device's poll of `/token`. The id_token's signature is checked.
    pub async fn device_flow(&self, flow: DeviceFlow) -> Result<TokenResponse, TestIdpError> {
        let started = self.start_device_flow(&flow).await?;
        self.decide_device(&started, &flow.username, true).await?;
        let tokens = self.poll_device_token(&flow, &started).await?;
        if let Some(id_token) = &tokens.id_token {
            self.state.keys.ring().verify(id_token).map_err(|e| TestIdpError::SignIn(format!("id_token: {e}")))?;
        }
        Ok(tokens)
    }

    /// `POST /device_authorization`: the codes a device shows and polls with.
    pub async fn start_device_flow(&self, flow: &DeviceFlow) -> Result<DeviceAuthorization, TestIdpError> {
        let mut form = vec![("scope", flow.scope.as_str())];
        if let Some(resource) = &flow.resource {
            form.push(("resource", resource));
        }
        let response =
            self.client_post("/device_authorization", &flow.client_id, flow.client_secret.as_deref(), form).await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(TestIdpError::SignIn(format!("/device_authorization answered {status}: {body}")));
        }
        Ok(response.json().await?)
    }

    /// The user's side of a device flow: opens `verification_uri_complete` with
    /// `login_hint=username` (dev-login signs the user in; the page shows the request) and
    /// submits its form: Approve, or Deny when `approve` is false.
    pub async fn decide_device(
        &self,
        started: &DeviceAuthorization,
        username: &str,
        approve: bool,
    ) -> Result<(), TestIdpError> {
        let fail = |m: String| TestIdpError::SignIn(m);
        let page = self.http.get(&started.verification_uri_complete).query(&[("login_hint", username)]).send().await?;
        // The session and CSRF cookies the page set, sent back with its form.
        let cookies: Vec<String> = page
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .collect();
        let status = page.status();
        let html = page.text().await?;
        if html.contains("name=\"password\"") {
            return Err(fail(format!(
                "the device page showed the login page: is {username:?} a registered, enabled user?"
            )));
        }
        let csrf = form_value(&html, "csrf_token")
            .filter(|_| status.is_success())
            .ok_or_else(|| fail(format!("the device page answered {status}: {}", page_text(&html))))?;
        let decision = if approve { "approve" } else { "deny" };
        let form = [("csrf_token", csrf.as_str()), ("user_code", started.user_code.as_str()), ("decision", decision)];
        let response = self
            .http
            .post(self.url("/device"))
            .header(reqwest::header::COOKIE, cookies.join("; "))
            .form(&form)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(fail(format!("the device page refused the decision ({status}): {}", page_text(&body))));
        }
        Ok(())
    }

    /// The device's side: polls `/token` every `interval` seconds (5 more after each
    /// `slow_down`, RFC 8628 §3.5) until it answers with tokens, or with an error other
    /// than `authorization_pending`, or the codes expire.
    pub async fn poll_device_token(
        &self,
        flow: &DeviceFlow,
        started: &DeviceAuthorization,
    ) -> Result<TokenResponse, TestIdpError> {
        let fail = |m: String| TestIdpError::SignIn(m);
        let mut interval = started.interval.max(1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(started.expires_in.max(0) as u64);
        loop {
            let form = vec![
                ("grant_type", crate::registry::client::GrantType::DeviceCode.as_str()),
                ("device_code", started.device_code.as_str()),
            ];
            let response = self.client_post("/token", &flow.client_id, flow.client_secret.as_deref(), form).await?;
            let status = response.status();
            if status.is_success() {
                return Ok(response.json().await?);
            }
            let body: Value = response.json().await.unwrap_or_default();
            match body["error"].as_str() {
                Some("authorization_pending") => {}
                Some("slow_down") => interval += 5,
                _ => return Err(fail(format!("/token answered {status}: {body}"))),
            }
            let wait = std::time::Duration::from_secs(interval as u64);
            if std::time::Instant::now() + wait > deadline {
                return Err(fail("the device code expired before the user decided".into()));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// `POST /token` with the client authentication the client is registered for (and a
    /// DPoP proof of `dpop`).
    async fn exchange(
        &self,
        request: &SignIn,
        code: &str,
        verifier: &str,
        dpop: Option<&DpopKey>,
    ) -> Result<TokenResponse, TestIdpError> {
        let form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", request.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ];
        let proof = match dpop {
            Some(key) => Some(self.dpop_proof(key, "POST", &self.url("/token"), None).await?),
            None => None,
        };
        let form = form.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let secret = request.client_secret.as_deref();
        let response = self.post_as_client("/token", &request.client_id, secret, form, proof).await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(TestIdpError::SignIn(format!("/token answered {status}: {body}")));
        }
        Ok(response.json().await?)
    }

    /// As [`TestIdp::post_as_client`], with borrowed pairs.
    async fn client_post(
        &self,
        path: &str,
        client_id: &str,
        client_secret: Option<&str>,
        form: Vec<(&str, &str)>,
    ) -> Result<reqwest::Response, TestIdpError> {
        let form = form.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        self.post_as_client(path, client_id, client_secret, form, None).await
    }

    /// POSTs `form` to `path` (`/token`, `/par`) with the client authentication the client
    /// is registered for, and the `DPoP` proof header when one is given.
    async fn post_as_client(
        &self,
        path: &str,
        client_id: &str,
        client_secret: Option<&str>,
        mut form: Vec<(String, String)>,
        dpop_proof: Option<String>,
    ) -> Result<reqwest::Response, TestIdpError> {
        let client = self.store().client(client_id).await.map_err(|e| TestIdpError::SignIn(e.to_string()))?;
        let method = client.as_ref().map_or(AuthMethod::ClientSecretBasic, |c| c.auth_method);
        let secret = client_secret.unwrap_or("");
        let mut post = self.http.post(self.url(path));
        let mut add = |name: &str, value: &str| {
            if !form.iter().any(|(k, _)| k == name) {
                form.push((name.to_owned(), value.to_owned()));
            }
        };
        match method {
            // RFC 6749 §2.3.1: both parts are form-urlencoded before they are joined.
            AuthMethod::ClientSecretBasic => {
                let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                post = post.basic_auth(encode(client_id), Some(encode(secret)));
            }
            AuthMethod::ClientSecretPost => {
                add("client_id", client_id);
                add("client_secret", secret);
            }
            AuthMethod::None => add("client_id", client_id),
            // The client's secret is in the request: an assertion MACed with it, for the
            // token endpoint, with the client's registered algorithm (HS256 by default).
            AuthMethod::ClientSecretJwt => {
                let alg = client.and_then(|c| c.assertion_alg).map_or("HS256", |a| a.as_str());
                let assertion = self.secret_jwt(client_id, secret, alg)?;
                add("client_assertion_type", crate::oauth::client_assertion::ASSERTION_TYPE);
                add("client_assertion", &assertion);
            }
            // The client's private key is the client's: TestIdp cannot sign its assertion.
            AuthMethod::PrivateKeyJwt => {
                return Err(TestIdpError::SignIn(format!(
                    "client {client_id:?} authenticates with private_key_jwt: TestIdp holds no key to sign its assertion"
                )));
            }
        }
        if let Some(proof) = dpop_proof {
            post = post.header("DPoP", proof);
        }
        Ok(post.form(&form).send().await?)
    }

    /// A client_secret_jwt assertion (RFC 7523 §3) for `client_id`, valid for a minute.
    fn secret_jwt(&self, client_id: &str, secret: &str, alg: &str) -> Result<String, TestIdpError> {
        use josekit::jws::{HS256, HS384, HS512, JwsHeader};
        let fail = |e: josekit::JoseError| TestIdpError::SignIn(format!("cannot MAC the client assertion: {e}"));
        let signer = match alg {
            "HS384" => HS384.signer_from_bytes(secret.as_bytes()),
            "HS512" => HS512.signer_from_bytes(secret.as_bytes()),
            _ => HS256.signer_from_bytes(secret.as_bytes()),
        }
        .map_err(fail)?;
        let now = self.state.now();
        let claims = serde_json::json!({
            "iss": client_id, "sub": client_id, "aud": self.url("/token"),
            "jti": random_token(16), "iat": now, "exp": now + 60,
        });
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, &signer).map_err(fail)
    }

    /// The protocol exchanges recorded so far, newest first, that match `filter` (e.g.
    /// `ActivityFilter::client("web")`, or `ActivityFilter::default()` for all): what the
    /// code under test sent and got back, with secrets masked and tokens decoded, so that a
    /// test can assert on the conversation and not only on its end.
    pub async fn activity(&self, filter: ActivityFilter) -> Result<Vec<ActivityEntry>, TestIdpError> {
        Ok(self.state.activity.list(&filter).await?)
    }

    /// Stops the server gracefully (in-flight requests finish) and waits until it has.
    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        if self.task.is_some() {
            // The stop command is sent at once; the returned future only waits for it.
            drop(self.handle.stop(false));
        }
    }
}

/// The value of the input named `name` in an HTML page of Lanyard's.
fn form_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(decode_entities(&html[start..end]))
}

/// The visible text of an HTML page, shortened, for error messages.
fn page_text(html: &str) -> String {
    let body = ["<h1", "<main", "<body"].iter().find_map(|tag| html.find(tag)).map_or(html, |i| &html[i..]);
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = decode_entities(&text.split_whitespace().collect::<Vec<_>>().join(" "));
    text.chars().take(300).collect()
}

/// Undoes HTML escaping: `&amp;`, `&lt;`, `&gt;`, `&quot;` and numeric references.
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let Some(end) = rest.find(';').filter(|&end| end <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix('#')
                .and_then(|n| match n.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => n.parse().ok(),
                })
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A client's DPoP key pair (ES256, P-256), made for the test, and the proofs it signs
/// (RFC 9449 §4.2).
pub struct DpopKey {
    signer: josekit::jws::alg::ecdsa::EcdsaJwsSigner,
    public: josekit::jwk::Jwk,
    jkt: String,
}

impl DpopKey {
    /// A fresh key pair.
    pub fn generate() -> Result<Self, TestIdpError> {
        use josekit::jws::ES256;
        let fail = |e: josekit::JoseError| TestIdpError::SignIn(format!("cannot make a DPoP key: {e}"));
        let pair = ES256.generate_key_pair().map_err(fail)?;
        let signer = ES256.signer_from_jwk(&pair.to_jwk_private_key()).map_err(fail)?;
        let public = pair.to_jwk_public_key();
        let member = |name: &str| public.parameter(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        // RFC 7638: the required members in lexicographic order.
        let canonical = serde_json::json!({ "crv": member("crv"), "kty": "EC", "x": member("x"), "y": member("y") });
        let canonical =
            format!(r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#, canonical["crv"], canonical["x"], canonical["y"]);
        let jkt = sha256_b64(canonical.as_bytes());
        Ok(Self { signer, public, jkt })
    }

    /// The key's RFC 7638 thumbprint: the `cnf.jkt` of the tokens bound to it, and the
    /// `dpop_jkt` of an authorization request.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// The public key, as a proof carries it.
    pub fn public_jwk(&self) -> Value {
        Value::Object(self.public.as_ref().clone())
    }

    /// A proof for `method` to `url` made at `iat` (seconds since the epoch), with a fresh
    /// `jti`; `ath` for `access_token` and the server's `nonce` when given.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        iat: i64,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, TestIdpError> {
        use josekit::jws::JwsHeader;
        let fail = |e: josekit::JoseError| TestIdpError::SignIn(format!("cannot sign a DPoP proof: {e}"));
        let mut claims = serde_json::json!({ "jti": random_token(16), "htm": method, "htu": url, "iat": iat });
        if let Some(token) = access_token {
            claims["ath"] = Value::String(sha256_b64(token.as_bytes()));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = Value::String(nonce.to_owned());
        }
        let mut header = JwsHeader::new();
        header.set_token_type("dpop+jwt");
        header.set_jwk(self.public.clone());
        josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, &self.signer).map_err(fail)
    }
}
