//! The developer's everyday loop: persona sign-in with `--dev-login`, errors that say what
//! went wrong (on the page and in the log), and an issuer that follows the listen address.
//! Log lines are read from the real binary's stderr.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::both_backends;
use crate::flow::{self, Browser, Outcome, VERIFIER, form_field};
use crate::helpers::{Backend, TestDb, TestServer, free_port, wait_for_status};

both_backends!(
    persona_buttons_sign_in_without_a_password_only_with_dev_login,
    an_unknown_login_hint_is_named_on_the_page_with_dev_login,
    a_scope_the_client_may_not_request_is_refused_by_name_unless_narrowing_is_on,
    a_patch_in_the_admin_api_changes_only_the_fields_given,
    a_seed_export_recreates_users_with_their_passwords_on_a_fresh_database,
    a_seed_error_only_the_database_can_find_names_its_line,
);

async fn persona_buttons_sign_in_without_a_password_only_with_dev_login(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.dev_login = true).await;
    let fx = flow::fixture_with(&server, |c| c.first_party = Some(true)).await;
    flow::add_user(&server, "bob").await;
    let browser = Browser::new(&server);

    let page = browser.open(&flow::authorize_url(&server, &fx.client_id, &[])).await;
    let html = page.html();
    assert!(html.contains("Or continue as"), "{html}");
    for (name, username) in [("alice Example", "alice"), ("bob Example", "bob")] {
        assert!(html.contains(name) && html.contains(&format!("value=\"{username}\"")), "persona {username}: {html}");
    }
    // The password form is still there.
    assert!(html.contains("name=\"password\""));

    // One click: signed in as bob, no password, and the code is bob's.
    let form = [
        ("csrf_token", form_field(html, "csrf_token").expect("csrf")),
        ("request_id", form_field(html, "request_id").expect("request id")),
        ("username", "bob".to_owned()),
    ];
    let response = browser.http.post(server.url("/login/persona")).form(&form).send().await.unwrap();
    let outcome = browser.follow(response).await;
    let code = outcome.params().get("code").expect("a code").clone();
    let (status, tokens) = flow::exchange(&server, &fx, &code, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, id_token) = flow::decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["amr"], serde_json::json!(["dev"]), "a persona sign-in is a dev sign-in");
    let bob = server.store.user_by_username("bob").await.unwrap().unwrap();
    assert_eq!(id_token["sub"], bob.id.as_str());

    // A forged persona form (no CSRF cookie match) is refused; so is a user nobody has.
    let stranger = Browser::new(&server);
    let response = stranger.http.post(server.url("/login/persona")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let page = browser.open(&flow::authorize_url(&server, &fx.client_id, &[("prompt", "login")])).await;
    let html = page.html();
    let form = [
        ("csrf_token", form_field(html, "csrf_token").unwrap()),
        ("request_id", form_field(html, "request_id").unwrap()),
        ("username", "mallory".to_owned()),
    ];
    let response = browser.http.post(server.url("/login/persona")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 422);
    assert!(response.text().await.unwrap().contains("there is no enabled user named &#34;mallory&#34;"));
    server.stop().await;

    // Without --dev-login: no personas on the page, and the endpoint does not exist.
    let server = TestServer::start(&db).await;
    let browser = Browser::new(&server);
    let page = browser.open(&flow::authorize_url(&server, &fx.client_id, &[])).await;
    assert!(!page.html().contains("Or continue as"));
    let form = [
        ("csrf_token", form_field(page.html(), "csrf_token").unwrap()),
        ("request_id", form_field(page.html(), "request_id").unwrap()),
        ("username", "bob".to_owned()),
    ];
    let response = browser.http.post(server.url("/login/persona")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 404);
    // The admin page's own login never offers personas.
    server.stop().await;
    let server = TestServer::start_with(&db, |s| s.dev_login = true).await;
    let admin_login = server.get("/admin").await;
    let admin_login = Browser::new(&server).follow(admin_login).await;
    assert!(!admin_login.html().contains("Or continue as"), "{}", admin_login.html());
    server.stop().await;
}

async fn an_unknown_login_hint_is_named_on_the_page_with_dev_login(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.dev_login = true).await;
    let fx = flow::fixture(&server).await;
    let browser = Browser::new(&server);
    let page = browser.open(&flow::authorize_url(&server, &fx.client_id, &[("login_hint", "nobody")])).await;
    let Outcome::Page { status: 200, html } = &page else { panic!("the login page, got {}", page.status()) };
    assert!(html.contains("dev-login: login_hint names no enabled user &#34;nobody&#34;"), "{html}");
    // A hint naming a real user still signs in headlessly.
    let outcome = browser.open(&flow::authorize_url(&server, &fx.client_id, &[("login_hint", "alice")])).await;
    assert!(outcome.params().contains_key("code"));
    server.stop().await;
}

async fn a_scope_the_client_may_not_request_is_refused_by_name_unless_narrowing_is_on(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    // Allowed: openid profile email read:appointments; `phone` is a scope it may not ask for.
    let fx = flow::fixture_with(&server, |c| c.first_party = Some(true)).await;
    let browser = Browser::new(&server);
    let url = flow::authorize_url(&server, &fx.client_id, &[("scope", "openid phone email")]);
    let outcome = browser.open(&url).await;
    let params = outcome.params();
    assert_eq!(params["error"], "invalid_scope");
    let description = &params["error_description"];
    assert!(description.contains("client \"web\" may not request \"phone\""), "{description}");
    assert!(description.contains("scope_narrowing"), "{description}");
    // offline_access without the refresh grant is ignored, not refused (OIDC Core §11).
    let url = flow::authorize_url(&server, &fx.client_id, &[("scope", "openid offline_access")]);
    let outcome = browser.sign_in(&url, "alice").await;
    assert!(outcome.params().contains_key("code"), "{:?}", outcome.params());
    server.stop().await;

    // scope_narrowing: the same request is granted without `phone`.
    let server = TestServer::start_with(&db, |s| s.scope_narrowing = true).await;
    let browser = Browser::new(&server);
    let url = flow::authorize_url(&server, &fx.client_id, &[("scope", "openid phone email")]);
    let outcome = browser.sign_in(&url, "alice").await;
    let code = outcome.params().get("code").expect("a code").clone();
    let (status, tokens) = flow::exchange(&server, &fx, &code, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "email openid");
    server.stop().await;
}

async fn a_patch_in_the_admin_api_changes_only_the_fields_given(backend: Backend) {
    const TOKEN: &str = "dev-loop-admin-token-with-plenty-of-entropy";
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    server.store.insert_admin_token("ci", &lanyard::crypto::sha256_hex(TOKEN)).await.expect("admin token");
    let patch =
        |path: &str, body: serde_json::Value| server.http.patch(server.url(path)).bearer_auth(TOKEN).json(&body).send();

    // A user: disabled, name changed, email kept; null removes a claim.
    let response =
        patch("/admin/api/users/alice", serde_json::json!({"disabled": true, "name": "Alice P."})).await.unwrap();
    assert_eq!(response.status(), 200);
    let alice: serde_json::Value = response.json().await.unwrap();
    assert_eq!(alice["disabled"], true);
    assert_eq!(alice["name"], "Alice P.");
    assert_eq!(alice["email"], "alice@example.test", "the email is kept: {alice}");
    let alice: serde_json::Value = patch("/admin/api/users/alice", serde_json::json!({"email_verified": null}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(alice.get("email_verified").is_none() && alice["email"] == "alice@example.test", "{alice}");
    // A patch is checked like a replacement.
    let bad = patch("/admin/api/users/alice", serde_json::json!({"email_verified": "yes"})).await.unwrap();
    assert_eq!(bad.status(), 422);

    // A client: renamed, redirect URIs and scopes kept, the secret still works.
    let response =
        patch(&format!("/admin/api/clients/{}", fx.client_id), serde_json::json!({"client_name": "Renamed"}))
            .await
            .unwrap();
    assert_eq!(response.status(), 200);
    let client: serde_json::Value = response.json().await.unwrap();
    assert_eq!(client["client_name"], "Renamed");
    assert_eq!(client["redirect_uris"], serde_json::json!([flow::REDIRECT_URI]));
    assert_eq!(client["scope"], "email openid profile read:appointments");
    assert!(client.get("client_secret").is_none(), "no new secret: {client}");
    let stored = server.store.client(&fx.client_id).await.unwrap().unwrap();
    assert!(stored.secret_matches(&fx.client_secret));
    let missing = patch("/admin/api/clients/nobody", serde_json::json!({"client_name": "x"})).await.unwrap();
    assert_eq!(missing.status(), 404);
    server.stop().await;
}

async fn a_seed_export_recreates_users_with_their_passwords_on_a_fresh_database(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    flow::fixture(&server).await;
    let exported = lanyard::seed::export(&server.store).await.expect("export");
    assert!(exported.contains("password_hash = \"$argon2id$"), "{exported}");
    server.stop().await;

    // A fresh database: the export alone recreates alice, who signs in with her password.
    let fresh = TestDb::create(backend).await;
    let server = TestServer::start(&fresh).await;
    let seed = lanyard::seed::Seed::parse("export.toml", &exported).expect("the export parses");
    seed.apply(&server.store, Default::default()).await.expect("the export applies to a fresh database");
    seed.apply(&server.store, Default::default()).await.expect("and again, idempotently");
    let browser = Browser::new(&server);
    let outcome = browser.sign_in(&flow::authorize_url(&server, "web", &[]), "alice").await;
    assert!(outcome.params().contains_key("code"), "alice signs in with her old password");
    server.stop().await;

    // A password_hash that is not an argon2id hash is refused at parse time, by name.
    let bad = "[[users]]\nusername = \"bob\"\npassword_hash = \"plain\"\n";
    let error = lanyard::seed::Seed::parse("bad.toml", bad).map(|_| ()).expect_err("refused").to_string();
    assert!(error.contains("line 1") && error.contains("password_hash"), "{error}");
}

async fn a_seed_error_only_the_database_can_find_names_its_line(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let text = "[[users]]\nusername = \"carol\"\npassword = \"carol-password\"\n\n\
                [[clients]]\nclient_id = \"web\"\nredirect_uris = [\"http://127.0.0.1:9999/cb\"]\n\
                default_api = \"https://api.example.test/none\"\n";
    let seed = lanyard::seed::Seed::parse("semantic.toml", text).expect("well-formed");
    let error = seed.apply(&server.store, Default::default()).await.expect_err("refused").to_string();
    assert!(error.contains("semantic.toml, line 5: applying client \"web\" failed"), "{error}");
    assert!(error.contains("https://api.example.test/none"), "{error}");
    server.stop().await;
}

/// The binary, started on a free port; its stderr is collected when it stops.
struct Running {
    child: Child,
    base: String,
}

fn lanyard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanyard"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LANYARD_") {
            cmd.env_remove(key);
        }
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    cmd
}

impl Running {
    async fn start(args: &[&str], port: u16) -> Running {
        let mut command = lanyard();
        command.args(args);
        Self::spawn(command, port).await
    }

    async fn spawn(mut command: Command, port: u16) -> Running {
        let child = command.spawn().expect("lanyard starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut running = Running { child, base };
        if !wait_for_status(&http, &format!("{}/readyz", running.base), 200, Duration::from_secs(30)).await {
            panic!("lanyard did not become ready: {}", running.stop());
        }
        running
    }

    /// Stops the process (SIGTERM) and returns everything it logged.
    fn stop(&mut self) -> String {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        let mut log = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut log);
        }
        log
    }
}

struct SeedFile(PathBuf);

impl SeedFile {
    fn write(text: &str) -> SeedFile {
        let path = std::env::temp_dir().join(format!("lanyard-dev-loop-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).expect("seed written");
        SeedFile(path)
    }
}

impl Drop for SeedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const SEED: &str = r#"
[[users]]
username = "alice"
password = "alice-password"
name = "Alice Example"

[[users]]
username = "bob"
password = "bob-password-1"

[[clients]]
client_id = "web"
client_secret = "web-secret-web-secret"
redirect_uris = ["http://127.0.0.1:9999/cb"]
scope = "openid profile"

[[admin_tokens]]
name = "tests"
token = "dev-loop-admin-token-0123456789"
"#;

#[tokio::test]
async fn without_an_issuer_the_bind_address_is_advertised() {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut server = Running::start(&["--ephemeral", "--bind", &bind], port).await;
    let discovery: serde_json::Value =
        reqwest::get(format!("{}/.well-known/openid-configuration", server.base)).await.unwrap().json().await.unwrap();
    server.stop();
    assert_eq!(discovery["issuer"], format!("http://127.0.0.1:{port}"));
    assert_eq!(discovery["token_endpoint"], format!("http://127.0.0.1:{port}/token"));
}

#[tokio::test]
async fn failures_are_logged_with_their_reason_while_answers_stay_generic() {
    let seed = SeedFile::write(SEED);
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    // The issuer is spelled `localhost`, the requests below go to 127.0.0.1.
    let issuer = format!("http://localhost:{port}");
    let seed_path = seed.0.display().to_string();
    let args = ["--ephemeral", "--bind", &bind, "--issuer", &issuer, "--dev-login", "--seed", &seed_path];
    let mut server = Running::start(&args, port).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let token = |client: &str, secret: &str| {
        http.post(format!("{}/token", server.base))
            .basic_auth(client, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    // Wrong secret and unknown client: the same generic answer.
    for (client, secret) in [("web", "not-the-secret"), ("ghost", "whatever")] {
        let response = token(client, secret).await.unwrap();
        assert_eq!(response.status(), 401);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error_description"], "client authentication failed");
    }
    // bob is disabled; then a wrong password for alice, and bob's right one.
    let disabled = http
        .put(format!("{}/admin/api/users/bob", server.base))
        .bearer_auth("dev-loop-admin-token-0123456789")
        .json(&serde_json::json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200, "{}", disabled.text().await.unwrap());
    let authorize = format!(
        "{}/authorize?response_type=code&client_id=web&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fcb&scope=openid&code_challenge={}&code_challenge_method=S256",
        server.base,
        flow::s256(VERIFIER)
    );
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = browser.get(&authorize).send().await.unwrap().text().await.unwrap();
    for (username, password) in [("alice", "wrong-password"), ("bob", "bob-password-1"), ("carol", "whatever-pass")] {
        let form = [
            ("csrf_token", form_field(&page, "csrf_token").expect("csrf")),
            ("request_id", form_field(&page, "request_id").expect("request id")),
            ("username", username.to_owned()),
            ("password", password.to_owned()),
        ];
        let response = browser.post(format!("{}/login", server.base)).form(&form).send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.text().await.unwrap().contains("Invalid username or password."));
    }
    // --dev-login with a hint naming nobody.
    let hinted = browser.get(format!("{authorize}&login_hint=nobody")).send().await.unwrap();
    assert!(hinted.text().await.unwrap().contains("login_hint names no enabled user"));

    let log = server.stop();
    for expected in [
        "reason=\"wrong client secret\"",
        "reason=\"no such client\"",
        "reason=\"wrong password\"",
        "reason=\"the account is disabled\"",
        "reason=\"no such user\"",
        "dev-login: login_hint names no enabled user",
        &format!("a browser page was requested at 127.0.0.1:{port}, but the issuer is {issuer}"),
    ] {
        assert!(log.contains(expected), "the log should contain {expected:?}:\n{log}");
    }
    assert_eq!(log.matches("a browser page was requested at").count(), 1, "logged once:\n{log}");
    assert!(!log.contains("not-the-secret"), "a presented secret is never logged");
}

#[tokio::test]
async fn an_ephemeral_seeded_server_honours_the_admin_password() {
    let seed = SeedFile::write(SEED);
    let port = free_port();
    let mut command = lanyard();
    command.env("LANYARD_ADMIN_PASSWORD", "admin-password-for-tests").args([
        "--ephemeral",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--seed",
        &seed.0.display().to_string(),
    ]);
    let mut server = Running::spawn(command, port).await;
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = browser.get(format!("{}/admin", server.base)).send().await.unwrap();
    let page = if page.status().is_redirection() {
        let location = page.headers()["location"].to_str().unwrap().to_owned();
        let next = if location.starts_with('/') { format!("{}{location}", server.base) } else { location };
        browser.get(next).send().await.unwrap()
    } else {
        page
    };
    let html = page.text().await.unwrap();
    let form = [
        ("csrf_token", form_field(&html, "csrf_token").expect("csrf")),
        ("return_to", "/admin".to_owned()),
        ("username", "admin".to_owned()),
        ("password", "admin-password-for-tests".to_owned()),
    ];
    let response = browser.post(format!("{}/login", server.base)).form(&form).send().await.unwrap();
    let log = server.stop();
    assert_eq!(response.status(), 303, "{log}");
    assert_eq!(response.headers()["location"], "/admin");
}

#[tokio::test]
async fn database_connection_errors_say_the_cause_once() {
    // Nothing listens on the port: the cause is the refused connection, not a pool timeout.
    let dead = free_port();
    let output = lanyard()
        .args(["--bind", &format!("127.0.0.1:{}", free_port()), "--database-url"])
        .arg(format!("postgres://postgres@127.0.0.1:{dead}/lanyard"))
        .output()
        .expect("lanyard runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&format!("connection refused at 127.0.0.1:{dead}")), "{stderr}");
    assert!(!stderr.contains("pool timed out"), "{stderr}");

    // A database that does not exist, on a PostgreSQL that answers: named, with the fix.
    if Backend::postgres().await.is_none() {
        return;
    }
    let mut url = url::Url::parse(&crate::helpers::postgres_admin_url()).expect("admin URL");
    url.set_path("/lanyard_no_such_database");
    let output = lanyard()
        .args(["--bind", &format!("127.0.0.1:{}", free_port()), "--database-url", url.as_str()])
        .output()
        .expect("lanyard runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("database \"lanyard_no_such_database\" does not exist"), "{stderr}");
    assert!(stderr.contains("createdb"), "{stderr}");
}
