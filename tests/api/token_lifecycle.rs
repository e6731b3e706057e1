//! What happens to tokens after the code exchange: the client_credentials grant, refresh
//! token rotation and reuse detection, revocation (RFC 7009), introspection (RFC 7662),
//! RP-initiated logout, and removing users and clients.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lanyard::registry::{self, api::ApiSpec, api::ScopeSpec, client::ClientSpec};
use lanyard::tokens::keys::{KeyManager, SigningAlg};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::both_backends;
use crate::flow::{self, API, Browser, Fixture, REDIRECT_URI};
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    a_client_credentials_token_is_an_access_token_for_the_named_api_and_nothing_more,
    a_client_credentials_request_may_name_its_api_with_audience_or_rely_on_the_default_api,
    a_client_credentials_token_carries_only_the_scopes_the_client_is_allowed_of_that_api,
    client_credentials_refusals_are_rfc_6749_errors_that_issue_nothing,
    a_refresh_token_is_issued_only_for_offline_access_to_a_client_allowed_the_refresh_grant,
    every_refresh_rotates_the_refresh_token_and_keeps_the_grant_alive,
    the_id_token_from_a_refresh_keeps_auth_time_and_carries_no_nonce,
    a_reused_refresh_token_is_refused_and_revokes_its_whole_family,
    a_refresh_may_narrow_the_scope_but_never_widen_it,
    a_refused_refresh_leaves_the_refresh_token_usable,
    a_refresh_token_presented_by_another_client_is_invalid_grant_and_stays_usable,
    a_revoked_access_token_is_refused_at_userinfo_and_inactive_at_introspection,
    revoking_a_refresh_token_revokes_the_access_tokens_of_its_family,
    a_client_revoking_another_clients_tokens_gets_200_and_the_tokens_keep_working,
    revoking_an_unknown_token_is_a_200_and_revocation_needs_client_authentication,
    introspection_describes_an_active_token_for_the_callers_own_api,
    introspection_says_inactive_for_expired_revoked_foreign_and_id_tokens,
    introspection_requires_client_authentication_and_answers_only_for_the_callers_apis,
    logout_with_an_id_token_hint_redirects_to_the_registered_uri_with_state_and_ends_the_session,
    logout_to_an_unregistered_post_logout_redirect_uri_is_a_400_page_and_ends_nothing,
    logout_accepts_an_expired_id_token_hint_that_is_correctly_signed,
    logout_with_a_tampered_id_token_hint_is_a_400_page_and_ends_nothing,
    logout_without_a_hint_asks_for_confirmation_on_a_csrf_protected_form,
    deleting_a_user_revokes_their_access_and_refresh_tokens,
    ending_a_users_sessions_revokes_their_tokens_and_asks_them_to_sign_in_again,
    deleting_a_client_revokes_its_tokens_even_when_it_is_registered_again,
    deleting_a_client_deactivates_its_client_credentials_tokens,
);

// ---------------------------------------------------------------------------------------
// Helpers (shared with example_api.rs)
// ---------------------------------------------------------------------------------------

/// A second API, whose tokens the appointments API must not accept.
pub const OTHER_API: &str = "https://api.example.test/other";
/// The confidential client the appointments API authenticates with at /introspect.
pub const INTROSPECTOR: &str = "api-introspector";
/// The fixture client's registered post-logout redirect URI.
const LOGGED_OUT: &str = "http://127.0.0.1:9999/logged-out";
/// What `flow::fixture` users ask for when they want a refresh token.
const OFFLINE: [(&str, &str); 2] = [("scope", "openid profile offline_access read:appointments"), ("resource", API)];

/// A response's status, headers and body (JSON `Null` when the body is not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, text, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("an ASCII header"))
    }

    /// The `WWW-Authenticate` challenge ("" when there is none).
    pub fn challenge(&self) -> &str {
        self.header("www-authenticate").unwrap_or("")
    }

    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// A string member of the JSON body.
    pub fn str(&self, name: &str) -> &str {
        self.body[name].as_str().unwrap_or_else(|| panic!("{name:?} is not a string in {}", self.body))
    }
}

/// A confidential client's credentials.
#[derive(Debug, Clone)]
pub struct Creds {
    pub id: String,
    pub secret: String,
}

impl From<&Fixture> for Creds {
    fn from(fx: &Fixture) -> Creds {
        Creds { id: fx.client_id.clone(), secret: fx.client_secret.clone() }
    }
}

/// POSTs a form, authenticating with client_secret_basic when `creds` are given.
pub async fn post_form(server: &TestServer, path: &str, creds: Option<&Creds>, form: &[(&str, &str)]) -> Reply {
    let mut request = server.http.post(server.url(path)).form(form);
    if let Some(c) = creds {
        request = request.basic_auth(&c.id, Some(&c.secret));
    }
    Reply::read(request.send().await.expect("request sent")).await
}

/// A client_credentials token request with `extra` parameters.
pub async fn client_credentials(server: &TestServer, creds: &Creds, extra: &[(&str, &str)]) -> Reply {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    post_form(server, "/token", Some(creds), &form).await
}

/// Registers a confidential client allowed only the client_credentials grant.
pub async fn machine_client(
    server: &TestServer,
    client_id: &str,
    scope: &str,
    adjust: impl FnOnce(&mut ClientSpec),
) -> Creds {
    let mut spec = ClientSpec {
        client_id: Some(client_id.into()),
        client_name: Some(format!("{client_id} (machine)")),
        grant_types: vec!["client_credentials".into()],
        scope: Some(scope.into()),
        ..Default::default()
    };
    adjust(&mut spec);
    let new = registry::create_client(&server.store, spec).await.expect("machine client registered");
    Creds { id: new.client.client_id, secret: new.secret.expect("a confidential client has a secret") }
}

/// Registers [`OTHER_API`] with the scope `read:other`.
pub async fn add_other_api(server: &TestServer) {
    registry::create_api(
        &server.store,
        ApiSpec {
            identifier: OTHER_API.into(),
            name: "Other".into(),
            scopes: vec![ScopeSpec::Name("read:other".into())],
            ..Default::default()
        },
    )
    .await
    .expect("other API registered");
}

/// A successful client_credentials access token.
pub async fn machine_token(server: &TestServer, creds: &Creds, extra: &[(&str, &str)]) -> String {
    let reply = client_credentials(server, creds, extra).await;
    assert_eq!(reply.status, 200, "client_credentials for {}: {}", creds.id, reply.text);
    reply.str("access_token").to_owned()
}

/// Signs the user in through `browser` with the fixture's client and exchanges the code.
pub async fn sign_in(server: &TestServer, browser: &Browser<'_>, fx: &Fixture, extra: &[(&str, &str)]) -> Value {
    let outcome = browser.sign_in(&flow::authorize_url(server, &fx.client_id, extra), "alice").await;
    let (status, tokens) = flow::exchange(server, fx, &outcome.params()["code"], flow::VERIFIER).await;
    assert_eq!(status, 200, "code exchange: {tokens}");
    tokens
}

/// A string member of a token response.
pub fn member<'v>(tokens: &'v Value, name: &str) -> &'v str {
    tokens[name].as_str().unwrap_or_else(|| panic!("no {name} in {tokens}"))
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

/// Signs `claims` with the server's own active RS256 key, as the server would.
pub async fn sign_with_server_key(server: &TestServer, typ: &str, claims: &Value) -> String {
    let keys =
        KeyManager::start(server.store.clone(), server.config.key_encryption_key).await.expect("the server's keys");
    keys.ring().sign(SigningAlg::RS256, typ, claims).expect("signed")
}

/// An RFC 9068 access token for `aud` signed with the server's key, `exp` as given.
pub async fn access_token_expiring_at(server: &TestServer, aud: &str, sub: &str, exp: i64) -> String {
    let claims = json!({
        "iss": server.base, "sub": sub, "aud": aud, "exp": exp, "iat": exp - 3600,
        "jti": uuid::Uuid::new_v4().to_string(), "client_id": "web", "azp": "web", "scope": "read:appointments",
    });
    sign_with_server_key(server, "at+jwt", &claims).await
}

async fn userinfo(server: &TestServer, token: &str) -> Reply {
    Reply::read(server.http.get(server.url("/userinfo")).bearer_auth(token).send().await.expect("sent")).await
}

/// Asserts /userinfo accepts `token` for the fixture's user.
async fn assert_userinfo_accepts(server: &TestServer, token: &str, fx: &Fixture, what: &str) {
    let reply = userinfo(server, token).await;
    assert_eq!(reply.status, 200, "{what}: userinfo should accept the token: {} {}", reply.challenge(), reply.text);
    assert_eq!(reply.str("sub"), fx.user_id, "{what}");
}

/// Asserts /userinfo refuses `token` with 401 `invalid_token`; returns the challenge.
async fn assert_userinfo_refuses(server: &TestServer, token: &str, what: &str) -> String {
    let reply = userinfo(server, token).await;
    assert_eq!(reply.status, 401, "{what}: userinfo should refuse the token: {}", reply.text);
    let challenge = reply.challenge().to_owned();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{what}: challenge {challenge:?}"
    );
    assert_eq!(reply.error(), "invalid_token", "{what}: {}", reply.text);
    challenge
}

async fn introspect(server: &TestServer, creds: Option<&Creds>, token: &str) -> Reply {
    post_form(server, "/introspect", creds, &[("token", token)]).await
}

/// Asserts introspection by the API's client says `{"active": false}` and nothing more.
async fn assert_inactive(server: &TestServer, introspector: &Creds, token: &str, what: &str) {
    let reply = introspect(server, Some(introspector), token).await;
    assert_eq!(reply.status, 200, "{what}: {}", reply.text);
    assert_eq!(reply.body, json!({ "active": false }), "{what}: an inactive token is described by nothing else");
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
}

async fn assert_active(server: &TestServer, introspector: &Creds, token: &str, what: &str) -> Value {
    let reply = introspect(server, Some(introspector), token).await;
    assert_eq!(reply.status, 200, "{what}: {}", reply.text);
    assert_eq!(reply.body["active"], true, "{what}: {}", reply.text);
    reply.body
}

async fn revoke(server: &TestServer, creds: Option<&Creds>, token: &str, hint: Option<&str>) -> Reply {
    let mut form = vec![("token", token)];
    if let Some(hint) = hint {
        form.push(("token_type_hint", hint));
    }
    post_form(server, "/revoke", creds, &form).await
}

/// Asserts RFC 7009 §2.2: 200 whatever happened to the token.
fn assert_revocation_answer(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text);
    assert!(reply.text.is_empty() || reply.body.is_object(), "{what}: unexpected body {:?}", reply.text);
}

async fn refresh(server: &TestServer, creds: &Creds, refresh_token: &str, scope: Option<&str>) -> Reply {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    post_form(server, "/token", Some(creds), &form).await
}

/// Asserts a successful refresh with a rotated refresh token; returns the response.
async fn assert_refreshes(server: &TestServer, creds: &Creds, refresh_token: &str, what: &str) -> Value {
    let reply = refresh(server, creds, refresh_token, None).await;
    assert_eq!(reply.status, 200, "{what}: refresh should succeed: {}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
    let next = member(&reply.body, "refresh_token");
    assert_ne!(next, refresh_token, "{what}: the refresh token is rotated");
    reply.body
}

/// Asserts a refresh refused with 400 `invalid_grant`.
async fn assert_refresh_refused(server: &TestServer, creds: &Creds, refresh_token: &str, what: &str) {
    let reply = refresh(server, creds, refresh_token, None).await;
    assert_eq!((reply.status, reply.error()), (400, "invalid_grant"), "{what}: {}", reply.text);
    assert!(reply.body.get("access_token").is_none(), "{what}: nothing is issued");
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
}

/// Asserts an RFC 6749 §5.2 token error: status, `error`, a description, no-store,
/// and no token.
fn assert_token_error(reply: &Reply, status: u16, error: &str, what: &str) {
    assert_eq!((reply.status, reply.error()), (status, error), "{what}: {}", reply.text);
    assert!(
        reply.body["error_description"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: error_description expected in {}",
        reply.text
    );
    assert!(reply.body.get("access_token").is_none(), "{what}: nothing is issued: {}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}: token errors are no-store too");
    assert!(reply.header("content-type").unwrap_or("").starts_with("application/json"), "{what}");
}

/// The fixture for most tests: alice, the appointments API (with [`INTROSPECTOR`] as its
/// introspection client) and `web`, allowed refresh tokens and a post-logout URI.
struct Setup {
    fx: Fixture,
    web: Creds,
    introspector: Creds,
}

async fn setup(server: &TestServer) -> Setup {
    // The introspection client must exist before the API names it.
    let introspector = machine_client(server, INTROSPECTOR, "openid", |_| {}).await;
    let fx = flow::fixture_with(server, |c| {
        c.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
        c.scope = Some("openid profile email offline_access read:appointments write:appointments".into());
        c.post_logout_redirect_uris = vec![LOGGED_OUT.into()];
    })
    .await;
    let mut api = server.store.api(API).await.expect("store").expect("the fixture's API");
    api.introspection_client_id = Some(INTROSPECTOR.into());
    assert!(server.store.update_api(&api).await.expect("API updated"));
    let web = Creds::from(&fx);
    Setup { fx, web, introspector }
}

/// Whether `browser` is asked to sign in again when the client sends it to /authorize.
async fn asks_to_sign_in(server: &TestServer, browser: &Browser<'_>, fx: &Fixture) -> bool {
    let page = browser.open(&flow::authorize_url(server, &fx.client_id, &[])).await;
    matches!(&page, flow::Outcome::Page { status: 200, html } if html.contains("name=\"password\""))
}

// ---------------------------------------------------------------------------------------
// client_credentials (RFC 6749 §4.4)
// ---------------------------------------------------------------------------------------

async fn a_client_credentials_token_is_an_access_token_for_the_named_api_and_nothing_more(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    flow::fixture(&server).await;
    let machine = machine_client(&server, "reminders", "read:appointments", |_| {}).await;

    let reply = client_credentials(&server, &machine, &[("resource", API), ("scope", "read:appointments")]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.str("token_type"), "Bearer");
    assert_eq!(reply.str("scope"), "read:appointments");
    assert_eq!(reply.body["expires_in"], 3600);
    assert!(reply.body.get("id_token").is_none(), "no id_token without a user: {}", reply.text);
    assert!(reply.body.get("refresh_token").is_none(), "no refresh token for client_credentials: {}", reply.text);

    let (header, claims) = flow::decode_jwt(reply.str("access_token"));
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["iss"], server.base.as_str());
    assert_eq!(claims["sub"], "reminders", "the subject is the client itself");
    assert_eq!(claims["client_id"], "reminders");
    assert_eq!(claims["azp"], "reminders");
    assert_eq!(claims["aud"], API, "one audience, as a string, and no userinfo");
    assert_eq!(claims["scope"], "read:appointments");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
    for user_claim in ["auth_time", "sid", "nonce", "email", "name"] {
        assert!(claims.get(user_claim).is_none(), "{user_claim} has no place in a machine token: {claims}");
    }
}

async fn a_client_credentials_request_may_name_its_api_with_audience_or_rely_on_the_default_api(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    flow::fixture(&server).await;
    let named = machine_client(&server, "reminders", "read:appointments", |_| {}).await;
    let defaulted = machine_client(&server, "nightly", "read:appointments", |c| c.default_api = Some(API.into())).await;

    for (what, creds, extra) in [
        ("audience (Auth0 style)", &named, vec![("audience", API)]),
        ("the client's default API", &defaulted, vec![]),
        ("the default API, scope named", &defaulted, vec![("scope", "read:appointments")]),
    ] {
        let reply = client_credentials(&server, creds, &extra).await;
        assert_eq!(reply.status, 200, "{what}: {}", reply.text);
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
        assert!(reply.body.get("refresh_token").is_none() && reply.body.get("id_token").is_none(), "{what}");
        let (header, claims) = flow::decode_jwt(reply.str("access_token"));
        assert_eq!(header["typ"], "at+jwt", "{what}");
        assert_eq!(claims["aud"], API, "{what}");
        assert_eq!(claims["sub"], creds.id.as_str(), "{what}");
        assert_eq!(claims["scope"], "read:appointments", "{what}");
    }
}

async fn a_client_credentials_token_carries_only_the_scopes_the_client_is_allowed_of_that_api(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    flow::fixture(&server).await;
    add_other_api(&server).await;
    let machine = machine_client(&server, "sync", "openid read:appointments read:other", |_| {}).await;

    // No scope asked: everything the client is allowed that this API defines, and no more.
    let reply = client_credentials(&server, &machine, &[("resource", API)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.str("scope"), "read:appointments", "not openid, not read:other, not write:appointments");
    assert_eq!(flow::decode_jwt(reply.str("access_token")).1["scope"], "read:appointments");

    let reply = client_credentials(&server, &machine, &[("resource", OTHER_API)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.str("scope"), "read:other");
    let (_, claims) = flow::decode_jwt(reply.str("access_token"));
    assert_eq!((claims["aud"].as_str(), claims["scope"].as_str()), (Some(OTHER_API), Some("read:other")));

    // A scope of another API, even one the client is allowed, is not this API's to grant.
    let reply = client_credentials(&server, &machine, &[("resource", API), ("scope", "read:other")]).await;
    assert_token_error(&reply, 400, "invalid_scope", "a scope of another API");
}

async fn client_credentials_refusals_are_rfc_6749_errors_that_issue_nothing(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let machine = machine_client(&server, "reminders", "read:appointments", |_| {}).await;
    let public = registry::create_client(
        &server.store,
        ClientSpec {
            client_id: Some("spa".into()),
            redirect_uris: vec![REDIRECT_URI.into()],
            token_endpoint_auth_method: Some("none".into()),
            scope: Some("openid read:appointments".into()),
            ..Default::default()
        },
    )
    .await
    .expect("public client registered");
    assert!(public.secret.is_none());

    let web = Creds::from(&fx);
    let cases = [
        ("no resource and no default API", &machine, vec![], "invalid_target"),
        (
            "an unregistered resource",
            &machine,
            vec![("resource", "https://api.example.test/unknown")],
            "invalid_target",
        ),
        (
            "a scope the client is not allowed",
            &machine,
            vec![("resource", API), ("scope", "write:appointments")],
            "invalid_scope",
        ),
        ("a client without the grant", &web, vec![("resource", API)], "unauthorized_client"),
    ];
    for (what, creds, extra, error) in cases {
        let reply = client_credentials(&server, creds, &extra).await;
        assert_token_error(&reply, 400, error, what);
    }

    // RFC 6749 §4.4: "MUST only be used by confidential clients". A public client
    // identifies itself without a secret; whichever code says so, it gets no token.
    let reply = post_form(
        &server,
        "/token",
        None,
        &[("grant_type", "client_credentials"), ("client_id", "spa"), ("resource", API)],
    )
    .await;
    match reply.error() {
        "unauthorized_client" => assert_token_error(&reply, 400, "unauthorized_client", "a public client"),
        "invalid_client" => assert_token_error(&reply, 401, "invalid_client", "a public client"),
        other => panic!("a public client: unexpected error {other:?}: {}", reply.text),
    }
}

// ---------------------------------------------------------------------------------------
// Refresh tokens (RFC 6749 §6, RFC 9700 §4.14)
// ---------------------------------------------------------------------------------------

async fn a_refresh_token_is_issued_only_for_offline_access_to_a_client_allowed_the_refresh_grant(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);

    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    assert!(tokens["refresh_token"].as_str().is_some_and(|t| t.len() >= 43), "≥ 256 bits: {tokens}");
    assert!(member(&tokens, "scope").split(' ').any(|s| s == "offline_access"), "{tokens}");
    let (_, at) = flow::decode_jwt(member(&tokens, "access_token"));
    assert!(!at["scope"].as_str().unwrap().contains("offline_access"), "offline_access is not for APIs: {at}");

    let tokens = sign_in(&server, &browser, &s.fx, &[("scope", "openid read:appointments"), ("resource", API)]).await;
    assert!(tokens.get("refresh_token").is_none(), "no offline_access, no refresh token: {tokens}");

    // offline_access allowed, but not the refresh grant.
    let no_grant = registry::create_client(
        &server.store,
        ClientSpec {
            client_id: Some("no-refresh-grant".into()),
            redirect_uris: vec![REDIRECT_URI.into()],
            scope: Some("openid profile offline_access read:appointments".into()),
            ..Default::default()
        },
    )
    .await
    .expect("client registered");
    // The refresh grant, but offline_access not among the client's scopes.
    let no_scope = registry::create_client(
        &server.store,
        ClientSpec {
            client_id: Some("no-offline-scope".into()),
            redirect_uris: vec![REDIRECT_URI.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            scope: Some("openid profile read:appointments".into()),
            ..Default::default()
        },
    )
    .await
    .expect("client registered");
    for (what, new) in [("without the refresh grant", no_grant), ("without offline_access allowed", no_scope)] {
        let fx = Fixture {
            client_id: new.client.client_id,
            client_secret: new.secret.unwrap(),
            user_id: s.fx.user_id.clone(),
        };
        let tokens = sign_in(&server, &browser, &fx, &OFFLINE).await;
        assert!(tokens.get("refresh_token").is_none(), "{what}: no refresh token: {tokens}");
        assert!(!member(&tokens, "scope").contains("offline_access"), "{what}: not granted: {tokens}");
        assert!(tokens["access_token"].is_string(), "{what}: the rest is issued");
    }
}

async fn every_refresh_rotates_the_refresh_token_and_keeps_the_grant_alive(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let first = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    let (_, first_at) = flow::decode_jwt(member(&first, "access_token"));

    let mut previous = member(&first, "refresh_token").to_owned();
    let mut seen = vec![previous.clone()];
    for round in 1..=2 {
        let what = format!("refresh #{round}");
        let next = assert_refreshes(&server, &s.web, &previous, &what).await;
        assert_eq!(member(&next, "token_type"), "Bearer", "{what}");
        assert_eq!(member(&next, "scope"), member(&first, "scope"), "{what}: the same grant");
        let access_token = member(&next, "access_token");
        let (header, at) = flow::decode_jwt(access_token);
        assert_eq!(header["typ"], "at+jwt", "{what}");
        assert_eq!(at["aud"], first_at["aud"], "{what}");
        assert_eq!(at["scope"], first_at["scope"], "{what}");
        assert_eq!(at["sub"], s.fx.user_id.as_str(), "{what}");
        assert_ne!(at["jti"], first_at["jti"], "{what}: a new access token");
        assert_userinfo_accepts(&server, access_token, &s.fx, &what).await;
        assert_active(&server, &s.introspector, access_token, &what).await;
        let rotated = member(&next, "refresh_token").to_owned();
        assert!(!seen.contains(&rotated), "{what}: every refresh token is new");
        seen.push(rotated.clone());
        previous = rotated;
    }
}

async fn the_id_token_from_a_refresh_keeps_auth_time_and_carries_no_nonce(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let first = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    let (_, original) = flow::decode_jwt(member(&first, "id_token"));
    assert_eq!(original["nonce"], "n-0S6_WzA2Mj", "the code exchange's id_token has the nonce");

    // Let the clock move, so a refresh that re-stamped auth_time would show.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refreshed = assert_refreshes(&server, &s.web, member(&first, "refresh_token"), "refresh").await;
    let (header, id) = flow::decode_jwt(member(&refreshed, "id_token"));
    assert_eq!(header["typ"], "JWT");
    assert_eq!(id["auth_time"], original["auth_time"], "OIDC Core §12.2: auth_time is the original sign-in's");
    assert!(id.get("nonce").is_none(), "OIDC Core §12.2: no nonce on refresh: {id}");
    assert_eq!(id["sub"], original["sub"]);
    assert_eq!(id["aud"], s.fx.client_id.as_str());
    assert_eq!(id["iss"], server.base.as_str());
    assert_eq!(id["sid"], original["sid"], "the same session");
    assert!(id["iat"].as_i64() > original["iat"].as_i64(), "a new id_token: {id}");
    assert!(id["at_hash"].is_string(), "bound to the new access token: {id}");
}

async fn a_reused_refresh_token_is_refused_and_revokes_its_whole_family(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let first = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    let second = assert_refreshes(&server, &s.web, member(&first, "refresh_token"), "first refresh").await;
    let third = assert_refreshes(&server, &s.web, member(&second, "refresh_token"), "second refresh").await;
    let access_tokens =
        [member(&first, "access_token"), member(&second, "access_token"), member(&third, "access_token")];
    for (i, token) in access_tokens.iter().enumerate() {
        assert_userinfo_accepts(&server, token, &s.fx, &format!("access token #{i} before the reuse")).await;
    }

    // An attacker (or a confused client) presents the first, rotated, refresh token again.
    let reply = refresh(&server, &s.web, member(&first, "refresh_token"), None).await;
    assert_token_error(&reply, 400, "invalid_grant", "a rotated refresh token presented again");

    assert_refresh_refused(&server, &s.web, member(&third, "refresh_token"), "the newest refresh token of the family")
        .await;
    assert_refresh_refused(&server, &s.web, member(&second, "refresh_token"), "the middle refresh token").await;
    for (i, token) in access_tokens.iter().enumerate() {
        let what = format!("access token #{i} after the reuse");
        let challenge = assert_userinfo_refuses(&server, token, &what).await;
        assert!(challenge.contains("revoked"), "{what}: {challenge}");
        assert_inactive(&server, &s.introspector, token, &what).await;
    }
}

async fn a_refresh_may_narrow_the_scope_but_never_widen_it(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let first = sign_in(&server, &browser, &s.fx, &OFFLINE).await;

    let reply = refresh(&server, &s.web, member(&first, "refresh_token"), Some("openid")).await;
    assert_eq!(reply.status, 200, "narrowing to openid: {}", reply.text);
    assert_eq!(reply.str("scope"), "openid");
    let (_, at) = flow::decode_jwt(reply.str("access_token"));
    assert_eq!(at["scope"], "openid", "only what was asked: {at}");
    let info = userinfo(&server, reply.str("access_token")).await;
    assert_eq!(info.status, 200, "{}", info.text);
    assert!(info.body.get("name").is_none(), "profile was not asked for this time: {}", info.text);
    let (_, id) = flow::decode_jwt(reply.str("id_token"));
    assert!(id.get("name").is_none(), "nor in the id_token: {id}");

    // The narrower refresh does not shrink the grant: the successor keeps the original scope.
    let full = assert_refreshes(&server, &s.web, reply.str("refresh_token"), "refresh without scope").await;
    assert_eq!(member(&full, "scope"), member(&first, "scope"));
    let (_, at) = flow::decode_jwt(member(&full, "access_token"));
    assert_eq!(at["scope"], flow::decode_jwt(member(&first, "access_token")).1["scope"]);

    let mut current = member(&full, "refresh_token").to_owned();
    for (what, scope) in [
        ("an API scope the client may have but the user did not grant", "openid write:appointments"),
        ("an OIDC scope not originally granted", "openid phone"),
        ("a scope nobody defines", "openid delete:everything"),
    ] {
        let reply = refresh(&server, &s.web, &current, Some(scope)).await;
        assert_token_error(&reply, 400, "invalid_scope", what);
        // A fresh grant for each case: whether a refused refresh consumes the token is
        // the next test's question, not this one's.
        let again = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
        current = member(&again, "refresh_token").to_owned();
    }
}

async fn a_refused_refresh_leaves_the_refresh_token_usable(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    for (what, extra, error) in [
        ("a wider scope", ("scope", "openid write:appointments"), "invalid_scope"),
        ("an API the grant does not cover", ("resource", OTHER_API), "invalid_target"),
    ] {
        let first = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
        let refresh_token = member(&first, "refresh_token");
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), extra];
        let reply = post_form(&server, "/token", Some(&s.web), &form).await;
        assert_token_error(&reply, 400, error, what);
        // Nothing was issued, so nothing was rotated: the token still works, and its grant's
        // access token was not revoked as if the token had been stolen and replayed.
        assert_refreshes(&server, &s.web, refresh_token, &format!("{what}: the same token, after the refusal")).await;
        assert_userinfo_accepts(&server, member(&first, "access_token"), &s.fx, &format!("{what}: the grant's token"))
            .await;
    }
}

async fn a_refresh_token_presented_by_another_client_is_invalid_grant_and_stays_usable(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let other = registry::create_client(
        &server.store,
        ClientSpec {
            client_id: Some("other-web".into()),
            redirect_uris: vec![REDIRECT_URI.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            scope: Some("openid offline_access read:appointments".into()),
            ..Default::default()
        },
    )
    .await
    .expect("client registered");
    let other = Creds { id: other.client.client_id, secret: other.secret.unwrap() };
    let browser = Browser::new(&server);
    let first = sign_in(&server, &browser, &s.fx, &OFFLINE).await;

    let reply = refresh(&server, &other, member(&first, "refresh_token"), None).await;
    assert_token_error(&reply, 400, "invalid_grant", "another client's refresh token");

    let next = assert_refreshes(&server, &s.web, member(&first, "refresh_token"), "its own client, afterwards").await;
    assert_userinfo_accepts(&server, member(&next, "access_token"), &s.fx, "the refreshed access token").await;
    assert_userinfo_accepts(&server, member(&first, "access_token"), &s.fx, "the first access token").await;
}

// ---------------------------------------------------------------------------------------
// Revocation (RFC 7009)
// ---------------------------------------------------------------------------------------

async fn a_revoked_access_token_is_refused_at_userinfo_and_inactive_at_introspection(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    let access_token = member(&tokens, "access_token");
    assert_userinfo_accepts(&server, access_token, &s.fx, "before revocation").await;
    assert_active(&server, &s.introspector, access_token, "before revocation").await;

    let reply = revoke(&server, Some(&s.web), access_token, None).await;
    assert_revocation_answer(&reply, "revoking its own access token");
    assert_eq!(reply.header("cache-control"), Some("no-store"));

    let challenge = assert_userinfo_refuses(&server, access_token, "a revoked access token").await;
    assert!(challenge.contains("revoked"), "the reason says revoked: {challenge}");
    assert_inactive(&server, &s.introspector, access_token, "a revoked access token").await;

    // §2.1: a wrong hint only orders the look-ups.
    let again = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    let reply = revoke(&server, Some(&s.web), member(&again, "access_token"), Some("refresh_token")).await;
    assert_revocation_answer(&reply, "an access token with hint refresh_token");
    assert_userinfo_refuses(&server, member(&again, "access_token"), "revoked despite the wrong hint").await;
}

async fn revoking_a_refresh_token_revokes_the_access_tokens_of_its_family(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let first = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    let second = assert_refreshes(&server, &s.web, member(&first, "refresh_token"), "refresh").await;
    // Another grant of the same user and client, which must not be touched.
    let unrelated = sign_in(&server, &browser, &s.fx, &OFFLINE).await;

    let reply = revoke(&server, Some(&s.web), member(&second, "refresh_token"), None).await;
    assert_revocation_answer(&reply, "revoking its own refresh token");

    assert_refresh_refused(&server, &s.web, member(&second, "refresh_token"), "the revoked refresh token").await;
    for (what, token) in [("the family's first access token", &first), ("the family's refreshed access token", &second)]
    {
        let challenge = assert_userinfo_refuses(&server, member(token, "access_token"), what).await;
        assert!(challenge.contains("revoked"), "{what}: {challenge}");
        assert_inactive(&server, &s.introspector, member(token, "access_token"), what).await;
    }
    assert_userinfo_accepts(&server, member(&unrelated, "access_token"), &s.fx, "another grant's access token").await;
    assert_refreshes(&server, &s.web, member(&unrelated, "refresh_token"), "another grant's refresh token").await;

    // With the hint too.
    let reply = revoke(&server, Some(&s.web), member(&unrelated, "refresh_token"), Some("refresh_token")).await;
    assert_revocation_answer(&reply, "hint refresh_token");
}

async fn a_client_revoking_another_clients_tokens_gets_200_and_the_tokens_keep_working(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let intruder = machine_client(&server, "intruder", "read:appointments", |_| {}).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;

    for (what, token, hint) in [
        ("another client's access token", member(&tokens, "access_token"), None),
        ("another client's refresh token", member(&tokens, "refresh_token"), None),
        ("another client's refresh token, hinted", member(&tokens, "refresh_token"), Some("refresh_token")),
    ] {
        let reply = revoke(&server, Some(&intruder), token, hint).await;
        assert_revocation_answer(&reply, what);
    }
    assert_userinfo_accepts(&server, member(&tokens, "access_token"), &s.fx, "after a foreign revocation").await;
    assert_active(&server, &s.introspector, member(&tokens, "access_token"), "after a foreign revocation").await;
    assert_refreshes(&server, &s.web, member(&tokens, "refresh_token"), "after a foreign revocation").await;
}

async fn revoking_an_unknown_token_is_a_200_and_revocation_needs_client_authentication(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    for (what, token) in [
        ("an opaque unknown token", "c29tZXRoaW5nIHRoYXQgd2FzIG5ldmVyIGlzc3VlZA"),
        ("something JWT-shaped", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
    ] {
        let reply = revoke(&server, Some(&s.web), token, None).await;
        assert_revocation_answer(&reply, what);
    }

    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    let reply = revoke(&server, None, member(&tokens, "access_token"), None).await;
    assert_token_error(&reply, 401, "invalid_client", "revocation without client authentication");
    let wrong = Creds { id: s.web.id.clone(), secret: "not-the-secret".into() };
    let reply = revoke(&server, Some(&wrong), member(&tokens, "access_token"), None).await;
    assert_token_error(&reply, 401, "invalid_client", "revocation with a wrong secret");
    assert!(reply.challenge().starts_with("Basic"), "Basic was used: {:?}", reply.challenge());
    assert_userinfo_accepts(&server, member(&tokens, "access_token"), &s.fx, "unauthenticated revocations").await;

    let reply = post_form(&server, "/revoke", Some(&s.web), &[("token_type_hint", "access_token")]).await;
    assert_token_error(&reply, 400, "invalid_request", "no token parameter");
}

// ---------------------------------------------------------------------------------------
// Introspection (RFC 7662)
// ---------------------------------------------------------------------------------------

async fn introspection_describes_an_active_token_for_the_callers_own_api(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    let access_token = member(&tokens, "access_token");
    let (_, claims) = flow::decode_jwt(access_token);

    let reply = introspect(&server, Some(&s.introspector), access_token).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(reply.header("content-type").unwrap_or("").starts_with("application/json"));
    let body = &reply.body;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["sub"], s.fx.user_id.as_str());
    assert_eq!(body["client_id"], "web");
    assert_eq!(body["iss"], server.base.as_str());
    assert_eq!(body["aud"], json!([API, server.url("/userinfo")]));
    for name in ["scope", "exp", "iat", "jti"] {
        assert_eq!(body[name], claims[name], "{name} as in the token");
    }
    assert!(body["scope"].as_str().unwrap().split(' ').any(|s| s == "read:appointments"), "{body}");
    assert!(body["exp"].as_i64().unwrap() > now());

    // A machine's token for the same API.
    let machine = machine_client(&server, "reminders", "read:appointments", |_| {}).await;
    let token = machine_token(&server, &machine, &[("resource", API)]).await;
    let body = assert_active(&server, &s.introspector, &token, "a client_credentials token").await;
    assert_eq!(body["sub"], "reminders");
    assert_eq!(body["client_id"], "reminders");
    assert_eq!(body["aud"], API);
    assert_eq!(body["scope"], "read:appointments");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("auth_time").is_none(), "{body}");
}

async fn introspection_says_inactive_for_expired_revoked_foreign_and_id_tokens(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    add_other_api(&server).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;

    // Control: a token signed the same way but unexpired is active, so only `exp` differs.
    let fresh = access_token_expiring_at(&server, API, &s.fx.user_id, now() + 600).await;
    assert_active(&server, &s.introspector, &fresh, "a fresh self-signed token").await;
    let expired = access_token_expiring_at(&server, API, &s.fx.user_id, now() - 3600).await;
    assert_inactive(&server, &s.introspector, &expired, "an expired access token").await;

    let revoked = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    assert_revocation_answer(&revoke(&server, Some(&s.web), member(&revoked, "access_token"), None).await, "revoking");
    assert_inactive(&server, &s.introspector, member(&revoked, "access_token"), "a revoked access token").await;

    let other = machine_client(&server, "other-machine", "read:other", |_| {}).await;
    let foreign = machine_token(&server, &other, &[("resource", OTHER_API)]).await;
    assert_inactive(&server, &s.introspector, &foreign, "a token for another API").await;

    assert_inactive(&server, &s.introspector, member(&tokens, "id_token"), "an id_token").await;
    assert_inactive(&server, &s.introspector, member(&tokens, "refresh_token"), "another client's refresh token").await;
    assert_inactive(&server, &s.introspector, "not-a-token", "garbage").await;
    // Flip a character inside the signature (the last one may hold only padding bits).
    let mut tampered: Vec<char> = member(&tokens, "access_token").chars().collect();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    assert_inactive(&server, &s.introspector, &tampered, "a token with a broken signature").await;
}

async fn introspection_requires_client_authentication_and_answers_only_for_the_callers_apis(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    let access_token = member(&tokens, "access_token");

    let reply = introspect(&server, None, access_token).await;
    assert_token_error(&reply, 401, "invalid_client", "introspection without client authentication");
    let wrong = Creds { id: INTROSPECTOR.into(), secret: "wrong".into() };
    let reply = introspect(&server, Some(&wrong), access_token).await;
    assert_token_error(&reply, 401, "invalid_client", "introspection with a wrong secret");
    assert!(reply.challenge().starts_with("Basic"), "{:?}", reply.challenge());

    // A client that speaks for no API learns nothing, even about its own token.
    assert_inactive(&server, &s.web, access_token, "asked by a client that is no API's introspection client").await;
    assert_active(&server, &s.introspector, access_token, "asked by the API's introspection client").await;
}

// ---------------------------------------------------------------------------------------
// RP-initiated logout
// ---------------------------------------------------------------------------------------

/// GET /logout in the browser with these parameters.
async fn logout(browser: &Browser<'_>, params: &[(&str, &str)]) -> Reply {
    let mut url = url::Url::parse(&browser.server.url("/logout")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    Reply::read(browser.http.get(url.as_str()).send().await.expect("sent")).await
}

fn assert_html(reply: &Reply, status: u16, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.text);
    assert!(reply.header("location").is_none(), "{what}: no redirect, got {:?}", reply.header("location"));
    assert!(reply.header("content-type").unwrap_or("").starts_with("text/html"), "{what}");
}

async fn logout_with_an_id_token_hint_redirects_to_the_registered_uri_with_state_and_ends_the_session(
    backend: Backend,
) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    assert!(!asks_to_sign_in(&server, &browser, &s.fx).await, "signed in before the logout");

    let reply = logout(
        &browser,
        &[
            ("id_token_hint", member(&tokens, "id_token")),
            ("post_logout_redirect_uri", LOGGED_OUT),
            ("state", "bye-123"),
        ],
    )
    .await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    let location = url::Url::parse(reply.header("location").expect("a Location")).unwrap();
    assert_eq!(&location[..url::Position::AfterPath], LOGGED_OUT);
    let params: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert_eq!(params, [("state".to_owned(), "bye-123".to_owned())]);

    assert!(asks_to_sign_in(&server, &browser, &s.fx).await, "the session has ended");
    let challenge =
        assert_userinfo_refuses(&server, member(&tokens, "access_token"), "an access token of the session").await;
    assert!(challenge.contains("revoked"), "{challenge}");
    assert_inactive(&server, &s.introspector, member(&tokens, "access_token"), "an access token of the session").await;
    assert_refresh_refused(&server, &s.web, member(&tokens, "refresh_token"), "a refresh token of the session").await;
}

async fn logout_to_an_unregistered_post_logout_redirect_uri_is_a_400_page_and_ends_nothing(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;

    let reply = logout(
        &browser,
        &[
            ("id_token_hint", member(&tokens, "id_token")),
            ("post_logout_redirect_uri", "https://evil.example.test/after-logout"),
            ("state", "s1"),
        ],
    )
    .await;
    assert_html(&reply, 400, "an unregistered post_logout_redirect_uri");
    assert!(reply.text.contains("post_logout_redirect_uri"), "the page says what is wrong: {}", reply.text);
    assert!(!reply.text.contains("evil.example.test"), "never offered as a link either");
    assert!(!asks_to_sign_in(&server, &browser, &s.fx).await, "the session goes on");
    assert_userinfo_accepts(&server, member(&tokens, "access_token"), &s.fx, "after a refused logout").await;
}

async fn logout_accepts_an_expired_id_token_hint_that_is_correctly_signed(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    let (_, id) = flow::decode_jwt(member(&tokens, "id_token"));
    let mut expired = id.clone();
    expired["iat"] = json!(now() - 7200);
    expired["exp"] = json!(now() - 3600);
    let hint = sign_with_server_key(&server, "JWT", &expired).await;

    let reply = logout(&browser, &[("id_token_hint", &hint), ("post_logout_redirect_uri", LOGGED_OUT)]).await;
    assert_eq!(reply.status, 303, "an expired but genuine hint is accepted: {}", reply.text);
    let location = url::Url::parse(reply.header("location").expect("a Location")).unwrap();
    assert_eq!(&location[..url::Position::AfterPath], LOGGED_OUT);
    assert_eq!(location.query_pairs().count(), 0, "no state was sent, none is added: {location}");
    assert!(asks_to_sign_in(&server, &browser, &s.fx).await, "the session has ended");
    assert_userinfo_refuses(&server, member(&tokens, "access_token"), "an access token of the session").await;
}

async fn logout_with_a_tampered_id_token_hint_is_a_400_page_and_ends_nothing(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;

    // Same signature, a payload naming another session.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let id_token = member(&tokens, "id_token");
    let parts: Vec<&str> = id_token.split('.').collect();
    let (_, mut claims) = flow::decode_jwt(id_token);
    claims["sid"] = json!("someone-elses-session");
    let tampered = format!("{}.{}.{}", parts[0], b64.encode(claims.to_string()), parts[2]);
    // An access token is not an id_token either.
    for (what, hint) in
        [("a tampered hint", tampered.as_str()), ("an access token as hint", member(&tokens, "access_token"))]
    {
        let reply =
            logout(&browser, &[("id_token_hint", hint), ("post_logout_redirect_uri", LOGGED_OUT), ("state", "x")])
                .await;
        assert_html(&reply, 400, what);
        assert!(reply.text.contains("id_token_hint"), "{what}: the page says what is wrong: {}", reply.text);
    }
    assert!(!asks_to_sign_in(&server, &browser, &s.fx).await, "the session goes on");
    assert_userinfo_accepts(&server, member(&tokens, "access_token"), &s.fx, "after refused logouts").await;
}

async fn logout_without_a_hint_asks_for_confirmation_on_a_csrf_protected_form(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;

    let reply =
        logout(&browser, &[("client_id", "web"), ("post_logout_redirect_uri", LOGGED_OUT), ("state", "confirm-me")])
            .await;
    assert_html(&reply, 200, "logout without id_token_hint");
    assert_eq!(reply.header("x-frame-options"), Some("DENY"), "a confirmation page must not be framed");
    assert!(reply.text.contains("method=\"post\"") && reply.text.contains("action=\"/logout\""), "{}", reply.text);
    let csrf = flow::form_field(&reply.text, "csrf_token").expect("a csrf_token field");
    assert!(csrf.len() >= 32, "an unguessable CSRF token");
    assert!(!asks_to_sign_in(&server, &browser, &s.fx).await, "nothing ends before the user confirms");

    let mut form = vec![
        ("confirm", "yes".to_owned()),
        ("client_id", flow::form_field(&reply.text, "client_id").expect("client_id carried")),
        ("post_logout_redirect_uri", flow::form_field(&reply.text, "post_logout_redirect_uri").expect("carried")),
        ("state", flow::form_field(&reply.text, "state").expect("state carried")),
    ];
    for (what, token) in [("without csrf_token", None), ("with a wrong csrf_token", Some("x".repeat(43)))] {
        let mut attempt = form.clone();
        if let Some(token) = token {
            attempt.push(("csrf_token", token));
        }
        let response = browser.http.post(server.url("/logout")).form(&attempt).send().await.unwrap();
        let reply = Reply::read(response).await;
        assert_html(&reply, 403, what);
        assert!(!asks_to_sign_in(&server, &browser, &s.fx).await, "{what}: the session goes on");
    }
    assert_userinfo_accepts(&server, member(&tokens, "access_token"), &s.fx, "after forged logouts").await;

    form.push(("csrf_token", csrf));
    let response = browser.http.post(server.url("/logout")).form(&form).send().await.unwrap();
    let reply = Reply::read(response).await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    assert_eq!(reply.header("location"), Some(format!("{LOGGED_OUT}?state=confirm-me").as_str()));
    assert!(asks_to_sign_in(&server, &browser, &s.fx).await, "the session has ended");
    assert_userinfo_refuses(&server, member(&tokens, "access_token"), "an access token of the session").await;
}

// ---------------------------------------------------------------------------------------
// Removing users and clients
// ---------------------------------------------------------------------------------------

async fn deleting_a_user_revokes_their_access_and_refresh_tokens(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    let refreshed = assert_refreshes(&server, &s.web, member(&tokens, "refresh_token"), "before deletion").await;

    assert!(server.store.delete_user(&s.fx.user_id).await.expect("store"));

    for (what, t) in [("the first access token", &tokens), ("the refreshed access token", &refreshed)] {
        assert_userinfo_refuses(&server, member(t, "access_token"), what).await;
        // Introspection does not look the user up: only revocation makes this inactive.
        assert_inactive(&server, &s.introspector, member(t, "access_token"), what).await;
    }
    assert_refresh_refused(&server, &s.web, member(&refreshed, "refresh_token"), "a deleted user's refresh token")
        .await;
}

async fn ending_a_users_sessions_revokes_their_tokens_and_asks_them_to_sign_in_again(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;

    assert_eq!(server.store.end_user_sessions(&s.fx.user_id).await.expect("store"), 1);

    assert!(asks_to_sign_in(&server, &browser, &s.fx).await, "the browser's session has ended");
    let challenge = assert_userinfo_refuses(&server, member(&tokens, "access_token"), "an access token").await;
    assert!(challenge.contains("revoked"), "{challenge}");
    assert_inactive(&server, &s.introspector, member(&tokens, "access_token"), "an access token").await;
    assert_refresh_refused(&server, &s.web, member(&tokens, "refresh_token"), "a refresh token").await;

    // Signing in again works and gives working tokens.
    let again = sign_in(&server, &browser, &s.fx, &OFFLINE).await;
    assert_userinfo_accepts(&server, member(&again, "access_token"), &s.fx, "after signing in again").await;
}

async fn deleting_a_client_revokes_its_tokens_even_when_it_is_registered_again(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &s.fx, &OFFLINE).await;

    assert!(server.store.delete_client("web").await.expect("store"));

    let challenge = assert_userinfo_refuses(&server, member(&tokens, "access_token"), "a deleted client's token").await;
    assert!(challenge.contains("revoked"), "{challenge}");
    assert_inactive(&server, &s.introspector, member(&tokens, "access_token"), "a deleted client's token").await;
    let reply = refresh(&server, &s.web, member(&tokens, "refresh_token"), None).await;
    assert_token_error(&reply, 401, "invalid_client", "the deleted client refreshing");

    // The same client_id and secret registered anew inherit nothing.
    registry::create_client(
        &server.store,
        ClientSpec {
            client_id: Some("web".into()),
            client_secret: Some(s.web.secret.clone()),
            redirect_uris: vec![REDIRECT_URI.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            scope: Some("openid offline_access read:appointments".into()),
            ..Default::default()
        },
    )
    .await
    .expect("registered again");
    assert_refresh_refused(&server, &s.web, member(&tokens, "refresh_token"), "the old refresh token").await;
    assert_userinfo_refuses(&server, member(&tokens, "access_token"), "the old access token").await;
}

async fn deleting_a_client_deactivates_its_client_credentials_tokens(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let s = setup(&server).await;
    let machine = machine_client(&server, "reminders", "read:appointments", |_| {}).await;
    let token = machine_token(&server, &machine, &[("resource", API)]).await;
    assert_active(&server, &s.introspector, &token, "before the client is deleted").await;

    assert!(server.store.delete_client("reminders").await.expect("store"));

    assert_inactive(&server, &s.introspector, &token, "a deleted client's client_credentials token").await;
}
