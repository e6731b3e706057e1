//! Client authentication with keys (RFC 7523 §2.2, OIDC Core §9): `private_key_jwt` at
//! /token, /introspect and /revoke, as the conformance suite's `client_auth_type`
//! variants `private_key_jwt` run it. Assertions are built here with josekit directly,
//! from freshly generated keys, not through any of Lanyard's code.
//!
//! The suite's `client_secret_jwt` variant (an HMAC keyed with the client's secret, which
//! Lanyard keeps sealed under its key-encryption key for such clients) is covered in
//! `conformance_client_secret_jwt.rs`.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jws::{ES256, EdDSA, HS256, JwsHeader, JwsSigner, PS256, RS256};
use lanyard::registry::{self, client::ClientSpec};
use serde_json::{Value, json};

use crate::both_backends;
use crate::flow::{self, API, Browser, REDIRECT_URI, VERIFIER};
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    oidcc_server_private_key_jwt,
    oidcc_ensure_client_assertion_with_iss_aud_succeeds,
    client_credentials_accept_assertions_signed_with_rs256_ps256_es256_and_eddsa,
    assertions_authenticate_at_introspection_and_revocation_with_their_endpoint_as_aud,
    bad_assertions_are_refused_as_invalid_client_with_a_generic_description,
    a_replayed_assertion_is_refused_and_a_race_has_one_winner,
    a_jwks_uri_is_fetched_in_dev_mode_and_a_rotated_key_is_picked_up,
    registration_refuses_private_keys_and_a_private_key_jwt_client_without_keys,
    discovery_advertises_private_key_jwt_client_secret_jwt_and_their_algorithms,
);

const CLIENT: &str = "keyed";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A key pair as a client holds it (request objects are signed with it too).
pub(crate) struct Key {
    alg: &'static str,
    kid: String,
    private: Jwk,
    public: Jwk,
}

impl Key {
    pub(crate) fn generate(alg: &'static str, kid: &str) -> Key {
        let (mut private, mut public) = match alg {
            "RS256" => {
                let pair = RS256.generate_key_pair(2048).unwrap();
                (pair.to_jwk_private_key(), pair.to_jwk_public_key())
            }
            "PS256" => {
                let pair = PS256.generate_key_pair(2048).unwrap();
                (pair.to_jwk_private_key(), pair.to_jwk_public_key())
            }
            "ES256" => {
                let pair = ES256.generate_key_pair().unwrap();
                (pair.to_jwk_private_key(), pair.to_jwk_public_key())
            }
            "EdDSA" => {
                let pair = EdDSA.generate_key_pair(josekit::jwk::Ed25519).unwrap();
                (pair.to_jwk_private_key(), pair.to_jwk_public_key())
            }
            other => panic!("no such alg {other}"),
        };
        private.set_key_id(kid);
        public.set_key_id(kid);
        Key { alg, kid: kid.to_owned(), private, public }
    }

    /// A signer whose JWS header carries `kid` (josekit takes the kid from the key).
    fn signer(&self, kid: &str) -> Box<dyn JwsSigner> {
        let mut private = self.private.clone();
        private.set_key_id(kid);
        match self.alg {
            "RS256" => Box::new(RS256.signer_from_jwk(&private).unwrap()),
            "PS256" => Box::new(PS256.signer_from_jwk(&private).unwrap()),
            "ES256" => Box::new(ES256.signer_from_jwk(&private).unwrap()),
            _ => Box::new(EdDSA.signer_from_jwk(&private).unwrap()),
        }
    }

    /// A compact JWS of `claims`, with this key's kid (or `kid` when given).
    pub(crate) fn sign_with_kid(&self, claims: &Value, kid: Option<&str>) -> String {
        let kid = kid.unwrap_or(&self.kid);
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        header.set_key_id(kid);
        let token =
            josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, self.signer(kid).as_ref()).unwrap();
        assert_eq!(flow::decode_jwt(&token).0["kid"], kid, "the header names the kid asked for");
        token
    }

    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.sign_with_kid(claims, None)
    }
}

pub(crate) fn jwks(keys: &[&Key]) -> Value {
    json!({ "keys": keys.iter().map(|k| Value::Object(k.public.clone().into())).collect::<Vec<_>>() })
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The claims the conformance suite sends (CreateClientAuthenticationAssertionClaims):
/// iss = sub = client_id, aud = the token endpoint, a random jti, iat = nbf = now, exp
/// a minute ahead.
fn claims(aud: &str) -> Value {
    let now = now();
    json!({
        "iss": CLIENT, "sub": CLIENT, "aud": aud,
        "jti": lanyard::crypto::random_token(15),
        "iat": now, "nbf": now, "exp": now + 60,
    })
}

/// Registers the appointments API, alice, and the `keyed` private_key_jwt client with
/// these keys (or a jwks_uri), allowed the code and client_credentials grants; makes
/// it the API's introspection client.
async fn keyed_client(server: &TestServer, keys: Option<Value>, jwks_uri: Option<String>) {
    flow::fixture_with(server, |s| {
        s.client_id = Some(CLIENT.into());
        s.token_endpoint_auth_method = Some("private_key_jwt".into());
        s.jwks = keys;
        s.jwks_uri = jwks_uri;
        s.grant_types = vec!["authorization_code".into(), "client_credentials".into()];
    })
    .await;
    flow::set_api_introspector(server, CLIENT).await;
}

/// POSTs a form to `path` with a client assertion; returns status and JSON body.
async fn post_with(server: &TestServer, path: &str, assertion: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let mut body: Vec<(&str, &str)> = vec![("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion)];
    body.extend_from_slice(form);
    let response = server.http.post(server.url(path)).form(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn client_credentials(server: &TestServer, assertion: &str) -> (u16, Value) {
    post_with(server, "/token", assertion, &[("grant_type", "client_credentials"), ("resource", API)]).await
}

/// The code flow as the suite's oidcc-server module runs it, with the code redeemed using
/// an assertion whose aud is `aud`.
async fn code_flow_with(server: &TestServer, key: &Key, aud: &str) -> (u16, Value) {
    let browser = Browser::new(server);
    let outcome = browser.sign_in(&flow::authorize_url(server, CLIENT, &[]), "alice").await;
    let code = outcome.params().get("code").cloned().expect("a code");
    let assertion = key.sign(&claims(aud));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
    ];
    post_with(server, "/token", &assertion, &form).await
}

async fn oidcc_server_private_key_jwt(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let key = Key::generate("RS256", "rp-1");
    keyed_client(&server, Some(jwks(&[&key])), None).await;
    let (status, body) = code_flow_with(&server, &key, &server.url("/token")).await;
    assert_eq!(status, 200, "{body}");
    let (_, id_token) = flow::decode_jwt(body["id_token"].as_str().expect("an id_token"));
    assert_eq!(id_token["aud"], CLIENT);
    assert!(body["access_token"].is_string());
    server.stop().await;
}

/// oidcc-ensure-client-assertion-with-iss-aud-succeeds: aud = the issuer identifier
/// (CreateClientAuthenticationAssertionClaimsWithIssAudience) is accepted too.
async fn oidcc_ensure_client_assertion_with_iss_aud_succeeds(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let key = Key::generate("ES256", "rp-ec");
    keyed_client(&server, Some(jwks(&[&key])), None).await;
    let issuer = server.get_json("/.well-known/openid-configuration").await["issuer"].as_str().unwrap().to_owned();
    let (status, body) = code_flow_with(&server, &key, &issuer).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].is_string(), "{body}");
    server.stop().await;
}

async fn client_credentials_accept_assertions_signed_with_rs256_ps256_es256_and_eddsa(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let keys = [
        Key::generate("RS256", "rs"),
        Key::generate("PS256", "ps"),
        Key::generate("ES256", "es"),
        Key::generate("EdDSA", "ed"),
    ];
    keyed_client(&server, Some(jwks(&keys.iter().collect::<Vec<_>>())), None).await;
    for key in &keys {
        let (status, body) = client_credentials(&server, &key.sign(&claims(&server.url("/token")))).await;
        assert_eq!(status, 200, "{}: {body}", key.alg);
        let (_, access) = flow::decode_jwt(body["access_token"].as_str().unwrap());
        assert_eq!(access["client_id"], CLIENT, "{}", key.alg);
        assert_eq!(access["sub"], CLIENT, "{}", key.alg);
    }
    server.stop().await;
}

async fn assertions_authenticate_at_introspection_and_revocation_with_their_endpoint_as_aud(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let key = Key::generate("RS256", "rp-1");
    keyed_client(&server, Some(jwks(&[&key])), None).await;
    let (_, body) = client_credentials(&server, &key.sign(&claims(&server.url("/token")))).await;
    let token = body["access_token"].as_str().expect("an access token").to_owned();

    for aud in [server.url("/introspect"), server.url("/token")] {
        let (status, answer) = post_with(&server, "/introspect", &key.sign(&claims(&aud)), &[("token", &token)]).await;
        assert_eq!(status, 200, "aud {aud}: {answer}");
        assert_eq!(answer["active"], true, "aud {aud}: {answer}");
        assert_eq!(answer["client_id"], CLIENT);
    }
    // An assertion made for revocation is not good at introspection.
    let (status, answer) =
        post_with(&server, "/introspect", &key.sign(&claims(&server.url("/revoke"))), &[("token", &token)]).await;
    assert_eq!((status, answer["error"].as_str()), (401, Some("invalid_client")), "{answer}");

    let (status, answer) =
        post_with(&server, "/revoke", &key.sign(&claims(&server.url("/revoke"))), &[("token", &token)]).await;
    assert_eq!(status, 200, "{answer}");
    let (_, answer) =
        post_with(&server, "/introspect", &key.sign(&claims(&server.url("/introspect"))), &[("token", &token)]).await;
    assert_eq!(answer["active"], false, "revoked: {answer}");
    server.stop().await;
}

/// An unsigned JWS (`alg: none`) of these claims.
fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// HS256 keyed with the client's public key (the algorithm-confusion attack).
fn hmac_with_public_key(key: &Key, claims: &Value) -> String {
    let secret = key.public.to_string();
    let signer = HS256.signer_from_bytes(secret.as_bytes()).unwrap();
    let mut header = JwsHeader::new();
    header.set_key_id(&key.kid);
    josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, &signer).unwrap()
}

async fn bad_assertions_are_refused_as_invalid_client_with_a_generic_description(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let key = Key::generate("RS256", "rp-1");
    let stranger = Key::generate("RS256", "rp-1");
    keyed_client(&server, Some(jwks(&[&key])), None).await;
    let token_endpoint = server.url("/token");
    let with = |name: &str, value: Value| {
        let mut c = claims(&token_endpoint);
        if value.is_null() {
            c.as_object_mut().unwrap().remove(name);
        } else {
            c[name] = value;
        }
        c
    };
    let now = now();
    let cases: Vec<(&str, String)> = vec![
        ("wrong aud", key.sign(&with("aud", json!("https://elsewhere.example/token")))),
        ("two audiences", key.sign(&with("aud", json!([token_endpoint, "https://elsewhere.example"])))),
        ("wrong iss", key.sign(&with("iss", json!("other")))),
        ("wrong sub", key.sign(&with("sub", json!("web")))),
        ("expired", key.sign(&with("exp", json!(now - 300)))),
        ("exp too far ahead", key.sign(&with("exp", json!(now + 3600)))),
        ("no exp", key.sign(&with("exp", Value::Null))),
        ("iat in the future", key.sign(&with("iat", json!(now + 600)))),
        ("missing jti", key.sign(&with("jti", Value::Null))),
        ("unknown kid", key.sign_with_kid(&claims(&token_endpoint), Some("nobody"))),
        ("another key", stranger.sign(&claims(&token_endpoint))),
        ("alg none", unsigned(&claims(&token_endpoint))),
        ("HS256 with the public key", hmac_with_public_key(&key, &claims(&token_endpoint))),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    for (case, assertion) in &cases {
        let (status, body) = client_credentials(&server, assertion).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["error"], "invalid_client", "{case}: {body}");
        assert_eq!(body["error_description"], "client authentication failed", "{case}: generic on the wire");
    }

    // The wrong assertion type.
    let good = key.sign(&claims(&token_endpoint));
    let form = [
        ("grant_type", "client_credentials"),
        ("resource", API),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"),
        ("client_assertion", good.as_str()),
    ];
    let response = server.http.post(server.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 401, "wrong assertion type");

    // One method per request (RFC 6749 §2.3): an assertion plus a secret, or plus Basic.
    let (status, body) = client_credentials(&server, &key.sign(&claims(&token_endpoint))).await;
    assert_eq!(status, 200, "a good assertion still works: {body}");
    let mixed = [
        ("grant_type", "client_credentials"),
        ("resource", API),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", good.as_str()),
        ("client_secret", "anything"),
    ];
    let response = server.http.post(server.url("/token")).form(&mixed).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_request");
    let response =
        server.http.post(server.url("/token")).basic_auth(CLIENT, Some("x")).form(&form[..2]).send().await.unwrap();
    assert_eq!(response.status(), 401, "a private_key_jwt client cannot use a secret");
    let fresh = key.sign(&claims(&token_endpoint));
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth(CLIENT, Some("x"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &fresh),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "assertion plus Basic");

    // A client registered for a secret cannot switch to an assertion.
    let web = registry::create_client(
        &server.store,
        ClientSpec {
            client_id: Some("secretive".into()),
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(web.secret.is_some());
    let mut c = claims(&token_endpoint);
    c["iss"] = json!("secretive");
    c["sub"] = json!("secretive");
    let (status, _) = client_credentials(&server, &key.sign(&c)).await;
    assert_eq!(status, 401, "assertion from a client_secret_basic client");
    server.stop().await;
}

async fn a_replayed_assertion_is_refused_and_a_race_has_one_winner(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let key = Key::generate("ES256", "rp-ec");
    keyed_client(&server, Some(jwks(&[&key])), None).await;
    let assertion = key.sign(&claims(&server.url("/token")));
    let (status, _) = client_credentials(&server, &assertion).await;
    assert_eq!(status, 200);
    let (status, body) = client_credentials(&server, &assertion).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "replayed: {body}");

    // Eight requests at once with one fresh assertion: exactly one is accepted.
    let racing = key.sign(&claims(&server.url("/token")));
    let server = Arc::new(server);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (server, racing) = (server.clone(), racing.clone());
            tokio::spawn(async move { client_credentials(&server, &racing).await.0 })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 401), "{statuses:?}");
    if let Ok(server) = Arc::try_unwrap(server) {
        server.stop().await;
    }
}

/// Serves a JWK Set on loopback that the test can replace; returns its URL.
fn jwks_server(set: Arc<Mutex<Value>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/jwks", listener.local_addr().unwrap().port());
    let server = HttpServer::new(move || {
        let set = set.clone();
        App::new().route(
            "/jwks",
            web::get().to(move || {
                let body = set.lock().unwrap().clone();
                // Cached for an hour: the new key must come from the refetch on an unknown kid.
                async move { HttpResponse::Ok().insert_header(("Cache-Control", "max-age=3600")).json(body) }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

async fn a_jwks_uri_is_fetched_in_dev_mode_and_a_rotated_key_is_picked_up(backend: Backend) {
    let db = TestDb::create(backend).await;
    let first = Key::generate("RS256", "2024-01");
    let set = Arc::new(Mutex::new(jwks(&[&first])));
    let uri = jwks_server(set.clone());
    // Dev mode (--dev-login) is what allows a loopback jwks_uri.
    let server = TestServer::start_with(&db, |s| s.dev_login = true).await;
    keyed_client(&server, None, Some(uri.clone())).await;
    let token_endpoint = server.url("/token");
    let (status, body) = client_credentials(&server, &first.sign(&claims(&token_endpoint))).await;
    assert_eq!(status, 200, "{body}");

    // The client rotates: its set now holds only a new key.
    let second = Key::generate("ES256", "2024-02");
    *set.lock().unwrap() = jwks(&[&second]);
    // Past the refetch cool-down, the unknown kid makes Lanyard fetch the set again.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = client_credentials(&server, &second.sign(&claims(&token_endpoint))).await;
    assert_eq!(status, 200, "the rotated key is picked up: {body}");
    let (status, _) = client_credentials(&server, &first.sign(&claims(&token_endpoint))).await;
    assert_eq!(status, 401, "the retired key no longer verifies");
    server.stop().await;

    // Outside dev mode the loopback jwks_uri is not fetched.
    let strict = TestServer::start(&db).await;
    let (status, _) = client_credentials(&strict, &second.sign(&claims(&strict.url("/token")))).await;
    assert_eq!(status, 401, "loopback jwks_uri outside dev mode");
    strict.stop().await;
}

async fn registration_refuses_private_keys_and_a_private_key_jwt_client_without_keys(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let key = Key::generate("RS256", "k");
    let spec = |jwks: Option<Value>, jwks_uri: Option<&str>, alg: Option<&str>| ClientSpec {
        client_id: Some("c".into()),
        grant_types: vec!["client_credentials".into()],
        token_endpoint_auth_method: Some("private_key_jwt".into()),
        jwks,
        jwks_uri: jwks_uri.map(str::to_owned),
        token_endpoint_auth_signing_alg: alg.map(str::to_owned),
        ..Default::default()
    };
    let private = json!({ "keys": [Value::Object(key.private.clone().into())] });
    let cases = [
        ("jwks", spec(Some(private), None, None), "private member"),
        ("jwks", spec(None, None, None), "jwks or jwks_uri"),
        ("jwks", spec(Some(jwks(&[&key])), Some("https://rp.example/jwks"), None), "not both"),
        ("jwks_uri", spec(None, Some("http://rp.example/jwks"), None), "https"),
        ("token_endpoint_auth_signing_alg", spec(Some(jwks(&[&key])), None, Some("HS256")), "not supported"),
    ];
    for (field, spec, reason) in cases {
        let error = registry::create_client(&server.store, spec).await.expect_err(field);
        let text = error.to_string();
        assert!(text.contains(field) && text.contains(reason), "{field}: {text}");
    }
    // A good registration has no secret, and its public keys are shown back.
    let new = registry::create_client(&server.store, spec(Some(jwks(&[&key])), None, Some("RS256"))).await.unwrap();
    assert!(new.secret.is_none(), "a private_key_jwt client has no secret");
    let stored = server.store.client("c").await.unwrap().unwrap();
    assert_eq!(stored.jwks.unwrap().to_value(), jwks(&[&key]));
    assert_eq!(stored.assertion_alg.map(|a| a.as_str()), Some("RS256"));
    server.stop().await;
}

async fn discovery_advertises_private_key_jwt_client_secret_jwt_and_their_algorithms(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let doc = server.get_json("/.well-known/openid-configuration").await;
    for endpoint in ["token_endpoint", "introspection_endpoint", "revocation_endpoint"] {
        let methods = doc[format!("{endpoint}_auth_methods_supported")].as_array().unwrap();
        assert!(methods.contains(&json!("private_key_jwt")), "{endpoint}: {methods:?}");
        assert!(methods.contains(&json!("client_secret_jwt")), "{endpoint}: {methods:?}");
        let algs = doc[format!("{endpoint}_auth_signing_alg_values_supported")].as_array().unwrap();
        let expected = ["RS256", "PS256", "ES256", "EdDSA", "HS256", "HS384", "HS512"];
        assert_eq!(algs, &expected.map(|a| json!(a)).to_vec(), "{endpoint}");
    }
    server.stop().await;
}
