//! Dynamic client registration (RFC 7591) at `/register` and the client configuration
//! endpoint (RFC 7592): gated by an initial access token, or open to public clients only
//! and rate-limited per IP, or not served at all.

use lanyard::crypto::sha256_hex;
use lanyard::registry::{self, api::ApiSpec, api::ScopeSpec, client::ClientSpec, client::ClientType};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    registration_is_served_only_when_enabled_and_discovery_says_so,
    token_mode_refuses_a_missing_or_wrong_initial_access_token,
    token_mode_registers_a_confidential_client_that_authenticates_at_the_token_endpoint,
    the_registration_access_token_reads_and_deletes_its_own_client_only,
    invalid_metadata_is_an_rfc_7591_error_and_registers_nothing,
    open_mode_registers_public_clients_only,
    open_mode_limits_registrations_per_client_ip_across_replicas,
);

const INITIAL: &str = "initial-access-token-for-the-tests";
const ORDERS: &str = "https://api.example.test/orders";
const CALLBACK: &str = "http://127.0.0.1:9999/cb";

async fn start(backend: Backend, mode: &'static str) -> (TestDb, TestServer) {
    let db = TestDb::create(backend).await;
    let server = replica(&db, mode).await;
    (db, server)
}

/// A server on `db` with `registration = mode` (and [`INITIAL`] as the token).
async fn replica(db: &TestDb, mode: &'static str) -> TestServer {
    TestServer::start_with(db, |s| {
        s.registration = mode.into();
        s.registration_token = Some(INITIAL.into());
    })
    .await
}

/// A response's status, headers and JSON body (`Null` when there is none).
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().expect("an ASCII header")).unwrap_or("")
    }

    /// Asserts an RFC 7591 §3.2.2 error, and returns its description.
    #[track_caller]
    fn error(&self, status: u16, error: &str) -> &str {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"], error, "{}", self.body);
        assert_eq!(self.header("cache-control"), "no-store");
        self.body["error_description"].as_str().expect("an error_description")
    }

    fn str(&self, name: &str) -> &str {
        self.body[name].as_str().unwrap_or_else(|| panic!("{name:?} is not a string in {}", self.body))
    }
}

/// POSTs `body` to `/register` with `token` as the Bearer credentials.
async fn register(server: &TestServer, token: Option<&str>, body: &Value) -> Reply {
    let mut request = server.http.post(server.url("/register")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Reply::read(request.send().await.expect("request sent")).await
}

/// Sends `method` to a registration_client_uri with `token`.
async fn manage(server: &TestServer, method: reqwest::Method, uri: &str, token: Option<&str>) -> Reply {
    let mut request = server.http.request(method, uri);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Reply::read(request.send().await.expect("request sent")).await
}

fn public_client() -> Value {
    json!({"client_name": "CLI tool", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"})
}

async fn registration_is_served_only_when_enabled_and_discovery_says_so(backend: Backend) {
    let db = TestDb::create(backend).await;
    for (mode, token, served) in
        [("off", true, false), ("token", false, false), ("token", true, true), ("open", false, true)]
    {
        let server = TestServer::start_with(&db, |s| {
            s.registration = mode.into();
            s.registration_token = token.then(|| INITIAL.into());
        })
        .await;
        let discovery = server.get_json("/.well-known/openid-configuration").await;
        let oauth = server.get_json("/.well-known/oauth-authorization-server").await;
        if served {
            let endpoint = json!(server.url("/register"));
            assert_eq!(discovery["registration_endpoint"], endpoint, "{mode}");
            assert_eq!(oauth["registration_endpoint"], endpoint, "{mode}");
        } else {
            assert!(discovery.get("registration_endpoint").is_none(), "{mode}, token {token}: {discovery}");
            assert!(oauth.get("registration_endpoint").is_none(), "{mode}, token {token}");
            let post = register(&server, Some(INITIAL), &public_client()).await;
            assert_eq!(post.status, 404, "{mode}, token {token}: {}", post.body);
            let get = manage(&server, reqwest::Method::GET, &server.url("/register/some-client"), Some(INITIAL)).await;
            assert_eq!(get.status, 404, "{mode}, token {token}");
            assert!(server.store.list_clients().await.unwrap().is_empty(), "nothing was registered");
        }
        server.stop().await;
    }
}

async fn token_mode_refuses_a_missing_or_wrong_initial_access_token(backend: Backend) {
    let (_db, server) = start(backend, "token").await;
    for token in [None, Some("wrong-token"), Some(&INITIAL[..INITIAL.len() - 1]), Some("")] {
        let reply = register(&server, token, &public_client()).await;
        reply.error(401, "invalid_token");
        assert!(reply.header("www-authenticate").starts_with("Bearer"), "{token:?}");
        assert!(reply.header("www-authenticate").contains("error=\"invalid_token\""), "{token:?}");
    }
    let basic = server
        .http
        .post(server.url("/register"))
        .basic_auth("anyone", Some(INITIAL))
        .json(&public_client())
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401, "the initial access token is a Bearer token");
    assert!(server.store.list_clients().await.unwrap().is_empty());
}

async fn token_mode_registers_a_confidential_client_that_authenticates_at_the_token_endpoint(backend: Backend) {
    let (_db, server) = start(backend, "token").await;
    registry::create_api(
        &server.store,
        ApiSpec {
            identifier: ORDERS.into(),
            name: "Orders".into(),
            scopes: vec![ScopeSpec::Name("read:orders".into())],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let reply = register(
        &server,
        Some(INITIAL),
        &json!({
            "client_name": "CI runner",
            "grant_types": ["client_credentials"],
            "scope": "read:orders",
            "default_api": ORDERS,
            "logo_uri": "https://ci.example.test/logo.png",
            "contacts": ["ops@example.test"],
        }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.header("cache-control"), "no-store");
    let client_id = reply.str("client_id").to_owned();
    let secret = reply.str("client_secret").to_owned();
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    assert_eq!(reply.body["client_secret_expires_at"], 0);
    assert!(reply.body["client_id_issued_at"].as_i64().is_some_and(|t| t > 0));
    assert_eq!(reply.body["client_name"], "CI runner");
    assert_eq!(reply.body["grant_types"], json!(["client_credentials"]));
    assert_eq!(reply.body["scope"], "read:orders");
    assert_eq!(reply.body["token_endpoint_auth_method"], "client_secret_basic", "RFC 7591 §2: the default");
    assert!(reply.body.get("contacts").is_none(), "unknown metadata is ignored (RFC 7591 §2)");
    assert_eq!(reply.body["logo_uri"], "https://ci.example.test/logo.png", "display metadata is kept");
    assert_eq!(reply.str("registration_client_uri"), server.url(&format!("/register/{client_id}")));
    let access = reply.str("registration_access_token");
    assert_eq!(access.len(), 43);
    assert_eq!(server.store.registration_token_hash(&client_id).await.unwrap(), Some(sha256_hex(access)));
    let stored = server.store.client(&client_id).await.unwrap().expect("registered");
    assert_eq!(stored.secret_hash, Some(sha256_hex(&secret)), "only hashes are kept");
    assert!(!stored.first_party);

    let token = server
        .http
        .post(server.url("/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    let token: Value = token.json().await.unwrap();
    assert_eq!(token["scope"], "read:orders", "{token}");
    let audit = server.store.recent_audit(5).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "client.register" && e.target == client_id), "{audit:?}");
}

async fn the_registration_access_token_reads_and_deletes_its_own_client_only(backend: Backend) {
    let (_db, server) = start(backend, "token").await;
    let body = json!({"client_name": "Web", "redirect_uris": [CALLBACK], "grant_types": ["authorization_code"]});
    let first = register(&server, Some(INITIAL), &body).await;
    let second = register(&server, Some(INITIAL), &body).await;
    assert_eq!((first.status, second.status), (201, 201));
    let uri = first.str("registration_client_uri").to_owned();
    let access = first.str("registration_access_token").to_owned();
    let client_id = first.str("client_id").to_owned();
    let secret = first.str("client_secret").to_owned();
    assert_ne!(client_id, second.str("client_id"));
    // A client registered by an administrator has no registration access token.
    registry::create_client(
        &server.store,
        ClientSpec { client_id: Some("admin-made".into()), redirect_uris: vec![CALLBACK.into()], ..Default::default() },
    )
    .await
    .unwrap();

    let read = manage(&server, reqwest::Method::GET, &uri, Some(&access)).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.header("cache-control"), "no-store");
    assert_eq!(read.body["client_id"], client_id.as_str());
    assert_eq!(read.body["client_name"], "Web");
    assert_eq!(read.body["redirect_uris"], json!([CALLBACK]));
    assert_eq!(read.body["registration_client_uri"], uri.as_str());
    assert!(read.body.get("client_secret").is_none(), "the secret is not kept: {}", read.body);
    assert!(read.body.get("registration_access_token").is_none(), "nor is the token: {}", read.body);

    let other = second.str("registration_client_uri");
    let admin_made = server.url("/register/admin-made");
    let refusals = [
        ("no token", uri.as_str(), None),
        ("the initial access token", uri.as_str(), Some(INITIAL)),
        ("a wrong token", uri.as_str(), Some("nope")),
        ("another client's token", other, Some(access.as_str())),
        ("an admin-made client", admin_made.as_str(), Some(access.as_str())),
        ("an unknown client", &server.url("/register/nobody"), Some(access.as_str())),
    ];
    for (case, target, token) in refusals {
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let reply = manage(&server, method.clone(), target, token).await;
            assert_eq!(reply.status, 401, "{method} with {case}: {}", reply.body);
            assert_eq!(reply.body["error"], "invalid_token", "{method} with {case}");
        }
    }
    assert_eq!(server.store.list_clients().await.unwrap().len(), 3, "nothing was deleted");

    let deleted = manage(&server, reqwest::Method::DELETE, &uri, Some(&access)).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert!(server.store.client(&client_id).await.unwrap().is_none());
    assert_eq!(manage(&server, reqwest::Method::GET, &uri, Some(&access)).await.status, 401);
    let token = server
        .http
        .post(server.url("/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 401, "a deleted client cannot authenticate");
    assert!(server.store.client(second.str("client_id")).await.unwrap().is_some());
}

async fn invalid_metadata_is_an_rfc_7591_error_and_registers_nothing(backend: Backend) {
    let (_db, server) = start(backend, "token").await;
    let cb = CALLBACK;
    type Case = (&'static str, Value, &'static str, &'static str);
    let cases: [Case; 10] = [
        (
            "an http redirect URI",
            json!({"redirect_uris": ["http://evil.example.test/cb"]}),
            "invalid_redirect_uri",
            "https",
        ),
        ("a fragment", json!({"redirect_uris": ["https://app.example.test/cb#x"]}), "invalid_redirect_uri", "fragment"),
        ("no redirect URI", json!({"grant_types": ["authorization_code"]}), "invalid_redirect_uri", "redirect"),
        (
            "the implicit grant",
            json!({"redirect_uris": [cb], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
            "implicit",
        ),
        (
            "a token response type",
            json!({"redirect_uris": [cb], "response_types": ["token"]}),
            "invalid_client_metadata",
            "response_types",
        ),
        (
            "a chosen client_id",
            json!({"redirect_uris": [cb], "client_id": "mine"}),
            "invalid_client_metadata",
            "client_id",
        ),
        (
            "a chosen secret",
            json!({"redirect_uris": [cb], "client_secret": "mine-mine-mine"}),
            "invalid_client_metadata",
            "client_secret",
        ),
        (
            "an unknown scope",
            json!({"redirect_uris": [cb], "scope": "openid read:nothing"}),
            "invalid_client_metadata",
            "read:nothing",
        ),
        ("a wrong type", json!({"redirect_uris": cb}), "invalid_client_metadata", "sequence"),
        ("not an object", json!([cb]), "invalid_client_metadata", "object"),
    ];
    for (case, body, error, says) in cases {
        let reply = register(&server, Some(INITIAL), &body).await;
        let description = reply.error(400, error);
        assert!(description.contains(says), "{case}: {description}");
    }
    let malformed = server
        .http
        .post(server.url("/register"))
        .bearer_auth(INITIAL)
        .header("content-type", "application/json")
        .body("{\"redirect_uris\": [")
        .send()
        .await
        .unwrap();
    Reply::read(malformed).await.error(400, "invalid_client_metadata");
    assert!(server.store.list_clients().await.unwrap().is_empty());
}

async fn open_mode_registers_public_clients_only(backend: Backend) {
    let (_db, server) = start(backend, "open").await;
    let reply = register(&server, None, &public_client()).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["token_endpoint_auth_method"], "none");
    assert_eq!(reply.body["require_pkce"], true);
    assert_eq!(reply.body["first_party"], false);
    assert!(reply.body.get("client_secret").is_none() && reply.body.get("client_secret_expires_at").is_none());
    assert!(reply.str("registration_access_token").len() >= 43);
    let client = server.store.client(reply.str("client_id")).await.unwrap().expect("registered");
    assert_eq!(client.client_type, ClientType::Public);
    assert!(client.secret_hash.is_none());

    type Case = (&'static str, Value);
    let refusals: [Case; 3] = [
        ("no auth method (client_secret_basic)", json!({"redirect_uris": [CALLBACK]})),
        (
            "client_secret_post",
            json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "client_secret_post"}),
        ),
        (
            "first party",
            json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none", "first_party": true}),
        ),
    ];
    for (case, body) in refusals {
        let description = register(&server, None, &body).await.error(400, "invalid_client_metadata").to_owned();
        assert!(description.contains("public") || description.contains("consent"), "{case}: {description}");
    }
    assert_eq!(server.store.list_clients().await.unwrap().len(), 1);
}

async fn open_mode_limits_registrations_per_client_ip_across_replicas(backend: Backend) {
    let (db, first) = start(backend, "open").await;
    let second = replica(&db, "open").await;
    let limit = lanyard::oauth::register::OPEN_REGISTRATIONS_PER_IP;
    for i in 0..limit {
        let server = if i % 2 == 0 { &first } else { &second };
        let reply = register(server, None, &public_client()).await;
        assert_eq!(reply.status, 201, "registration {i}: {}", reply.body);
    }
    for server in [&first, &second] {
        let reply = register(server, None, &public_client()).await;
        let description = reply.error(429, "temporarily_unavailable");
        assert!(description.contains("too many"), "{description}");
        let retry_after: i64 = reply.header("retry-after").parse().expect("a Retry-After in seconds");
        assert!(retry_after > 0 && retry_after <= lanyard::oauth::register::OPEN_LOCKOUT, "{retry_after}");
    }
    assert_eq!(first.store.list_clients().await.unwrap().len(), usize::try_from(limit).unwrap());
    let lockout = lanyard::oauth::register::OPEN_LOCKOUT;
    let reservation = first.store.reserve_attempt("register:127.0.0.1", limit, lockout).await.unwrap();
    assert!(
        matches!(reservation, lanyard::store::throttle::Reservation::Refused { .. }),
        "counted in the database: {reservation:?}"
    );
}
