//! `TestIdp`: a real Lanyard inside your test process (feature `testing`).
//!
//! It listens on a random loopback port with an in-memory database (`ephemeral`), without
//! demo data and with `dev_login` on, so that a test can sign a user in headlessly through
//! the real authorization code flow, or mint a token without a flow, and then check what its
//! own code does with the result. Nothing is written to disk; every `TestIdp` has a database
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

pub use crate::registry::api::{ApiSpec, ScopeSpec};
pub use crate::registry::client::ClientSpec;
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
        register(idp.store(), self.apis, self.clients, users).await?;
        Ok(idp)
    }
}

/// APIs first (clients name their scopes), then clients, then the APIs' introspection
/// clients (which must exist by then), then users.
async fn register(
    store: &Store,
    apis: Vec<ApiSpec>,
    clients: Vec<ClientSpec>,
    users: Vec<UserSpec>,
) -> Result<(), TestIdpError> {
    let failed = |what: String| move |source| TestIdpError::Register { what, source };
    for spec in &apis {
        let first = ApiSpec { introspection_client_id: None, ..spec.clone() };
        registry::create_api(store, first).await.map_err(failed(format!("API {:?}", spec.identifier)))?;
    }
    for spec in clients {
        let what = format!("client {:?}", spec.client_id.as_deref().unwrap_or("(generated id)"));
        registry::create_client(store, spec).await.map_err(failed(what))?;
    }
    for spec in apis.into_iter().filter(|a| a.introspection_client_id.is_some()) {
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
        self.sign_in_with(request, false).await
    }

    /// [`TestIdp::sign_in`] with the request pushed first (RFC 9126): its parameters go to
    /// `/par` with the client's authentication, and `/authorize` gets only `client_id` and
    /// the `request_uri` it returned. For clients that require pushed requests (or a
    /// server that does, `require_pushed_authorization_requests`).
    pub async fn sign_in_pushed(&self, request: SignIn) -> Result<TokenResponse, TestIdpError> {
        self.sign_in_with(request, true).await
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
        let response = self.post_as_client("/par", client_id, client_secret, form).await?;
        let status = response.status();
        if status != reqwest::StatusCode::CREATED {
            let body = response.text().await.unwrap_or_default();
            return Err(TestIdpError::SignIn(format!("/par answered {status}: {body}")));
        }
        Ok(response.json().await?)
    }

    async fn sign_in_with(&self, request: SignIn, pushed: bool) -> Result<TokenResponse, TestIdpError> {
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
        let tokens = self.exchange(&request, code, &verifier).await?;
        if let Some(id_token) = &tokens.id_token {
            let (_, payload) = self.state.keys.ring().verify(id_token).map_err(|e| fail(format!("id_token: {e}")))?;
            let claims: Value = serde_json::from_slice(&payload).map_err(|e| fail(format!("id_token: {e}")))?;
            if claims["nonce"].as_str() != Some(nonce.as_str()) {
                return Err(fail("the id_token does not carry the request's nonce".into()));
            }
        }
        Ok(tokens)
    }

    /// `POST /token` with the client authentication the client is registered for.
    async fn exchange(&self, request: &SignIn, code: &str, verifier: &str) -> Result<TokenResponse, TestIdpError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", request.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ];
        let form = form.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let secret = request.client_secret.as_deref();
        let response = self.post_as_client("/token", &request.client_id, secret, form).await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(TestIdpError::SignIn(format!("/token answered {status}: {body}")));
        }
        Ok(response.json().await?)
    }

    /// POSTs `form` to `path` (`/token`, `/par`) with the client authentication the client
    /// is registered for.
    async fn post_as_client(
        &self,
        path: &str,
        client_id: &str,
        client_secret: Option<&str>,
        mut form: Vec<(String, String)>,
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
        let now = crate::clock::now();
        let claims = serde_json::json!({
            "iss": client_id, "sub": client_id, "aud": self.url("/token"),
            "jti": random_token(16), "iat": now, "exp": now + 60,
        });
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, &signer).map_err(fail)
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
