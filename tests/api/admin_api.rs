//! The admin API (`/admin/api/…`): clients, users and APIs as JSON for callers with an admin
//! token; RFC 7807 problems for every refusal; an audit entry for every change.

use std::process::Command;

use lanyard::crypto::sha256_hex;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::both_backends;
use crate::flow::{self, Browser};
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    a_created_client_shows_its_secret_once_and_the_secret_works_at_the_token_endpoint,
    an_update_replaces_a_clients_settings_and_a_delete_removes_it,
    a_public_client_made_confidential_gets_its_secret_in_the_update_response,
    invalid_client_settings_are_a_422_problem_naming_each_field,
    a_duplicate_is_a_409_problem,
    requests_without_a_valid_admin_token_are_a_401_problem_with_a_bearer_challenge,
    bodies_that_are_not_the_expected_json_are_problems_too,
    users_are_created_read_updated_and_deleted_without_ever_showing_a_password,
    disabling_a_user_ends_their_sessions_and_revokes_their_tokens,
    apis_are_created_read_updated_and_deleted_by_identifier,
    every_change_is_in_the_audit_log_under_the_tokens_name,
    a_token_created_with_the_cli_works_until_it_is_removed,
    minted_tokens_are_real_tokens_accepted_where_flow_tokens_are,
    deleting_an_api_takes_its_scopes_and_default_away_from_clients,
);

const TOKEN: &str = "admin-api-test-token-with-plenty-of-entropy-0123456789";
const ORDERS: &str = "https://api.example.test/orders";
const CALLBACK: &str = "https://app.example.test/cb";

/// A server with the admin token [`TOKEN`] named `ci`.
async fn start(backend: Backend) -> (TestDb, TestServer) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    server.store.insert_admin_token("ci", &sha256_hex(TOKEN)).await.expect("admin token stored");
    (db, server)
}

/// A response's status, headers and JSON body (`Null` when there is none).
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().expect("an ASCII header")).unwrap_or("")
    }

    /// Asserts an RFC 7807 problem with `status`, and returns its body.
    #[track_caller]
    fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.header("content-type"), "application/problem+json", "{}", self.body);
        assert_eq!(self.body["type"], "about:blank", "{}", self.body);
        assert_eq!(self.body["status"], status, "{}", self.body);
        assert!(self.body["title"].as_str().is_some_and(|t| !t.is_empty()), "{}", self.body);
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{}", self.body);
        &self.body
    }

    /// The fields a 422 problem names, in order.
    #[track_caller]
    fn invalid_fields(&self) -> Vec<String> {
        let errors = self.problem(422)["errors"].as_array().expect("an errors array").clone();
        for e in &errors {
            assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
        }
        errors.iter().map(|e| e["field"].as_str().expect("a field").to_owned()).collect()
    }
}

/// Sends a request to the admin API, with `token` as the Bearer credentials.
async fn call_with(server: &TestServer, token: Option<&str>, method: Method, path: &str, body: Option<Value>) -> Reply {
    let mut request = server.http.request(method, server.url(&format!("/admin/api{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

async fn call(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> Reply {
    call_with(server, Some(TOKEN), method, path, body).await
}

async fn create_orders_api(server: &TestServer) {
    let reply = call(
        server,
        Method::POST,
        "/apis",
        Some(json!({"identifier": ORDERS, "name": "Orders", "scopes": ["read:orders"]})),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

async fn a_created_client_shows_its_secret_once_and_the_secret_works_at_the_token_endpoint(backend: Backend) {
    let (_db, server) = start(backend).await;
    create_orders_api(&server).await;
    let created = call(
        &server,
        Method::POST,
        "/clients",
        Some(json!({
            "client_id": "reporting",
            "client_name": "Reporting job",
            "grant_types": ["client_credentials"],
            "scope": "read:orders",
            "default_api": ORDERS,
        })),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("location"), "/admin/api/clients/reporting");
    assert_eq!(created.header("cache-control"), "no-store");
    let secret = created.body["client_secret"].as_str().expect("the secret is shown on creation").to_owned();
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    assert_eq!(created.body["client_secret_expires_at"], 0);
    assert!(created.body["client_id_issued_at"].as_i64().is_some_and(|t| t > 0), "{}", created.body);
    assert_eq!(created.body["client_id"], "reporting");
    assert_eq!(created.body["client_name"], "Reporting job");
    assert_eq!(created.body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(created.body["grant_types"], json!(["client_credentials"]));
    assert_eq!(created.body["default_api"], ORDERS);
    let stored = server.store.client("reporting").await.unwrap().expect("stored");
    assert_eq!(stored.secret_hash.as_deref(), Some(sha256_hex(&secret).as_str()), "only the hash is kept");

    let token = server
        .http
        .post(server.url("/token"))
        .basic_auth("reporting", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    let token: Value = token.json().await.unwrap();
    assert_eq!(token["token_type"], "Bearer", "{token}");
    assert_eq!(token["scope"], "read:orders", "{token}");

    let read = call(&server, Method::GET, "/clients/reporting", None).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["client_name"], "Reporting job");
    assert!(read.body.get("client_secret").is_none() && read.body.get("client_secret_expires_at").is_none());
    let list = call(&server, Method::GET, "/clients", None).await;
    assert_eq!(list.status, 200);
    let clients = list.body.as_array().expect("an array");
    assert_eq!(clients.iter().map(|c| c["client_id"].as_str().unwrap()).collect::<Vec<_>>(), ["reporting"]);
    assert!(clients.iter().all(|c| c.get("client_secret").is_none()), "{}", list.body);
}

async fn an_update_replaces_a_clients_settings_and_a_delete_removes_it(backend: Backend) {
    let (_db, server) = start(backend).await;
    let created = call(
        &server,
        Method::POST,
        "/clients",
        Some(json!({"client_id": "web", "client_name": "Web", "redirect_uris": [CALLBACK], "scope": "openid profile"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["client_secret"].as_str().expect("a secret").to_owned();

    // What a GET returns can be changed and PUT back (read-only members are ignored).
    let mut settings = call(&server, Method::GET, "/clients/web", None).await.body;
    settings["redirect_uris"] = json!(["https://app.example.test/new-cb"]);
    settings["client_name"] = json!("Web app");
    let updated = call(&server, Method::PUT, "/clients/web", Some(settings.clone())).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["redirect_uris"], json!(["https://app.example.test/new-cb"]));
    assert_eq!(updated.body["client_name"], "Web app");
    assert_eq!(updated.body["scope"], "openid profile");
    assert!(updated.body.get("client_secret").is_none(), "an update shows no secret: {}", updated.body);
    let stored = server.store.client("web").await.unwrap().expect("still there");
    assert_eq!(
        stored.redirect_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        ["https://app.example.test/new-cb"]
    );
    assert!(stored.secret_matches(&secret), "an update keeps the secret");

    // A replacement: what is left out goes back to its default.
    let replaced =
        call(&server, Method::PUT, "/clients/web", Some(json!({"redirect_uris": [CALLBACK], "client_name": "Web"})))
            .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["scope"], "openid");

    type Case = (&'static str, Value, &'static str);
    let refusals: [Case; 3] = [
        ("another id", json!({"client_id": "other", "redirect_uris": [CALLBACK]}), "client_id"),
        ("a secret", json!({"client_secret": "chosen-secret-value", "redirect_uris": [CALLBACK]}), "client_secret"),
        (
            "public",
            json!({"token_endpoint_auth_method": "none", "redirect_uris": [CALLBACK]}),
            "token_endpoint_auth_method",
        ),
    ];
    for (case, body, field) in refusals {
        let reply = call(&server, Method::PUT, "/clients/web", Some(body)).await;
        assert_eq!(reply.invalid_fields(), [field], "{case}");
    }
    let unknown = call(&server, Method::PUT, "/clients/nobody", Some(json!({"redirect_uris": [CALLBACK]}))).await;
    assert!(unknown.problem(404)["detail"].as_str().unwrap().contains("nobody"));

    let deleted = call(&server, Method::DELETE, "/clients/web", None).await;
    assert_eq!(deleted.status, 204);
    assert!(server.store.client("web").await.unwrap().is_none());
    call(&server, Method::GET, "/clients/web", None).await.problem(404);
    call(&server, Method::DELETE, "/clients/web", None).await.problem(404);
}

async fn a_public_client_made_confidential_gets_its_secret_in_the_update_response(backend: Backend) {
    let (_db, server) = start(backend).await;
    let spa = json!({"client_id": "spa", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"});
    let created = call(&server, Method::POST, "/clients", Some(spa)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(created.body.get("client_secret").is_none(), "a public client has no secret: {}", created.body);

    let updated = call(
        &server,
        Method::PUT,
        "/clients/spa",
        Some(json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "client_secret_post"})),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let secret = updated.body["client_secret"].as_str().expect("the new secret, shown once");
    assert_eq!(secret.len(), 43);
    assert_eq!(updated.body["client_secret_expires_at"], 0);
    assert!(server.store.client("spa").await.unwrap().unwrap().secret_matches(secret));

    let rotated = call(&server, Method::POST, "/clients/spa/rotate-secret", None).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_secret = rotated.body["client_secret"].as_str().expect("a rotated secret");
    let stored = server.store.client("spa").await.unwrap().unwrap();
    assert!(stored.secret_matches(new_secret) && !stored.secret_matches(secret), "the old secret stops working");
}

async fn invalid_client_settings_are_a_422_problem_naming_each_field(backend: Backend) {
    let (_db, server) = start(backend).await;
    type Case = (&'static str, Value, &'static str);
    let cases: [Case; 6] = [
        ("an http redirect URI", json!({"redirect_uris": ["http://evil.example.test/cb"]}), "redirect_uris"),
        ("no redirect URI for the code flow", json!({}), "redirect_uris"),
        ("an unsupported grant", json!({"grant_types": ["password"], "redirect_uris": [CALLBACK]}), "grant_types"),
        ("a scope no API defines", json!({"scope": "openid read:nothing", "redirect_uris": [CALLBACK]}), "scope"),
        ("an unknown default API", json!({"default_api": ORDERS, "redirect_uris": [CALLBACK]}), "default_api"),
        (
            "an unknown auth method",
            json!({"token_endpoint_auth_method": "tls_client_auth", "redirect_uris": [CALLBACK]}),
            "token_endpoint_auth_method",
        ),
    ];
    for (case, body, field) in cases {
        let reply = call(&server, Method::POST, "/clients", Some(body)).await;
        let fields = reply.invalid_fields();
        assert_eq!(fields.first().map(String::as_str), Some(field), "{case}: {}", reply.body);
    }
    assert!(server.store.list_clients().await.unwrap().is_empty(), "nothing was registered");
}

async fn a_duplicate_is_a_409_problem(backend: Backend) {
    let (_db, server) = start(backend).await;
    let client = json!({"client_id": "web", "redirect_uris": [CALLBACK]});
    let user = json!({"username": "alice", "password": "a long enough password"});
    let api = json!({"identifier": ORDERS, "name": "Orders"});
    for (path, body, name) in [("/clients", client, "web"), ("/users", user, "alice"), ("/apis", api, ORDERS)] {
        assert_eq!(call(&server, Method::POST, path, Some(body.clone())).await.status, 201, "{path}");
        let again = call(&server, Method::POST, path, Some(body)).await;
        let detail = again.problem(409)["detail"].as_str().unwrap();
        assert!(detail.contains(name) && detail.contains("already exists"), "{path}: {detail}");
    }
}

async fn requests_without_a_valid_admin_token_are_a_401_problem_with_a_bearer_challenge(backend: Backend) {
    let (_db, server) = start(backend).await;
    let client = json!({"client_id": "sneaky", "redirect_uris": [CALLBACK]});
    let requests = [
        (Method::GET, "/clients", None),
        (Method::POST, "/clients", Some(client)),
        (Method::GET, "/users", None),
        (Method::DELETE, "/users/admin", None),
        (Method::GET, "/apis", None),
    ];
    for (method, path, body) in requests {
        let missing = call_with(&server, None, method.clone(), path, body.clone()).await;
        missing.problem(401);
        assert!(missing.header("www-authenticate").starts_with("Bearer"), "{method} {path}");
        assert!(
            !missing.header("www-authenticate").contains("error="),
            "no error code without a token (RFC 6750 §3.1)"
        );

        let wrong = call_with(&server, Some("not-the-token"), method.clone(), path, body.clone()).await;
        wrong.problem(401);
        assert!(wrong.header("www-authenticate").contains("error=\"invalid_token\""), "{method} {path}");

        // The right token under the wrong scheme is no admin token either.
        let basic = server
            .http
            .request(method.clone(), server.url(&format!("/admin/api{path}")))
            .basic_auth("ci", Some(TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), 401, "{method} {path} with Basic");
    }
    assert!(server.store.client("sneaky").await.unwrap().is_none());
    assert!(server.store.user_by_username("admin").await.unwrap().is_some());
}

async fn bodies_that_are_not_the_expected_json_are_problems_too(backend: Backend) {
    let (_db, server) = start(backend).await;
    let send = |method: Method, path: &str, content_type: &str, body: &'static str| {
        server
            .http
            .request(method, server.url(&format!("/admin/api{path}")))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(body)
    };
    type Case = (&'static str, Method, &'static str, &'static str, &'static str, u16, &'static str);
    let cases: [Case; 7] = [
        ("malformed JSON", Method::POST, "/clients", "application/json", "{\"client_id\": ", 400, "not valid JSON"),
        (
            "an unknown member",
            Method::POST,
            "/clients",
            "application/json",
            "{\"client_idd\": \"x\"}",
            400,
            "client_idd",
        ),
        ("a wrong type", Method::POST, "/users", "application/json", "{\"username\": 5}", 400, "expected members"),
        ("not an object", Method::PUT, "/clients/web", "application/json", "[1, 2]", 400, "expected members"),
        ("not JSON at all", Method::POST, "/apis", "text/plain", "identifier=x", 415, "application/json"),
        ("no identifier", Method::GET, "/apis/item", "application/json", "", 400, "identifier"),
        ("an unknown path", Method::GET, "/clientz", "application/json", "", 404, "/admin/api/clientz"),
    ];
    for (case, method, path, content_type, body, status, says) in cases {
        let response = send(method, path, content_type, body).send().await.unwrap();
        let headers = response.headers().clone();
        let reply = Reply { status: response.status().as_u16(), headers, body: response.json().await.unwrap() };
        let detail = reply.problem(status)["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{case}: {detail}");
    }
    assert!(server.store.list_clients().await.unwrap().is_empty());
}

async fn users_are_created_read_updated_and_deleted_without_ever_showing_a_password(backend: Backend) {
    let (_db, server) = start(backend).await;
    let created = call(
        &server,
        Method::POST,
        "/users",
        Some(json!({
            "username": "alice",
            "password": "first long password",
            "name": "Alice",
            "email": "alice@example.test",
            "email_verified": true,
        })),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("location"), "/admin/api/users/alice");
    assert_eq!(created.body["username"], "alice");
    assert_eq!(created.body["name"], "Alice");
    assert_eq!(created.body["email_verified"], true);
    assert_eq!(created.body["is_admin"], false);
    assert_eq!(created.body["disabled"], false);
    let shown = created.body.to_string();
    assert!(!shown.contains("password") && !shown.contains("argon2"), "{shown}");
    let stored = server.store.user_by_username("alice").await.unwrap().expect("stored");
    assert!(stored.password_hash.starts_with("$argon2id$"));
    assert_eq!(created.body["id"], stored.id.as_str());

    let read = call(&server, Method::GET, "/users/alice", None).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, created.body);
    let found = call(&server, Method::GET, "/users?search=ALI", None).await;
    assert_eq!(found.body.as_array().unwrap().iter().map(|u| &u["username"]).collect::<Vec<_>>(), ["alice"]);
    let all = call(&server, Method::GET, "/users", None).await;
    assert!(all.body.as_array().unwrap().iter().any(|u| u["username"] == "admin"), "{}", all.body);
    assert!(!all.body.to_string().contains("argon2"));

    // Invalid replacements change nothing.
    type Case = (&'static str, Value, &'static str);
    let refusals: [Case; 4] = [
        ("a short password", json!({"password": "short"}), "password"),
        ("a reserved claim (custom claims are fine)", json!({"aud": "https://api.example.test/orders"}), "claims"),
        ("a badly typed claim", json!({"email_verified": "yes"}), "claims"),
        ("a new username", json!({"username": "alicia"}), "username"),
    ];
    for (case, body, field) in refusals {
        let reply = call(&server, Method::PUT, "/users/alice", Some(body)).await;
        assert_eq!(reply.invalid_fields(), [field], "{case}");
    }
    let unchanged = server.store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(unchanged.password_hash, stored.password_hash);
    assert_eq!(unchanged.claims, stored.claims);

    // A replacement: claims left out are removed; the password changes when given.
    let mut settings = read.body.clone();
    settings["name"] = json!("Alice Liddell");
    settings["disabled"] = json!(true);
    settings["password"] = json!("second long password");
    settings.as_object_mut().unwrap().remove("email");
    let updated = call(&server, Method::PUT, "/users/alice", Some(settings)).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["name"], "Alice Liddell");
    assert_eq!(updated.body["disabled"], true);
    assert!(updated.body.get("email").is_none(), "{}", updated.body);
    assert_eq!(updated.body["email_verified"], true);
    assert!(!updated.body.to_string().contains("password"));
    let changed = server.store.user_by_username("alice").await.unwrap().unwrap();
    assert!(changed.disabled);
    assert!(lanyard::registry::password::verify("second long password".into(), Some(changed.password_hash)).await);
    let audit = server.store.recent_audit(10).await.unwrap();
    let update = audit.iter().find(|e| e.action == "user.update").expect("the update is audited");
    assert_eq!(update.detail, "claims, disabled, sessions ended, password set");

    assert_eq!(call(&server, Method::DELETE, "/users/alice", None).await.status, 204);
    assert!(server.store.user_by_username("alice").await.unwrap().is_none());
    call(&server, Method::GET, "/users/alice", None).await.problem(404);
    call(&server, Method::PUT, "/users/alice", Some(json!({}))).await.problem(404);
    call(&server, Method::DELETE, "/users/alice", None).await.problem(404);
}

async fn disabling_a_user_ends_their_sessions_and_revokes_their_tokens(backend: Backend) {
    let (_db, server) = start(backend).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    let outcome = browser.sign_in(&flow::authorize_url(&server, &fx.client_id, &[]), "alice").await;
    let (status, tokens) = flow::exchange(&server, &fx, &outcome.params()["code"], flow::VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    let userinfo = |token: String| server.http.get(server.url("/userinfo")).bearer_auth(token).send();
    assert_eq!(userinfo(access_token.clone()).await.unwrap().status(), 200);
    assert_eq!(server.store.count_active_sessions().await.unwrap(), 1);

    let mut settings = call(&server, Method::GET, "/users/alice", None).await.body;
    settings["disabled"] = json!(true);
    let updated = call(&server, Method::PUT, "/users/alice", Some(settings)).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(server.store.count_active_sessions().await.unwrap(), 0);
    assert_eq!(userinfo(access_token).await.unwrap().status(), 401, "the access token is revoked");
}

async fn apis_are_created_read_updated_and_deleted_by_identifier(backend: Backend) {
    let (_db, server) = start(backend).await;
    let created = call(
        &server,
        Method::POST,
        "/apis",
        Some(json!({"identifier": ORDERS, "name": "Orders", "scopes": ["read:orders"], "access_token_ttl": 600})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let location = created.header("location").to_owned();
    assert_eq!(location, "/admin/api/apis/item?identifier=https%3A%2F%2Fapi.example.test%2Forders");
    assert_eq!(created.body["scopes"], json!([{"name": "read:orders", "description": ""}]));
    assert_eq!(created.body["access_token_ttl"], 600);

    let item = location.trim_start_matches("/admin/api");
    let read = call(&server, Method::GET, item, None).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["identifier"], ORDERS);
    assert_eq!(read.body["name"], "Orders");

    let mut settings = read.body.clone();
    settings["name"] = json!("Order service");
    settings["scopes"] = json!(["read:orders", {"name": "write:orders", "description": "Place orders"}]);
    let updated = call(&server, Method::PUT, item, Some(settings)).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["name"], "Order service");
    assert_eq!(
        updated.body["scopes"],
        json!([{"name": "read:orders", "description": ""}, {"name": "write:orders", "description": "Place orders"}])
    );
    assert!(server.store.api(ORDERS).await.unwrap().unwrap().defines("write:orders"));

    type Case = (&'static str, Value, &'static str);
    let refusals: [Case; 3] = [
        ("a new identifier", json!({"identifier": "https://api.example.test/x", "name": "X"}), "identifier"),
        (
            "an unknown introspection client",
            json!({"identifier": ORDERS, "name": "O", "introspection_client_id": "nobody"}),
            "introspection_client_id",
        ),
        ("an OpenID Connect scope", json!({"identifier": ORDERS, "name": "O", "scopes": ["openid"]}), "scopes"),
    ];
    for (case, body, field) in refusals {
        let reply = call(&server, Method::PUT, item, Some(body)).await;
        assert_eq!(reply.invalid_fields(), [field], "{case}");
    }

    let list = call(&server, Method::GET, "/apis", None).await;
    assert_eq!(list.body.as_array().unwrap().iter().map(|a| &a["identifier"]).collect::<Vec<_>>(), [ORDERS]);
    assert_eq!(call(&server, Method::DELETE, item, None).await.status, 204);
    assert!(server.store.api(ORDERS).await.unwrap().is_none());
    call(&server, Method::GET, item, None).await.problem(404);
    call(&server, Method::DELETE, item, None).await.problem(404);
    let other = "/apis/item?identifier=https%3A%2F%2Fapi.example.test%2Fnone";
    call(&server, Method::PUT, other, Some(json!({"identifier": "https://api.example.test/none", "name": "N"})))
        .await
        .problem(404);
}

async fn every_change_is_in_the_audit_log_under_the_tokens_name(backend: Backend) {
    let (_db, server) = start(backend).await;
    create_orders_api(&server).await;
    let client = json!({"client_id": "web", "redirect_uris": [CALLBACK]});
    assert_eq!(call(&server, Method::POST, "/clients", Some(client.clone())).await.status, 201);
    assert_eq!(call(&server, Method::PUT, "/clients/web", Some(client)).await.status, 200);
    assert_eq!(call(&server, Method::DELETE, "/clients/web", None).await.status, 204);
    let user = json!({"username": "bob", "password": "a long enough password"});
    assert_eq!(call(&server, Method::POST, "/users", Some(user)).await.status, 201);
    // Reads and refusals are not changes.
    call(&server, Method::GET, "/clients", None).await;
    call(&server, Method::POST, "/clients", Some(json!({}))).await;

    let mut entries: Vec<(String, String, String)> =
        server.store.recent_audit(10).await.unwrap().into_iter().map(|e| (e.actor, e.action, e.target)).collect();
    entries.sort();
    let expected = [
        ("api.create", ORDERS),
        ("client.create", "web"),
        ("client.delete", "web"),
        ("client.update", "web"),
        ("user.create", "bob"),
    ]
    .map(|(action, target)| ("token:ci".to_owned(), action.to_owned(), target.to_owned()));
    assert_eq!(entries, expected);
}

async fn a_token_created_with_the_cli_works_until_it_is_removed(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let lanyard = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanyard"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("LANYARD_")) {
            cmd.env_remove(key);
        }
        let output = cmd.args(args).arg("--database-url").arg(&db.url).env_remove("RUST_LOG").output().unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        (output.status.code(), stdout, String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (code, stdout, stderr) = lanyard(&["admin-token", "create", "--name", "ci", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let created: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(created["name"], "ci");
    let token = created["token"].as_str().expect("the token, shown once").to_owned();
    assert_eq!(token.len(), 43, "256 bits, base64url");
    assert!(!stdout.contains(&sha256_hex(&token)));

    let clients = call_with(&server, Some(&token), Method::GET, "/clients", None).await;
    assert_eq!(clients.status, 200, "{}", clients.body);

    let (code, stdout, _) = lanyard(&["admin-token", "list", "--json"]);
    assert_eq!(code, Some(0));
    let list: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "ci");
    assert!(list[0]["created_at"].as_i64().is_some());
    assert!(!stdout.contains(&token), "the token is never shown again");

    let (code, stdout, stderr) = lanyard(&["admin-token", "create", "--name", "ci"]);
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty() && stderr.contains("already exists"), "{stderr}");
    let (code, _, stderr) = lanyard(&["admin-token", "create", "--name", "two words"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("name"), "{stderr}");

    let (code, stdout, stderr) = lanyard(&["admin-token", "remove", "ci"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "removed admin token ci");
    call_with(&server, Some(&token), Method::GET, "/clients", None).await.problem(401);
    let (code, _, stderr) = lanyard(&["admin-token", "remove", "ci"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("not found"), "{stderr}");
    let audit = server.store.recent_audit(10).await.unwrap();
    assert!(audit.iter().any(|e| e.actor == "cli" && e.action == "admin_token.create" && e.target == "ci"));
    assert!(audit.iter().any(|e| e.actor == "cli" && e.action == "admin_token.remove" && e.target == "ci"));
}

async fn minted_tokens_are_real_tokens_accepted_where_flow_tokens_are(backend: Backend) {
    let (_db, server) = start(backend).await;
    let fx = crate::flow::fixture_with(&server, |c| {
        c.grant_types = vec!["authorization_code".into(), "client_credentials".into()];
    })
    .await;
    let reply = call(
        &server,
        Method::POST,
        "/tokens/mint",
        Some(json!({"user": "alice", "client": "web", "api": crate::flow::API, "scope": "openid email read:appointments", "id_token": true})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (header, claims) = crate::flow::decode_jwt(reply.body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], fx.user_id.as_str());
    assert_eq!(claims["aud"], json!([crate::flow::API, server.url("/userinfo")]));
    let (_, id_claims) = crate::flow::decode_jwt(reply.body["id_token"].as_str().unwrap());
    assert_eq!(id_claims["aud"], "web");
    let userinfo = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(reply.body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);
    assert_eq!(userinfo.json::<Value>().await.unwrap()["email"], "alice@example.test");

    // A client_credentials token, and the refusals.
    let reply = call(
        &server,
        Method::POST,
        "/tokens/mint",
        Some(json!({"client": "web", "api": crate::flow::API, "scope": "read:appointments"})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (_, claims) = crate::flow::decode_jwt(reply.body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "web");
    let reply = call(
        &server,
        Method::POST,
        "/tokens/mint",
        Some(json!({"user": "alice", "client": "web", "scope": "write:appointments", "api": crate::flow::API})),
    )
    .await;
    assert!(reply.problem(422)["detail"].as_str().unwrap().contains("not allowed"), "{}", reply.body);
    let reply = call_with(&server, None, Method::POST, "/tokens/mint", Some(json!({"client": "web"}))).await;
    reply.problem(401);
}

async fn deleting_an_api_takes_its_scopes_and_default_away_from_clients(backend: Backend) {
    let (_db, server) = start(backend).await;
    create_orders_api(&server).await;
    let reply = call(
        &server,
        Method::POST,
        "/clients",
        Some(json!({"client_id": "shop", "redirect_uris": [CALLBACK], "scope": "openid read:orders", "default_api": ORDERS})),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = call(
        &server,
        Method::DELETE,
        &format!(
            "/apis/item?identifier={}",
            url::form_urlencoded::byte_serialize(ORDERS.as_bytes()).collect::<String>()
        ),
        None,
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let client = call(&server, Method::GET, "/clients/shop", None).await;
    assert_eq!(client.body["scope"], "openid", "{}", client.body);
    assert!(client.body.get("default_api").is_none_or(Value::is_null), "{}", client.body);
    // The client stays editable: nothing it is allowed is undefined.
    let mut body = client.body.clone();
    body["client_name"] = json!("Shop");
    let reply = call(&server, Method::PUT, "/clients/shop", Some(body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}
