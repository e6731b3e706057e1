//! Custom claims and roles: users carry claims of their own (`roles`, `groups`, `tenant`,
//! objects); custom scopes release them to the id_token and userinfo; an API's
//! `access_token_claims` copies them into that API's access tokens only; reserved claims
//! are refused by name everywhere; `lanyard::verify` checks a role.

use std::path::PathBuf;
use std::process::Command;

use lanyard::crypto::sha256_hex;
use lanyard::registry::{self, client::ClientSpec};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::flow::{self, Browser, Fixture, Outcome, PASSWORD, REDIRECT_URI, VERIFIER, decode_jwt, form_field};
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    seeded_custom_claims_reach_the_id_token_and_userinfo_per_custom_scope_and_only_the_access_tokens_of_the_api_that_lists_them,
    a_custom_scope_the_client_is_not_allowed_releases_nothing_even_through_the_claims_parameter,
    the_admin_api_sets_claims_manages_custom_scopes_and_refuses_reserved_claims_by_name,
    the_admin_pages_edit_claims_as_json_manage_custom_scopes_and_refuse_reserved_claims_beside_the_field,
    verify_require_role_accepts_a_listed_role_and_refuses_others_with_a_403_insufficient_scope,
);

const CALENDAR: &str = "https://api.example.test/calendar";
const ORDERS: &str = "https://api.example.test/orders";
const SECRET: &str = "web-secret-for-custom-claims-tests";
const ADMIN_TOKEN: &str = "custom-claims-admin-token-with-plenty-of-entropy-0123";
const ADMIN_PASSWORD: &str = "admin-password";

/// Alice with custom claims, two APIs (only the calendar wants `roles` and `tenant` in its
/// tokens), two custom scopes, and a client allowed `roles` but not `org`.
fn seed_text() -> String {
    format!(
        r#"
[[users]]
username = "alice"
password = "{PASSWORD}"
name = "Alice Example"
roles = ["admin", "editor"]
groups = ["staff"]
tenant = "acme"
org = {{ id = 7, name = "Acme" }}

[[apis]]
identifier = "{CALENDAR}"
name = "Calendar"
scopes = ["read:calendar"]
access_token_claims = ["roles", "tenant"]

[[apis]]
identifier = "{ORDERS}"
name = "Orders"
scopes = ["read:orders"]

[[scopes]]
name = "roles"
claims = ["roles"]
description = "Your roles in our apps"

[[scopes]]
name = "org"
claims = ["org", "groups"]
description = "Your organisation"

[[clients]]
client_id = "web"
client_secret = "{SECRET}"
redirect_uris = ["{REDIRECT_URI}"]
scope = "openid profile roles read:calendar read:orders"
grant_types = ["authorization_code", "client_credentials"]
"#
    )
}

fn write_seed(text: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("lanyard-claims-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("seed.toml");
    std::fs::write(&path, text).expect("seed written");
    (dir, path)
}

/// A server started from [`seed_text`], with an admin token and an admin password.
async fn start(backend: Backend) -> (TestDb, TestServer) {
    let db = TestDb::create(backend).await;
    let (dir, path) = write_seed(&seed_text());
    let server = TestServer::start_with(&db, |s| {
        s.seed = Some(path);
        s.admin_password = Some(ADMIN_PASSWORD.into());
    })
    .await;
    std::fs::remove_dir_all(dir).ok();
    server.store.insert_admin_token("ci", &sha256_hex(ADMIN_TOKEN)).await.expect("admin token stored");
    (db, server)
}

fn web() -> Fixture {
    Fixture { client_id: "web".into(), client_secret: SECRET.into(), user_id: String::new() }
}

/// Signs alice in (password, then consent when asked) and exchanges the code.
async fn tokens(server: &TestServer, browser: &Browser<'_>, fx: &Fixture, extra: &[(&str, &str)]) -> Value {
    let url = flow::authorize_url(server, &fx.client_id, extra);
    let outcome = browser.sign_in(&url, "alice").await;
    let code = outcome.params().get("code").unwrap_or_else(|| panic!("a code: {:?}", outcome.params())).clone();
    let (status, body) = flow::exchange(server, fx, &code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn userinfo(server: &TestServer, access_token: &str) -> Value {
    let response = server.http.get(server.url("/userinfo")).bearer_auth(access_token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn claims_of(body: &Value, token: &str) -> Value {
    decode_jwt(body[token].as_str().unwrap_or_else(|| panic!("a {token}: {body}"))).1
}

async fn seeded_custom_claims_reach_the_id_token_and_userinfo_per_custom_scope_and_only_the_access_tokens_of_the_api_that_lists_them(
    backend: Backend,
) {
    let (_db, server) = start(backend).await;
    let fx = web();
    let browser = Browser::new(&server);

    // The consent page names the custom scope in its own words.
    let url = flow::authorize_url(&server, "web", &[("scope", "openid roles read:calendar"), ("resource", CALENDAR)]);
    let login = browser.open(&url).await;
    let consent = browser.login(&login, "alice", PASSWORD).await;
    assert!(consent.html().contains("Your roles in our apps"), "{}", consent.html());
    let Outcome::Redirect { params, .. } = browser.consent(&consent, "allow").await else { panic!("a redirect") };
    let (status, body) = flow::exchange(&server, &fx, &params["code"], VERIFIER).await;
    assert_eq!(status, 200, "{body}");

    let id_token = claims_of(&body, "id_token");
    assert_eq!(id_token["roles"], json!(["admin", "editor"]), "scope roles releases roles: {id_token}");
    for absent in ["groups", "org", "tenant", "name"] {
        assert!(id_token.get(absent).is_none(), "{absent} was not asked for: {id_token}");
    }
    let info = userinfo(&server, body["access_token"].as_str().unwrap()).await;
    assert_eq!(info["roles"], json!(["admin", "editor"]), "{info}");
    assert!(info.get("org").is_none() && info.get("tenant").is_none(), "{info}");

    // The calendar lists roles and tenant: its access token carries them, as the user has them.
    let access = claims_of(&body, "access_token");
    assert_eq!(access["aud"][0], CALENDAR, "{access}");
    assert_eq!(access["roles"], json!(["admin", "editor"]), "{access}");
    assert_eq!(access["tenant"], "acme", "{access}");
    assert!(access.get("groups").is_none(), "the calendar does not list groups: {access}");

    // The orders API lists nothing: the same user's token for it has no custom claim.
    let body = tokens(&server, &browser, &fx, &[("scope", "openid read:orders"), ("resource", ORDERS)]).await;
    let access = claims_of(&body, "access_token");
    assert_eq!(access["aud"][0], ORDERS, "{access}");
    for absent in ["roles", "tenant", "groups", "org"] {
        assert!(access.get(absent).is_none(), "{absent} in an orders token: {access}");
    }

    // client_credentials has no user, so no user claims, even for the calendar.
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth("web", Some(SECRET))
        .form(&[("grant_type", "client_credentials"), ("resource", CALENDAR)])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let access = claims_of(&body, "access_token");
    assert_eq!(access["sub"], "web", "{access}");
    assert!(access.get("roles").is_none() && access.get("tenant").is_none(), "{access}");

    // Discovery lists the custom scopes and the claims they release.
    let metadata = server.get_json("/.well-known/openid-configuration").await;
    for scope in ["openid", "roles", "org"] {
        assert!(metadata["scopes_supported"].as_array().unwrap().contains(&json!(scope)), "{metadata}");
    }
    for claim in ["email", "roles", "org", "groups"] {
        assert!(metadata["claims_supported"].as_array().unwrap().contains(&json!(claim)), "{metadata}");
    }
}

async fn a_custom_scope_the_client_is_not_allowed_releases_nothing_even_through_the_claims_parameter(backend: Backend) {
    let (_db, server) = start(backend).await;
    let narrow = registry::create_client(
        &server.store,
        ClientSpec {
            client_id: Some("narrow".into()),
            redirect_uris: vec![REDIRECT_URI.into()],
            scope: Some("openid profile".into()),
            ..Default::default()
        },
    )
    .await
    .expect("client registered");
    let fx = Fixture { client_id: "narrow".into(), client_secret: narrow.secret.unwrap(), user_id: String::new() };
    let browser = Browser::new(&server);
    let claims = r#"{"id_token":{"roles":null,"org":null},"userinfo":{"roles":null,"tenant":null,"groups":null}}"#;
    let url = flow::authorize_url(&server, "narrow", &[("scope", "openid roles org"), ("claims", claims)]);
    let outcome = browser.sign_in(&url, "alice").await;
    let params = outcome.params();
    // Refusing the scope outright is fine too; releasing a claim is not.
    if let Some(error) = params.get("error") {
        assert_eq!(error, "invalid_scope", "{params:?}");
    } else {
        let (status, body) = flow::exchange(&server, &fx, &params["code"], VERIFIER).await;
        assert_eq!(status, 200, "{body}");
        assert!(!body["scope"].as_str().unwrap().contains("roles"), "{body}");
        let id_token = claims_of(&body, "id_token");
        let info = userinfo(&server, body["access_token"].as_str().unwrap()).await;
        for claim in ["roles", "org", "tenant", "groups"] {
            assert!(id_token.get(claim).is_none(), "{claim} in the id_token: {id_token}");
            assert!(info.get(claim).is_none(), "{claim} at userinfo: {info}");
        }
    }

    // The web client is allowed roles (not org): by name through the claims parameter it
    // gets roles without asking for the scope, and still not org.
    let body = tokens(
        &server,
        &browser,
        &web(),
        &[("scope", "openid"), ("claims", r#"{"id_token":{"roles":null,"org":null,"groups":null}}"#)],
    )
    .await;
    let id_token = claims_of(&body, "id_token");
    assert_eq!(id_token["roles"], json!(["admin", "editor"]), "{id_token}");
    assert!(id_token.get("org").is_none() && id_token.get("groups").is_none(), "{id_token}");
}

/// An admin API reply: status and JSON body.
async fn admin(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = server.http.request(method, server.url(&format!("/admin/api{path}"))).bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The messages of a 422 problem, joined.
fn messages(body: &Value) -> String {
    body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["message"].as_str()).map(str::to_owned).collect::<Vec<_>>().join(" | "))
        .unwrap_or_else(|| body.to_string())
}

async fn the_admin_api_sets_claims_manages_custom_scopes_and_refuses_reserved_claims_by_name(backend: Backend) {
    let (_db, server) = start(backend).await;

    // Claims set with PUT (the GET body, changed) are what the tokens carry.
    let (status, mut alice) = admin(&server, Method::GET, "/users/alice", None).await;
    assert_eq!(status, 200);
    assert_eq!(alice["roles"], json!(["admin", "editor"]), "custom claims beside the account fields: {alice}");
    alice["roles"] = json!("auditor");
    alice["clearance"] = json!({"level": 3});
    let (status, updated) = admin(&server, Method::PUT, "/users/alice", Some(alice.clone())).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["clearance"], json!({"level": 3}));
    let mint = |api: &str| json!({"user": "alice", "client": "web", "api": api, "scope": ""});
    let (status, minted) = admin(&server, Method::POST, "/tokens/mint", Some(mint(CALENDAR))).await;
    assert_eq!(status, 200, "{minted}");
    assert_eq!(claims_of(&minted, "access_token")["roles"], "auditor");
    let (_, minted) = admin(&server, Method::POST, "/tokens/mint", Some(mint(ORDERS))).await;
    assert!(claims_of(&minted, "access_token").get("roles").is_none());
    let (_, minted) =
        admin(&server, Method::POST, "/tokens/mint", Some(json!({"client": "web", "api": CALENDAR}))).await;
    assert!(claims_of(&minted, "access_token").get("roles").is_none(), "client_credentials: no user claims");

    // The orders API starts listing clearance: its next token has it.
    let (_, mut orders) = admin(&server, Method::GET, &format!("/apis/item?identifier={ORDERS}"), None).await;
    orders["access_token_claims"] = json!(["clearance"]);
    let path = format!("/apis/item?identifier={}", urlencode(ORDERS));
    let (status, body) = admin(&server, Method::PUT, &path, Some(orders.clone())).await;
    assert_eq!(status, 200, "{body}");
    let (_, minted) = admin(&server, Method::POST, "/tokens/mint", Some(mint(ORDERS))).await;
    assert_eq!(claims_of(&minted, "access_token")["clearance"], json!({"level": 3}));

    // Custom scopes: created, listed, replaced, deleted.
    let scope = json!({"name": "clearance", "claims": ["clearance"], "description": "Your clearance"});
    let (status, body) = admin(&server, Method::POST, "/scopes", Some(scope)).await;
    assert_eq!(status, 201, "{body}");
    let (_, list) = admin(&server, Method::GET, "/scopes", None).await;
    let names: Vec<&str> = list.as_array().unwrap().iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["clearance", "org", "roles"]);
    let (status, body) =
        admin(&server, Method::PUT, "/scopes/clearance", Some(json!({"claims": ["clearance", "tenant"]}))).await;
    assert_eq!((status, body["claims"].clone()), (200, json!(["clearance", "tenant"])), "{body}");
    assert_eq!(admin(&server, Method::DELETE, "/scopes/clearance", None).await.0, 204);
    assert_eq!(admin(&server, Method::GET, "/scopes/clearance", None).await.0, 404);

    // Reserved claims, each refused with its name, wherever a claim name is accepted.
    for claim in ["sub", "aud", "scope", "client_id", "iss", "exp", "jti", "acr", "cnf"] {
        let mut body = alice.clone();
        body[claim] = json!("x");
        let (status, problem) = admin(&server, Method::PUT, "/users/alice", Some(body)).await;
        assert_eq!(status, 422, "{claim}: {problem}");
        assert!(messages(&problem).contains(&format!("\"{claim}\" is a reserved claim")), "{claim}: {problem}");
    }
    let (status, problem) = admin(
        &server,
        Method::POST,
        "/users",
        Some(
            json!({"username": "mallory", "password": "mallory-password", "aud": "https://api.example.test/calendar"}),
        ),
    )
    .await;
    assert_eq!(status, 422);
    assert!(messages(&problem).contains("\"aud\" is a reserved claim"), "{problem}");
    let (status, problem) =
        admin(&server, Method::POST, "/scopes", Some(json!({"name": "identity", "claims": ["sub"]}))).await;
    assert_eq!(status, 422);
    assert!(messages(&problem).contains("\"sub\" is a reserved claim"), "{problem}");
    let (status, problem) =
        admin(&server, Method::POST, "/scopes", Some(json!({"name": "profile", "claims": ["roles"]}))).await;
    assert_eq!(status, 422);
    assert!(messages(&problem).contains("\"profile\" is an OpenID Connect scope"), "{problem}");
    orders["access_token_claims"] = json!(["scope"]);
    let (status, problem) = admin(&server, Method::PUT, &path, Some(orders)).await;
    assert_eq!(status, 422);
    assert!(messages(&problem).contains("\"scope\" is a reserved claim"), "{problem}");
    let (_, unchanged) = admin(&server, Method::GET, "/users/alice", None).await;
    assert!(unchanged.get("aud").is_none() && unchanged.get("sub").is_none(), "{unchanged}");
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// An admin signed in to the admin pages, with the CSRF token of their forms.
async fn admin_browser(server: &TestServer) -> (reqwest::Client, String) {
    let browser = Browser::new(server);
    let login = browser.http.get(server.url("/admin/login?return_to=%2Fadmin")).send().await.unwrap();
    let html = login.text().await.unwrap();
    let form = [
        ("csrf_token", form_field(&html, "csrf_token").expect("csrf_token")),
        ("return_to", "/admin".to_owned()),
        ("username", "admin".to_owned()),
        ("password", ADMIN_PASSWORD.to_owned()),
    ];
    let done = browser.http.post(server.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(done.status(), 303);
    let dashboard = browser.http.get(server.url("/admin")).send().await.unwrap().text().await.unwrap();
    let csrf = form_field(&dashboard, "csrf_token").expect("a CSRF token");
    (browser.http, csrf)
}

async fn post(http: &reqwest::Client, server: &TestServer, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let body = serde_urlencoded::to_string(fields).unwrap();
    let response = http
        .post(server.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, lanyard::testing::decode_entities(&response.text().await.unwrap()))
}

async fn the_admin_pages_edit_claims_as_json_manage_custom_scopes_and_refuse_reserved_claims_beside_the_field(
    backend: Backend,
) {
    let (_db, server) = start(backend).await;
    let (http, csrf) = admin_browser(&server).await;
    let alice = server.store.user_by_username("alice").await.unwrap().unwrap();
    let path = format!("/admin/users/{}", alice.id);

    // The editor shows the claims without a field of their own.
    let page =
        lanyard::testing::decode_entities(&http.get(server.url(&path)).send().await.unwrap().text().await.unwrap());
    assert!(page.contains("\"roles\": [\n    \"admin\",\n    \"editor\"\n  ]"), "{page}");
    assert!(page.contains("\"tenant\": \"acme\""), "{page}");

    for (json, message) in [
        (r#"{"roles": ["admin"], "aud": "x"}"#, "\"aud\" is a reserved claim"),
        (r#"{"roles": ["admin"]"#, "is not valid JSON"),
        (r#"["admin"]"#, "must be a JSON object"),
        (r#"{"name": "Eve"}"#, "\"name\" has its own field above"),
        (r#"{"is_admin": true}"#, "\"is_admin\" is an account field, not a claim"),
    ] {
        let fields = [("csrf_token", csrf.as_str()), ("name", "Alice Example"), ("other_claims", json)];
        let (status, html) = post(&http, &server, &path, &fields).await;
        assert_eq!(status, 422, "{json}");
        let error = format!("<p class=\"field-error\" role=\"alert\">{message}");
        assert!(html.contains(&error), "{json}: expected {message:?} beside the editor: {html}");
        assert!(html.contains(json), "the editor keeps what was typed: {json}");
    }
    let unchanged = server.store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(unchanged.claims, alice.claims, "a refused form changes nothing");

    let fields = [
        ("csrf_token", csrf.as_str()),
        ("name", "Alice Example"),
        ("other_claims", r#"{"roles": ["viewer"], "groups": ["staff", "ops"]}"#),
    ];
    let (status, html) = post(&http, &server, &path, &fields).await;
    assert_eq!(status, 303, "{html}");
    let saved = server.store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(saved.claims["roles"], json!(["viewer"]));
    assert_eq!(saved.claims["groups"], json!(["staff", "ops"]));
    assert!(saved.claims.get("tenant").is_none(), "a claim taken out of the editor is removed");
    assert_eq!(saved.claims["name"], "Alice Example");

    // Custom scopes: added, refused with the reason beside the field, deleted.
    let (status, _) = post(
        &http,
        &server,
        "/admin/scopes",
        &[("csrf_token", &csrf), ("name", "teams"), ("claims", "groups"), ("description", "Your teams")],
    )
    .await;
    assert_eq!(status, 303);
    let list = lanyard::testing::decode_entities(
        &http.get(server.url("/admin/scopes")).send().await.unwrap().text().await.unwrap(),
    );
    assert!(list.contains("<code>teams</code>") && list.contains("Your teams"), "{list}");
    let (status, html) =
        post(&http, &server, "/admin/scopes", &[("csrf_token", &csrf), ("name", "ids"), ("claims", "jti")]).await;
    assert_eq!(status, 422);
    assert!(html.contains("<p class=\"field-error\" role=\"alert\">\"jti\" is a reserved claim"), "{html}");
    let (status, _) = post(&http, &server, "/admin/scopes/delete", &[("csrf_token", &csrf), ("name", "teams")]).await;
    assert_eq!(status, 303);
    assert!(server.store.list_claim_scopes().await.unwrap().iter().all(|s| s.name != "teams"));

    // An API's access token claims, on its form.
    let edit = format!("/admin/apis/edit?identifier={}", urlencode(ORDERS));
    let form = [
        ("csrf_token", csrf.as_str()),
        ("identifier", ORDERS),
        ("name", "Orders"),
        ("scopes", "read:orders"),
        ("access_token_ttl", "3600"),
        ("signing_alg", "RS256"),
        ("access_token_claims", "groups nbf"),
    ];
    let (status, html) = post(&http, &server, "/admin/apis/edit", &form).await;
    assert_eq!(status, 422);
    assert!(html.contains("<p class=\"field-error\" role=\"alert\">\"nbf\" is a reserved claim"), "{html}");
    let mut form = form.to_vec();
    form[6].1 = "groups";
    let (status, _) = post(&http, &server, "/admin/apis/edit", &form).await;
    assert_eq!(status, 303);
    let page = http.get(server.url(&edit)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("name=\"access_token_claims\" value=\"groups\""), "{page}");
    assert_eq!(server.store.api(ORDERS).await.unwrap().unwrap().access_token_claims, ["groups"]);
}

async fn verify_require_role_accepts_a_listed_role_and_refuses_others_with_a_403_insufficient_scope(backend: Backend) {
    let (_db, server) = start(backend).await;
    let verifier = lanyard::verify::Verifier::discover(&server.base, CALENDAR).await.expect("verifier");
    let mint = || json!({"user": "alice", "client": "web", "api": CALENDAR, "scope": "read:calendar"});
    let (_, minted) = admin(&server, Method::POST, "/tokens/mint", Some(mint())).await;
    let token = verifier.verify(minted["access_token"].as_str().unwrap()).await.expect("a valid token");
    assert_eq!(token.claim("tenant"), Some(&json!("acme")), "custom claims are exposed");
    assert_eq!(token.roles(), ["admin", "editor"]);
    verifier.require_role(&token, "editor").expect("alice is an editor");

    let refused = verifier.require_role(&token, "auditor").expect_err("alice is no auditor");
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.body()["error"], "insufficient_scope");
    assert_eq!(refused.body()["error_description"], "the access token lacks the role auditor");
    let challenge = refused.www_authenticate();
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
    assert!(!challenge.contains("scope=\"auditor\""), "a role is not a scope to ask for: {challenge}");

    // One role as a string works as well as an array.
    registry::set_user_claims(&server.store, "alice", json!({"roles": "auditor"}).as_object().unwrap().clone())
        .await
        .unwrap();
    let (_, minted) = admin(&server, Method::POST, "/tokens/mint", Some(mint())).await;
    let token = verifier.verify(minted["access_token"].as_str().unwrap()).await.unwrap();
    verifier.require_role(&token, "auditor").expect("a single role as a string");
    assert!(verifier.require_role(&token, "admin").is_err());

    // A client_credentials token has no roles at all.
    let (_, minted) =
        admin(&server, Method::POST, "/tokens/mint", Some(json!({"client": "web", "api": CALENDAR}))).await;
    let token = verifier.verify(minted["access_token"].as_str().unwrap()).await.unwrap();
    assert!(token.roles().is_empty());
    assert_eq!(verifier.require_role(&token, "auditor").unwrap_err().status(), 403);
}

// The command line, on a SQLite file of its own (as the other CLI tests).

fn lanyard(args: &[&str], url: &str) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanyard"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LANYARD_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args).arg("--database-url").arg(url).env_remove("RUST_LOG").output().expect("run lanyard")
}

#[track_caller]
fn ok(args: &[&str], url: &str) -> String {
    let output = lanyard(args, url);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[track_caller]
fn fails(args: &[&str], url: &str) -> String {
    let output = lanyard(args, url);
    assert_eq!(output.status.code(), Some(1), "{args:?} should fail");
    assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_cli_sets_claims_custom_scopes_and_api_claims_and_refuses_reserved_claims_by_name() {
    let dir = std::env::temp_dir().join(format!("lanyard-claims-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("x.db").display());
    let url = db.as_str();
    let mut add = Command::new(env!("CARGO_BIN_EXE_lanyard"));
    let mut child = add
        .args(["user", "add", "alice", "--password-stdin", "--database-url", url])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"correct horse battery staple\n").unwrap();
    assert!(child.wait().unwrap().success());

    // `=` is a string, a repeated name an array, `:=` any JSON; --json a whole object.
    let user: Value = serde_json::from_str(&ok(
        &[
            "user",
            "set-claims",
            "alice",
            "--claim",
            "roles=admin",
            "--claim",
            "roles=editor",
            "--claim",
            "tenant=acme",
            "--claim",
            "clearance:=3",
            "--print-json",
        ],
        url,
    ))
    .unwrap();
    assert_eq!(user["roles"], json!(["admin", "editor"]), "{user}");
    assert_eq!(user["tenant"], "acme");
    assert_eq!(user["clearance"], 3);
    let user: Value = serde_json::from_str(&ok(
        &["user", "set-claims", "alice", "--json", r#"{"groups":["staff"],"clearance":null}"#, "--print-json"],
        url,
    ))
    .unwrap();
    assert_eq!(user["groups"], json!(["staff"]));
    assert!(user.get("clearance").is_none(), "null removes a claim: {user}");
    assert_eq!(user["roles"], json!(["admin", "editor"]), "claims not named are kept");
    let user: Value = serde_json::from_str(&ok(
        &["user", "set-claims", "alice", "--claim", "roles:=[\"admin\"]", "--print-json"],
        url,
    ))
    .unwrap();
    assert_eq!(user["roles"], json!(["admin"]), "an array of one with :=");
    let human = ok(&["user", "set-claims", "alice", "--unset", "groups"], url);
    assert!(human.contains("claims of user alice set") && !human.contains("groups"), "{human}");

    // Reserved claims, by name, wherever a claim name is taken.
    let stderr = fails(&["user", "set-claims", "alice", "--claim", "iss=https://evil.example"], url);
    assert!(stderr.contains("\"iss\" is a reserved claim"), "{stderr}");
    let stderr = fails(&["scope", "add", "ids", "--claim", "sid"], url);
    assert!(stderr.contains("\"sid\" is a reserved claim"), "{stderr}");
    let stderr = fails(&["api", "add", CALENDAR, "--name", "Calendar", "--access-token-claim", "client_id"], url);
    assert!(stderr.contains("\"client_id\" is a reserved claim"), "{stderr}");

    // A custom scope and an API that wants roles; a token minted for it carries them.
    let scope = ok(&["scope", "add", "roles", "--claim", "roles", "--description", "Your roles"], url);
    assert!(scope.contains("saved scope roles"), "{scope}");
    let listed: Value = serde_json::from_str(&ok(&["scope", "list", "--json"], url)).unwrap();
    assert_eq!(listed, json!([{"name": "roles", "description": "Your roles", "claims": ["roles"]}]));
    ok(
        &["api", "add", CALENDAR, "--name", "Calendar", "--scope", "read:calendar", "--access-token-claim", "roles"],
        url,
    );
    ok(&["client", "add", "web", "--redirect-uri", REDIRECT_URI, "--scope", "openid roles read:calendar"], url);
    let minted: Value = serde_json::from_str(&ok(
        &[
            "token",
            "mint",
            "--user",
            "alice",
            "--client",
            "web",
            "--api",
            CALENDAR,
            "--scope",
            "openid roles",
            "--id-token",
            "--json",
        ],
        url,
    ))
    .unwrap();
    assert_eq!(claims_of(&minted, "access_token")["roles"], json!(["admin"]));
    assert_eq!(claims_of(&minted, "id_token")["roles"], json!(["admin"]), "scope roles releases roles");
    let removed = ok(&["scope", "remove", "roles"], url);
    assert!(removed.contains("removed scope roles"));
    assert!(fails(&["scope", "remove", "roles"], url).contains("not found"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_seed_with_a_reserved_claim_is_refused_naming_the_claim_and_the_line() {
    for (text, message, line) in [
        (
            "[[users]]\nusername = \"eve\"\npassword = \"eve-password\"\nsub = \"admin\"\n",
            "\"sub\" is a reserved claim",
            1,
        ),
        ("\n[[scopes]]\nname = \"ids\"\nclaims = [\"jti\"]\n", "\"jti\" is a reserved claim", 2),
        (
            "[[apis]]\nidentifier = \"https://api.example.test/x\"\nname = \"X\"\naccess_token_claims = [\"aud\"]\n",
            "\"aud\" is a reserved claim",
            1,
        ),
    ] {
        let (dir, path) = write_seed(text);
        let db = format!("sqlite://{}", dir.join("x.db").display());
        let output = lanyard(&["--seed", path.to_str().unwrap(), "migrate"], &db);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(message), "{text}: {stderr}");
        assert!(stderr.contains(&format!("line {line}")), "{text}: {stderr}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
