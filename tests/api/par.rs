//! Pushed Authorization Requests (RFC 9126): `/par` authenticates the client and validates
//! the request as `/authorize` would; `/authorize` takes the returned `request_uri` once,
//! for the client that pushed it, and ignores the other parameters of its URL.

use std::time::Duration;

use lanyard::registry::{self, client::ClientSpec};
use serde_json::{Value, json};

use crate::both_backends;
use crate::conformance_client_auth::{Key, jwks};
use crate::flow::{self, Browser, Fixture, Outcome, REDIRECT_URI, VERIFIER};
use crate::helpers::{Backend, TestDb, TestServer};
use crate::token_lifecycle::{Creds, Reply, post_form};

both_backends!(
    a_pushed_request_completes_the_code_flow_with_an_independent_relying_party_library,
    the_authorize_url_carries_only_the_reference_and_its_other_parameters_are_ignored,
    a_request_uri_is_good_once,
    two_browsers_racing_with_one_request_uri_have_exactly_one_winner,
    an_expired_request_uri_is_refused_at_the_clients_redirect_uri,
    a_request_uri_of_another_client_is_unknown_to_this_one_and_stays_usable,
    an_unknown_request_uri_is_an_error_page_never_a_redirect,
    pushes_that_authorize_would_refuse_are_refused_as_json_and_issue_no_request_uri,
    an_unauthenticated_push_is_invalid_client,
    a_push_must_name_its_client_and_must_not_carry_a_request_uri,
    the_par_endpoint_takes_only_form_posts,
    a_client_that_requires_pushed_requests_is_refused_a_plain_authorize,
    the_server_wide_requirement_applies_to_every_client_and_is_advertised,
    a_pushed_request_object_is_verified_and_only_its_members_count,
);

const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Parameters added to (or, empty, removed from) [`request_params`].
type Extra = &'static [(&'static str, &'static str)];

/// The parameters of an authorization request for the fixture's client, PKCE included.
fn request_params(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    let mut params = vec![
        ("response_type", "code".to_owned()),
        ("client_id", "web".to_owned()),
        ("redirect_uri", REDIRECT_URI.to_owned()),
        ("scope", "openid profile email".to_owned()),
        ("state", "pushed-state".to_owned()),
        ("nonce", "pushed-nonce".to_owned()),
        ("code_challenge", flow::s256(VERIFIER)),
        ("code_challenge_method", "S256".to_owned()),
    ];
    for (name, value) in extra {
        params.retain(|(n, _)| n != name);
        if !value.is_empty() {
            params.push((name, (*value).to_owned()));
        }
    }
    params
}

/// POSTs `params` to /par as `creds` (client_secret_basic).
async fn push(server: &TestServer, creds: Option<&Creds>, params: &[(&str, String)]) -> Reply {
    let form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    post_form(server, "/par", creds, &form).await
}

/// Pushes and asserts the RFC 9126 §2.2 answer; returns the request_uri.
async fn pushed(server: &TestServer, creds: &Creds, params: &[(&str, String)]) -> String {
    let reply = push(server, Some(creds), params).await;
    assert_eq!(reply.status, 201, "a push is answered 201 Created: {}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let request_uri = reply.str("request_uri").to_owned();
    assert!(request_uri.starts_with(PREFIX), "{request_uri}");
    assert!(request_uri.len() >= PREFIX.len() + 43, "a 256-bit random reference: {request_uri}");
    assert_eq!(reply.body["expires_in"], server.config.pushed_request_ttl, "{}", reply.text);
    request_uri
}

/// `/authorize?client_id=…&request_uri=…`, plus `extra` parameters the server must ignore.
fn authorize_by_reference(server: &TestServer, client_id: &str, request_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut().append_pair("client_id", client_id).append_pair("request_uri", request_uri);
    for (name, value) in extra {
        url.query_pairs_mut().append_pair(name, value);
    }
    url.to_string()
}

/// Asserts an RFC 6749 §5.2 JSON error.
#[track_caller]
fn assert_json_error(reply: &Reply, status: u16, error: &str, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.text);
    assert_eq!(reply.error(), error, "{what}: {}", reply.text);
    assert!(reply.body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{what}: {}", reply.text);
    assert!(reply.body.get("request_uri").is_none(), "{what}: nothing was stored: {}", reply.text);
}

/// Asserts Lanyard's HTML error page, not a redirect anywhere.
#[track_caller]
fn assert_error_page(outcome: &Outcome, needle: &str, what: &str) {
    match outcome {
        Outcome::Page { status, html } => {
            assert_eq!(*status, 400, "{what}: {html}");
            assert!(html.contains(needle), "{what}: the page says why ({needle:?}): {html}");
        }
        Outcome::Redirect { location, .. } => panic!("{what}: must not redirect, went to {location}"),
    }
}

async fn start(backend: Backend) -> (TestDb, TestServer, Fixture, Creds) {
    start_with(backend, |_| {}, |_| {}).await
}

async fn start_with(
    backend: Backend,
    settings: impl FnOnce(&mut lanyard::config::Settings),
    client: impl FnOnce(&mut ClientSpec),
) -> (TestDb, TestServer, Fixture, Creds) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, settings).await;
    let fx = flow::fixture_with(&server, client).await;
    let creds = Creds::from(&fx);
    (db, server, fx, creds)
}

async fn a_pushed_request_completes_the_code_flow_with_an_independent_relying_party_library(backend: Backend) {
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
    use openidconnect::{
        AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, Scope,
        TokenResponse,
    };
    let (_db, server, fx, creds) = start(backend).await;
    let discovery = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["pushed_authorization_request_endpoint"], server.url("/par"));
    assert_eq!(discovery["require_pushed_authorization_requests"], false);
    assert_eq!(server.get_json("/.well-known/oauth-authorization-server").await, discovery);

    // The library builds the request; its parameters are pushed instead of sent in the URL.
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http).await.unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(fx.client_id.clone()),
        Some(ClientSecret::new(fx.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let params: Vec<(String, String)> = auth_url.query_pairs().into_owned().collect();
    assert!(params.iter().any(|(k, _)| k == "code_challenge"), "{auth_url}");
    let endpoint = discovery["pushed_authorization_request_endpoint"].as_str().unwrap();
    let reply = Reply::read(
        server.http.post(endpoint).basic_auth(&creds.id, Some(&creds.secret)).form(&params).send().await.unwrap(),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let request_uri = reply.str("request_uri");
    assert!(request_uri.starts_with(PREFIX), "{request_uri}");
    assert_eq!(reply.body["expires_in"], 60, "the default lifetime");

    // The browser carries nothing but the reference.
    let browser = Browser::new(&server);
    let outcome = browser.sign_in(&authorize_by_reference(&server, &fx.client_id, request_uri, &[]), "alice").await;
    let Outcome::Redirect { location, params } = &outcome else { panic!("expected the code") };
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(params.get("state"), Some(csrf.secret()), "the pushed state comes back");
    assert_eq!(params.get("iss").map(String::as_str), Some(server.base.as_str()));

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code of a pushed request is exchanged with its PKCE verifier");
    let id_token = tokens.id_token().expect("an id_token");
    let claims = id_token.claims(&client.id_token_verifier(), &nonce).expect("the library accepts the id_token");
    assert_eq!(claims.subject().as_str(), fx.user_id);
    assert_eq!(claims.email().map(|e| e.as_str()), Some("alice@example.test"));
}

async fn the_authorize_url_carries_only_the_reference_and_its_other_parameters_are_ignored(backend: Backend) {
    let (_db, server, fx, creds) = start(backend).await;
    let request_uri = pushed(&server, &creds, &request_params(&[])).await;
    let url = authorize_by_reference(
        &server,
        &fx.client_id,
        &request_uri,
        &[("state", "from-the-url"), ("redirect_uri", "http://evil.example.test/cb"), ("scope", "openid")],
    );
    let outcome = Browser::new(&server).sign_in(&url, "alice").await;
    let Outcome::Redirect { location, params } = &outcome else { panic!("expected the code") };
    assert!(location.starts_with(REDIRECT_URI), "the pushed redirect_uri, not the URL's: {location}");
    assert_eq!(params["state"], "pushed-state", "the pushed state, not the URL's");
    let (status, tokens) = flow::exchange(&server, &fx, &params["code"], VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    let scope = tokens["scope"].as_str().unwrap_or_default();
    assert!(scope.contains("profile") && scope.contains("email"), "the pushed scope, not the URL's: {tokens}");
    let (_, id_token) = flow::decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["nonce"], "pushed-nonce");
}

async fn a_request_uri_is_good_once(backend: Backend) {
    let (_db, server, fx, creds) = start(backend).await;
    let request_uri = pushed(&server, &creds, &request_params(&[])).await;
    let url = authorize_by_reference(&server, &fx.client_id, &request_uri, &[]);
    let browser = Browser::new(&server);
    let outcome = browser.sign_in(&url, "alice").await;
    assert!(outcome.params().contains_key("code"), "the first use works");
    // The same browser, signed in now, tries again (a reload, or a replayed link).
    let again = browser.open(&url).await;
    assert_error_page(&again, "used already", "the second use");
    let (status, _) = flow::exchange(&server, &fx, &outcome.params()["code"], VERIFIER).await;
    assert_eq!(status, 200, "the first use's code is unaffected");
}

async fn two_browsers_racing_with_one_request_uri_have_exactly_one_winner(backend: Backend) {
    let (_db, server, fx, creds) = start(backend).await;
    for round in 0..3 {
        let request_uri = pushed(&server, &creds, &request_params(&[])).await;
        let url = authorize_by_reference(&server, &fx.client_id, &request_uri, &[]);
        let (a, b) = (Browser::new(&server), Browser::new(&server));
        let (first, second) = tokio::join!(a.open(&url), b.open(&url));
        let login =
            |o: &Outcome| matches!(o, Outcome::Page { status: 200, html } if html.contains("name=\"password\""));
        let used = |o: &Outcome| matches!(o, Outcome::Page { status: 400, html } if html.contains("used already"));
        assert!(
            (login(&first) && used(&second)) || (used(&first) && login(&second)),
            "round {round}: one login page and one refusal, got {} and {}",
            first.status(),
            second.status()
        );
    }
}

async fn an_expired_request_uri_is_refused_at_the_clients_redirect_uri(backend: Backend) {
    let (_db, server, fx, creds) = start_with(backend, |s| s.pushed_request_ttl = 1, |_| {}).await;
    let request_uri = pushed(&server, &creds, &request_params(&[])).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let outcome = Browser::new(&server).open(&authorize_by_reference(&server, &fx.client_id, &request_uri, &[])).await;
    let Outcome::Redirect { location, params } = &outcome else {
        panic!("an expired request of this client answers at its registered redirect_uri, got {}", outcome.status())
    };
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(params["error"], "invalid_request_uri", "{location}");
    assert_eq!(params["state"], "pushed-state", "the pushed state, so the client can match it");
    assert_eq!(params["iss"], server.base);
    assert!(!params.contains_key("code"));
}

async fn a_request_uri_of_another_client_is_unknown_to_this_one_and_stays_usable(backend: Backend) {
    let (_db, server, fx, creds) = start(backend).await;
    let other = ClientSpec {
        client_id: Some("other".into()),
        redirect_uris: vec![REDIRECT_URI.into()],
        scope: Some("openid profile email".into()),
        ..Default::default()
    };
    registry::create_client(&server.store, other).await.expect("a second client");
    let request_uri = pushed(&server, &creds, &request_params(&[])).await;
    let browser = Browser::new(&server);
    let stolen = browser.open(&authorize_by_reference(&server, "other", &request_uri, &[])).await;
    assert_error_page(&stolen, "names no pushed authorization request", "another client's reference");
    let outcome = browser.sign_in(&authorize_by_reference(&server, &fx.client_id, &request_uri, &[]), "alice").await;
    assert!(outcome.params().contains_key("code"), "the client that pushed it still can use it");
}

async fn an_unknown_request_uri_is_an_error_page_never_a_redirect(backend: Backend) {
    let (_db, server, fx, creds) = start(backend).await;
    // A real one, tampered with, so the format is right and only the value is unknown.
    let mut request_uri = pushed(&server, &creds, &request_params(&[])).await;
    let last = request_uri.pop().map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
    request_uri.push(last);
    let outcome = Browser::new(&server).open(&authorize_by_reference(&server, &fx.client_id, &request_uri, &[])).await;
    assert_error_page(&outcome, "names no pushed authorization request", "an unknown reference");
}

async fn pushes_that_authorize_would_refuse_are_refused_as_json_and_issue_no_request_uri(backend: Backend) {
    let (_db, server, _fx, creds) = start(backend).await;
    let cases: [(Extra, &str, &str); 8] = [
        (&[("state", "a\u{0}b")], "invalid_request", "a NUL in a parameter"),
        (&[("redirect_uri", "http://127.0.0.1:9999/elsewhere")], "invalid_request", "an unregistered redirect_uri"),
        (&[("redirect_uri", "")], "invalid_request", "no redirect_uri"),
        (&[("response_type", "token")], "unsupported_response_type", "the implicit flow"),
        (&[("scope", "openid admin:everything")], "invalid_scope", "an unknown scope"),
        (
            &[("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
            "no PKCE for a client that needs it",
        ),
        (&[("code_challenge_method", "plain")], "invalid_request", "PKCE plain"),
        (&[("prompt", "none login")], "invalid_request", "prompt=none with login"),
    ];
    for (extra, error, what) in cases {
        let reply = push(&server, Some(&creds), &request_params(extra)).await;
        assert_json_error(&reply, 400, error, what);
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
    }
    let reply = push(&server, Some(&creds), &request_params(&[("redirect_uri", "http://evil.example.test/cb")])).await;
    assert!(reply.text.contains("not registered"), "the description says why: {}", reply.text);
}

async fn an_unauthenticated_push_is_invalid_client(backend: Backend) {
    let (_db, server, _fx, creds) = start(backend).await;
    let params = request_params(&[]);
    let reply = push(&server, None, &params).await;
    assert_json_error(&reply, 401, "invalid_client", "a confidential client without its secret");
    assert!(reply.challenge().starts_with("Basic"), "{:?}", reply.challenge());
    let wrong = Creds { id: creds.id.clone(), secret: "not-the-secret".into() };
    assert_json_error(&push(&server, Some(&wrong), &params).await, 401, "invalid_client", "a wrong secret");
    let unknown = Creds { id: "nobody".into(), secret: "x".into() };
    let mut for_nobody = params.clone();
    for_nobody.retain(|(k, _)| *k != "client_id");
    for_nobody.push(("client_id", "nobody".into()));
    assert_json_error(&push(&server, Some(&unknown), &for_nobody).await, 401, "invalid_client", "an unknown client");
}

async fn a_push_must_name_its_client_and_must_not_carry_a_request_uri(backend: Backend) {
    let (_db, server, _fx, creds) = start(backend).await;
    let cases: [(Extra, &str); 3] = [
        (&[("client_id", "")], "no client_id (RFC 9126 §2.1: as required as at /authorize)"),
        (&[("request_uri", "urn:ietf:params:oauth:request_uri:abc")], "a pushed request pointing to another"),
        (&[("request_uri", "https://app.example.test/request.jwt")], "a request object by reference"),
    ];
    for (extra, what) in cases {
        assert_json_error(&push(&server, Some(&creds), &request_params(extra)).await, 400, "invalid_request", what);
    }
    let mut other = request_params(&[]);
    other.retain(|(k, _)| *k != "client_id");
    other.push(("client_id", "other".into()));
    let reply = push(&server, Some(&creds), &other).await;
    assert!(reply.status == 400 || reply.status == 401, "a client_id that is not the authenticated client's");
    assert!(reply.body.get("request_uri").is_none(), "{}", reply.text);
}

async fn the_par_endpoint_takes_only_form_posts(backend: Backend) {
    let (_db, server, _fx, creds) = start(backend).await;
    let get = Reply::read(server.http.get(server.url("/par")).send().await.unwrap()).await;
    assert_eq!(get.status, 405, "{}", get.text);
    assert_eq!(get.header("allow"), Some("POST"));
    let json = Reply::read(
        server
            .http
            .post(server.url("/par"))
            .basic_auth(&creds.id, Some(&creds.secret))
            .json(&serde_json::json!({"response_type": "code"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_json_error(&json, 400, "invalid_request", "a JSON body");
    // A browser-based (public) client pushes from its own origin, as it calls /token.
    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/par"))
        .header("Origin", "https://spa.example.test")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
}

async fn a_client_that_requires_pushed_requests_is_refused_a_plain_authorize(backend: Backend) {
    let (_db, server, fx, creds) =
        start_with(backend, |_| {}, |c| c.require_pushed_authorization_requests = Some(true)).await;
    let stored = server.store.client(&fx.client_id).await.unwrap().unwrap();
    assert!(stored.require_par);
    let browser = Browser::new(&server);
    let plain = browser.open(&flow::authorize_url(&server, &fx.client_id, &[])).await;
    let Outcome::Redirect { location, params } = &plain else {
        panic!("a valid redirect_uri gets the error, got {}", plain.status())
    };
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(params["error"], "invalid_request");
    assert!(params["error_description"].contains("pushed authorization requests"), "{params:?}");
    assert_eq!(params["state"], "xyz");
    assert!(!params.contains_key("code"));
    let unregistered = browser
        .open(&flow::authorize_url(&server, &fx.client_id, &[("redirect_uri", "http://evil.example.test/")]))
        .await;
    assert_error_page(&unregistered, "pushed authorization requests", "an unregistered redirect_uri: no redirect");

    let request_uri = pushed(&server, &creds, &request_params(&[])).await;
    let outcome = browser.sign_in(&authorize_by_reference(&server, &fx.client_id, &request_uri, &[]), "alice").await;
    assert!(outcome.params().contains_key("code"), "the pushed request goes through");
}

async fn the_server_wide_requirement_applies_to_every_client_and_is_advertised(backend: Backend) {
    let (_db, server, fx, creds) =
        start_with(backend, |s| s.require_pushed_authorization_requests = true, |_| {}).await;
    let discovery: Value = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["require_pushed_authorization_requests"], true);
    let browser = Browser::new(&server);
    let plain = browser.open(&flow::authorize_url(&server, &fx.client_id, &[])).await;
    assert_eq!(plain.params()["error"], "invalid_request", "a client not itself required to push");
    assert!(plain.params()["error_description"].contains("this server requires"), "{:?}", plain.params());
    let request_uri = pushed(&server, &creds, &request_params(&[])).await;
    let outcome = browser.sign_in(&authorize_by_reference(&server, &fx.client_id, &request_uri, &[]), "alice").await;
    let (status, tokens) = flow::exchange(&server, &fx, &outcome.params()["code"], VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
}

/// A private_key_jwt assertion of `web` for `aud`, as RFC 7523 §3 has it.
fn assertion(key: &Key, aud: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    key.sign(&json!({
        "iss": "web", "sub": "web", "aud": aud, "jti": lanyard::crypto::random_token(16),
        "iat": now, "exp": now + 60,
    }))
}

/// RFC 9126 §3: a request object pushed with a private_key_jwt client's assertion (whose
/// aud may be the PAR endpoint, §2); the form's other parameters are ignored.
async fn a_pushed_request_object_is_verified_and_only_its_members_count(backend: Backend) {
    use lanyard::oauth::client_assertion::ASSERTION_TYPE;
    let key = Key::generate("RS256", "rp-par");
    let (_db, server, _fx, _) = start_with(
        backend,
        |_| {},
        |c| {
            c.token_endpoint_auth_method = Some("private_key_jwt".into());
            c.jwks = Some(jwks(&[&key]));
        },
    )
    .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let object = key.sign(&json!({
        "client_id": "web", "iss": "web", "aud": server.base, "exp": now + 300,
        "response_type": "code", "redirect_uri": REDIRECT_URI, "scope": "openid email",
        "state": "object-state", "nonce": "object-nonce",
        "code_challenge": flow::s256(VERIFIER), "code_challenge_method": "S256",
    }));
    let push_with = |assertion: String, object: String| {
        let form = [
            ("client_assertion_type", ASSERTION_TYPE.to_owned()),
            ("client_assertion", assertion),
            ("client_id", "web".to_owned()),
            ("request", object),
            ("state", "decoy".to_owned()),
            ("redirect_uri", "http://evil.example.test/cb".to_owned()),
        ];
        let request = server.http.post(server.url("/par")).form(&form);
        async move { Reply::read(request.send().await.unwrap()).await }
    };
    let reply = push_with(assertion(&key, &server.url("/par")), object.clone()).await;
    assert_eq!(reply.status, 201, "an assertion for the PAR endpoint: {}", reply.text);
    let request_uri = reply.str("request_uri").to_owned();
    let outcome =
        Browser::new(&server).sign_in(&authorize_by_reference(&server, "web", &request_uri, &[]), "alice").await;
    let Outcome::Redirect { location, params } = &outcome else { panic!("expected the code") };
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(params["state"], "object-state", "the object's state, not the form's");
    let token = Reply::read(
        server
            .http
            .post(server.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", params["code"].as_str()),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", VERIFIER),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion(&key, &server.url("/token")).as_str()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(token.status, 200, "{}", token.text);
    assert!(token.str("scope").contains("email"), "the object's scope: {}", token.text);
    let (_, id_token) = flow::decode_jwt(token.str("id_token"));
    assert_eq!(id_token["nonce"], "object-nonce");

    let other_key = Key::generate("RS256", "not-registered");
    let forged = other_key.sign(&json!({"client_id": "web", "response_type": "code", "redirect_uri": REDIRECT_URI}));
    let reply = push_with(assertion(&key, &server.url("/par")), forged).await;
    assert_json_error(&reply, 400, "invalid_request_object", "a request object signed with another key");
    let reply = push_with(assertion(&key, &server.url("/introspect")), object).await;
    assert_json_error(&reply, 401, "invalid_client", "an assertion made for another endpoint");
}
