//! The device authorization grant (RFC 8628): `/device_authorization`, the `/device` page
//! and the `urn:ietf:params:oauth:grant-type:device_code` grant at `/token`, driven by a
//! real client library (`openidconnect`, whose device flow is `oauth2`'s) and by hand for
//! every refusal the RFC names.
//!
//! Time: an expiry or a longer interval is reached by moving the server's protocol clock
//! (`store.clock()`, the clock the test lab moves), never by waiting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lanyard::clock::ClockChange;
use lanyard::crypto::sha256_hex;
use lanyard::registry::{self, client::ClientSpec};
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreDeviceAuthorizationResponse,
    CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, ClientSecret, DeviceAuthorizationUrl, IssuerUrl, Nonce, OAuth2TokenResponse,
    ProviderMetadata, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::both_backends;
use crate::flow::{self, API, Fixture, PASSWORD, decode_jwt, form_field};
use crate::helpers::{Backend, TestDb, TestServer};
use crate::token_lifecycle::{Creds, Reply, post_form};

both_backends!(
    a_cli_gets_tokens_through_the_device_flow_with_an_rp_library,
    discovery_advertises_the_device_authorization_endpoint_and_the_grant,
    polling_before_the_interval_is_slow_down_on_every_replica_and_the_interval_grows_by_five_seconds,
    a_denied_request_is_access_denied_at_the_token_endpoint,
    an_expired_device_code_is_expired_token_and_the_page_says_so,
    unknown_and_foreign_device_codes_are_invalid_grant_and_leave_the_code_alone,
    a_device_code_is_single_use_and_its_replay_revokes_what_it_gave,
    device_authorization_refusals_are_rfc_6749_errors,
    a_client_not_allowed_the_device_grant_is_unauthorized_client_at_both_endpoints,
    the_device_page_forgives_case_dashes_and_spaces_in_the_user_code,
    the_device_page_signs_a_user_in_first_and_comes_back_to_the_code,
    wrong_user_codes_are_throttled_per_account_in_the_database,
    the_device_grant_is_given_by_dynamic_registration_and_the_admin_api,
);

/// RFC 8628 §3.4's grant type.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The public device client (a TV app): no secret, no redirect URI.
const TV: &str = "tv";
const ADMIN_TOKEN: &str = "device-flow-admin-token-with-plenty-of-entropy-0123456789";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A server (with dev-login when `dev_login`), `alice`, the appointments API, the
/// confidential `web` client allowed the device and refresh grants, and the public `tv`
/// client allowed the device grant only.
async fn start(backend: Backend, dev_login: bool) -> (TestDb, TestServer, Fixture) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.dev_login = dev_login).await;
    let fx = flow::fixture_with(&server, |c| {
        c.grant_types = vec!["authorization_code".into(), "refresh_token".into(), DEVICE_GRANT.into()];
        c.scope = Some("openid profile email offline_access read:appointments".into());
    })
    .await;
    tv_client(&server, TV).await;
    (db, server, fx)
}

/// Registers a public client allowed only the device grant.
async fn tv_client(server: &TestServer, client_id: &str) {
    registry::create_client(
        &server.store,
        ClientSpec {
            client_id: Some(client_id.into()),
            client_name: Some(format!("Living-room TV ({client_id})")),
            token_endpoint_auth_method: Some("none".into()),
            grant_types: vec![DEVICE_GRANT.into()],
            scope: Some("openid profile read:appointments".into()),
            default_api: Some(API.into()),
            ..Default::default()
        },
    )
    .await
    .expect("device client registered");
}

/// `POST /device_authorization` for the public client `client_id` with `form`.
async fn start_public(server: &TestServer, client_id: &str, form: &[(&str, &str)]) -> Reply {
    let mut body = vec![("client_id", client_id)];
    body.extend_from_slice(form);
    post_form(server, "/device_authorization", None, &body).await
}

/// The device authorization response of a request the server must accept.
#[track_caller]
fn started(reply: &Reply) -> (String, String) {
    assert_eq!(reply.status, 200, "{}", reply.text);
    (reply.str("device_code").to_owned(), reply.str("user_code").to_owned())
}

/// One poll at `/token` by the public client `client_id`.
async fn poll_public(server: &TestServer, client_id: &str, device_code: &str) -> Reply {
    let form = [("grant_type", DEVICE_GRANT), ("device_code", device_code), ("client_id", client_id)];
    post_form(server, "/token", None, &form).await
}

/// One poll at `/token` by a confidential client.
async fn poll_confidential(server: &TestServer, creds: &Creds, device_code: &str) -> Reply {
    post_form(server, "/token", Some(creds), &[("grant_type", DEVICE_GRANT), ("device_code", device_code)]).await
}

/// Asserts an RFC 6749 §5.2 error: status 400 (401 for invalid_client), JSON, no-store.
#[track_caller]
fn assert_error(reply: &Reply, error: &str) {
    let status = if error == "invalid_client" { 401 } else { 400 };
    assert_eq!((reply.status, reply.error()), (status, error), "{}", reply.text);
    assert!(reply.body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{}", reply.text);
}

/// Moves the server's protocol clock by `seconds`.
async fn advance(server: &TestServer, seconds: i64) {
    let change = ClockChange { advance_seconds: Some(seconds), ..Default::default() };
    lanyard::lab::set_clock(&server.store, &change).await.expect("the test clock moves");
}

/// A browser with its own cookie jar (the user's phone).
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap()
}

/// A page's status and HTML.
async fn page(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Opens the device page at `path_and_query` in `browser`.
async fn open(server: &TestServer, browser: &reqwest::Client, path_and_query: &str) -> (u16, String) {
    page(browser.get(server.url(path_and_query)).send().await.unwrap()).await
}

/// Submits the confirmation form on `html` with `decision`.
async fn decide(server: &TestServer, browser: &reqwest::Client, html: &str, decision: &str) -> (u16, String) {
    let form = [
        ("csrf_token", form_field(html, "csrf_token").expect("a csrf_token field")),
        ("user_code", form_field(html, "user_code").expect("a user_code field")),
        ("decision", decision.to_owned()),
    ];
    page(browser.post(server.url("/device")).form(&form).send().await.unwrap()).await
}

/// The user's side under dev-login: `verification_uri_complete` with `login_hint` shows the
/// request (a GET), and its form decides (a POST).
async fn decide_as(server: &TestServer, user_code: &str, username: &str, decision: &str) -> String {
    let browser = browser();
    let (status, html) = open(server, &browser, &format!("/device?user_code={user_code}&login_hint={username}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(user_code), "the page shows the code to compare with the device's: {html}");
    let (status, html) = decide(server, &browser, &html, decision).await;
    assert_eq!(status, 200, "{html}");
    html
}

// Provider metadata with RFC 8628's device_authorization_endpoint, which openidconnect
// leaves to "additional metadata".
#[derive(Clone, Debug, Deserialize, Serialize)]
struct DeviceEndpoint {
    device_authorization_endpoint: DeviceAuthorizationUrl,
}
impl AdditionalProviderMetadata for DeviceEndpoint {}
type DeviceProviderMetadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

// ---------------------------------------------------------------------------------------
// The flow
// ---------------------------------------------------------------------------------------

async fn a_cli_gets_tokens_through_the_device_flow_with_an_rp_library(backend: Backend) {
    let (_db, server, fx) = start(backend, true).await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata = DeviceProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http)
        .await
        .expect("discovery");
    let endpoint = metadata.additional_metadata().device_authorization_endpoint.clone();
    assert_eq!(endpoint.as_str(), server.url("/device_authorization"));
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(fx.client_id.clone()),
        Some(ClientSecret::new(fx.client_secret.clone())),
    )
    .set_device_authorization_url(endpoint);

    // The device asks (openid is added by the library).
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_scope(Scope::new("read:appointments".into()))
        .add_extra_param("resource", API)
        .request_async(&http)
        .await
        .expect("device authorization");
    let user_code = details.user_code().secret().clone();
    let shape = |c: char| "BCDFGHJKLMNPQRSTVWXZ".contains(c);
    assert!(
        user_code.len() == 9 && user_code.chars().enumerate().all(|(i, c)| if i == 4 { c == '-' } else { shape(c) }),
        "XXXX-XXXX from a vowel-free alphabet: {user_code}"
    );
    assert_eq!(details.verification_uri().as_str(), server.url("/device"));
    let complete = details.verification_uri_complete().expect("verification_uri_complete").secret().clone();
    assert_eq!(complete, server.url(&format!("/device?user_code={user_code}")));
    assert_eq!(details.expires_in(), Duration::from_secs(600));
    assert_eq!(details.interval(), Duration::from_secs(5));
    assert!(details.device_code().secret().len() >= 43, "a device code of at least 256 bits");

    // The library polls at once (authorization_pending), then "sleeps": meanwhile the user
    // approves on their phone, and the next poll collects the tokens. The server's clock
    // moves the interval on instead of the test waiting.
    let sleeps = AtomicUsize::new(0);
    let server_ref = &server;
    let code_ref = &user_code;
    let sleep = |interval: Duration| {
        let first = sleeps.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                let html = decide_as(server_ref, code_ref, "alice", "approve").await;
                assert!(html.contains("Device connected"), "{html}");
            }
            advance(server_ref, interval.as_secs() as i64).await;
        }
    };
    let tokens = client
        .exchange_device_access_token(&details)
        .expect("a token endpoint")
        .request_async(&http, sleep, Some(Duration::from_secs(60)))
        .await
        .expect("device access token");
    assert_eq!(sleeps.load(Ordering::SeqCst), 1, "one authorization_pending, then the tokens");

    // The id_token: for the client, no nonce in this flow.
    let id_token = tokens.id_token().expect("an id_token for openid");
    let no_nonce = |nonce: Option<&Nonce>| if nonce.is_none() { Ok(()) } else { Err("unexpected nonce".to_owned()) };
    let claims = id_token.claims(&client.id_token_verifier(), no_nonce).expect("the library accepts the id_token");
    assert_eq!(claims.subject().as_str(), fx.user_id);
    // The access token: RFC 9068, for the API (and userinfo), the same model as the code flow.
    let (header, access) = decode_jwt(tokens.access_token().secret());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(access["aud"], json!([API, server.url("/userinfo")]));
    assert_eq!(access["client_id"], fx.client_id);
    assert_eq!(access["sub"], fx.user_id);
    assert!(access["scope"].as_str().unwrap().split(' ').any(|s| s == "read:appointments"), "{access}");
    let refresh = tokens.refresh_token().expect("a refresh token for offline_access").secret().clone();
    let userinfo = server.http.get(server.url("/userinfo")).bearer_auth(tokens.access_token().secret()).send().await;
    assert_eq!(userinfo.unwrap().status(), 200);

    // The grant is a grant like any other: the refresh token works.
    let creds = Creds::from(&fx);
    let refreshed =
        post_form(&server, "/token", Some(&creds), &[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
            .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
}

async fn discovery_advertises_the_device_authorization_endpoint_and_the_grant(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let doc = server.get_json(path).await;
        assert_eq!(doc["device_authorization_endpoint"], server.url("/device_authorization"), "{path}");
        let grants = doc["grant_types_supported"].as_array().expect("grant_types_supported");
        assert!(grants.contains(&json!(DEVICE_GRANT)), "{path}: {grants:?}");
    }
}

async fn polling_before_the_interval_is_slow_down_on_every_replica_and_the_interval_grows_by_five_seconds(
    backend: Backend,
) {
    let (db, server, _fx) = start(backend, false).await;
    let replica = TestServer::start(&db).await;
    let (device_code, _) = started(&start_public(&server, TV, &[("scope", "openid")]).await);

    assert_error(&poll_public(&server, TV, &device_code).await, "authorization_pending");
    // The other replica knows of that poll: the interval is kept in the database.
    assert_error(&poll_public(&replica, TV, &device_code).await, "slow_down");
    // 5 s, now 10, and with this early poll 15.
    assert_error(&poll_public(&server, TV, &device_code).await, "slow_down");
    advance(&server, 12).await;
    let reply = poll_public(&server, TV, &device_code).await;
    assert_error(&reply, "slow_down");
    assert!(reply.str("error_description").contains("20 seconds"), "the interval is 20 s now: {}", reply.text);
    advance(&server, 20).await;
    assert_error(&poll_public(&server, TV, &device_code).await, "authorization_pending");
    replica.stop().await;
}

async fn a_denied_request_is_access_denied_at_the_token_endpoint(backend: Backend) {
    let (_db, server, _fx) = start(backend, true).await;
    let (device_code, user_code) = started(&start_public(&server, TV, &[("scope", "openid profile")]).await);
    let html = decide_as(&server, &user_code, "alice", "deny").await;
    assert!(html.contains("Access denied"), "{html}");
    assert_error(&poll_public(&server, TV, &device_code).await, "access_denied");
    advance(&server, 5).await;
    assert_error(&poll_public(&server, TV, &device_code).await, "access_denied");
    // The page does not offer a decided code again.
    let (status, html) = open(&server, &browser(), &format!("/device?user_code={user_code}&login_hint=alice")).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("already used"), "{html}");
}

async fn an_expired_device_code_is_expired_token_and_the_page_says_so(backend: Backend) {
    let (_db, server, _fx) = start(backend, true).await;
    let (device_code, user_code) = started(&start_public(&server, TV, &[("scope", "openid")]).await);
    assert_error(&poll_public(&server, TV, &device_code).await, "authorization_pending");
    advance(&server, 601).await;
    assert_error(&poll_public(&server, TV, &device_code).await, "expired_token");
    let (status, html) = open(&server, &browser(), &format!("/device?user_code={user_code}&login_hint=alice")).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("expired"), "{html}");
    assert!(!html.contains("name=\"decision\""), "nothing to approve: {html}");
}

async fn unknown_and_foreign_device_codes_are_invalid_grant_and_leave_the_code_alone(backend: Backend) {
    let (_db, server, fx) = start(backend, true).await;
    tv_client(&server, "other-tv").await;
    assert_error(&poll_public(&server, TV, "no-such-device-code").await, "invalid_grant");
    let (device_code, user_code) = started(&start_public(&server, TV, &[("scope", "openid")]).await);

    // Another client's poll with this code is refused and is not counted as the owner's
    // poll: the owner's first poll right after is authorization_pending, not slow_down.
    assert_error(&poll_public(&server, "other-tv", &device_code).await, "invalid_grant");
    let web = Creds::from(&fx);
    assert_error(&poll_confidential(&server, &web, &device_code).await, "invalid_grant");
    assert_error(&poll_public(&server, TV, &device_code).await, "authorization_pending");

    decide_as(&server, &user_code, "alice", "approve").await;
    let foreign = poll_public(&server, "other-tv", &device_code).await;
    assert_error(&foreign, "invalid_grant");
    assert!(foreign.body.get("access_token").is_none());
    let own = poll_public(&server, TV, &device_code).await;
    assert_eq!(own.status, 200, "the owner still gets its tokens: {}", own.text);
    let (_, claims) = decode_jwt(own.str("access_token"));
    assert_eq!(claims["client_id"], TV);
    assert_eq!(claims["aud"], json!([API, server.url("/userinfo")]), "the client's default API");
}

async fn a_device_code_is_single_use_and_its_replay_revokes_what_it_gave(backend: Backend) {
    let (_db, server, fx) = start(backend, true).await;
    let web = Creds::from(&fx);
    let form = [("scope", "openid offline_access read:appointments"), ("resource", API)];
    let started_reply = post_form(&server, "/device_authorization", Some(&web), &form).await;
    let (device_code, user_code) = started(&started_reply);
    decide_as(&server, &user_code, "alice", "approve").await;

    // Concurrent polls: exactly one wins.
    let (a, b) =
        tokio::join!(poll_confidential(&server, &web, &device_code), poll_confidential(&server, &web, &device_code));
    let (winner, loser) = if a.status == 200 { (a, b) } else { (b, a) };
    assert_eq!(winner.status, 200, "{}", winner.text);
    assert_error(&loser, "invalid_grant");
    let access = winner.str("access_token").to_owned();
    let refresh = winner.str("refresh_token").to_owned();

    let replay = poll_confidential(&server, &web, &device_code).await;
    assert_error(&replay, "invalid_grant");
    assert!(replay.str("error_description").contains("already used"), "{}", replay.text);
    let userinfo = server.http.get(server.url("/userinfo")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(userinfo.status(), 401, "the replay revoked the access token");
    let refreshed =
        post_form(&server, "/token", Some(&web), &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_error(&refreshed, "invalid_grant");
}

async fn device_authorization_refusals_are_rfc_6749_errors(backend: Backend) {
    let (_db, server, fx) = start(backend, false).await;
    let web = Creds::from(&fx);
    let wrong = Creds { id: web.id.clone(), secret: "wrong-secret".into() };
    let reply = post_form(&server, "/device_authorization", Some(&wrong), &[("scope", "openid")]).await;
    assert_error(&reply, "invalid_client");
    assert!(reply.challenge().starts_with("Basic"), "{}", reply.challenge());
    assert_error(&start_public(&server, "nobody", &[("scope", "openid")]).await, "invalid_client");
    // Scopes and resources by /authorize's rules.
    assert_error(&start_public(&server, TV, &[("scope", "openid email")]).await, "invalid_scope");
    assert_error(&start_public(&server, TV, &[("scope", "openid no-such-scope")]).await, "invalid_scope");
    let unknown_api = [("scope", "openid"), ("resource", "https://api.example.test/unknown")];
    assert_error(&start_public(&server, TV, &unknown_api).await, "invalid_target");
    assert_error(&start_public(&server, TV, &[("scope", "openid"), ("scope", "profile")]).await, "invalid_request");
    let form = server.http.post(server.url("/device_authorization")).json(&json!({"client_id": TV})).send().await;
    assert_error(&Reply::read(form.unwrap()).await, "invalid_request");
    // At /token: the device_code is required.
    let reply = post_form(&server, "/token", None, &[("grant_type", DEVICE_GRANT), ("client_id", TV)]).await;
    assert_error(&reply, "invalid_request");
}

async fn a_client_not_allowed_the_device_grant_is_unauthorized_client_at_both_endpoints(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let web = Creds::from(&fx);
    tv_client(&server, TV).await;
    let reply = post_form(&server, "/device_authorization", Some(&web), &[("scope", "openid")]).await;
    assert_error(&reply, "unauthorized_client");
    // A device code of another client, presented by one not allowed the grant.
    let (device_code, _) = started(&start_public(&server, TV, &[("scope", "openid")]).await);
    assert_error(&poll_confidential(&server, &web, &device_code).await, "unauthorized_client");
    assert_error(&poll_public(&server, TV, &device_code).await, "authorization_pending");
}

// ---------------------------------------------------------------------------------------
// The /device page
// ---------------------------------------------------------------------------------------

async fn the_device_page_forgives_case_dashes_and_spaces_in_the_user_code(backend: Backend) {
    let (_db, server, _fx) = start(backend, true).await;
    let (device_code, user_code) =
        started(&start_public(&server, TV, &[("scope", "openid profile read:appointments")]).await);
    let browser = browser();
    // Signed in by dev-login; no code yet: the entry form.
    let (status, html) = open(&server, &browser, "/device?login_hint=alice").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("name=\"user_code\"") && html.contains("alice"), "{html}");

    for typed in ["abc", "BCDF-GHJKL"] {
        let (status, html) = open(&server, &browser, &format!("/device?user_code={typed}")).await;
        assert_eq!(status, 400, "{typed}: {html}");
        assert!(html.contains("8 letters"), "{typed}: {html}");
    }
    // What a person types: lower case, no dash, spaces.
    let typed = user_code.to_lowercase().replace('-', " ");
    let url = url::Url::parse_with_params(&server.url("/device"), &[("user_code", format!(" {typed} "))]).unwrap();
    let (status, html) = page(browser.get(url).send().await.unwrap()).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&user_code), "the code, as the device shows it: {html}");
    assert!(html.contains("Living-room TV (tv)"), "the client's name: {html}");
    assert!(html.contains("read:appointments") && html.contains("Appointments"), "scopes and API: {html}");
    assert_eq!(form_field(&html, "user_code").as_deref(), Some(user_code.as_str()));

    // The form is CSRF protected.
    let forged =
        [("csrf_token", "forged-token-forged-token-forged-token"), ("user_code", &user_code), ("decision", "approve")];
    let (status, _) = page(browser.post(server.url("/device")).form(&forged).send().await.unwrap()).await;
    assert_eq!(status, 403);
    assert_error(&poll_public(&server, TV, &device_code).await, "authorization_pending");
    let (status, html) = decide(&server, &browser, &html, "approve").await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(poll_public(&server, TV, &device_code).await.status, 200);
}

async fn the_device_page_signs_a_user_in_first_and_comes_back_to_the_code(backend: Backend) {
    let (_db, server, _fx) = start(backend, false).await;
    let (device_code, user_code) = started(&start_public(&server, TV, &[("scope", "openid profile")]).await);
    let browser = browser();
    // Without dev-login a login_hint signs nobody in.
    let (status, login) = open(&server, &browser, &format!("/device?user_code={user_code}&login_hint=alice")).await;
    assert_eq!(status, 200, "{login}");
    assert!(login.contains("name=\"password\""), "the login page: {login}");
    assert!(!login.contains("name=\"decision\""), "nothing to approve before signing in: {login}");
    let return_to = form_field(&login, "return_to").expect("a return_to field");
    assert_eq!(return_to, format!("/device?user_code={user_code}"));
    let form = [
        ("csrf_token", form_field(&login, "csrf_token").expect("csrf_token")),
        ("return_to", return_to),
        ("username", "alice".to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    let response = browser.post(server.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/device?user_code={user_code}"), "back to the code");
    let (status, html) = open(&server, &browser, &location).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("name=\"decision\""), "{html}");
    let (status, done) = decide(&server, &browser, &html, "approve").await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("Device connected"), "{done}");

    let tokens = poll_public(&server, TV, &device_code).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    let (_, id_token) = decode_jwt(tokens.str("id_token"));
    assert_eq!(id_token["amr"], json!(["pwd"]), "a password sign-in");
    assert!(id_token.get("nonce").is_none());
    assert!(tokens.body.get("refresh_token").is_none(), "no offline_access, no refresh grant");
    // The approval is remembered as a consent is.
    let user_id = server.store.user_by_username("alice").await.unwrap().expect("alice").id;
    let (scope, _, _) = server.store.consent(&user_id, TV).await.unwrap().expect("a consent");
    assert_eq!(scope, "openid profile");
}

async fn wrong_user_codes_are_throttled_per_account_in_the_database(backend: Backend) {
    let (_db, server, _fx) = start(backend, true).await;
    let (device_code, user_code) = started(&start_public(&server, TV, &[("scope", "openid")]).await);
    let browser = browser();
    let (status, _) = open(&server, &browser, "/device?login_hint=alice").await;
    assert_eq!(status, 200);
    let max_failures = server.config.login_max_failures;
    // Well-formed codes that name no request.
    let wrong = "BCDFGHJKLMN".chars().map(|c| format!("{c}{c}{c}{c}-{c}{c}{c}{c}")).filter(|w| *w != user_code);
    for (n, wrong) in wrong.take(max_failures as usize).enumerate() {
        let (status, html) = open(&server, &browser, &format!("/device?user_code={wrong}")).await;
        assert_eq!(status, 400, "attempt {n}: {html}");
        assert!(html.contains("not valid"), "{html}");
    }
    // Now even the right code waits: guessing is bounded.
    let response = browser.get(server.url(&format!("/device?user_code={user_code}"))).send().await.unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: i64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= server.config.login_lockout, "{retry_after}");
    assert!(response.text().await.unwrap().contains("Too many wrong codes"));
    assert_error(&poll_public(&server, TV, &device_code).await, "authorization_pending");
    // Another account (another phone, same IP) still may, within the IP's larger limit.
    let bob = signed_in_browser(&server, "bob").await;
    let (status, html) = open(&server, &bob, &format!("/device?user_code={user_code}")).await;
    assert_eq!(status, 200, "{html}");
}

/// A browser signed in as a new user `username` (dev-login).
async fn signed_in_browser(server: &TestServer, username: &str) -> reqwest::Client {
    flow::add_user(server, username).await;
    let browser = browser();
    let (status, html) = open(server, &browser, &format!("/device?login_hint={username}")).await;
    assert_eq!(status, 200, "{html}");
    browser
}

// ---------------------------------------------------------------------------------------
// Giving a client the grant
// ---------------------------------------------------------------------------------------

async fn the_device_grant_is_given_by_dynamic_registration_and_the_admin_api(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| {
        s.registration = "token".into();
        s.registration_token = Some("initial-access-token-for-device-tests".into());
    })
    .await;
    server.store.insert_admin_token("ci", &sha256_hex(ADMIN_TOKEN)).await.expect("admin token stored");

    // RFC 7591: a public device client, without redirect URIs.
    let registered = server
        .http
        .post(server.url("/register"))
        .bearer_auth("initial-access-token-for-device-tests")
        .json(&json!({
            "client_name": "CLI",
            "token_endpoint_auth_method": "none",
            "grant_types": [DEVICE_GRANT],
            "scope": "openid",
        }))
        .send()
        .await
        .unwrap();
    let registered = Reply::read(registered).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    assert_eq!(registered.body["grant_types"], json!([DEVICE_GRANT]));
    let cli = registered.str("client_id").to_owned();
    started(&start_public(&server, &cli, &[("scope", "openid")]).await);
    // A name that is not the RFC's is refused, naming the RFC's.
    let refused = server
        .http
        .post(server.url("/register"))
        .bearer_auth("initial-access-token-for-device-tests")
        .json(&json!({"token_endpoint_auth_method": "none", "grant_types": ["device_code"]}))
        .send()
        .await
        .unwrap();
    let refused = Reply::read(refused).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(refused.text.contains(DEVICE_GRANT), "{}", refused.text);

    // The admin API: PATCH adds the grant to an existing client.
    let admin = |method: reqwest::Method, path: &str| {
        server.http.request(method, server.url(&format!("/admin/api{path}"))).bearer_auth(ADMIN_TOKEN)
    };
    let created = admin(reqwest::Method::POST, "/clients")
        .json(
            &json!({"client_id": "kiosk", "token_endpoint_auth_method": "none", "redirect_uris": [flow::REDIRECT_URI]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_error(&start_public(&server, "kiosk", &[("scope", "openid")]).await, "unauthorized_client");
    let patched = admin(reqwest::Method::PATCH, "/clients/kiosk")
        .json(&json!({"grant_types": ["authorization_code", DEVICE_GRANT]}))
        .send()
        .await
        .unwrap();
    let patched = Reply::read(patched).await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["grant_types"], json!(["authorization_code", DEVICE_GRANT]));
    started(&start_public(&server, "kiosk", &[("scope", "openid")]).await);
}
