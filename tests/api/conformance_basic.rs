//! The OpenID Foundation conformance suite's Basic, Config and Form Post OP plans
//! (`OIDCCBasicTestPlan`, `OIDCCConfigTestPlan`, `OIDCCFormPostBasicTestPlan`), one test per
//! module, named after it, mirroring what the module sends and checks (the suite itself
//! needs a Maven repository, which these machines lack).
//!
//! The Form Post plan is the Basic plan with `response_mode=form_post`: every Basic module
//! runs twice, `query` and `form_post` (the `conformance!` macro), the latter reading the
//! response from the HTML form as a browser would. Like certification setups, the test
//! client is confidential, uses client_secret_basic and has PKCE turned off
//! (`require_pkce: false`): the suite sends no PKCE except where a module says so.

use std::collections::HashMap;
use std::time::Duration;

use lanyard::registry::{self, client::ClientSpec, user::UserSpec};
use serde_json::{Value, json};

use crate::flow::{self, PASSWORD, decode_jwt, form_field};
use crate::helpers::{Backend, TestDb, TestServer};
use lanyard::testing::decode_entities;

const CLIENT: &str = "conformance";
const CALLBACK: &str = "http://127.0.0.1:9999/callback";
const USER: &str = "certified";

/// How the client asks for its authorization response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Query,
    FormPost,
}

/// One Basic module on both backends, in both response modes (Basic and Form Post plans).
macro_rules! conformance {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            use super::Mode;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite, Mode::Query).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(backend) = $crate::helpers::Backend::postgres().await {
                    super::$name(backend, Mode::Query).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn form_post_sqlite() {
                super::$name($crate::helpers::Backend::Sqlite, Mode::FormPost).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn form_post_postgres() {
                if let Some(backend) = $crate::helpers::Backend::postgres().await {
                    super::$name(backend, Mode::FormPost).await
                }
            }
        }
    )* };
}

/// What the browser ends up with after `/authorize`.
#[derive(Debug)]
enum Answer {
    /// The authorization response, as the client receives it (query or form post).
    Response(HashMap<String, String>),
    /// A page of Lanyard's (login, consent, error).
    Page { status: u16, html: String },
}

impl Answer {
    fn params(&self) -> &HashMap<String, String> {
        match self {
            Answer::Response(p) => p,
            Answer::Page { status, html } => panic!("expected a response to the client, got page {status}: {html}"),
        }
    }

    fn code(&self) -> String {
        let p = self.params();
        assert!(p.get("error").is_none(), "expected a code: {p:?}");
        assert_eq!(p.get("state").map(String::as_str), Some("af0ifjsldkj"), "state echoed: {p:?}");
        p["code"].clone()
    }

    fn error(&self) -> &str {
        let p = self.params();
        assert_eq!(p.get("state").map(String::as_str), Some("af0ifjsldkj"), "state echoed with errors: {p:?}");
        p.get("error").unwrap_or_else(|| panic!("expected an error: {p:?}"))
    }

    fn html(&self) -> &str {
        match self {
            Answer::Page { html, .. } => html,
            Answer::Response(p) => panic!("expected a page, got a response {p:?}"),
        }
    }

    fn is_login_page(&self) -> bool {
        matches!(self, Answer::Page { html, .. } if html.contains("name=\"password\""))
    }
}

/// The suite's side: a registered client, a user with every standard claim, a browser.
struct Rp {
    server: TestServer,
    secret: String,
    user_id: String,
    mode: Mode,
    browser: reqwest::Client,
    _db: TestDb,
}

fn new_browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap()
}

impl Rp {
    async fn start(backend: Backend, mode: Mode) -> Rp {
        Self::start_with(backend, mode, |_| {}).await
    }

    async fn start_with(backend: Backend, mode: Mode, adjust: impl FnOnce(&mut ClientSpec)) -> Rp {
        let db = TestDb::create(backend).await;
        let server = TestServer::start(&db).await;
        let claims = json!({
            "name": "Certified Tester", "given_name": "Certified", "family_name": "Tester",
            "email": "certified@example.test", "email_verified": true,
            "address": {"formatted": "1 Main St\nSpringfield", "country": "US"},
            "phone_number": "+1 555 0100", "phone_number_verified": false,
        });
        let Value::Object(claims) = claims else { unreachable!() };
        let user = registry::create_user(
            &server.store,
            UserSpec { username: USER.into(), password: PASSWORD.into(), is_admin: false, claims },
        )
        .await
        .expect("user registered");
        let mut spec = ClientSpec {
            client_id: Some(CLIENT.into()),
            client_name: Some("Conformance suite".into()),
            redirect_uris: vec![CALLBACK.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            scope: Some("openid profile email address phone offline_access".into()),
            require_pkce: Some(false),
            ..Default::default()
        };
        adjust(&mut spec);
        let client = registry::create_client(&server.store, spec).await.expect("client registered");
        Rp {
            secret: client.secret.unwrap_or_default(),
            user_id: user.id,
            mode,
            browser: new_browser(),
            server,
            _db: db,
        }
    }

    /// The module's authorization request: the suite's defaults (`scope=openid`, `state`,
    /// `nonce`, no PKCE), then `extra` (an empty value removes a parameter).
    fn authorize_url(&self, extra: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(String, String)> = [
            ("client_id", CLIENT),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "af0ifjsldkj"),
            ("nonce", "n-0S6_WzA2Mj"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        if self.mode == Mode::FormPost {
            pairs.push(("response_mode".into(), "form_post".into()));
        }
        for (k, v) in extra {
            pairs.retain(|(key, _)| key != k);
            if !v.is_empty() {
                pairs.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        let mut url = url::Url::parse(&self.server.url("/authorize")).unwrap();
        url.query_pairs_mut().extend_pairs(pairs);
        url.to_string()
    }

    /// Follows Lanyard's redirects and reads the response the way the mode delivers it.
    async fn follow(&self, mut response: reqwest::Response) -> Answer {
        loop {
            let status = response.status().as_u16();
            if (300..400).contains(&status) {
                let (location, params) = flow::location_params(&response);
                if location.starts_with('/') || location.starts_with(&self.server.base) {
                    let next = if location.starts_with('/') { self.server.url(&location) } else { location };
                    response = self.browser.get(next).send().await.unwrap();
                    continue;
                }
                assert_eq!(self.mode, Mode::Query, "form_post was asked for, got a redirect to {location}");
                assert!(location.starts_with(CALLBACK), "{location}");
                return Answer::Response(params);
            }
            let cache = response.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
            let html = response.text().await.unwrap();
            if let Some(fields) = form_post_fields(&html) {
                assert_eq!(self.mode, Mode::FormPost, "a form post that was not asked for");
                assert_eq!(status, 200);
                assert_eq!(cache.as_deref(), Some("no-store"), "the form holds a code");
                return Answer::Response(fields);
            }
            return Answer::Page { status, html };
        }
    }

    async fn open(&self, url: &str) -> Answer {
        let response = self.browser.get(url).send().await.unwrap();
        self.follow(response).await
    }

    /// Signs in on the login page shown, and consents if asked.
    async fn sign_in_on(&self, page: Answer) -> Answer {
        let mut answer = page;
        if answer.is_login_page() {
            let html = answer.html();
            let form = [
                ("csrf_token", form_field(html, "csrf_token").expect("csrf_token")),
                ("request_id", form_field(html, "request_id").expect("request_id")),
                ("username", USER.to_owned()),
                ("password", PASSWORD.to_owned()),
            ];
            let response = self.browser.post(self.server.url("/login")).form(&form).send().await.unwrap();
            answer = self.follow(response).await;
        }
        if let Answer::Page { html, .. } = &answer
            && html.contains("value=\"allow\"")
        {
            let form = [
                ("csrf_token", form_field(html, "csrf_token").expect("csrf_token")),
                ("request_id", form_field(html, "request_id").expect("request_id")),
                ("decision", "allow".to_owned()),
            ];
            let response = self.browser.post(self.server.url("/consent")).form(&form).send().await.unwrap();
            answer = self.follow(response).await;
        }
        answer
    }

    /// Opens the authorization URL and goes through login and consent.
    async fn authorize(&self, extra: &[(&str, &str)]) -> Answer {
        let page = self.open(&self.authorize_url(extra)).await;
        self.sign_in_on(page).await
    }

    /// Redeems a code with client_secret_basic (the plan's default).
    async fn exchange(&self, code: &str) -> (u16, Value) {
        let form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CALLBACK)];
        let response =
            self.server.http.post(self.server.url("/token")).basic_auth(CLIENT, Some(&self.secret)).form(&form);
        let response = response.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    async fn tokens(&self, code: &str) -> Value {
        let (status, tokens) = self.exchange(code).await;
        assert_eq!(status, 200, "{tokens}");
        tokens
    }

    /// The id_token's claims after the checks every module makes (OIDC Core §3.1.3.7):
    /// signed with a key in the JWKS, iss, aud, azp, exp, iat, nonce, at_hash, auth_time.
    async fn id_token(&self, tokens: &Value, nonce: Option<&str>) -> Value {
        let token = tokens["id_token"].as_str().expect("an id_token");
        let (header, claims) = decode_jwt(token);
        assert_eq!(header["alg"], "RS256");
        let jwks = self.server.get_json("/jwks").await;
        assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == header["kid"]), "kid in the JWKS");
        assert_eq!(claims["iss"], self.server.base.as_str());
        assert_eq!(claims["aud"], CLIENT);
        assert_eq!(claims["sub"], self.user_id.as_str());
        let now = lanyard::clock::real_now();
        assert!(claims["exp"].as_i64().unwrap() > now && claims["iat"].as_i64().unwrap() <= now + 5);
        assert!(claims["auth_time"].is_i64());
        match nonce {
            Some(n) => assert_eq!(claims["nonce"], n),
            None => assert!(claims.get("nonce").is_none()),
        }
        let access_token = tokens["access_token"].as_str().unwrap();
        assert_eq!(claims["at_hash"], lanyard::tokens::issue::at_hash(access_token));
        claims
    }

    async fn userinfo(&self, access_token: &str) -> Value {
        let response = self.server.http.get(self.server.url("/userinfo")).bearer_auth(access_token).send().await;
        let response = response.unwrap();
        assert_eq!(response.status(), 200);
        let claims: Value = response.json().await.unwrap();
        assert_eq!(claims["sub"], self.user_id.as_str(), "userinfo sub = id_token sub");
        claims
    }
}

/// The fields of a form_post page (Form Post Response Mode §2): the form must POST to
/// the redirect_uri exactly; its hidden inputs are what the browser sends.
fn form_post_fields(html: &str) -> Option<HashMap<String, String>> {
    if !html.contains("id=\"form-post\"") {
        return None;
    }
    assert!(html.contains("method=\"post\""), "{html}");
    let action = attribute(html, "action").expect("an action");
    assert_eq!(action, CALLBACK, "the form posts to the registered redirect_uri");
    assert!(html.contains("src=\"/static/form_post.js\""), "auto-submitted by a static script (CSP)");
    assert!(html.contains("type=\"submit\""), "a button for browsers without JavaScript");
    let mut fields = HashMap::new();
    for input in html.split("<input").skip(1) {
        let name = attribute(input, "name").expect("a name");
        fields.insert(name, attribute(input, "value").unwrap_or_default());
    }
    Some(fields)
}

/// An attribute's value in `html`, HTML entities decoded.
fn attribute(html: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(decode_entities(&html[start..end]))
}

conformance!(
    oidcc_server,
    oidcc_response_type_missing,
    oidcc_idtoken_signature,
    oidcc_userinfo_get,
    oidcc_userinfo_post_header,
    oidcc_userinfo_post_body,
    oidcc_ensure_request_without_nonce_succeeds_for_code_flow,
    oidcc_scope_profile,
    oidcc_scope_email,
    oidcc_scope_address,
    oidcc_scope_phone,
    oidcc_scope_all,
    oidcc_alternate_happy_flow,
    oidcc_display_page,
    oidcc_display_popup,
    oidcc_prompt_login,
    oidcc_prompt_none_not_logged_in,
    oidcc_prompt_none_logged_in,
    oidcc_max_age_1,
    oidcc_max_age_10000,
    oidcc_ensure_request_with_unknown_parameter_succeeds,
    oidcc_id_token_hint,
    oidcc_login_hint,
    oidcc_ui_locales,
    oidcc_claims_locales,
    oidcc_ensure_request_with_acr_values_succeeds,
    oidcc_codereuse,
    oidcc_codereuse_30seconds,
    oidcc_ensure_registered_redirect_uri,
    oidcc_ensure_post_request_succeeds,
    oidcc_server_client_secret_post,
    oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported,
    oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported,
    oidcc_claims_essential,
    oidcc_ensure_request_object_with_redirect_uri,
    oidcc_refresh_token,
    oidcc_ensure_request_with_valid_pkce_succeeds,
);

crate::both_backends!(
    oidcc_idtoken_unsigned,
    oidcc_discovery_endpoint_verification,
    a_relying_party_library_completes_a_form_post_flow,
    the_claims_parameter_releases_claims_where_asked_and_is_remembered_for_userinfo,
    a_malformed_claims_parameter_is_an_invalid_request,
    minimal_id_tokens_carry_scope_claims_at_userinfo_only,
    an_essential_acr_no_sign_in_can_meet_fails_the_request,
    form_post_errors_and_the_page_behind_them,
    the_id_token_claims_setting_travels_through_the_admin_api,
);

/// OP-Response-code: the code flow end to end, client_secret_basic.
async fn oidcc_server(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let answer = rp.authorize(&[]).await;
    assert_eq!(answer.params().get("iss").map(String::as_str), Some(rp.server.base.as_str()), "RFC 9207 iss");
    let tokens = rp.tokens(&answer.code()).await;
    assert_eq!(tokens["token_type"], "Bearer");
    let claims = rp.id_token(&tokens, Some("n-0S6_WzA2Mj")).await;
    assert_eq!(claims["amr"], json!(["pwd"]), "a password sign-in");
    assert_eq!(claims["acr"], "urn:lanyard:acr:password");
}

/// OP-Response-Missing: no response_type is an error sent back to the client.
async fn oidcc_response_type_missing(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let answer = rp.open(&rp.authorize_url(&[("response_type", "")])).await;
    assert!(["invalid_request", "unsupported_response_type"].contains(&answer.error()), "{answer:?}");
}

/// OP-IDToken-Signature & OP-IDToken-kid: RS256 (the default), with a kid from the JWKS.
async fn oidcc_idtoken_signature(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let tokens = rp.tokens(&rp.authorize(&[]).await.code()).await;
    let (header, _) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert!(header["kid"].is_string());
    rp.id_token(&tokens, Some("n-0S6_WzA2Mj")).await;
}

/// OP-IDToken-none: only for dynamically registered clients asking for `alg: none`; a
/// static client cannot even be registered with it (the Dynamic plan's registration side
/// is another part of issue 12).
async fn oidcc_idtoken_unsigned(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let spec = ClientSpec {
        redirect_uris: vec![CALLBACK.into()],
        id_token_signed_response_alg: Some("none".into()),
        ..Default::default()
    };
    assert!(registry::create_client(&server.store, spec).await.is_err(), "alg none is refused");
    let metadata = server.get_json("/.well-known/openid-configuration").await;
    assert!(!metadata["id_token_signing_alg_values_supported"].as_array().unwrap().contains(&json!("none")));
}

/// OP-UserInfo-Endpoint: GET with the access token in the header.
async fn oidcc_userinfo_get(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let tokens = rp.tokens(&rp.authorize(&[]).await.code()).await;
    rp.userinfo(tokens["access_token"].as_str().unwrap()).await;
}

/// OP-UserInfo-Header: POST with the access token in the header.
async fn oidcc_userinfo_post_header(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let tokens = rp.tokens(&rp.authorize(&[]).await.code()).await;
    let response =
        rp.server.http.post(rp.server.url("/userinfo")).bearer_auth(tokens["access_token"].as_str().unwrap());
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["sub"], rp.user_id.as_str());
}

/// OP-UserInfo-Body: POST with the access token in a form body (RFC 6750 §2.2).
async fn oidcc_userinfo_post_body(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let tokens = rp.tokens(&rp.authorize(&[]).await.code()).await;
    let form = [("access_token", tokens["access_token"].as_str().unwrap())];
    let response = rp.server.http.post(rp.server.url("/userinfo")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["sub"], rp.user_id.as_str());
}

/// OP-nonce-NoReq-code: the code flow needs no nonce; the id_token then has none.
async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let tokens = rp.tokens(&rp.authorize(&[("nonce", "")]).await.code()).await;
    rp.id_token(&tokens, None).await;
}

/// The scope modules: the claims of `scope` are at userinfo and (Lanyard's default, the
/// suite's one accepted warning) in the id_token too.
async fn scope_module(backend: Backend, mode: Mode, scope: &str, expected: &[&str]) {
    let rp = Rp::start(backend, mode).await;
    let tokens = rp.tokens(&rp.authorize(&[("scope", scope)]).await.code()).await;
    let id_claims = rp.id_token(&tokens, Some("n-0S6_WzA2Mj")).await;
    let userinfo = rp.userinfo(tokens["access_token"].as_str().unwrap()).await;
    for claim in expected {
        assert!(userinfo.get(*claim).is_some(), "{claim} at userinfo: {userinfo}");
        assert_eq!(id_claims.get(*claim), userinfo.get(*claim), "{claim} in the id_token too");
    }
}

/// OP-scope-profile.
async fn oidcc_scope_profile(backend: Backend, mode: Mode) {
    scope_module(backend, mode, "openid profile", &["name", "given_name", "family_name", "preferred_username"]).await;
}

/// OP-scope-email.
async fn oidcc_scope_email(backend: Backend, mode: Mode) {
    scope_module(backend, mode, "openid email", &["email", "email_verified"]).await;
}

/// OP-scope-address.
async fn oidcc_scope_address(backend: Backend, mode: Mode) {
    scope_module(backend, mode, "openid address", &["address"]).await;
}

/// OP-scope-phone.
async fn oidcc_scope_phone(backend: Backend, mode: Mode) {
    scope_module(backend, mode, "openid phone", &["phone_number", "phone_number_verified"]).await;
}

/// OP-scope-All.
async fn oidcc_scope_all(backend: Backend, mode: Mode) {
    let all = ["name", "email", "address", "phone_number"];
    scope_module(backend, mode, "openid profile email address phone", &all).await;
}

/// The happy flow with the scope reversed and the parameters in another order (RFC 6749
/// §3.3: order does not matter).
async fn oidcc_alternate_happy_flow(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let mut url = url::Url::parse(&rp.server.url("/authorize")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("nonce", "n-0S6_WzA2Mj").append_pair("state", "af0ifjsldkj").append_pair("scope", "email openid");
        if mode == Mode::FormPost {
            q.append_pair("response_mode", "form_post");
        }
        q.append_pair("response_type", "code").append_pair("redirect_uri", CALLBACK).append_pair("client_id", CLIENT);
    }
    let answer = rp.sign_in_on(rp.open(url.as_str()).await).await;
    let tokens = rp.tokens(&answer.code()).await;
    assert_eq!(rp.userinfo(tokens["access_token"].as_str().unwrap()).await["email"], "certified@example.test");
}

/// OP-display-page / OP-display-popup: `display` is accepted (the same page either way).
async fn display_module(backend: Backend, mode: Mode, display: &str) {
    let rp = Rp::start(backend, mode).await;
    let page = rp.open(&rp.authorize_url(&[("display", display)])).await;
    assert!(page.is_login_page(), "the login page: {page:?}");
    let tokens = rp.tokens(&rp.sign_in_on(page).await.code()).await;
    rp.id_token(&tokens, Some("n-0S6_WzA2Mj")).await;
}

async fn oidcc_display_page(backend: Backend, mode: Mode) {
    display_module(backend, mode, "page").await;
}

async fn oidcc_display_popup(backend: Backend, mode: Mode) {
    display_module(backend, mode, "popup").await;
}

/// OP-prompt-login: signed in already, prompt=login asks again; the new auth_time is later.
async fn oidcc_prompt_login(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let first = rp.id_token(&rp.tokens(&rp.authorize(&[]).await.code()).await, Some("n-0S6_WzA2Mj")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let page = rp.open(&rp.authorize_url(&[("prompt", "login")])).await;
    assert!(page.is_login_page(), "prompt=login shows the login page: {page:?}");
    let second = rp.id_token(&rp.tokens(&rp.sign_in_on(page).await.code()).await, Some("n-0S6_WzA2Mj")).await;
    assert!(second["auth_time"].as_i64() > first["auth_time"].as_i64(), "{first} {second}");
    assert_eq!(first["sub"], second["sub"]);
}

/// OP-prompt-none-NotLoggedIn: login_required (or interaction/consent_required), sent back.
async fn oidcc_prompt_none_not_logged_in(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let answer = rp.open(&rp.authorize_url(&[("prompt", "none")])).await;
    assert!(["login_required", "interaction_required", "consent_required"].contains(&answer.error()));
}

/// OP-prompt-none-LoggedIn: after a sign-in, prompt=none answers at once, same user.
async fn oidcc_prompt_none_logged_in(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let first = rp.id_token(&rp.tokens(&rp.authorize(&[]).await.code()).await, Some("n-0S6_WzA2Mj")).await;
    let answer = rp.open(&rp.authorize_url(&[("prompt", "none")])).await;
    let second = rp.id_token(&rp.tokens(&answer.code()).await, Some("n-0S6_WzA2Mj")).await;
    assert_eq!(first["sub"], second["sub"]);
    assert_eq!(first["auth_time"], second["auth_time"], "no new sign-in");
}

/// OP-Req-max_age=1: a sign-in older than a second is repeated; auth_time is the new one.
async fn oidcc_max_age_1(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let first = rp.id_token(&rp.tokens(&rp.authorize(&[]).await.code()).await, Some("n-0S6_WzA2Mj")).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let page = rp.open(&rp.authorize_url(&[("max_age", "1")])).await;
    assert!(page.is_login_page(), "max_age=1 asks for a new sign-in: {page:?}");
    let second = rp.id_token(&rp.tokens(&rp.sign_in_on(page).await.code()).await, Some("n-0S6_WzA2Mj")).await;
    assert!(second["auth_time"].as_i64() > first["auth_time"].as_i64());
}

/// OP-Req-max_age=10000: a recent sign-in is kept; auth_time is present and unchanged.
async fn oidcc_max_age_10000(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let first = rp.id_token(&rp.tokens(&rp.authorize(&[]).await.code()).await, Some("n-0S6_WzA2Mj")).await;
    let answer = rp.open(&rp.authorize_url(&[("max_age", "10000")])).await;
    let second = rp.id_token(&rp.tokens(&answer.code()).await, Some("n-0S6_WzA2Mj")).await;
    assert_eq!(first["auth_time"], second["auth_time"]);
}

/// OP-Req-NotUnderstood: unknown parameters are ignored.
async fn oidcc_ensure_request_with_unknown_parameter_succeeds(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let answer = rp.authorize(&[("extra", "foobar")]).await;
    rp.id_token(&rp.tokens(&answer.code()).await, Some("n-0S6_WzA2Mj")).await;
}

/// OP-Req-id_token_hint: a second request with prompt=none and the first id_token as the
/// hint succeeds without interaction; sub and auth_time agree. A hint naming someone else
/// is login_required, a forged hint an invalid_request.
async fn oidcc_id_token_hint(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let tokens = rp.tokens(&rp.authorize(&[]).await.code()).await;
    let first = rp.id_token(&tokens, Some("n-0S6_WzA2Mj")).await;
    let hint = tokens["id_token"].as_str().unwrap();
    let answer = rp.open(&rp.authorize_url(&[("prompt", "none"), ("id_token_hint", hint)])).await;
    let second = rp.id_token(&rp.tokens(&answer.code()).await, Some("n-0S6_WzA2Mj")).await;
    assert_eq!(first["sub"], second["sub"]);
    assert_eq!(first["auth_time"], second["auth_time"]);

    // Another user is signed in in a fresh browser: the hint does not match.
    flow::add_user(&rp.server, "bob").await;
    let other = Rp { browser: new_browser(), ..rp };
    let page = other.open(&other.authorize_url(&[])).await;
    let html = page.html().to_owned();
    let form = [
        ("csrf_token", form_field(&html, "csrf_token").unwrap()),
        ("request_id", form_field(&html, "request_id").unwrap()),
        ("username", "bob".to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    let response = other.browser.post(other.server.url("/login")).form(&form).send().await.unwrap();
    other.sign_in_on(other.follow(response).await).await.code();
    let answer = other.open(&other.authorize_url(&[("prompt", "none"), ("id_token_hint", hint)])).await;
    assert_eq!(answer.error(), "login_required", "the hinted user is not the signed-in one");
    let mut forged = hint.to_owned();
    forged.push('x');
    let answer = other.open(&other.authorize_url(&[("id_token_hint", &forged)])).await;
    assert_eq!(answer.error(), "invalid_request");
}

/// OP-Req-login_hint: accepted; the login page is pre-filled with it.
async fn oidcc_login_hint(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let page = rp.open(&rp.authorize_url(&[("login_hint", USER)])).await;
    assert_eq!(form_field(page.html(), "username").as_deref(), Some(USER), "pre-filled");
    rp.tokens(&rp.sign_in_on(page).await.code()).await;
}

/// OP-Req-ui_locales: accepted (Lanyard's pages are English only).
async fn oidcc_ui_locales(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    rp.tokens(&rp.authorize(&[("ui_locales", "se")]).await.code()).await;
}

/// OP-Req-claims_locales: accepted (claims have one language).
async fn oidcc_claims_locales(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let tokens = rp.tokens(&rp.authorize(&[("claims_locales", "se"), ("scope", "openid profile")]).await.code()).await;
    assert_eq!(rp.userinfo(tokens["access_token"].as_str().unwrap()).await["name"], "Certified Tester");
}

/// OP-Req-acr_values: the suite sends every value of `acr_values_supported`; the id_token's
/// acr must be one of them.
async fn oidcc_ensure_request_with_acr_values_succeeds(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let metadata = rp.server.get_json("/.well-known/openid-configuration").await;
    let supported: Vec<&str> =
        metadata["acr_values_supported"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let requested = supported.join(" ");
    let tokens = rp.tokens(&rp.authorize(&[("acr_values", &requested)]).await.code()).await;
    let claims = rp.id_token(&tokens, Some("n-0S6_WzA2Mj")).await;
    assert!(supported.contains(&claims["acr"].as_str().unwrap()), "{claims}");
    let (_, at) = decode_jwt(tokens["access_token"].as_str().unwrap());
    assert_eq!(at["acr"], claims["acr"], "RFC 9068: acr in the access token too");
}

/// OP-OAuth-2nd: a code used twice fails the second time (invalid_grant).
async fn oidcc_codereuse(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let code = rp.authorize(&[]).await.code();
    rp.tokens(&code).await;
    let (status, body) = rp.exchange(&code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}

/// OP-OAuth-2nd-30s (and OP-OAuth-2nd-Revokes): the replay also revokes the access token
/// the first exchange issued. The module waits 30 s; Lanyard's answer does not depend on
/// the wait while the code is stored (its 60 s lifetime), so this waits a second.
async fn oidcc_codereuse_30seconds(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let code = rp.authorize(&[]).await.code();
    let tokens = rp.tokens(&code).await;
    // The suite waits 30 s; the test lab's clock moves the server there at once (the code
    // itself, 60 s, is still unexpired: what is refused is the reuse).
    let change = lanyard::clock::ClockChange { advance_seconds: Some(30), ..Default::default() };
    lanyard::lab::set_clock(&rp.server.store, &change).await.expect("clock advanced");
    let (status, body) = rp.exchange(&code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let response = rp.server.http.get(rp.server.url("/userinfo")).bearer_auth(tokens["access_token"].as_str().unwrap());
    assert_eq!(response.send().await.unwrap().status(), 401, "the first access token is revoked");
}

/// OP-redirect_uri-NotReg: an unregistered redirect_uri gets an error page, no redirect.
async fn oidcc_ensure_registered_redirect_uri(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let answer = rp.open(&rp.authorize_url(&[("redirect_uri", "https://evil.example.test/cb")])).await;
    let Answer::Page { status, html } = answer else { panic!("a page, never a response: {answer:?}") };
    assert_eq!(status, 400);
    assert!(html.contains("not registered") && !html.contains("form-post"), "{html}");
}

/// The authorization request form-encoded in a POST (OIDC Core §3.1.2.1).
async fn oidcc_ensure_post_request_succeeds(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let url = url::Url::parse(&rp.authorize_url(&[])).unwrap();
    let form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let response = rp.browser.post(rp.server.url("/authorize")).form(&form).send().await.unwrap();
    let answer = rp.sign_in_on(rp.follow(response).await).await;
    rp.id_token(&rp.tokens(&answer.code()).await, Some("n-0S6_WzA2Mj")).await;
}

/// OP-ClientAuth-SecretPost: the same flow with client_secret_post.
async fn oidcc_server_client_secret_post(backend: Backend, mode: Mode) {
    let rp = Rp::start_with(backend, mode, |c| c.token_endpoint_auth_method = Some("client_secret_post".into())).await;
    let code = rp.authorize(&[]).await.code();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_id", CLIENT),
        ("client_secret", rp.secret.as_str()),
    ];
    let response = rp.server.http.post(rp.server.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    rp.id_token(&tokens, Some("n-0S6_WzA2Mj")).await;
}

/// Whether discovery lists `none` among the request object algorithms: it does not, so the
/// suite skips its unsigned request object modules (skipTestIfNoneUnsupported).
async fn lists_unsigned_request_objects(rp: &Rp) -> bool {
    let metadata = rp.server.get_json("/.well-known/openid-configuration").await;
    let algs = metadata["request_object_signing_alg_values_supported"].as_array().expect("a list").clone();
    assert!(!algs.is_empty(), "{metadata}");
    algs.contains(&json!("none"))
}

/// OP-request_uri-Unsigned: skipped, since `none` is not listed; were it run,
/// request_uri_not_supported is an accepted answer, and what the static client (no keys
/// registered) gets. Not applicable to static clients anyway.
async fn oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    assert!(!lists_unsigned_request_objects(&rp).await);
    let answer = rp.open(&rp.authorize_url(&[("request_uri", "https://rp.example.test/request.jwt")])).await;
    assert_eq!(answer.error(), "request_uri_not_supported");
    let metadata = rp.server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(metadata["request_uri_parameter_supported"], true);
}

/// An unsigned request object (`alg: none`) by value.
fn unsigned_request_object(claims: Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims))
}

/// OP-request-Unsigned: skipped, since `none` is not listed; were it run, either processed
/// or request_not_supported, which is what the static client (no keys registered) gets.
/// Signed request objects are in conformance_request_objects.rs.
async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    assert!(!lists_unsigned_request_objects(&rp).await);
    let object = unsigned_request_object(json!({
        "client_id": CLIENT, "redirect_uri": CALLBACK, "response_type": "code", "scope": "openid",
        "state": "af0ifjsldkj", "nonce": "n-0S6_WzA2Mj",
    }));
    let answer = rp.open(&rp.authorize_url(&[("request", &object)])).await;
    assert_eq!(answer.error(), "request_not_supported");
}

/// OP-claims-essential: `name` requested as essential at userinfo is returned there, and
/// (scope openid only) not in the id_token.
async fn oidcc_claims_essential(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let claims = json!({"userinfo": {"name": {"essential": true}}}).to_string();
    let tokens = rp.tokens(&rp.authorize(&[("claims", &claims)]).await.code()).await;
    let id_claims = rp.id_token(&tokens, Some("n-0S6_WzA2Mj")).await;
    assert!(id_claims.get("name").is_none(), "EnsureIdTokenDoesNotContainName: {id_claims}");
    assert_eq!(rp.userinfo(tokens["access_token"].as_str().unwrap()).await["name"], "Certified Tester");
}

/// A request object carrying the registered redirect_uri, an unregistered one as a plain
/// parameter: the module accepts the redirect_uri error page (Lanyard checks the plain
/// parameter first and never redirects to it).
async fn oidcc_ensure_request_object_with_redirect_uri(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let object = unsigned_request_object(json!({
        "client_id": CLIENT, "redirect_uri": CALLBACK, "response_type": "code", "scope": "openid",
        "state": "af0ifjsldkj",
    }));
    let url = rp.authorize_url(&[("request", &object), ("redirect_uri", "https://rp.example.test/not-registered")]);
    let Answer::Page { status, html } = rp.open(&url).await else { panic!("the redirect_uri error page") };
    assert_eq!(status, 400);
    assert!(html.contains("not registered"), "{html}");
}

/// The refresh grant: new tokens, the id_token with the same sub (and auth_time, acr).
async fn oidcc_refresh_token(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let code = rp.authorize(&[("scope", "openid offline_access"), ("prompt", "consent")]).await.code();
    let tokens = rp.tokens(&code).await;
    let first = rp.id_token(&tokens, Some("n-0S6_WzA2Mj")).await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())];
    let response = rp.server.http.post(rp.server.url("/token")).basic_auth(CLIENT, Some(&rp.secret)).form(&form);
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let refreshed: Value = response.json().await.unwrap();
    let second = rp.id_token(&refreshed, None).await;
    assert_eq!(first["sub"], second["sub"]);
    assert_eq!(first["auth_time"], second["auth_time"]);
    assert_eq!(first["acr"], second["acr"]);
    assert_eq!(first["amr"], second["amr"]);
    rp.userinfo(refreshed["access_token"].as_str().unwrap()).await;
}

/// PKCE sent by a client that does not require it is still verified.
async fn oidcc_ensure_request_with_valid_pkce_succeeds(backend: Backend, mode: Mode) {
    let rp = Rp::start(backend, mode).await;
    let challenge = flow::s256(flow::VERIFIER);
    let extra = [("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")];
    let code = rp.authorize(&extra).await.code();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", flow::VERIFIER),
    ];
    let response = rp.server.http.post(rp.server.url("/token")).basic_auth(CLIENT, Some(&rp.secret)).form(&form);
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), 200);
}

/// OP-Discovery-Config: the metadata document as OIDCCDiscoveryEndpointVerification checks it.
async fn oidcc_discovery_endpoint_verification(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let response = server.get("/.well-known/openid-configuration").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["issuer"], server.base.as_str(), "CheckDiscEndpointIssuer");
    for endpoint in ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"] {
        assert!(doc[endpoint].as_str().unwrap().starts_with(&server.base), "{endpoint}");
    }
    let has = |member: &str, value: &str| doc[member].as_array().unwrap().contains(&json!(value));
    assert!(has("scopes_supported", "openid"), "CheckDiscEndpointScopesSupportedContainsOpenId");
    assert!(has("response_types_supported", "code"));
    assert!(has("subject_types_supported", "public"));
    assert!(has("id_token_signing_alg_values_supported", "RS256"));
    assert!(has("response_modes_supported", "query") && has("response_modes_supported", "form_post"));
    assert!(has("claims_supported", "sub") && has("claims_supported", "acr"));
    assert_eq!(doc["claims_parameter_supported"], true);
    assert!(has("acr_values_supported", "urn:lanyard:acr:password"));
    assert!(has("grant_types_supported", "authorization_code"));
    assert!(has("token_endpoint_auth_methods_supported", "client_secret_basic"));
    let jwks = server.get_json("/jwks").await;
    let keys = jwks["keys"].as_array().unwrap();
    assert!(keys.iter().any(|k| k["kty"] == "RSA" && k["kid"].is_string()), "ValidateServerJWKs");
    assert!(keys.iter().all(|k| k.get("d").is_none()), "no private members");
    // CheckDiscEndpointAllEndpointsAreHttps: these servers run on loopback http; a real
    // deployment's issuer is https (the config refuses http off loopback).
}

/// Form Post Response Mode with a real relying party library: `openidconnect` builds the
/// request; a test listener at the redirect_uri receives the browser's POST of the form;
/// the library then exchanges the code and verifies the id_token.
async fn a_relying_party_library_completes_a_form_post_flow(backend: Backend) {
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
    use openidconnect::{
        AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, RedirectUrl, Scope, TokenResponse,
    };

    // The RP's callback: records what the browser POSTs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://127.0.0.1:{}/callback", listener.local_addr().unwrap().port());
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<HashMap<String, String>>();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::post(move |body: String| {
            let sender = sender.clone();
            async move {
                let _ = sender.send(url::form_urlencoded::parse(body.as_bytes()).into_owned().collect());
                "signed in"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let rp = Rp::start_with(backend, Mode::FormPost, |c| c.redirect_uris = vec![callback.clone()]).await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(rp.server.base.clone()).unwrap(), &http)
        .await
        .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(CLIENT.into()),
        Some(ClientSecret::new(rp.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(callback.clone()).unwrap());
    let (auth_url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_extra_param("response_mode", "form_post")
        .url();

    // The browser: sign in, then submit the form to wherever its action says.
    let page = rp.open(auth_url.as_str()).await;
    assert!(page.is_login_page());
    let html = {
        let html = page.html();
        let form = [
            ("csrf_token", form_field(html, "csrf_token").unwrap()),
            ("request_id", form_field(html, "request_id").unwrap()),
            ("username", USER.to_owned()),
            ("password", PASSWORD.to_owned()),
        ];
        let response = rp.browser.post(rp.server.url("/login")).form(&form).send().await.unwrap();
        let mut response = response;
        while response.status().is_redirection() {
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            response = rp.browser.get(rp.server.url(&location)).send().await.unwrap();
        }
        let mut html = response.text().await.unwrap();
        if html.contains("value=\"allow\"") {
            let form = [
                ("csrf_token", form_field(&html, "csrf_token").unwrap()),
                ("request_id", form_field(&html, "request_id").unwrap()),
                ("decision", "allow".to_owned()),
            ];
            let mut response = rp.browser.post(rp.server.url("/consent")).form(&form).send().await.unwrap();
            while response.status().is_redirection() {
                let location = response.headers()["location"].to_str().unwrap().to_owned();
                response = rp.browser.get(rp.server.url(&location)).send().await.unwrap();
            }
            html = response.text().await.unwrap();
        }
        html
    };
    let action = attribute(&html, "action").expect("a form");
    assert_eq!(action, callback, "the form posts to the registered redirect_uri");
    let fields: Vec<(String, String)> = html
        .split("<input")
        .skip(1)
        .map(|i| (attribute(i, "name").unwrap(), attribute(i, "value").unwrap_or_default()))
        .collect();
    let posted = rp.browser.post(&action).form(&fields).send().await.unwrap();
    assert_eq!(posted.status(), 200);
    let fields = received.recv().await.expect("the RP received the form");
    assert_eq!(fields.get("state"), Some(csrf.secret()));
    assert_eq!(fields.get("iss").map(String::as_str), Some(rp.server.base.as_str()));

    let tokens = client
        .exchange_code(AuthorizationCode::new(fields["code"].clone()))
        .unwrap()
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an id_token");
    let claims = id_token.claims(&client.id_token_verifier(), &nonce).expect("the library accepts the id_token");
    assert_eq!(claims.subject().as_str(), rp.user_id);
    assert_eq!(claims.email().map(|e| e.as_str()), Some("certified@example.test"));
}

/// The `claims` parameter (OIDC Core §5.5): claims beyond the scopes, each where asked;
/// userinfo honours its part through the grant (the access token carries no profile).
async fn the_claims_parameter_releases_claims_where_asked_and_is_remembered_for_userinfo(backend: Backend) {
    let rp = Rp::start(backend, Mode::Query).await;
    let claims = json!({
        "id_token": {"email": null, "acr": {"values": ["urn:lanyard:acr:password"]}},
        "userinfo": {"phone_number": {"essential": true}, "address": null, "nickname": null},
    })
    .to_string();
    // The user is shown the claims beyond the scopes, every time they are asked for.
    let page = rp.sign_in_on(rp.open(&rp.authorize_url(&[])).await).await;
    rp.tokens(&page.code()).await;
    let consent = rp.open(&rp.authorize_url(&[("claims", &claims)])).await;
    for claim in ["<code>email</code>", "<code>phone_number</code>", "<code>address</code>"] {
        assert!(consent.html().contains(claim), "the consent page lists {claim}: {}", consent.html());
    }
    let tokens = rp.tokens(&rp.sign_in_on(consent).await.code()).await;
    let id_claims = rp.id_token(&tokens, Some("n-0S6_WzA2Mj")).await;
    assert_eq!(id_claims["email"], "certified@example.test", "asked for in the id_token");
    assert!(id_claims.get("phone_number").is_none(), "asked for at userinfo only: {id_claims}");
    assert_eq!(id_claims["acr"], "urn:lanyard:acr:password");
    let (_, at) = decode_jwt(tokens["access_token"].as_str().unwrap());
    assert!(at.get("email").is_none() && at.get("phone_number").is_none(), "no profile in the access token: {at}");
    let userinfo = rp.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(userinfo["phone_number"], "+1 555 0100");
    assert_eq!(userinfo["address"]["country"], "US");
    assert!(userinfo.get("nickname").is_none(), "a claim the user lacks is simply absent");
    assert!(userinfo.get("email").is_none(), "not asked for at userinfo, not in scope: {userinfo}");
}

/// Malformed `claims` JSON is an invalid_request at the redirect_uri.
async fn a_malformed_claims_parameter_is_an_invalid_request(backend: Backend) {
    let rp = Rp::start(backend, Mode::Query).await;
    for claims in ["{not json", "[]", r#"{"userinfo": {"name": 1}}"#] {
        let answer = rp.open(&rp.authorize_url(&[("claims", claims)])).await;
        assert_eq!(answer.error(), "invalid_request", "{claims}");
        assert!(answer.params()["error_description"].contains("claims"), "{answer:?}");
    }
}

/// `id_token_claims: minimal` (OIDC Core §5.4): scope claims at userinfo only; claims the
/// `claims` parameter names for the id_token are still there.
async fn minimal_id_tokens_carry_scope_claims_at_userinfo_only(backend: Backend) {
    let rp = Rp::start_with(backend, Mode::Query, |c| c.id_token_claims = Some("minimal".into())).await;
    let tokens = rp.tokens(&rp.authorize(&[("scope", "openid profile email")]).await.code()).await;
    let id_claims = rp.id_token(&tokens, Some("n-0S6_WzA2Mj")).await;
    assert!(id_claims.get("name").is_none() && id_claims.get("email").is_none(), "{id_claims}");
    let userinfo = rp.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(userinfo["name"], "Certified Tester");
    assert_eq!(userinfo["email"], "certified@example.test");

    let claims = json!({"id_token": {"email": null}}).to_string();
    let answer = rp.authorize(&[("scope", "openid profile email"), ("claims", &claims)]).await;
    let id_claims = rp.id_token(&rp.tokens(&answer.code()).await, Some("n-0S6_WzA2Mj")).await;
    assert_eq!(id_claims["email"], "certified@example.test");
    assert!(id_claims.get("name").is_none());

    let stored = rp.server.store.client(CLIENT).await.unwrap().unwrap();
    assert_eq!(stored.id_token_claims.as_str(), "minimal", "stored and read back");
    let spec =
        ClientSpec { redirect_uris: vec![CALLBACK.into()], id_token_claims: Some("some".into()), ..Default::default() };
    let errors = spec.validate().expect_err("an unknown value");
    assert!(format!("{errors:?}").contains("id_token_claims"), "{errors:?}");
}

/// OIDC Core §5.5.1.1: an essential acr that no sign-in here can meet fails the request
/// (after the user signs in again to try); a voluntary one never does.
async fn an_essential_acr_no_sign_in_can_meet_fails_the_request(backend: Backend) {
    let rp = Rp::start(backend, Mode::Query).await;
    rp.tokens(&rp.authorize(&[]).await.code()).await;
    let claims = json!({"id_token": {"acr": {"essential": true, "values": ["urn:example:mfa"]}}}).to_string();
    let answer = rp.open(&rp.authorize_url(&[("claims", &claims), ("prompt", "none")])).await;
    assert_eq!(answer.error(), "login_required", "the session does not meet it");
    let answer = rp.authorize(&[("claims", &claims)]).await;
    assert_eq!(answer.error(), "unmet_authentication_requirements");
    let answer = rp.open(&rp.authorize_url(&[("acr_values", "urn:example:mfa")])).await;
    let id_claims = rp.id_token(&rp.tokens(&answer.code()).await, Some("n-0S6_WzA2Mj")).await;
    assert_eq!(id_claims["acr"], "urn:lanyard:acr:password", "acr_values are voluntary");
}

/// Errors travel by form post too; an unsupported response_mode is answered by query; a
/// redirect_uri that can't be trusted gets a page, never a form.
async fn form_post_errors_and_the_page_behind_them(backend: Backend) {
    let rp = Rp::start(backend, Mode::FormPost).await;
    let response = rp.browser.get(rp.authorize_url(&[("scope", "openid"), ("prompt", "none")])).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let html = response.text().await.unwrap();
    let fields = form_post_fields(&html).expect("a form post");
    assert_eq!(fields["error"], "login_required");
    assert_eq!(fields["iss"], rp.server.base);
    let script = rp.server.get("/static/form_post.js").await;
    assert_eq!(script.status(), 200);
    assert!(script.text().await.unwrap().contains("submit()"));

    let query = Rp { mode: Mode::Query, ..rp };
    let answer = query.open(&query.authorize_url(&[("response_mode", "fragment")])).await;
    assert_eq!(answer.error(), "invalid_request", "fragment is not offered");
}

/// `id_token_claims` through the admin API: created, shown, replaced, validated.
async fn the_id_token_claims_setting_travels_through_the_admin_api(backend: Backend) {
    const TOKEN: &str = "conformance-admin-token-with-plenty-of-entropy-0123456789";
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let hash = lanyard::crypto::sha256_hex(TOKEN);
    server.store.insert_admin_token("ci", &hash).await.expect("admin token stored");
    let call = |method: reqwest::Method, path: &str, body: Value| {
        let request = server.http.request(method, server.url(&format!("/admin/api{path}"))).bearer_auth(TOKEN);
        async move {
            let response = request.json(&body).send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let spec = json!({"client_id": "lean", "redirect_uris": [CALLBACK], "id_token_claims": "minimal"});
    let (status, created) = call(reqwest::Method::POST, "/clients", spec).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["id_token_claims"], "minimal");
    let (_, mut shown) = call(reqwest::Method::GET, "/clients/lean", Value::Null).await;
    assert_eq!(shown["id_token_claims"], "minimal");
    shown["id_token_claims"] = json!("all");
    let (status, updated) = call(reqwest::Method::PUT, "/clients/lean", shown).await;
    assert_eq!((status, &updated["id_token_claims"]), (200, &json!("all")), "{updated}");
    let stored = server.store.client("lean").await.unwrap().unwrap();
    assert_eq!(stored.id_token_claims.as_str(), "all");
    let bad = json!({"client_id": "bad", "redirect_uris": [CALLBACK], "id_token_claims": "everything"});
    let (status, problem) = call(reqwest::Method::POST, "/clients", bad).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "id_token_claims", "{problem}");
}
