//! Client authentication with a secret-keyed MAC (RFC 7523 §2.2, OIDC Core §9):
//! `client_secret_jwt` at /token, /introspect and /revoke, as the conformance suite's
//! `client_auth_type` variant `client_secret_jwt` runs it (GenerateJWKsFromClientSecret:
//! the secret's octets as an HS key; CreateClientAuthenticationAssertionClaims: iss = sub =
//! client_id, aud = the token endpoint, a random jti, a minute of validity). Assertions are
//! built here with josekit directly, not through any of Lanyard's code. Also: the secret is
//! sealed at rest under the key-encryption key and opens under that key only, rotation,
//! a switch to client_secret_jwt, and registration through /register.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jws::{HS256, HS384, HS512, JwsHeader, JwsSigner, RS256};
use lanyard::crypto::sha256_hex;
use lanyard::registry::client_secret::SealedSecret;
use lanyard::registry::{self, client::ClientSpec};
use serde_json::{Value, json};

use crate::both_backends;
use crate::flow::{self, API, Browser, REDIRECT_URI, VERIFIER};
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    oidcc_server_client_secret_jwt,
    client_credentials_accept_hs256_hs384_and_hs512_and_a_registered_alg_restricts_them,
    secret_jwt_assertions_authenticate_at_introspection_and_revocation,
    bad_secret_jwt_assertions_are_refused_as_invalid_client_with_a_generic_description,
    rotating_the_secret_stops_the_old_one_and_seals_the_new_one,
    the_secret_is_sealed_at_rest_and_refused_under_another_key_encryption_key,
    a_client_switched_to_client_secret_jwt_gets_a_new_secret_from_the_admin_api,
    a_dynamically_registered_client_secret_jwt_client_works_end_to_end,
    a_seeded_client_secret_jwt_client_with_a_fixed_secret_works,
);

const CLIENT: &str = "maced";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const ADMIN_TOKEN: &str = "admin-api-test-token-with-plenty-of-entropy-0123456789";
const KEK_A: &str = "0101010101010101010101010101010101010101010101010101010101010101";
const KEK_B: &str = "0202020202020202020202020202020202020202020202020202020202020202";
/// A client_credentials request for the appointments API.
const CC: [(&str, &str); 2] = [("grant_type", "client_credentials"), ("resource", API)];

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The claims the conformance suite sends, for `client_id`.
fn claims_for(client_id: &str, aud: &str) -> Value {
    let now = now();
    json!({
        "iss": client_id, "sub": client_id, "aud": aud,
        "jti": lanyard::crypto::random_token(15),
        "iat": now, "nbf": now, "exp": now + 60,
    })
}

fn claims(aud: &str) -> Value {
    claims_for(CLIENT, aud)
}

/// A compact JWS of `claims` MACed with `secret` (no kid, as the suite's oct key has none).
fn mac(alg: &str, secret: &[u8], claims: &Value) -> String {
    let signer: Box<dyn JwsSigner> = match alg {
        "HS256" => Box::new(HS256.signer_from_bytes(secret).unwrap()),
        "HS384" => Box::new(HS384.signer_from_bytes(secret).unwrap()),
        _ => Box::new(HS512.signer_from_bytes(secret).unwrap()),
    };
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    let token = josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, signer.as_ref()).unwrap();
    assert_eq!(flow::decode_jwt(&token).0["alg"], alg);
    token
}

/// Registers the appointments API, alice, and the `maced` client_secret_jwt client
/// (adjusted by `adjust`) allowed the code and client_credentials grants, as the API's
/// introspection client; returns the client's secret.
async fn maced_client(server: &TestServer, adjust: impl FnOnce(&mut ClientSpec)) -> String {
    let fx = flow::fixture_with(server, |s| {
        s.client_id = Some(CLIENT.into());
        s.token_endpoint_auth_method = Some("client_secret_jwt".into());
        s.grant_types = vec!["authorization_code".into(), "client_credentials".into()];
        adjust(s);
    })
    .await;
    flow::set_api_introspector(server, CLIENT).await;
    assert!(fx.client_secret.len() >= 64, "a generated client_secret_jwt secret keys HS512 too");
    fx.client_secret
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

/// An assertion from `maced` with `secret`, HS256, for the token endpoint.
fn good(server: &TestServer, secret: &str) -> String {
    mac("HS256", secret.as_bytes(), &claims(&server.url("/token")))
}

/// oidcc-server with client_auth_type=client_secret_jwt: the code flow, the code redeemed
/// with an HS256 assertion (aud = the token endpoint from discovery).
async fn oidcc_server_client_secret_jwt(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let secret = maced_client(&server, |_| {}).await;
    let token_endpoint =
        server.get_json("/.well-known/openid-configuration").await["token_endpoint"].as_str().unwrap().to_owned();
    let browser = Browser::new(&server);
    let outcome = browser.sign_in(&flow::authorize_url(&server, CLIENT, &[]), "alice").await;
    let code = outcome.params().get("code").cloned().expect("a code");
    let assertion = mac("HS256", secret.as_bytes(), &claims(&token_endpoint));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = post_with(&server, "/token", &assertion, &form).await;
    assert_eq!(status, 200, "{body}");
    let (_, id_token) = flow::decode_jwt(body["id_token"].as_str().expect("an id_token"));
    assert_eq!(id_token["aud"], CLIENT);
    assert_eq!(id_token["nonce"], "n-0S6_WzA2Mj");
    assert!(body["access_token"].is_string(), "{body}");
    server.stop().await;
}

async fn client_credentials_accept_hs256_hs384_and_hs512_and_a_registered_alg_restricts_them(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let secret = maced_client(&server, |_| {}).await;
    for alg in ["HS256", "HS384", "HS512"] {
        let assertion = mac(alg, secret.as_bytes(), &claims(&server.url("/token")));
        let (status, body) = client_credentials(&server, &assertion).await;
        assert_eq!(status, 200, "{alg}: {body}");
        let (_, access) = flow::decode_jwt(body["access_token"].as_str().unwrap());
        assert_eq!((&access["client_id"], &access["sub"]), (&json!(CLIENT), &json!(CLIENT)), "{alg}");
    }

    // token_endpoint_auth_signing_alg = HS512: HS256 is refused, HS512 accepted.
    let strict = registry::create_client(
        &server.store,
        ClientSpec {
            client_id: Some("strict".into()),
            token_endpoint_auth_method: Some("client_secret_jwt".into()),
            token_endpoint_auth_signing_alg: Some("HS512".into()),
            grant_types: vec!["client_credentials".into()],
            scope: Some("read:appointments".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let secret = strict.secret.expect("a secret");
    let aud = server.url("/token");
    let form = CC;
    let (status, body) =
        post_with(&server, "/token", &mac("HS256", secret.as_bytes(), &claims_for("strict", &aud)), &form).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "HS256 for an HS512 client: {body}");
    let (status, body) =
        post_with(&server, "/token", &mac("HS512", secret.as_bytes(), &claims_for("strict", &aud)), &form).await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

async fn secret_jwt_assertions_authenticate_at_introspection_and_revocation(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let secret = maced_client(&server, |_| {}).await;
    let (_, body) = client_credentials(&server, &good(&server, &secret)).await;
    let token = body["access_token"].as_str().expect("an access token").to_owned();
    let at = |path: &str| mac("HS256", secret.as_bytes(), &claims(&server.url(path)));

    for aud in ["/introspect", "/token"] {
        let (status, answer) = post_with(&server, "/introspect", &at(aud), &[("token", &token)]).await;
        assert_eq!(status, 200, "aud {aud}: {answer}");
        assert_eq!(answer["active"], true, "aud {aud}: {answer}");
        assert_eq!(answer["client_id"], CLIENT);
    }
    let (status, answer) = post_with(&server, "/introspect", &at("/revoke"), &[("token", &token)]).await;
    assert_eq!((status, answer["error"].as_str()), (401, Some("invalid_client")), "aud /revoke at /introspect");

    let (status, answer) = post_with(&server, "/revoke", &at("/revoke"), &[("token", &token)]).await;
    assert_eq!(status, 200, "{answer}");
    let (_, answer) = post_with(&server, "/introspect", &at("/introspect"), &[("token", &token)]).await;
    assert_eq!(answer["active"], false, "revoked: {answer}");
    server.stop().await;
}

/// An unsigned JWS (`alg: none`) of these claims.
fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

async fn bad_secret_jwt_assertions_are_refused_as_invalid_client_with_a_generic_description(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let secret = maced_client(&server, |_| {}).await;
    // A private_key_jwt client beside it, for the algorithm-confusion cases.
    let pair = RS256.generate_key_pair(2048).unwrap();
    let public = pair.to_jwk_public_key();
    registry::create_client(
        &server.store,
        ClientSpec {
            client_id: Some("keyed".into()),
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks: Some(json!({ "keys": [Value::Object(public.clone().into())] })),
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let aud = server.url("/token");
    let with = |name: &str, value: Value| {
        let mut c = claims(&aud);
        c[name] = value;
        c
    };
    let key = secret.as_bytes();
    let now = now();
    let rs256 = {
        let signer = RS256.signer_from_jwk(&pair.to_jwk_private_key()).unwrap();
        josekit::jws::serialize_compact(claims(&aud).to_string().as_bytes(), &JwsHeader::new(), &signer).unwrap()
    };
    let public_text = public.to_string();
    let replayed = good(&server, &secret);
    let (status, body) = client_credentials(&server, &replayed).await;
    assert_eq!(status, 200, "first use: {body}");
    let cases: Vec<(&str, String)> = vec![
        ("wrong secret", mac("HS256", &[b'x'; 64], &claims(&aud))),
        ("alg none", unsigned(&claims(&aud))),
        ("RS256 for a client_secret_jwt client", rs256),
        ("HS256 keyed with the secret's hash", mac("HS256", sha256_hex(&secret).as_bytes(), &claims(&aud))),
        ("replayed jti", replayed),
        ("wrong aud", mac("HS256", key, &with("aud", json!("https://elsewhere.example/token")))),
        ("expired", mac("HS256", key, &with("exp", json!(now - 300)))),
        ("exp too far ahead", mac("HS256", key, &with("exp", json!(now + 3600)))),
        ("wrong iss", mac("HS256", key, &with("iss", json!("keyed")))),
        // Algorithm confusion: HS256 keyed with the private_key_jwt client's public key.
        (
            "HS256 with a private_key_jwt client's public key",
            mac("HS256", public_text.as_bytes(), &claims_for("keyed", &aud)),
        ),
        // … and with the secret of another client, claiming to be the keyed client.
        ("HS256 for a private_key_jwt client", mac("HS256", key, &claims_for("keyed", &aud))),
    ];
    for (case, assertion) in &cases {
        let (status, body) = client_credentials(&server, assertion).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["error"], "invalid_client", "{case}: {body}");
        assert_eq!(body["error_description"], "client authentication failed", "{case}: generic on the wire");
    }

    // The secret itself never crosses the wire for this client: Basic and the body are refused.
    let form = [("grant_type", "client_credentials"), ("resource", API)];
    let response =
        server.http.post(server.url("/token")).basic_auth(CLIENT, Some(&secret)).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 401, "the secret in Basic");
    let mut posted = form.to_vec();
    posted.extend([("client_id", CLIENT), ("client_secret", secret.as_str())]);
    let response = server.http.post(server.url("/token")).form(&posted).send().await.unwrap();
    assert_eq!(response.status(), 401, "the secret in the body");
    let (status, body) = client_credentials(&server, &good(&server, &secret)).await;
    assert_eq!(status, 200, "a good assertion still works: {body}");
    server.stop().await;
}

/// An admin API request with [`ADMIN_TOKEN`]; returns status and JSON body.
async fn admin(server: &TestServer, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = server.http.request(method, server.url(&format!("/admin/api{path}"))).bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn rotating_the_secret_stops_the_old_one_and_seals_the_new_one(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.key_encryption_key = Some(KEK_A.into())).await;
    server.store.insert_admin_token("ci", &sha256_hex(ADMIN_TOKEN)).await.unwrap();
    let old = maced_client(&server, |_| {}).await;
    let sealed_before = server.store.client(CLIENT).await.unwrap().unwrap().secret_sealed.expect("sealed");
    let (status, body) = client_credentials(&server, &good(&server, &old)).await;
    assert_eq!(status, 200, "{body}");

    let (status, rotated) =
        admin(&server, reqwest::Method::POST, &format!("/clients/{CLIENT}/rotate-secret"), None).await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["client_secret"].as_str().expect("the new secret, once").to_owned();
    assert_ne!(new, old);
    let stored = server.store.client(CLIENT).await.unwrap().unwrap();
    let sealed_after = stored.secret_sealed.expect("still sealed");
    assert_ne!(sealed_after, sealed_before, "sealed anew");
    assert!(!sealed_after.as_stored().contains(&new), "not the plaintext");
    assert_eq!(stored.secret_hash.as_deref(), Some(sha256_hex(&new).as_str()), "the hash follows");

    let (status, _) = client_credentials(&server, &good(&server, &old)).await;
    assert_eq!(status, 401, "the old secret stops working at once");
    let (status, body) = client_credentials(&server, &good(&server, &new)).await;
    assert_eq!(status, 200, "the new secret works: {body}");

    // Deleting the client deletes its sealed secret with it.
    let (status, _) = admin(&server, reqwest::Method::DELETE, &format!("/clients/{CLIENT}"), None).await;
    assert_eq!(status, 204);
    assert!(server.store.client(CLIENT).await.unwrap().is_none());
    let (status, _) = client_credentials(&server, &good(&server, &new)).await;
    assert_eq!(status, 401, "a deleted client");
    server.stop().await;
}

fn kek(hex: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    key
}

/// The database holds the secret sealed (not the plaintext, nor anything that opens under
/// another key or for another client); a server with another key-encryption key, or none,
/// refuses the client's assertions, and one with the right key accepts them.
async fn the_secret_is_sealed_at_rest_and_refused_under_another_key_encryption_key(backend: Backend) {
    let db = TestDb::create(backend).await;
    // Signing keys in the clear (no KEK on the first start), so that servers with other
    // keys can start on the same database; the client is written with key A.
    let plain = TestServer::start(&db).await;
    let store_a = plain.store.clone().with_key_encryption_key(Some(kek(KEK_A)));
    flow::fixture(&plain).await;
    let new = registry::create_client(
        &store_a,
        ClientSpec {
            client_id: Some(CLIENT.into()),
            token_endpoint_auth_method: Some("client_secret_jwt".into()),
            grant_types: vec!["client_credentials".into()],
            scope: Some("read:appointments".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let secret = new.secret.expect("a secret");
    let column = plain.store.client(CLIENT).await.unwrap().unwrap().secret_sealed.expect("the secret_sealed column");
    assert!(column.as_stored().starts_with("v1:"), "sealed: {:?}", column.as_stored().get(..3));
    assert!(!column.as_stored().contains(&secret), "the column is not the plaintext");
    assert_eq!(column.open(Some(&kek(KEK_A)), CLIENT).unwrap(), secret.as_bytes());
    assert!(column.open(Some(&kek(KEK_B)), CLIENT).is_err(), "another key");
    assert!(column.open(Some(&kek(KEK_A)), "web").is_err(), "another client's row");
    assert!(column.open(None, CLIENT).is_err(), "no key");
    let (status, _) = post_with(&plain, "/token", &good(&plain, &secret), &CC).await;
    assert_eq!(status, 401, "a server without a key-encryption key");
    plain.stop().await;

    let other = TestServer::start_with(&db, |s| s.key_encryption_key = Some(KEK_B.into())).await;
    let (status, body) = post_with(&other, "/token", &good(&other, &secret), &CC).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "under another KEK: {body}");
    other.stop().await;

    let right = TestServer::start_with(&db, |s| s.key_encryption_key = Some(KEK_A.into())).await;
    let (status, body) = post_with(&right, "/token", &good(&right, &secret), &CC).await;
    assert_eq!(status, 200, "under the key it was sealed with: {body}");
    right.stop().await;

    // Without a key-encryption key a new client's secret is kept in the clear, marked so.
    let unsealed = SealedSecret::seal(None, "x", "abc").unwrap();
    assert_eq!(unsealed.as_stored(), "plain:abc");
}

async fn a_client_switched_to_client_secret_jwt_gets_a_new_secret_from_the_admin_api(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    server.store.insert_admin_token("ci", &sha256_hex(ADMIN_TOKEN)).await.unwrap();
    let fx = flow::fixture_with(&server, |s| s.grant_types = vec!["client_credentials".into()]).await;
    let (status, current) = admin(&server, reqwest::Method::GET, "/clients/web", None).await;
    assert_eq!(status, 200);
    let mut changed = current.as_object().unwrap().clone();
    for read_only in ["client_id_issued_at", "client_secret_expires_at"] {
        changed.remove(read_only);
    }
    changed.insert("token_endpoint_auth_method".into(), json!("client_secret_jwt"));
    let (status, updated) = admin(&server, reqwest::Method::PUT, "/clients/web", Some(Value::Object(changed))).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["token_endpoint_auth_method"], "client_secret_jwt");
    let new = updated["client_secret"].as_str().expect("a new secret, shown once").to_owned();
    assert_ne!(new, fx.client_secret);
    assert!(server.store.client("web").await.unwrap().unwrap().secret_sealed.is_some());

    let form = CC;
    let old = mac("HS256", fx.client_secret.as_bytes(), &claims_for("web", &server.url("/token")));
    let (status, _) = post_with(&server, "/token", &old, &form).await;
    assert_eq!(status, 401, "the old secret (known by its hash only) does not key the MAC");
    let fresh = mac("HS256", new.as_bytes(), &claims_for("web", &server.url("/token")));
    let (status, body) = post_with(&server, "/token", &fresh, &form).await;
    assert_eq!(status, 200, "{body}");

    // Back to client_secret_basic: the sealed copy goes, the hash stays and works.
    let (_, current) = admin(&server, reqwest::Method::GET, "/clients/web", None).await;
    let mut back = current.as_object().unwrap().clone();
    for read_only in ["client_id_issued_at", "client_secret_expires_at"] {
        back.remove(read_only);
    }
    back.insert("token_endpoint_auth_method".into(), json!("client_secret_basic"));
    let (status, updated) = admin(&server, reqwest::Method::PUT, "/clients/web", Some(Value::Object(back))).await;
    assert_eq!(status, 200, "{updated}");
    assert!(updated.get("client_secret").is_none(), "no new secret needed: {updated}");
    assert!(server.store.client("web").await.unwrap().unwrap().secret_sealed.is_none(), "the sealed copy is gone");
    let response =
        server.http.post(server.url("/token")).basic_auth("web", Some(&new)).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200, "the same secret, now in Basic");
    server.stop().await;
}

/// The suite's dynamic plan with client_secret_jwt: /register returns the secret once;
/// the code flow then authenticates with an assertion MACed with it.
async fn a_dynamically_registered_client_secret_jwt_client_works_end_to_end(backend: Backend) {
    let db = TestDb::create(backend).await;
    let initial = "initial-access-token-for-the-secret-jwt-test";
    let server = TestServer::start_with(&db, |s| {
        s.registration = "token".into();
        s.registration_token = Some(initial.into());
    })
    .await;
    flow::add_user(&server, "alice").await;
    let response = server
        .http
        .post(server.url("/register"))
        .bearer_auth(initial)
        .json(&json!({
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_jwt",
            "grant_types": ["authorization_code"],
            "scope": "openid profile email",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let registered: Value = response.json().await.unwrap();
    assert_eq!(registered["token_endpoint_auth_method"], "client_secret_jwt", "{registered}");
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let secret = registered["client_secret"].as_str().expect("the secret, once").to_owned();
    assert!(secret.len() >= 64, "long enough for HS512");

    // RFC 7592 read: never the secret again.
    let uri = registered["registration_client_uri"].as_str().unwrap();
    let token = registered["registration_access_token"].as_str().unwrap();
    let read: Value = server.http.get(uri).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert!(read.get("client_secret").is_none(), "{read}");

    let browser = Browser::new(&server);
    let outcome = browser.sign_in(&flow::authorize_url(&server, &client_id, &[]), "alice").await;
    let code = outcome.params().get("code").cloned().expect("a code");
    let assertion = mac("HS256", secret.as_bytes(), &claims_for(&client_id, &server.url("/token")));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = post_with(&server, "/token", &assertion, &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(flow::decode_jwt(body["id_token"].as_str().unwrap()).1["aud"], json!(client_id));
    server.stop().await;
}

async fn a_seeded_client_secret_jwt_client_with_a_fixed_secret_works(backend: Backend) {
    let db = TestDb::create(backend).await;
    let fixed = "a-fixed-seed-secret-of-at-least-thirty-two-bytes-0123456789";
    let dir = std::env::temp_dir().join(format!("lanyard-seed-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("seed.toml");
    std::fs::write(
        &path,
        format!(
            "[[apis]]\nidentifier = \"{API}\"\nname = \"Appointments\"\nscopes = [\"read:appointments\"]\n\n\
             [[clients]]\nclient_id = \"{CLIENT}\"\nclient_secret = \"{fixed}\"\n\
             token_endpoint_auth_method = \"client_secret_jwt\"\ngrant_types = [\"client_credentials\"]\n\
             scope = \"read:appointments\"\n"
        ),
    )
    .unwrap();
    for start in ["first start", "a restart re-applies the seed"] {
        let server = TestServer::start_with(&db, |s| {
            s.seed = Some(path.clone());
            s.key_encryption_key = Some(KEK_A.into());
        })
        .await;
        let column = server.store.client(CLIENT).await.unwrap().unwrap().secret_sealed.expect("sealed");
        assert!(!column.as_stored().contains(fixed), "{start}: sealed");
        let (status, body) =
            post_with(&server, "/token", &mac("HS256", fixed.as_bytes(), &claims(&server.url("/token"))), &CC).await;
        assert_eq!(status, 200, "{start}: {body}");
        server.stop().await;
    }
    let _ = std::fs::remove_dir_all(dir);
}
