//! Pairwise subject identifiers (OIDC Core §8.1) and `sector_identifier_uri` (OIDC
//! Registration §2, §5): the Dynamic OP plan's `OIDCCRegistrationSectorUri` and
//! `OIDCCRegistrationSectorBad` (each test named after its module sends what the module
//! sends and checks what its conditions check), then the pairwise `sub` wherever a client
//! learns or names the user: id_token, userinfo, access token, introspection, back-channel
//! logout token, and `id_token_hint` at /authorize and /logout.

use std::collections::HashMap;
use std::time::Duration;

use lanyard::registry::client::ClientSpec;
use lanyard::registry::{self, FetchPolicy};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::both_backends;
use crate::flow::{self, API, Browser, Fixture, Outcome, REDIRECT_URI};
use crate::helpers::{Backend, TestDb, TestServer};
use crate::token_lifecycle::{Reply, member, sign_in};

both_backends!(
    oidcc_registration_sector_uri,
    oidcc_registration_sector_bad,
    a_sector_document_that_cannot_be_fetched_or_read_is_invalid_client_metadata_saying_why,
    pairwise_subs_differ_between_sectors_and_are_equal_within_one,
    pairwise_subs_are_stable_across_sign_ins_and_restarts,
    userinfo_introspection_and_the_access_token_carry_the_pairwise_sub,
    the_backchannel_logout_token_carries_the_pairwise_sub,
    an_id_token_hint_with_a_pairwise_sub_works_at_authorize_and_logout,
    a_pairwise_client_whose_redirect_uris_span_hosts_needs_a_sector_identifier_uri,
    the_sector_identifier_uri_must_be_https_outside_dev_mode,
    changing_the_redirect_uris_fetches_the_sector_document_again,
    the_admin_api_applies_the_same_rules_to_pairwise_clients,
    the_salt_is_encrypted_at_rest_when_a_key_encryption_key_is_set,
);

/// The initial access token of the registration tests.
const INITIAL: &str = "initial-access-token-for-the-pairwise-tests";

/// A server with token-mode registration; `dev`: dev mode (loopback fetches allowed, as
/// the suite's own sector document is on the test's loopback listener).
async fn server(backend: Backend, dev: bool) -> (TestDb, TestServer) {
    let db = TestDb::create(backend).await;
    let server = start(&db, dev).await;
    (db, server)
}

async fn start(db: &TestDb, dev: bool) -> TestServer {
    TestServer::start_with(db, |s| {
        s.registration = "token".into();
        s.registration_token = Some(INITIAL.into());
        s.dev_login = dev;
    })
    .await
}

/// A loopback HTTP listener answering every request with `status` and `body` as JSON
/// (the suite's `…/redirect_uris.json`). Returns the document's URL on `host`.
async fn serve_document(host: &str, status: u16, body: String) -> String {
    serve(host, status, body, usize::MAX).await
}

/// As [`serve_document`], for `requests` requests only; then the port is closed.
async fn serve(host: &str, status: u16, body: String, requests: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{host}:{}/redirect_uris.json", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        for _ in 0..requests {
            let Ok((mut socket, _)) = listener.accept().await else { break };
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    url
}

/// A sector document listing `uris`.
async fn sector_listing(host: &str, uris: &[&str]) -> String {
    serve_document(host, 200, json!(uris).to_string()).await
}

/// What `OIDCCCreateDynamicClientRegistrationRequest` sends for the code flow, plus what
/// `AddSubjectTypePairwiseToDynamicRegistrationRequest` and
/// `AddSectorIdentifierUriToDynamicRegistrationRequest` add.
fn suite_request(sector_identifier_uri: &str) -> Value {
    let pair = josekit::jws::RS256.generate_key_pair(2048).unwrap();
    let mut jwk = pair.to_jwk_public_key();
    jwk.set_key_id("suite-key");
    json!({
        "client_name": "oidcc-registration-sector test",
        "grant_types": ["authorization_code"],
        "jwks": { "keys": [Value::Object(jwk.into())] },
        "token_endpoint_auth_method": "client_secret_basic",
        "response_types": ["code"],
        "redirect_uris": [REDIRECT_URI],
        "contacts": ["certification@oidf.example.test"],
        "subject_type": "pairwise",
        "sector_identifier_uri": sector_identifier_uri,
    })
}

/// POST /register with the initial access token.
async fn register(server: &TestServer, body: &Value) -> Reply {
    Reply::read(server.http.post(server.url("/register")).bearer_auth(INITIAL).json(body).send().await.unwrap()).await
}

/// `EnsureContentTypeJson`, `EnsureHttpStatusCodeIs400` and
/// `CheckErrorFromDynamicRegistrationEndpointIsInvalidClientMetadata`; returns the
/// error_description.
#[track_caller]
fn assert_invalid_client_metadata(reply: &Reply) -> String {
    assert!(reply.header("content-type").unwrap_or("").starts_with("application/json"), "{:?}", reply.headers);
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body["error"], "invalid_client_metadata", "{}", reply.text);
    reply.body["error_description"].as_str().expect("an error_description").to_owned()
}

// ---------------------------------------------------------------------------------------
// The Dynamic OP plan's modules
// ---------------------------------------------------------------------------------------

async fn oidcc_registration_sector_uri(backend: Backend) {
    let (_db, server) = server(backend, true).await;
    // onConfigure: the module is skipped unless discovery lists pairwise.
    let discovery = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["subject_types_supported"], json!(["public", "pairwise"]), "{discovery}");
    // CreateSectorRedirectUris: the document lists the test's redirect URI.
    let sector = sector_listing("127.0.0.1", &[REDIRECT_URI]).await;

    let reply = register(&server, &suite_request(&sector)).await;
    // CallDynamicRegistrationEndpointAndVerifySuccessfulResponse
    assert!(reply.header("content-type").unwrap_or("").starts_with("application/json"));
    assert_eq!(reply.status, 201, "EnsureHttpStatusCodeIs201: {}", reply.text);
    assert!(reply.body.get("error").is_none(), "CheckNoErrorFromDynamicRegistrationEndpoint: {}", reply.text);
    assert!(reply.body["client_id"].as_str().is_some_and(|c| !c.is_empty()), "{}", reply.text);
    assert!(reply.body["client_secret"].as_str().is_some_and(|s| !s.is_empty()), "a client_secret_basic client");
    assert!(reply.body["registration_access_token"].is_string() && reply.body["registration_client_uri"].is_string());
    assert_eq!(reply.body["subject_type"], "pairwise", "{}", reply.text);
    assert_eq!(reply.body["sector_identifier_uri"], json!(sector), "{}", reply.text);
    // The registration is kept as it was answered.
    let client_id = reply.body["client_id"].as_str().unwrap();
    let stored = server.store.client(client_id).await.unwrap().expect("stored");
    assert_eq!(stored.subject_type.as_str(), "pairwise");
    assert_eq!(stored.sector_identifier(), "127.0.0.1");
}

async fn oidcc_registration_sector_bad(backend: Backend) {
    let (_db, server) = server(backend, true).await;
    // CreateInvalidSectorRedirectUris: the document lists someone else's URI only.
    let sector = sector_listing("127.0.0.1", &["https://example.com/op"]).await;
    let reply = register(&server, &suite_request(&sector)).await;
    let description = assert_invalid_client_metadata(&reply);
    assert!(description.contains("sector_identifier_uri"), "{description}");
    assert!(description.contains(REDIRECT_URI), "it names the missing redirect URI: {description}");
    assert!(server.store.list_clients().await.unwrap().is_empty(), "nothing registered");
}

async fn a_sector_document_that_cannot_be_fetched_or_read_is_invalid_client_metadata_saying_why(backend: Backend) {
    let (_db, server) = server(backend, true).await;
    // A port nobody listens on (bound, then closed).
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/redirect_uris.json", listener.local_addr().unwrap().port())
    };
    let not_found = serve_document("127.0.0.1", 404, "{}".into()).await;
    let an_object = serve_document("127.0.0.1", 200, json!({ "redirect_uris": [REDIRECT_URI] }).to_string()).await;
    let too_large = serve_document("127.0.0.1", 200, json!(vec![REDIRECT_URI; 2000]).to_string()).await;
    for (url, why) in [
        (closed, "fetching it failed"),
        (not_found, "HTTP 404"),
        (an_object, "not a JSON array"),
        (too_large, "larger than"),
    ] {
        let description = assert_invalid_client_metadata(&register(&server, &suite_request(&url)).await);
        assert!(description.contains("sector_identifier_uri") && description.contains(why), "{why}: {description}");
    }
    assert!(server.store.list_clients().await.unwrap().is_empty(), "nothing registered");
}

// ---------------------------------------------------------------------------------------
// The pairwise `sub`
// ---------------------------------------------------------------------------------------

/// A confidential client registered as `spec` (with the dev-mode fetch policy, as the
/// sector documents are on loopback); its fixture for the flow helpers.
async fn client(server: &TestServer, user_id: &str, spec: ClientSpec) -> Fixture {
    let new = registry::create_client_with(&server.store, spec, FetchPolicy::for_dev_mode(true))
        .await
        .expect("client registered");
    Fixture { client_id: new.client.client_id, client_secret: new.secret.unwrap_or_default(), user_id: user_id.into() }
}

fn pairwise(client_id: &str, redirect_uris: &[&str], sector: Option<&str>) -> ClientSpec {
    ClientSpec {
        client_id: Some(client_id.into()),
        redirect_uris: redirect_uris.iter().map(|u| (*u).to_owned()).collect(),
        scope: Some("openid profile email offline_access read:appointments".into()),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        subject_type: Some("pairwise".into()),
        sector_identifier_uri: sector.map(str::to_owned),
        ..Default::default()
    }
}

/// The `sub` of the id_token alice gets from signing in to `fx`'s client in `browser`.
async fn id_token_sub(server: &TestServer, browser: &Browser<'_>, fx: &Fixture) -> String {
    let tokens = sign_in(server, browser, fx, &[]).await;
    let (_, claims) = flow::decode_jwt(member(&tokens, "id_token"));
    claims["sub"].as_str().expect("a sub").to_owned()
}

async fn pairwise_subs_differ_between_sectors_and_are_equal_within_one(backend: Backend) {
    let (_db, server) = server(backend, true).await;
    // The fixture's client is public: it sees alice's own id.
    let public = flow::fixture(&server).await;
    // Sector 127.0.0.1, from the redirect URI's host.
    let a = client(&server, &public.user_id, pairwise("a", &[REDIRECT_URI], None)).await;
    // The same host, another path and port: the same sector.
    let a2 = client(&server, &public.user_id, pairwise("a2", &[REDIRECT_URI, "http://127.0.0.1/other"], None)).await;
    // Sector "localhost", named by a sector_identifier_uri …
    let listing = sector_listing("localhost", &[REDIRECT_URI, "https://rp.example.test/cb"]).await;
    let b = client(&server, &public.user_id, pairwise("b", &[REDIRECT_URI], Some(&listing))).await;
    // … which a client whose redirect URIs span two hosts may share.
    let b2 =
        client(&server, &public.user_id, pairwise("b2", &[REDIRECT_URI, "https://rp.example.test/cb"], Some(&listing)))
            .await;

    let browser = Browser::new(&server);
    let mut subs = HashMap::new();
    for fx in [&public, &a, &a2, &b, &b2] {
        subs.insert(fx.client_id.clone(), id_token_sub(&server, &browser, fx).await);
    }
    assert_eq!(subs[&public.client_id], public.user_id, "a public client sees the user's id");
    for pairwise in ["a", "a2", "b", "b2"] {
        assert_ne!(subs[pairwise], public.user_id, "{pairwise}: a pairwise client does not");
        assert_eq!(subs[pairwise].len(), 43, "{pairwise}: base64url of a SHA-256");
    }
    assert_eq!(subs["a"], subs["a2"], "one sector (the redirect URIs' host), one sub");
    assert_eq!(subs["b"], subs["b2"], "one sector (the sector_identifier_uri's host), one sub");
    assert_ne!(subs["a"], subs["b"], "two sectors, two subs");

    // Another user has other subs in the same sector.
    let bob = flow::add_user(&server, "bob").await;
    let bob_browser = Browser::new(&server);
    let outcome = bob_browser.sign_in(&flow::authorize_url(&server, "a", &[]), "bob").await;
    let (status, tokens) = flow::exchange(&server, &a, &outcome.params()["code"], flow::VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, claims) = flow::decode_jwt(member(&tokens, "id_token"));
    assert_ne!(claims["sub"], json!(subs["a"]), "per user");
    assert_ne!(claims["sub"], json!(bob), "still pairwise");
}

async fn pairwise_subs_are_stable_across_sign_ins_and_restarts(backend: Backend) {
    let db = TestDb::create(backend).await;
    let first = start(&db, true).await;
    let user = flow::fixture(&first).await.user_id;
    let fx = client(&first, &user, pairwise("a", &[REDIRECT_URI], None)).await;
    let sub = {
        let browser = Browser::new(&first);
        let sub = id_token_sub(&first, &browser, &fx).await;
        // A second sign-in, in a new session.
        let again = Browser::new(&first);
        assert_eq!(id_token_sub(&first, &again, &fx).await, sub, "the same sub at every sign-in");
        sub
    };
    first.stop().await;

    // A restart (and a second replica started at the same moment) keep the salt.
    let (second, third) = tokio::join!(start(&db, true), start(&db, true));
    for server in [&second, &third] {
        let browser = Browser::new(server);
        assert_eq!(id_token_sub(server, &browser, &fx).await, sub, "the same sub after a restart, on every replica");
    }
    // Replicas generating a server secret at the same moment all end up with the winner's.
    let store = &second.store;
    let (one, other) =
        tokio::join!(store.server_secret_or_insert("race", "one"), store.server_secret_or_insert("race", "other"));
    assert_eq!(one.unwrap(), other.unwrap(), "one value wins");
}

async fn the_salt_is_encrypted_at_rest_when_a_key_encryption_key_is_set(backend: Backend) {
    let db = TestDb::create(backend).await;
    let kek = "cd".repeat(32);
    let first = TestServer::start_with(&db, |s| s.key_encryption_key = Some(kek.clone())).await;
    let user = flow::fixture(&first).await.user_id;
    let fx = client(&first, &user, pairwise("a", &[REDIRECT_URI], None)).await;
    let sub = id_token_sub(&first, &Browser::new(&first), &fx).await;
    // Stored sealed (the candidate offered here loses: the salt exists).
    let stored = first.store.server_secret_or_insert("pairwise_salt", "not-this").await.unwrap();
    assert!(stored.starts_with("v1:"), "the salt is not stored in the clear: {stored}");
    first.stop().await;

    let again = TestServer::start_with(&db, |s| s.key_encryption_key = Some(kek.clone())).await;
    assert_eq!(id_token_sub(&again, &Browser::new(&again), &fx).await, sub, "opened with the same key");
}

/// An API whose introspection client is `rs`, for the access token tests.
async fn api_introspected_by_rs(server: &TestServer) -> Fixture {
    let rs = registry::create_client(
        &server.store,
        ClientSpec {
            client_id: Some("rs".into()),
            grant_types: vec!["client_credentials".into()],
            scope: Some("read:appointments".into()),
            ..Default::default()
        },
    )
    .await
    .expect("the API's introspection client");
    flow::set_api_introspector(server, "rs").await;
    Fixture { client_id: rs.client.client_id, client_secret: rs.secret.unwrap_or_default(), user_id: String::new() }
}

async fn introspect(server: &TestServer, caller: &Fixture, token: &str) -> Value {
    let response = server
        .http
        .post(server.url("/introspect"))
        .basic_auth(&caller.client_id, Some(&caller.client_secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The access token carries the client's view of the user too: it reaches the client,
/// which could read a public id out of it and defeat the pairwise sub (Keycloak's pairwise
/// mapper does the same). Userinfo still finds the user, through the token's grant.
async fn userinfo_introspection_and_the_access_token_carry_the_pairwise_sub(backend: Backend) {
    let (_db, server) = server(backend, true).await;
    let user = flow::fixture(&server).await.user_id;
    let fx = client(&server, &user, pairwise("a", &[REDIRECT_URI], None)).await;
    let rs = api_introspected_by_rs(&server).await;

    // A real relying party library runs the flow and checks userinfo's sub against the
    // id_token's (OIDC Core §5.3.2: they must be equal).
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http).await.unwrap();
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(fx.client_id.clone()),
        Some(ClientSecret::new(fx.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, nonce) = rp
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_scope(Scope::new("read:appointments".into()))
        .add_extra_param("resource", API)
        .set_pkce_challenge(challenge)
        .url();
    let browser = Browser::new(&server);
    let outcome = browser.sign_in(auth_url.as_str(), "alice").await;
    let tokens = rp
        .exchange_code(AuthorizationCode::new(outcome.params()["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an id_token");
    let claims = id_token.claims(&rp.id_token_verifier(), &nonce).expect("the RP library accepts the id_token");
    let sub = claims.subject().clone();
    assert_ne!(sub.as_str(), user, "pairwise");
    let userinfo: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().clone(), Some(sub.clone()))
        .unwrap()
        .request_async(&http)
        .await
        .expect("the RP library accepts userinfo: its sub is the id_token's");
    assert_eq!(userinfo.subject(), &sub);
    assert_eq!(userinfo.email().map(|e| e.as_str()), Some("alice@example.test"), "the user was found");

    // The access token's sub is the pairwise one …
    let (_, at) = flow::decode_jwt(tokens.access_token().secret());
    assert_eq!(at["sub"], json!(sub.as_str()), "{at}");
    assert_eq!(at["aud"], json!([API, server.url("/userinfo")]), "{at}");
    // … and so is what introspection says about it, and about the refresh token.
    let answer = introspect(&server, &rs, tokens.access_token().secret()).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], json!(sub.as_str()), "{answer}");
    let refresh = tokens.refresh_token().expect("a refresh token (offline_access)");
    let answer = introspect(&server, &fx, refresh.secret()).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], json!(sub.as_str()), "{answer}");

    // A refreshed access token still finds the user at userinfo, with the same sub.
    let refreshed = server
        .http
        .post(server.url("/token"))
        .basic_auth(&fx.client_id, Some(&fx.client_secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh.secret().as_str())])
        .send()
        .await
        .unwrap();
    let refreshed: Value = refreshed.json().await.unwrap();
    let access = member(&refreshed, "access_token");
    let (_, id) = flow::decode_jwt(member(&refreshed, "id_token"));
    assert_eq!(id["sub"], json!(sub.as_str()), "the refreshed id_token");
    let response = server.http.get(server.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["sub"], json!(sub.as_str()), "{info}");
    assert_eq!(info["email"], "alice@example.test", "{info}");
}

/// A loopback listener playing the RP's back-channel logout endpoint: answers 200 and
/// hands each request body to the test.
async fn backchannel_endpoint() -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/backchannel_logout", listener.local_addr().unwrap().port());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.read(&mut buf).await
                && n > 0
            {
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).to_string();
                let Some(end) = text.find("\r\n\r\n") else { continue };
                let length = text[..end]
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if raw.len() >= end + 4 + length {
                    let _ = tx.send(String::from_utf8_lossy(&raw[end + 4..end + 4 + length]).to_string());
                    break;
                }
            }
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
        }
    });
    (url, rx)
}

async fn the_backchannel_logout_token_carries_the_pairwise_sub(backend: Backend) {
    let (_db, server) = server(backend, true).await;
    let user = flow::fixture(&server).await.user_id;
    let (endpoint, mut received) = backchannel_endpoint().await;
    let mut spec = pairwise("a", &[REDIRECT_URI], None);
    spec.backchannel_logout_uri = Some(endpoint);
    let fx = client(&server, &user, spec).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &fx, &[]).await;
    let (_, id_token) = flow::decode_jwt(member(&tokens, "id_token"));
    assert_ne!(id_token["sub"], json!(user));

    let mut url = url::Url::parse(&server.url("/logout")).unwrap();
    url.query_pairs_mut().append_pair("id_token_hint", member(&tokens, "id_token"));
    let reply = browser.http.get(url.as_str()).send().await.unwrap();
    assert!(reply.status().is_success() || reply.status().is_redirection(), "{}", reply.status());

    let body = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the back-channel logout endpoint is called")
        .expect("a request");
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let (_, claims) = flow::decode_jwt(&form["logout_token"]);
    // CheckIdTokenSubMatchesLogoutToken: the sub the client knows the user by.
    assert_eq!(claims["sub"], id_token["sub"], "{claims}");
    assert_eq!(claims["sid"], id_token["sid"], "{claims}");
}

async fn an_id_token_hint_with_a_pairwise_sub_works_at_authorize_and_logout(backend: Backend) {
    let (_db, server) = server(backend, true).await;
    let user = flow::fixture(&server).await.user_id;
    let post_logout = "http://127.0.0.1:9999/post_logout_redirect";
    let mut spec = pairwise("a", &[REDIRECT_URI], None);
    spec.post_logout_redirect_uris = vec![post_logout.into()];
    let fx = client(&server, &user, spec).await;
    let browser = Browser::new(&server);
    let first = sign_in(&server, &browser, &fx, &[]).await;
    let hint = member(&first, "id_token");
    let (_, first_claims) = flow::decode_jwt(hint);
    assert_ne!(first_claims["sub"], json!(user), "pairwise");

    // /authorize: the hint names the signed-in user, so prompt=none issues a code (a public
    // id compared with the pairwise sub would say "another user": login_required).
    let url = flow::authorize_url(&server, &fx.client_id, &[("prompt", "none"), ("id_token_hint", hint)]);
    let params = browser.open(&url).await.params().clone();
    assert!(params.contains_key("code"), "prompt=none with the hint: {params:?}");

    // A new sign-in (prompt=login): a new session, not the one the hint names.
    let again = sign_in(&server, &browser, &fx, &[("prompt", "login")]).await;
    let (_, again_claims) = flow::decode_jwt(member(&again, "id_token"));
    assert_eq!(again_claims["sub"], first_claims["sub"]);
    assert_ne!(again_claims["sid"], first_claims["sid"], "a new session");

    // /logout with the first id_token: it ends the session it names and, as the hint's
    // pairwise sub is the current user's, the current session too.
    let mut url = url::Url::parse(&server.url("/logout")).unwrap();
    url.query_pairs_mut().append_pair("id_token_hint", hint).append_pair("post_logout_redirect_uri", post_logout);
    let reply = Reply::read(browser.http.get(url.as_str()).send().await.unwrap()).await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    assert!(reply.header("location").unwrap_or("").starts_with(post_logout), "{:?}", reply.header("location"));
    // Both sessions ended: what was issued in them is revoked (the current one's too, which
    // only the pairwise comparison can tell belongs to the hint's user).
    for (which, tokens) in [("the hinted session", &first), ("the current session", &again)] {
        let response =
            server.http.get(server.url("/userinfo")).bearer_auth(member(tokens, "access_token")).send().await.unwrap();
        assert_eq!(response.status(), 401, "{which} ended");
    }
    match browser.open(&flow::authorize_url(&server, &fx.client_id, &[("prompt", "none")])).await {
        Outcome::Redirect { params, .. } => {
            assert_eq!(params.get("error").map(String::as_str), Some("login_required"), "{params:?}")
        }
        page => panic!("a redirect, got {}", page.html()),
    }
}

async fn a_pairwise_client_whose_redirect_uris_span_hosts_needs_a_sector_identifier_uri(backend: Backend) {
    let (_db, server) = server(backend, true).await;
    let mut body = json!({
        "client_name": "two hosts",
        "redirect_uris": [REDIRECT_URI, "https://rp.example.test/cb"],
        "subject_type": "pairwise",
    });
    let description = assert_invalid_client_metadata(&register(&server, &body).await);
    assert!(
        description.contains("sector_identifier_uri") && description.contains("rp.example.test"),
        "it says what is missing and why: {description}"
    );
    // A public client may span hosts; an unknown subject type is refused.
    body["subject_type"] = json!("public");
    let reply = register(&server, &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["subject_type"], "public");
    body["subject_type"] = json!("ephemeral");
    let description = assert_invalid_client_metadata(&register(&server, &body).await);
    assert!(description.contains("subject_type"), "{description}");
    // Without subject_type, a client is public (OIDC Registration §2's default).
    body.as_object_mut().unwrap().remove("subject_type");
    let reply = register(&server, &body).await;
    assert_eq!(reply.body["subject_type"], "public", "{}", reply.text);
}

async fn the_sector_identifier_uri_must_be_https_outside_dev_mode(backend: Backend) {
    let (_db, server) = server(backend, false).await;
    let listing = sector_listing("127.0.0.1", &[REDIRECT_URI]).await;
    // http on loopback: only dev mode fetches it.
    let description = assert_invalid_client_metadata(&register(&server, &suite_request(&listing)).await);
    assert!(description.contains("sector_identifier_uri") && description.contains("https"), "{description}");
    // http elsewhere: never.
    let description =
        assert_invalid_client_metadata(&register(&server, &suite_request("http://rp.example.test/uris.json")).await);
    assert!(description.contains("sector_identifier_uri") && description.contains("https"), "{description}");
    // The same document, in dev mode, is fine.
    let (_dev_db, dev) = self::server(backend, true).await;
    assert_eq!(register(&dev, &suite_request(&listing)).await.status, 201);
}

async fn changing_the_redirect_uris_fetches_the_sector_document_again(backend: Backend) {
    let (_db, server) = server(backend, true).await;
    let user = flow::fixture(&server).await.user_id;
    let policy = FetchPolicy::for_dev_mode(true);
    // Answers the registration's fetch, then is gone: a later fetch fails.
    let once = serve("127.0.0.1", 200, json!([REDIRECT_URI]).to_string(), 1).await;
    let fx = client(&server, &user, pairwise("a", &[REDIRECT_URI], Some(&once))).await;
    let mut client = server.store.client(&fx.client_id).await.unwrap().unwrap();
    // Unchanged redirect URIs and sector: saved without fetching.
    client.name = "Renamed".into();
    registry::update_client_with(&server.store, &client, policy).await.expect("saved without a fetch");
    // A new redirect URI: fetched again (and now unreachable), so refused.
    client.redirect_uris.push(lanyard::oauth::redirect_uri::RedirectUri::parse("http://127.0.0.1/new").unwrap());
    let error = registry::update_client_with(&server.store, &client, policy).await.expect_err("fetched again");
    assert!(error.to_string().contains("sector_identifier_uri"), "{error}");
    // And a document that does not list it: refused, naming it.
    client.sector_identifier_uri = Some(url::Url::parse(&sector_listing("127.0.0.1", &[REDIRECT_URI]).await).unwrap());
    let error = registry::update_client_with(&server.store, &client, policy).await.expect_err("not listed");
    assert!(error.to_string().contains("http://127.0.0.1/new"), "{error}");
    let stored = server.store.client(&fx.client_id).await.unwrap().unwrap();
    assert_eq!((stored.name.as_str(), stored.redirect_uris.len()), ("Renamed", 1), "only the rename was saved");
}

async fn the_admin_api_applies_the_same_rules_to_pairwise_clients(backend: Backend) {
    let (_db, server) = server(backend, true).await;
    let token = "admin-api-token-for-the-pairwise-tests-0123456789";
    server.store.insert_admin_token("ci", &lanyard::crypto::sha256_hex(token)).await.unwrap();
    let call = |method: reqwest::Method, path: &str, body: &Value| {
        server.http.request(method, server.url(&format!("/admin/api{path}"))).bearer_auth(token).json(body).send()
    };
    let two_hosts = [REDIRECT_URI, "https://rp.example.test/cb"];
    let mut body = json!({ "client_id": "web", "redirect_uris": two_hosts, "subject_type": "pairwise" });

    let reply = Reply::read(call(reqwest::Method::POST, "/clients", &body).await.unwrap()).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.body["errors"][0]["field"], "sector_identifier_uri", "{}", reply.text);

    body["sector_identifier_uri"] = json!(sector_listing("localhost", &two_hosts).await);
    let reply = Reply::read(call(reqwest::Method::POST, "/clients", &body).await.unwrap()).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        (&reply.body["subject_type"], &reply.body["sector_identifier_uri"]),
        (&body["subject_type"], &body["sector_identifier_uri"])
    );

    // A replacement adding a redirect URI the document does not list is refused.
    let mut shown = Reply::read(call(reqwest::Method::GET, "/clients/web", &Value::Null).await.unwrap()).await.body;
    for read_only in ["client_id_issued_at", "client_secret_expires_at"] {
        shown.as_object_mut().unwrap().remove(read_only);
    }
    shown["redirect_uris"].as_array_mut().unwrap().push(json!("https://rp.example.test/new"));
    let reply = Reply::read(call(reqwest::Method::PUT, "/clients/web", &shown).await.unwrap()).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert!(reply.text.contains("https://rp.example.test/new"), "{}", reply.text);
}

/// `lanyard client add --subject-type … --sector-identifier-uri …` on a fresh SQLite file
/// (the CLI path of the same rules; `LANYARD_DEV_LOGIN` lets it fetch from loopback). The
/// CLI runs synchronously: the document's listener needs another worker thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_registers_pairwise_clients_with_the_same_rules() {
    let dir = std::env::temp_dir().join(format!("lanyard-pairwise-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let database_url = format!("sqlite://{}", dir.join("x.db").display());
    let run = |args: &[String], dev: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lanyard"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("LANYARD_")) {
            cmd.env_remove(key);
        }
        cmd.env_remove("RUST_LOG").args(args).args(["--json", "--database-url", &database_url]);
        if dev {
            cmd.env("LANYARD_DEV_LOGIN", "true");
        }
        cmd.output().expect("lanyard runs")
    };
    let add = |id: &str, extra: &[&str]| -> Vec<String> {
        let two_hosts = ["--redirect-uri", REDIRECT_URI, "--redirect-uri", "https://rp.example.test/cb"];
        let base = ["client", "add", id, "--subject-type", "pairwise"];
        base.iter().chain(&two_hosts).chain(extra).map(|a| (*a).to_owned()).collect()
    };

    let refused = run(&add("spans", &[]), false);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("sector_identifier_uri") && stderr.contains("rp.example.test"), "{stderr}");

    let listing = sector_listing("localhost", &[REDIRECT_URI, "https://rp.example.test/cb"]).await;
    let created = run(&add("shared", &["--sector-identifier-uri", &listing]), true);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let created: Value = serde_json::from_slice(&created.stdout).expect("JSON");
    assert_eq!((&created["subject_type"], &created["sector_identifier_uri"]), (&json!("pairwise"), &json!(listing)));
    // Outside dev mode the same loopback document is not fetched.
    let refused = run(&add("strict", &["--sector-identifier-uri", &listing]), false);
    assert_eq!(refused.status.code(), Some(1), "{}", String::from_utf8_lossy(&refused.stdout));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("https"), "says why");
    let _ = std::fs::remove_dir_all(dir);
}
