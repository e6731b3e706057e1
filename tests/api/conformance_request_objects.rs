//! Request objects (OIDC Core §6, RFC 9101) as the conformance suite's Dynamic OP plan
//! sends them: `oidcc-request-uri-signed-rs256` (a dynamically registered client, an RS256
//! request object served at a registered `request_uri`) and
//! `oidcc-ensure-request-object-with-redirect-uri`, plus signed objects by value and every
//! refusal. Objects are built here with josekit directly, from freshly generated keys.
//!
//! The suite's unsigned modules (`oidcc-request-uri-unsigned`, and the Basic plan's
//! `…-supported-correctly-or-rejected-as-unsupported`) are skipped by the suite because
//! discovery does not list `none`; `unsigned_request_objects_are_refused…` checks what they
//! would get.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::both_backends;
use crate::conformance_client_auth::{Key, jwks};
use crate::flow::{self, Browser, Outcome, REDIRECT_URI};
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    oidcc_request_uri_signed_rs256,
    oidcc_ensure_request_object_with_redirect_uri,
    a_signed_request_object_by_value_is_used_with_rs256_and_es256,
    unsigned_request_objects_are_refused_as_invalid_request_object,
    request_objects_with_a_bad_signature_key_or_alg_are_refused,
    request_object_claims_must_name_this_client_and_server_and_be_current,
    an_unregistered_request_uri_is_never_fetched,
    a_request_uri_that_fails_or_serves_no_jwt_is_invalid_request_uri,
    a_client_without_keys_gets_request_not_supported,
    request_and_request_uri_together_are_invalid_request,
    registration_takes_request_uris_and_refuses_unsigned_request_objects,
    discovery_advertises_signed_request_objects_only,
    the_admin_api_and_seed_files_carry_request_uris_and_the_algorithm,
);

const INITIAL: &str = "initial-access-token-for-request-objects";
const CLIENT: &str = "web";
const STATE: &str = "state-in-the-object";
const NONCE: &str = "nonce-in-the-object";

/// What the request_uri listener answers.
#[derive(Clone)]
struct Served {
    status: u16,
    content_type: &'static str,
    body: String,
}

/// A listener on loopback that serves request objects, and counts the requests it got.
struct RequestUriHost {
    base: String,
    served: Arc<Mutex<Served>>,
    hits: Arc<AtomicUsize>,
}

impl RequestUriHost {
    fn start() -> RequestUriHost {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let served = Arc::new(Mutex::new(Served { status: 404, content_type: "text/plain", body: String::new() }));
        let hits = Arc::new(AtomicUsize::new(0));
        let (s, h) = (served.clone(), hits.clone());
        let server = HttpServer::new(move || {
            let (served, hits) = (s.clone(), h.clone());
            App::new().default_service(web::to(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                let answer = served.lock().unwrap().clone();
                async move {
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(answer.status).unwrap())
                        .content_type(answer.content_type)
                        .body(answer.body)
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        RequestUriHost { base, served, hits }
    }

    /// A random path, as CreateRandomRequestUriWithFragment makes (`requesturi/…#hash`).
    fn random_uri(&self) -> String {
        let hash = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(lanyard::crypto::random_token(16).as_bytes()));
        format!("{}/requesturi/{}#{hash}", self.base, lanyard::crypto::random_token(32))
    }

    /// Serves `body` as the suite does (`application/jwt`).
    fn serve(&self, body: &str) {
        self.answer(200, "application/jwt", body.to_owned());
    }

    fn answer(&self, status: u16, content_type: &'static str, body: String) {
        *self.served.lock().unwrap() = Served { status, content_type, body };
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn issuer(server: &TestServer) -> String {
    server.get_json("/.well-known/openid-configuration").await["issuer"].as_str().unwrap().to_owned()
}

/// The authorization request as the suite puts it in the object
/// (ConvertAuthorizationEndpointRequestToRequestObject), with aud and iss
/// (AddAudToRequestObject, AddIssToRequestObject).
fn object_claims(client_id: &str, issuer: &str) -> Value {
    json!({
        "client_id": client_id, "redirect_uri": REDIRECT_URI, "response_type": "code",
        "scope": "openid", "state": STATE, "nonce": NONCE,
        "aud": issuer, "iss": client_id,
    })
}

/// An /authorize URL as BuildRequestObjectBy…RedirectToAuthorizationEndpoint makes it:
/// response_type, client_id, scope and redirect_uri repeated in the query, then `extra`.
fn authorize_url(server: &TestServer, client_id: &str, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

/// A server in dev mode (a request_uri on loopback is fetched) with registration by
/// initial access token.
async fn dev_server(db: &TestDb) -> TestServer {
    TestServer::start_with(db, |s| {
        s.dev_login = true;
        s.registration = "token".into();
        s.registration_token = Some(INITIAL.into());
    })
    .await
}

/// Registers a client at /register as OIDCCCreateDynamicClientRegistrationRequest does
/// (client_secret_basic, its public jwks, one redirect URI) plus `extra` members; returns
/// the registration response.
async fn register(server: &TestServer, extra: Value) -> (u16, Value) {
    let mut body = json!({
        "client_name": "oidcc-request-uri-signed-rs256",
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "response_types": ["code"],
        "redirect_uris": [REDIRECT_URI],
        // As certification setups do: the suite sends no PKCE.
        "require_pkce": false,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let response = server.http.post(server.url("/register")).bearer_auth(INITIAL).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Redeems a code with client_secret_basic; checks the id_token carries the object's nonce.
async fn redeem(server: &TestServer, client_id: &str, secret: &str, code: &str) -> Value {
    let form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT_URI)];
    let response =
        server.http.post(server.url("/token")).basic_auth(client_id, Some(secret)).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let (_, id_token) = flow::decode_jwt(tokens["id_token"].as_str().expect("an id_token"));
    assert_eq!(id_token["nonce"], NONCE, "the nonce came from the request object");
    assert_eq!(id_token["aud"], client_id);
    id_token
}

/// The authorization response of a completed sign-in: the code, with the object's state.
fn code_of(outcome: &Outcome) -> String {
    let Outcome::Redirect { location, params } = outcome else {
        panic!("a redirect to the client: {}", outcome.html())
    };
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(params.get("state").map(String::as_str), Some(STATE), "the state came from the request object");
    params.get("code").cloned().unwrap_or_else(|| panic!("a code: {params:?}"))
}

/// An error response at the registered redirect_uri: returns its error and description.
fn error_of(outcome: &Outcome, state: Option<&str>) -> (String, String) {
    let Outcome::Redirect { location, params } = outcome else { panic!("an error redirect: {}", outcome.html()) };
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert!(params.contains_key("iss"), "RFC 9207 iss: {params:?}");
    assert_eq!(params.get("state").map(String::as_str), state, "{params:?}");
    (params["error"].clone(), params.get("error_description").cloned().unwrap_or_default())
}

async fn oidcc_request_uri_signed_rs256(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = dev_server(&db).await;
    flow::add_user(&server, "alice").await;
    let host = RequestUriHost::start();
    let request_uri = host.random_uri();
    let key = Key::generate("RS256", "suite-rs256");
    let (status, registered) = register(
        &server,
        json!({"jwks": jwks(&[&key]), "request_uris": [request_uri], "request_object_signing_alg": "RS256"}),
    )
    .await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["request_uris"], json!([request_uri]));
    assert_eq!(registered["request_object_signing_alg"], "RS256");
    let client_id = registered["client_id"].as_str().unwrap();
    let secret = registered["client_secret"].as_str().unwrap();
    // CheckDiscEndpointRequestObjectSigningAlgValuesSupportedContainsRS256,
    // CheckDiscEndpointRequestUriParameterSupported.
    let metadata = server.get_json("/.well-known/openid-configuration").await;
    assert!(metadata["request_object_signing_alg_values_supported"].as_array().unwrap().contains(&json!("RS256")));
    assert_eq!(metadata["request_uri_parameter_supported"], true);

    host.serve(&key.sign(&object_claims(client_id, &issuer(&server).await)));
    let url = authorize_url(&server, client_id, REDIRECT_URI, &[("request_uri", &request_uri)]);
    let outcome = Browser::new(&server).sign_in(&url, "alice").await;
    let code = code_of(&outcome);
    assert_eq!(host.hits(), 1, "the request_uri was fetched once");
    redeem(&server, client_id, secret, &code).await;
    server.stop().await;
}

/// The object carries the registered redirect_uri, the query an unregistered one
/// (AddInvalidRedirectUriToAuthorizationRequest): the object's is used. (The suite sends
/// this object unsigned and skips the module since `none` is not listed; signed, it runs.)
/// The other way round, Lanyard shows the error page: it never redirects to an
/// unregistered URI, whichever part of the request names it.
async fn oidcc_ensure_request_object_with_redirect_uri(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let key = Key::generate("RS256", "k1");
    let fx = keyed_client(&server, &[&key], |_| {}).await;
    let iss = issuer(&server).await;
    let invalid = format!("{REDIRECT_URI}/_invalid");
    let object = key.sign(&object_claims(CLIENT, &iss));
    let url = authorize_url(&server, CLIENT, &invalid, &[("request", &object)]);
    let code = code_of(&Browser::new(&server).sign_in(&url, "alice").await);
    redeem(&server, CLIENT, &fx.client_secret, &code).await;

    let mut claims = object_claims(CLIENT, &iss);
    claims["redirect_uri"] = json!(invalid);
    let url = authorize_url(&server, CLIENT, REDIRECT_URI, &[("request", &key.sign(&claims))]);
    let outcome = Browser::new(&server).sign_in(&url, "alice").await;
    assert_eq!(outcome.status(), 400);
    assert!(outcome.html().contains("not registered"), "{}", outcome.html());

    // A refused object with an unregistered redirect_uri in the query: a page too.
    let url = authorize_url(&server, CLIENT, &invalid, &[("request", &Key::generate("RS256", "k1").sign(&claims))]);
    let outcome = Browser::new(&server).open(&url).await;
    assert_eq!(outcome.status(), 400);
    assert!(outcome.html().contains("invalid_request_object"), "{}", outcome.html());
    assert!(outcome.html().contains("not registered"), "{}", outcome.html());
    server.stop().await;
}

/// The fixture's confidential `web` client with these public keys, adjusted.
async fn keyed_client(
    server: &TestServer,
    keys: &[&Key],
    adjust: impl FnOnce(&mut lanyard::registry::client::ClientSpec),
) -> flow::Fixture {
    let set = jwks(keys);
    flow::fixture_with(server, |s| {
        s.jwks = Some(set);
        s.scope = Some("openid profile email".into());
        s.require_pkce = Some(false);
        adjust(s);
    })
    .await
}

async fn a_signed_request_object_by_value_is_used_with_rs256_and_es256(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let rsa = Key::generate("RS256", "rsa");
    let ec = Key::generate("ES256", "ec");
    let fx = keyed_client(&server, &[&rsa, &ec], |s| s.require_pkce = Some(true)).await;
    let iss = issuer(&server).await;
    for (alg, key) in [("RS256", &rsa), ("ES256", &ec)] {
        // Everything in the object: PKCE, the claims request as a JSON object, max_age as a
        // number; the query's scope (openid) is replaced by the object's.
        let mut claims = object_claims(CLIENT, &iss);
        claims["scope"] = json!("openid email");
        claims["code_challenge"] = json!(flow::s256(flow::VERIFIER));
        claims["code_challenge_method"] = json!("S256");
        claims["claims"] = json!({"id_token": {"email": {"essential": true}}});
        claims["max_age"] = json!(3600);
        claims["exp"] = json!(now() + 300);
        let url = authorize_url(&server, CLIENT, REDIRECT_URI, &[("request", &key.sign(&claims)), ("state", "q")]);
        let code = code_of(&Browser::new(&server).sign_in(&url, "alice").await);
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", flow::VERIFIER),
        ];
        let response = server
            .http
            .post(server.url("/token"))
            .basic_auth(CLIENT, Some(&fx.client_secret))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{alg}: the PKCE challenge came from the object");
        let tokens: Value = response.json().await.unwrap();
        assert!(tokens["scope"].as_str().unwrap().contains("email"), "{tokens}");
        let (_, id_token) = flow::decode_jwt(tokens["id_token"].as_str().unwrap());
        assert_eq!(id_token["nonce"], NONCE);
        assert_eq!(id_token["email"], "alice@example.test", "{alg}: the claims request came from the object");
    }
    server.stop().await;
}

/// An `alg: none` object (SerializeRequestObjectWithNullAlgorithm).
fn unsigned(claims: &Value) -> String {
    format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

async fn unsigned_request_objects_are_refused_as_invalid_request_object(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = dev_server(&db).await;
    let key = Key::generate("RS256", "k1");
    let host = RequestUriHost::start();
    let request_uri = host.random_uri();
    keyed_client(&server, &[&key], |s| s.request_uris = vec![request_uri.clone()]).await;
    let object = unsigned(&object_claims(CLIENT, &issuer(&server).await));
    host.serve(&object);
    for extra in [("request", object.as_str()), ("request_uri", request_uri.as_str())] {
        let url = authorize_url(&server, CLIENT, REDIRECT_URI, &[extra, ("state", "q")]);
        let (error, description) = error_of(&Browser::new(&server).open(&url).await, Some("q"));
        assert_eq!(error, "invalid_request_object", "{}", extra.0);
        assert!(description.contains("must be signed with one of the client's registered keys"), "{description}");
    }
    server.stop().await;
}

async fn request_objects_with_a_bad_signature_key_or_alg_are_refused(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let rsa = Key::generate("RS256", "rsa");
    let ec = Key::generate("ES256", "ec");
    keyed_client(&server, &[&rsa, &ec], |s| s.request_object_signing_alg = Some("RS256".into())).await;
    let claims = object_claims(CLIENT, &issuer(&server).await);
    let stranger = Key::generate("RS256", "rsa");
    let hs256 = {
        let signer = josekit::jws::HS256.signer_from_bytes(b"a-secret-of-at-least-32-bytes-long!!").unwrap();
        josekit::jws::serialize_compact(claims.to_string().as_bytes(), &josekit::jws::JwsHeader::new(), &signer)
            .unwrap()
    };
    let cases = [
        (stranger.sign(&claims), "signature does not verify"),
        (rsa.sign_with_kid(&claims, Some("unknown")), "kid \"unknown\""),
        (ec.sign(&claims), "differs from the registered request_object_signing_alg"),
        (hs256, "alg \"HS256\" is not accepted"),
        ("not.a-jwt".to_owned(), "invalid_request_object"),
    ];
    for (object, reason) in cases {
        let url = authorize_url(&server, CLIENT, REDIRECT_URI, &[("request", &object), ("state", "q")]);
        let (error, description) = error_of(&Browser::new(&server).open(&url).await, Some("q"));
        assert_eq!(error, "invalid_request_object", "{reason}: {description}");
        assert!(description.contains(reason) || reason == error, "{reason}: {description}");
    }
    // The registered RS256 key still works.
    let url = authorize_url(&server, CLIENT, REDIRECT_URI, &[("request", &rsa.sign(&claims))]);
    code_of(&Browser::new(&server).sign_in(&url, "alice").await);
    server.stop().await;
}

async fn request_object_claims_must_name_this_client_and_server_and_be_current(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let key = Key::generate("PS256", "ps");
    keyed_client(&server, &[&key], |_| {}).await;
    let iss = issuer(&server).await;
    let cases: [(&str, Value, &str); 7] = [
        ("iss", json!("someone-else"), "iss is not the client_id"),
        ("aud", json!("https://other-op.example.test"), "aud does not name this server"),
        ("aud", json!(["https://other-op.example.test"]), "aud does not name this server"),
        ("client_id", json!("someone-else"), "client_id is not the client_id"),
        ("exp", json!(now() - 3600), "expired"),
        ("nbf", json!(now() + 3600), "nbf"),
        ("request_uri", json!("https://rp.example.test/ro"), "must not contain request_uri"),
    ];
    for (name, value, reason) in cases {
        let mut claims = object_claims(CLIENT, &iss);
        claims[name] = value;
        let url = authorize_url(&server, CLIENT, REDIRECT_URI, &[("request", &key.sign(&claims)), ("state", "q")]);
        let (error, description) = error_of(&Browser::new(&server).open(&url).await, Some("q"));
        assert_eq!(error, "invalid_request_object", "{name}: {description}");
        assert!(description.contains(reason), "{name}: {description}");
    }
    // iss, aud (a list naming this server) and exp within the leeway are fine; so is no
    // iss/aud/exp at all (OIDC Core §6.1 makes them optional).
    let mut claims = object_claims(CLIENT, &iss);
    claims["aud"] = json!(["https://other-op.example.test", iss]);
    claims["exp"] = json!(now() - 5);
    let url = authorize_url(&server, CLIENT, REDIRECT_URI, &[("request", &key.sign(&claims))]);
    code_of(&Browser::new(&server).sign_in(&url, "alice").await);
    let mut bare = object_claims(CLIENT, &iss);
    for name in ["iss", "aud", "client_id"] {
        bare.as_object_mut().unwrap().remove(name);
    }
    let url = authorize_url(&server, CLIENT, REDIRECT_URI, &[("request", &key.sign(&bare))]);
    code_of(&Browser::new(&server).sign_in(&url, "alice").await);
    server.stop().await;
}

async fn an_unregistered_request_uri_is_never_fetched(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = dev_server(&db).await;
    let key = Key::generate("RS256", "k1");
    let host = RequestUriHost::start();
    let registered = host.random_uri();
    keyed_client(&server, &[&key], |s| s.request_uris = vec![registered.clone()]).await;
    host.serve(&key.sign(&object_claims(CLIENT, &issuer(&server).await)));
    let path_only = registered.split('#').next().unwrap();
    let unregistered = [
        format!("{}/requesturi/other", host.base),
        format!("{path_only}x"),
        format!("{path_only}?x=1"),
        "not a url".to_owned(),
    ];
    for uri in &unregistered {
        let url = authorize_url(&server, CLIENT, REDIRECT_URI, &[("request_uri", uri), ("state", "q")]);
        let (error, description) = error_of(&Browser::new(&server).open(&url).await, Some("q"));
        assert_eq!(error, "invalid_request_uri", "{uri}: {description}");
    }
    // A pushed request's reference (RFC 9126) that was never pushed: nothing fetched, and,
    // the reference being the whole request, no redirect_uri to trust: a page (see par.rs).
    let url = authorize_url(
        &server,
        CLIENT,
        REDIRECT_URI,
        &[("request_uri", "urn:ietf:params:oauth:request_uri:par-handle"), ("state", "q")],
    );
    let page = Browser::new(&server).open(&url).await;
    assert_eq!(page.status(), 400);
    assert!(page.html().contains("names no pushed authorization request"), "{}", page.html());
    assert_eq!(host.hits(), 0, "nothing was fetched");
    // The registered one, sent without its fragment (OIDC Core §6.2: compared without it).
    let url = authorize_url(&server, CLIENT, REDIRECT_URI, &[("request_uri", path_only)]);
    code_of(&Browser::new(&server).sign_in(&url, "alice").await);
    assert_eq!(host.hits(), 1);
    server.stop().await;
}

async fn a_request_uri_that_fails_or_serves_no_jwt_is_invalid_request_uri(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = dev_server(&db).await;
    let key = Key::generate("RS256", "k1");
    let host = RequestUriHost::start();
    let request_uri = host.random_uri();
    keyed_client(&server, &[&key], |s| s.request_uris = vec![request_uri.clone()]).await;
    let signed = key.sign(&object_claims(CLIENT, &issuer(&server).await));
    let cases: [(u16, &'static str, String, &str); 4] = [
        (404, "text/plain", "gone".into(), "404"),
        (200, "application/jwt", format!("{signed}{}", "A".repeat(20 * 1024)), "larger than"),
        (200, "application/json", r#"{"client_id": "web"}"#.into(), "not serve a signed JWT"),
        (200, "text/html", "<html>hello</html>".into(), "not serve a signed JWT"),
    ];
    for (i, (status, content_type, body, reason)) in cases.into_iter().enumerate() {
        host.answer(status, content_type, body);
        let url = authorize_url(&server, CLIENT, REDIRECT_URI, &[("request_uri", &request_uri), ("state", "q")]);
        let (error, description) = error_of(&Browser::new(&server).open(&url).await, Some("q"));
        assert_eq!(error, "invalid_request_uri", "{reason}: {description}");
        assert!(description.contains(reason), "{reason}: {description}");
        assert_eq!(host.hits(), i + 1);
    }
    server.stop().await;

    // Outside dev mode, a loopback request_uri is not fetched.
    let strict = TestServer::start(&db).await;
    host.serve(&signed);
    let url = authorize_url(&strict, CLIENT, REDIRECT_URI, &[("request_uri", &request_uri), ("state", "q")]);
    let (error, description) = error_of(&Browser::new(&strict).open(&url).await, Some("q"));
    assert_eq!(error, "invalid_request_uri", "{description}");
    assert!(description.contains("https") || description.contains("loopback"), "{description}");
    assert_eq!(host.hits(), 4, "not fetched");
    strict.stop().await;
}

/// What the Basic plan's static client sees: it registered no keys, so request objects are
/// not supported for it (request_not_supported / request_uri_not_supported are the
/// answers the "…-or-rejected-as-unsupported" modules accept), and nothing is fetched.
async fn a_client_without_keys_gets_request_not_supported(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = dev_server(&db).await;
    let host = RequestUriHost::start();
    let request_uri = host.random_uri();
    let fx = flow::fixture_with(&server, |s| s.request_uris = vec![request_uri.clone()]).await;
    let key = Key::generate("RS256", "k1");
    let object = key.sign(&object_claims(&fx.client_id, &issuer(&server).await));
    host.serve(&object);
    for (extra, expected) in [
        (("request", object.as_str()), "request_not_supported"),
        (("request_uri", request_uri.as_str()), "request_uri_not_supported"),
    ] {
        let url = authorize_url(&server, CLIENT, REDIRECT_URI, &[extra, ("state", "q")]);
        let (error, description) = error_of(&Browser::new(&server).open(&url).await, Some("q"));
        assert_eq!(error, expected);
        assert!(description.contains("register jwks or jwks_uri"), "{description}");
    }
    assert_eq!(host.hits(), 0);
    server.stop().await;
}

async fn request_and_request_uri_together_are_invalid_request(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = dev_server(&db).await;
    let key = Key::generate("RS256", "k1");
    let host = RequestUriHost::start();
    let request_uri = host.random_uri();
    keyed_client(&server, &[&key], |s| s.request_uris = vec![request_uri.clone()]).await;
    let object = key.sign(&object_claims(CLIENT, &issuer(&server).await));
    host.serve(&object);
    let url = authorize_url(
        &server,
        CLIENT,
        REDIRECT_URI,
        &[("request", &object), ("request_uri", &request_uri), ("state", "q")],
    );
    let (error, description) = error_of(&Browser::new(&server).open(&url).await, Some("q"));
    assert_eq!(error, "invalid_request");
    assert!(description.contains("not both"), "{description}");
    assert_eq!(host.hits(), 0);
    server.stop().await;
}

async fn registration_takes_request_uris_and_refuses_unsigned_request_objects(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = dev_server(&db).await;
    let key = Key::generate("ES256", "k1");
    let cases = [
        (json!({"request_object_signing_alg": "none"}), "must be signed"),
        (json!({"request_object_signing_alg": "HS256"}), "not supported"),
        (json!({"request_uris": ["http://rp.example.test/ro"]}), "https"),
        (json!({"request_uris": ["ro.jwt"]}), "absolute"),
    ];
    for (extra, reason) in cases {
        let mut extra = extra;
        extra["jwks"] = jwks(&[&key]);
        let (status, body) = register(&server, extra.clone()).await;
        assert_eq!(status, 400, "{extra}: {body}");
        assert_eq!(body["error"], "invalid_client_metadata");
        assert!(body["error_description"].as_str().unwrap().contains(reason), "{extra}: {body}");
    }
    let uris = json!(["https://rp.example.test/ro/1#abc", "http://127.0.0.1:8000/ro"]);
    let (status, body) =
        register(&server, json!({"jwks": jwks(&[&key]), "request_uris": uris, "request_object_signing_alg": "ES256"}))
            .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["request_uris"], uris);
    assert_eq!(body["request_object_signing_alg"], "ES256");
    // RFC 7592 read-back shows the same, from the store.
    let client_uri = body["registration_client_uri"].as_str().unwrap();
    let token = body["registration_access_token"].as_str().unwrap();
    let read: Value = server.http.get(client_uri).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(read["request_uris"], uris);
    assert_eq!(read["request_object_signing_alg"], "ES256");
    server.stop().await;
}

async fn discovery_advertises_signed_request_objects_only(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let metadata = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(metadata["request_parameter_supported"], true);
    assert_eq!(metadata["request_uri_parameter_supported"], true);
    assert_eq!(metadata["require_request_uri_registration"], true);
    assert_eq!(metadata["request_object_signing_alg_values_supported"], json!(["RS256", "PS256", "ES256", "EdDSA"]));
    server.stop().await;
}

/// The admin API takes the two settings (with the page's validation) and a seed export
/// carries them, so a seed round-trips them.
async fn the_admin_api_and_seed_files_carry_request_uris_and_the_algorithm(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let token = "request-objects-admin-token-with-plenty-of-entropy-0123456789";
    server.store.insert_admin_token("ci", &lanyard::crypto::sha256_hex(token)).await.unwrap();
    let key = Key::generate("EdDSA", "ed");
    let client = |alg: &str| {
        json!({
            "client_id": "ro", "redirect_uris": [REDIRECT_URI], "jwks": jwks(&[&key]),
            "request_uris": ["https://rp.example.test/ro#h"], "request_object_signing_alg": alg,
        })
    };
    let post = |body: Value| server.http.post(server.url("/admin/api/clients")).bearer_auth(token).json(&body).send();
    let refused = post(client("none")).await.unwrap();
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert!(problem.to_string().contains("request_object_signing_alg"), "{problem}");
    let created = post(client("EdDSA")).await.unwrap();
    assert_eq!(created.status(), 201);
    let read: Value = server
        .http
        .get(server.url("/admin/api/clients/ro"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["request_uris"], json!(["https://rp.example.test/ro#h"]));
    assert_eq!(read["request_object_signing_alg"], "EdDSA");
    let exported = lanyard::seed::export(&server.store).await.unwrap();
    lanyard::seed::Seed::parse("export.toml", &exported).expect("the export is a valid seed file");
    assert!(exported.contains("request_uris = [\"https://rp.example.test/ro#h\"]"), "{exported}");
    assert!(exported.contains("request_object_signing_alg = \"EdDSA\""), "{exported}");
    server.stop().await;
}
