//! Lanyard as a development and test identity provider: seed files (applied at every start,
//! idempotent, validated with file/line/field, fixed signing keys, `seed export`), ephemeral
//! mode, `--dev-login` and its banner, minted tokens, and the demo on first run.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard::app::Application;
use lanyard::config::Settings;
use lanyard::registry::{self, api::ApiSpec, client::ClientSpec};
use lanyard::tokens::keys::KeyManager;
use lanyard::tokens::mint::{MintRequest, mint};
use serde_json::{Value, json};

use crate::both_backends;
use crate::examples_e2e::{CALENDAR, CalendarApi};
use crate::flow::{self, Browser, Outcome, REDIRECT_URI, decode_jwt};
use crate::helpers::{Backend, TestDb, TestServer, test_settings};

both_backends!(
    a_seed_applied_at_start_creates_its_users_apis_clients_and_admin_tokens,
    restarting_with_the_same_seed_changes_nothing,
    a_changed_field_in_the_seed_is_updated_at_the_next_start,
    fixed_signing_keys_from_the_seed_are_published_with_their_thumbprints_and_sign_tokens,
    seed_export_output_reapplies_cleanly_to_the_database_it_came_from,
    dev_login_signs_the_hinted_user_in_without_a_password_or_consent,
    dev_login_puts_a_warning_banner_on_every_html_page,
    without_dev_login_a_login_hint_only_prefills_the_login_page,
    minted_tokens_are_accepted_by_userinfo_and_the_calendar_api_and_verify_against_the_pinned_key,
    demo_mode_creates_the_demo_client_user_and_api_on_an_empty_database,
    demo_mode_creates_nothing_on_a_database_that_has_a_client,
);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const CLIENT_SECRET: &str = "web-secret-for-tests";
const ADMIN_TOKEN: &str = "ci-admin-token-0123456789";
const BANNER: &str = "Development sign-in is on (--dev-login)";

/// A directory of its own under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("lanyard-dev-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary, without the developer's own `LANYARD_*` settings.
fn lanyard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanyard"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LANYARD_") {
            cmd.env_remove(key);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A port that was free a moment ago (for the binary, which binds it itself).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Signing keys generated here with openssl, and the `kid`s Lanyard must give them: RFC 7638
/// thumbprints, computed independently of Lanyard's own code.
struct FixedKeys {
    rsa_pem: String,
    rsa_public_pem: Vec<u8>,
    rsa_kid: String,
    ec_pem: String,
    ec_public_pem: Vec<u8>,
    ec_kid: String,
}

impl FixedKeys {
    fn generate() -> FixedKeys {
        use openssl::bn::BigNumContext;
        use openssl::ec::{EcGroup, EcKey};
        use openssl::nid::Nid;
        use openssl::pkey::PKey;
        use openssl::rsa::Rsa;

        let thumbprint = |canonical: String| URL_SAFE_NO_PAD.encode(openssl::sha::sha256(canonical.as_bytes()));
        let rsa = Rsa::generate(2048).expect("RSA key");
        let rsa_kid = thumbprint(format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
            URL_SAFE_NO_PAD.encode(rsa.n().to_vec())
        ));
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
        let ec = EcKey::generate(&group).expect("EC key");
        let (mut x, mut y) = (openssl::bn::BigNum::new().unwrap(), openssl::bn::BigNum::new().unwrap());
        let mut ctx = BigNumContext::new().expect("bn context");
        ec.public_key().affine_coordinates(&group, &mut x, &mut y, &mut ctx).expect("coordinates");
        let ec_kid = thumbprint(format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(x.to_vec_padded(32).expect("x")),
            URL_SAFE_NO_PAD.encode(y.to_vec_padded(32).expect("y"))
        ));
        FixedKeys {
            // Traditional PEM, as `openssl genrsa` / `openssl ecparam -genkey` write it.
            rsa_pem: String::from_utf8(rsa.private_key_to_pem().expect("PEM")).expect("ASCII"),
            rsa_public_pem: rsa.public_key_to_pem().expect("public PEM"),
            rsa_kid,
            ec_pem: String::from_utf8(ec.private_key_to_pem().expect("PEM")).expect("ASCII"),
            ec_public_pem: PKey::from_ec_key(ec).expect("pkey").public_key_to_pem().expect("public PEM"),
            ec_kid,
        }
    }

    fn seed_section(&self) -> String {
        format!(
            "\n[[keys]]\nalg = \"RS256\"\npem = \"\"\"\n{}\"\"\"\n\n[[keys]]\nalg = \"ES256\"\npem = \"\"\"\n{}\"\"\"\n",
            self.rsa_pem, self.ec_pem
        )
    }
}

/// A seed with a user, the appointments API, a confidential client and an admin token.
fn seed_text(client_name: &str, alice_name: &str) -> String {
    format!(
        r#"# A seed for tests.
[[users]]
username = "alice"
password = "alice-password"
name = "{alice_name}"
email = "alice@example.test"
email_verified = true

[[apis]]
identifier = "{api}"
name = "Appointments"
scopes = ["read:appointments", "write:appointments"]

[[clients]]
client_id = "web"
client_name = "{client_name}"
client_secret = "{CLIENT_SECRET}"
redirect_uris = ["{REDIRECT_URI}"]
scope = "openid profile email read:appointments write:appointments"
grant_types = ["authorization_code", "client_credentials"]
default_api = "{api}"
id_token_signed_response_alg = "ES256"

[[admin_tokens]]
name = "ci"
token = "{ADMIN_TOKEN}"
"#,
        api = flow::API,
    )
}

async fn start_seeded(db: &TestDb, seed: &Path) -> TestServer {
    let seed = seed.to_path_buf();
    TestServer::start_with(db, move |s| s.seed = Some(seed)).await
}

/// What must not change when the same seed is applied again.
#[derive(Debug, PartialEq)]
struct Identity {
    user_id: String,
    user_created_at: i64,
    client_created_at: i64,
    api_created_at: i64,
    admin_tokens: Vec<String>,
}

async fn identity(server: &TestServer) -> Identity {
    let store = &server.store;
    let user = store.user_by_username("alice").await.unwrap().expect("alice");
    let client = store.client("web").await.unwrap().expect("web");
    let api = store.api(flow::API).await.unwrap().expect("API");
    let admin_tokens = store.list_admin_tokens().await.unwrap().into_iter().map(|t| t.name).collect();
    Identity {
        user_id: user.id,
        user_created_at: user.created_at,
        client_created_at: client.created_at,
        api_created_at: api.created_at,
        admin_tokens,
    }
}

/// A client_credentials request with `web`'s secret: the status (200 when the secret works).
async fn client_credentials_status(server: &TestServer, secret: &str) -> u16 {
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth("web", Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "read:appointments")])
        .send()
        .await
        .expect("token request");
    response.status().as_u16()
}

/// `GET /admin/api/clients` with an admin token: the status.
async fn admin_api_status(server: &TestServer, token: &str) -> u16 {
    let response =
        server.http.get(server.url("/admin/api/clients")).bearer_auth(token).send().await.expect("admin API");
    response.status().as_u16()
}

async fn password_of_alice_is(server: &TestServer, password: &str) -> bool {
    let user = server.store.user_by_username("alice").await.unwrap().expect("alice");
    registry::password::verify(password.to_owned(), Some(user.password_hash)).await
}

/// A fresh HTTP client that does not follow redirects and keeps no cookies.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

// ---------------------------------------------------------------------------------------
// Seed files
// ---------------------------------------------------------------------------------------

async fn a_seed_applied_at_start_creates_its_users_apis_clients_and_admin_tokens(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = TempDir::new();
    let seed = dir.write("seed.toml", &seed_text("Web app", "Alice Example"));
    let server = start_seeded(&db, &seed).await;

    let alice = server.store.user_by_username("alice").await.unwrap().expect("the seed's user");
    assert_eq!(alice.claims["name"], "Alice Example");
    assert_eq!(alice.claims["email_verified"], true);
    assert!(!alice.is_admin);
    assert!(password_of_alice_is(&server, "alice-password").await);
    let api = server.store.api(flow::API).await.unwrap().expect("the seed's API");
    assert!(api.defines("read:appointments") && api.defines("write:appointments"));
    let client = server.store.client("web").await.unwrap().expect("the seed's client");
    assert_eq!(client.name, "Web app");
    assert_eq!(client.default_api.as_deref(), Some(flow::API));
    assert!(client.secret_matches(CLIENT_SECRET), "the fixed secret is the client's secret");
    assert_eq!(client_credentials_status(&server, CLIENT_SECRET).await, 200);
    assert_eq!(admin_api_status(&server, ADMIN_TOKEN).await, 200, "the seed's admin token works");
    assert_eq!(admin_api_status(&server, "not-the-admin-token-at-all").await, 401);
    // The seed has no admin user, so the bootstrap admin exists as on any first start.
    assert!(server.store.user_by_username("admin").await.unwrap().is_some_and(|u| u.is_admin));
    server.stop().await;
}

async fn restarting_with_the_same_seed_changes_nothing(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = TempDir::new();
    let seed = dir.write("seed.toml", &seed_text("Web app", "Alice Example"));
    let server = start_seeded(&db, &seed).await;
    let before = identity(&server).await;
    let users = server.store.list_users("", 100).await.unwrap().len();
    server.stop().await;

    let server = start_seeded(&db, &seed).await;
    assert_eq!(identity(&server).await, before, "ids and created_at stay");
    assert_eq!(server.store.list_users("", 100).await.unwrap().len(), users, "nothing was added");
    assert_eq!(server.store.list_clients().await.unwrap().len(), 1);
    assert_eq!(server.store.list_apis().await.unwrap().len(), 1);
    assert_eq!(client_credentials_status(&server, CLIENT_SECRET).await, 200, "the secret still works");
    assert!(password_of_alice_is(&server, "alice-password").await);
    assert_eq!(admin_api_status(&server, ADMIN_TOKEN).await, 200);
    server.stop().await;
}

async fn a_changed_field_in_the_seed_is_updated_at_the_next_start(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = TempDir::new();
    let seed = dir.write("seed.toml", &seed_text("Web app", "Alice Example"));
    let server = start_seeded(&db, &seed).await;
    let before = identity(&server).await;
    server.stop().await;

    let changed = seed_text("Web app (renamed)", "Alice Changed").replace("alice-password", "alice-new-password");
    std::fs::write(&seed, changed).unwrap();
    let server = start_seeded(&db, &seed).await;
    assert_eq!(server.store.client("web").await.unwrap().unwrap().name, "Web app (renamed)");
    let alice = server.store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(alice.claims["name"], "Alice Changed");
    assert!(password_of_alice_is(&server, "alice-new-password").await, "a changed password is set");
    assert_eq!(identity(&server).await, before, "updated in place: same ids and created_at");
    assert_eq!(client_credentials_status(&server, CLIENT_SECRET).await, 200);
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_seed_refuses_start_up_naming_the_file_line_and_field() {
    let dir = TempDir::new();
    let good = seed_text("Web app", "Alice Example");
    let bad_client = "[[clients]]\nclient_id = \"evil\"\nredirect_uris = [\"http://evil.example/cb\"]\n";
    let text = format!("{good}\n{bad_client}");
    // The bad client's table starts on this line (1-based).
    let line = text.lines().count() - bad_client.lines().count() + 1;
    let seed = dir.write("bad-seed.toml", &text);
    let shown = seed.display().to_string();
    let expected = [shown.as_str(), &format!("line {line}"), "redirect_uris", "evil"];

    // In-process: the seed is parsed and validated with the settings, before anything starts.
    let mut settings = Settings { ephemeral: true, demo: false, ..Settings::default() };
    settings.seed = Some(seed.clone());
    let error = settings.validate().expect_err("an invalid seed is refused").to_string();
    for part in expected {
        assert!(error.contains(part), "{error:?} should name {part:?}");
    }

    // The binary: exit code 2 and the same message on stderr, nothing started.
    let output = lanyard()
        .current_dir(&dir.0)
        .args(["--ephemeral", "--bind", &format!("127.0.0.1:{}", free_port()), "--seed"])
        .arg(&seed)
        .output()
        .expect("run lanyard");
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for part in expected {
        assert!(stderr.contains(part), "{stderr:?} should name {part:?}");
    }
}

#[tokio::test]
async fn a_seed_that_contradicts_itself_refuses_start_up_naming_the_file_and_field() {
    // Valid entry by entry (so the settings validate), but the client asks for a scope that
    // no API defines: `Application::build` refuses while applying it.
    let dir = TempDir::new();
    let text = format!(
        "{}\n[[clients]]\nclient_id = \"greedy\"\nclient_secret = \"greedy-secret-0123\"\n\
         grant_types = [\"client_credentials\"]\nscope = \"read:everything\"\n",
        seed_text("Web app", "Alice Example")
    );
    let seed = dir.write("seed.toml", &text);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut settings = Settings { ephemeral: true, demo: false, ..Settings::default() };
    settings.issuer = Some(format!("http://127.0.0.1:{port}"));
    settings.seed = Some(seed.clone());
    let config = settings.validate().expect("each entry is valid on its own");
    let Err(error) = Application::build_with_listener(config, listener).await else {
        panic!("a seed that cannot be applied must refuse start-up");
    };
    let error = error.to_string();
    for part in [seed.display().to_string().as_str(), "greedy", "scope", "read:everything"] {
        assert!(error.contains(part), "{error:?} should name {part:?}");
    }
}

async fn fixed_signing_keys_from_the_seed_are_published_with_their_thumbprints_and_sign_tokens(backend: Backend) {
    let keys = FixedKeys::generate();
    let db = TestDb::create(backend).await;
    let dir = TempDir::new();
    let seed = dir.write("seed.toml", &(seed_text("Web app", "Alice Example") + &keys.seed_section()));
    let server = start_seeded(&db, &seed).await;

    let jwks = server.get_json("/jwks").await;
    let kids = |jwks: &Value| -> Vec<String> {
        let mut kids: Vec<String> =
            jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
        kids.sort();
        kids
    };
    let mut expected = vec![keys.rsa_kid.clone(), keys.ec_kid.clone()];
    expected.sort();
    assert_eq!(kids(&jwks), expected, "exactly the pinned keys: nothing generated");
    for key in jwks["keys"].as_array().unwrap() {
        assert!(key.get("d").is_none() && key.get("p").is_none(), "no private members: {key}");
    }

    // A flow's tokens are signed by them: the access token with RS256 (the API's alg), the
    // id_token with ES256 (the client's), and both verify with the public keys alone.
    let browser = Browser::new(&server);
    let url = flow::authorize_url(&server, "web", &[("resource", flow::API)]);
    let Outcome::Redirect { params, .. } = browser.sign_in(&url, "alice").await else {
        panic!("signed in");
    };
    let fx = flow::Fixture { client_id: "web".into(), client_secret: CLIENT_SECRET.into(), user_id: String::new() };
    let (status, tokens) = flow::exchange(&server, &fx, &params["code"], flow::VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    let access_token = tokens["access_token"].as_str().unwrap();
    let rs256 = josekit::jws::RS256.verifier_from_pem(&keys.rsa_public_pem).expect("RSA verifier");
    let (payload, header) = josekit::jwt::decode_with_verifier(access_token, &rs256).expect("verifies with the pin");
    assert_eq!(header.key_id(), Some(keys.rsa_kid.as_str()));
    assert_eq!(header.token_type(), Some("at+jwt"));
    assert_eq!(payload.issuer(), Some(server.base.as_str()));
    let id_token = tokens["id_token"].as_str().unwrap();
    let es256 = josekit::jws::ES256.verifier_from_pem(&keys.ec_public_pem).expect("EC verifier");
    let (payload, header) = josekit::jwt::decode_with_verifier(id_token, &es256).expect("verifies with the pin");
    assert_eq!(header.key_id(), Some(keys.ec_kid.as_str()));
    assert_eq!(payload.audience(), Some(vec!["web"]));
    assert!(josekit::jwt::decode_with_verifier(access_token, &es256).is_err(), "and only with its own key");

    // A restart with the same seed keeps the same keys.
    server.stop().await;
    let server = start_seeded(&db, &seed).await;
    assert_eq!(kids(&server.get_json("/jwks").await), expected);
    server.stop().await;
}

async fn seed_export_output_reapplies_cleanly_to_the_database_it_came_from(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = TempDir::new();
    let seed = dir.write("seed.toml", &seed_text("Web app", "Alice Example"));
    let server = start_seeded(&db, &seed).await;
    let before = identity(&server).await;
    server.stop().await;

    let output = lanyard().args(["--database-url", &db.url, "seed", "export"]).output().expect("run lanyard");
    assert!(output.status.success(), "{}", stderr(&output));
    let exported = stdout(&output);
    assert!(!exported.contains(CLIENT_SECRET) && !exported.contains("alice-password"), "no secrets: {exported}");
    let exported = dir.write("exported.toml", &exported);
    lanyard::seed::Seed::load(&exported).expect("the export is a valid seed file");

    let server = start_seeded(&db, &exported).await;
    assert_eq!(identity(&server).await, before);
    let client = server.store.client("web").await.unwrap().unwrap();
    assert_eq!(client.name, "Web app");
    assert_eq!(client.default_api.as_deref(), Some(flow::API));
    assert_eq!(client_credentials_status(&server, CLIENT_SECRET).await, 200, "the secret is kept");
    assert!(password_of_alice_is(&server, "alice-password").await, "the password is kept");
    let alice = server.store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(alice.claims["name"], "Alice Example");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------
// Ephemeral mode
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn ephemeral_mode_writes_no_file() {
    let dir = TempDir::new();
    let port = free_port();
    let mut child = lanyard()
        .current_dir(&dir.0)
        .args(["--ephemeral", "--bind", &format!("127.0.0.1:{port}"), "--issuer", &format!("http://127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lanyard");
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let mut ready = false;
    for _ in 0..300 {
        if let Ok(response) = reqwest::get(&readyz).await
            && response.status() == 200
        {
            ready = true;
            break;
        }
        if child.try_wait().expect("poll").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Graceful stop, as an operator would (SIGTERM), by this child's pid only.
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let mut stopped = false;
    for _ in 0..200 {
        if child.try_wait().expect("poll").is_some() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !stopped {
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("lanyard output");
    assert!(ready, "/readyz never answered 200: {}", stderr(&output));
    assert!(stopped, "SIGTERM stops the server");
    let left: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "ephemeral mode wrote {left:?}");
}

// ---------------------------------------------------------------------------------------
// --dev-login
// ---------------------------------------------------------------------------------------

#[test]
fn dev_login_is_refused_for_a_non_loopback_issuer_unless_explicitly_allowed() {
    let dir = TempDir::new();
    let run = |extra: &[&str]| {
        lanyard()
            .current_dir(&dir.0)
            .args(["--ephemeral", "--dev-login", "--issuer", "https://id.example.test"])
            .args(extra)
            .arg("migrate")
            .output()
            .expect("run lanyard")
    };
    let refused = run(&[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("dev_login"), "names the setting: {}", stderr(&refused));
    assert!(stderr(&refused).contains("--dev-login-allow-non-loopback"), "says how: {}", stderr(&refused));

    let allowed = run(&["--dev-login-allow-non-loopback"]);
    assert!(allowed.status.success(), "{}", stderr(&allowed));

    // The same rule in-process.
    let settings = |allow| Settings {
        issuer: Some("https://id.example.test".into()),
        dev_login: true,
        dev_login_allow_non_loopback: allow,
        ephemeral: true,
        ..Settings::default()
    };
    assert!(settings(false).validate().expect_err("refused").to_string().contains("dev_login"));
    assert!(settings(true).validate().is_ok());
    // Loopback issuers need no permission.
    for issuer in ["http://localhost:8080", "http://127.0.0.1:8080", "http://[::1]:8080"] {
        let s = Settings { issuer: Some(issuer.into()), dev_login: true, ..Settings::default() };
        assert!(s.validate().is_ok(), "{issuer}");
    }
}

async fn dev_login_signs_the_hinted_user_in_without_a_password_or_consent(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.dev_login = true).await;
    let fx = flow::fixture(&server).await;
    let url = flow::authorize_url(&server, &fx.client_id, &[("login_hint", "alice")]);

    let response = no_redirects().get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303, "straight back to the client");
    let (location, params) = flow::location_params(&response);
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(params["state"], "xyz");
    assert_eq!(params["iss"], server.base);
    assert!(response.headers().get("set-cookie").is_some(), "a Lanyard session, as after a login");

    let (status, tokens) = flow::exchange(&server, &fx, &params["code"], flow::VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, claims) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], fx.user_id, "signed in as the hinted user");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");

    // An unknown or disabled user is not signed in: the login page, as without dev-login.
    let response = no_redirects().get(flow::authorize_url(&server, &fx.client_id, &[("login_hint", "mallory")]));
    let response = response.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.text().await.unwrap().contains("name=\"password\""));
}

async fn dev_login_puts_a_warning_banner_on_every_html_page(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.dev_login = true).await;
    let fx = flow::fixture(&server).await;

    let url = flow::authorize_url(&server, &fx.client_id, &[("login_hint", "nobody")]);
    let html = Browser::new(&server).open(&url).await.html().to_owned();
    assert!(html.contains("name=\"password\""), "the login page: {html}");
    assert!(html.contains(BANNER), "with the banner: {html}");
    assert!(html.find(BANNER) > html.find("<body"), "inside the body");

    let unknown_client = server.get("/authorize?client_id=nope").await;
    assert_eq!(unknown_client.status().as_u16(), 400);
    assert!(unknown_client.text().await.unwrap().contains(BANNER), "error pages too");

    // Not on JSON.
    let discovery = server.get("/.well-known/openid-configuration").await.text().await.unwrap();
    assert!(!discovery.contains(BANNER));
    serde_json::from_str::<Value>(&discovery).expect("still JSON");
}

async fn without_dev_login_a_login_hint_only_prefills_the_login_page(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let fx = flow::fixture(&server).await;
    let url = flow::authorize_url(&server, &fx.client_id, &[("login_hint", "alice")]);
    let response = no_redirects().get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "no redirect, no code");
    let html = response.text().await.unwrap();
    assert!(html.contains("name=\"password\""), "{html}");
    assert_eq!(flow::form_field(&html, "username").as_deref(), Some("alice"), "prefilled");
    assert!(!html.contains(BANNER));
}

// ---------------------------------------------------------------------------------------
// Minted tokens
// ---------------------------------------------------------------------------------------

async fn minted_tokens_are_accepted_by_userinfo_and_the_calendar_api_and_verify_against_the_pinned_key(
    backend: Backend,
) {
    assert_eq!(CALENDAR, flow::API, "the calendar API is the seed's appointments API");
    let keys = FixedKeys::generate();
    let db = TestDb::create(backend).await;
    let dir = TempDir::new();
    let seed = dir.write("seed.toml", &(seed_text("Web app", "Alice Example") + &keys.seed_section()));
    let server = start_seeded(&db, &seed).await;
    let alice = server.store.user_by_username("alice").await.unwrap().unwrap();
    let scope = "openid profile read:appointments";

    // `lanyard token mint` on the same database (the server keeps running).
    let output = lanyard()
        .args(["--database-url", &db.url, "--issuer", &server.base])
        .args(["token", "mint", "--user", "alice", "--client", "web", "--api", flow::API, "--scope", scope])
        .arg("--json")
        .output()
        .expect("run lanyard");
    assert!(output.status.success(), "{}", stderr(&output));
    let minted: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    let from_cli = minted["access_token"].as_str().expect("an access token").to_owned();

    // `tokens::mint` in-process, with the same keys.
    let ring = KeyManager::start(server.store.clone(), None).await.unwrap().ring();
    let request =
        MintRequest { user: Some("alice".into()), client: "web".into(), scope: scope.into(), ..Default::default() };
    let subjects = lanyard::tokens::subject::Subjects::load(&server.store, None).await.unwrap();
    let in_process = mint(&server.store, &ring, &server.config.issuer, &subjects, server.config.id_token_ttl, &request)
        .await
        .unwrap();

    let calendar = CalendarApi::start(&server).await;
    let rs256 = josekit::jws::RS256.verifier_from_pem(&keys.rsa_public_pem).unwrap();
    for (how, token) in [("lanyard token mint", from_cli.as_str()), ("tokens::mint", &in_process.access_token)] {
        let userinfo = server.http.get(server.url("/userinfo")).bearer_auth(token).send().await.unwrap();
        assert_eq!(userinfo.status().as_u16(), 200, "{how}");
        let claims: Value = userinfo.json().await.unwrap();
        assert_eq!((claims["sub"].as_str(), claims["name"].as_str()), (Some(alice.id.as_str()), Some("Alice Example")));

        let (status, challenge, body) = calendar.list(token).await;
        assert_eq!(status, 200, "{how}: {challenge}");
        assert_eq!(body["owner"], json!(alice.id));
        assert_eq!(body["client"], "web");

        let (payload, header) = josekit::jwt::decode_with_verifier(token, &rs256).expect("verifies with the pin");
        assert_eq!(header.key_id(), Some(keys.rsa_kid.as_str()), "{how}");
        assert_eq!(header.token_type(), Some("at+jwt"));
        assert_eq!(payload.issuer(), Some(server.base.as_str()));
        assert_eq!(payload.subject(), Some(alice.id.as_str()));
        let audience = payload.audience().unwrap_or_default();
        assert!(audience.contains(&flow::API) && audience.contains(&server.url("/userinfo").as_str()), "{how}");
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------------------
// Demo on first run
// ---------------------------------------------------------------------------------------

async fn demo_mode_creates_the_demo_client_user_and_api_on_an_empty_database(backend: Backend) {
    use lanyard::demo::{DEMO_API, DEMO_CLIENT, DEMO_REDIRECT_URI, DEMO_USER};
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.demo = true).await;
    let client = server.store.client(DEMO_CLIENT).await.unwrap().expect("the demo client");
    assert_eq!(client.default_api.as_deref(), Some(DEMO_API));
    assert!(client.redirect_uri(DEMO_REDIRECT_URI).is_some());
    assert!(client.secret_hash.is_some(), "confidential, with a secret printed once");
    let user = server.store.user_by_username(DEMO_USER).await.unwrap().expect("the demo user");
    assert!(!user.is_admin);
    let api = server.store.api(DEMO_API).await.unwrap().expect("the demo API");
    assert!(api.defines("read:demo"));

    // A restart does not add a second set (the database has a client now).
    server.stop().await;
    let server = TestServer::start_with(&db, |s| s.demo = true).await;
    assert_eq!(server.store.list_clients().await.unwrap().len(), 1);
    server.stop().await;
}

async fn demo_mode_creates_nothing_on_a_database_that_has_a_client(backend: Backend) {
    let db = TestDb::create(backend).await;
    let port = free_port();
    let config = test_settings(&db, port).validate().unwrap();
    let store = lanyard::app::open_store(&config).await.unwrap();
    registry::create_api(
        &store,
        ApiSpec { identifier: flow::API.into(), name: "Appointments".into(), ..Default::default() },
    )
    .await
    .unwrap();
    let spec =
        ClientSpec { client_id: Some("mine".into()), redirect_uris: vec![REDIRECT_URI.into()], ..Default::default() };
    registry::create_client(&store, spec).await.unwrap();
    store.close().await;

    let server = TestServer::start_with(&db, |s| s.demo = true).await;
    let clients: Vec<String> = server.store.list_clients().await.unwrap().into_iter().map(|c| c.client_id).collect();
    assert_eq!(clients, ["mine"]);
    assert!(server.store.user_by_username(lanyard::demo::DEMO_USER).await.unwrap().is_none());
    assert!(server.store.api(lanyard::demo::DEMO_API).await.unwrap().is_none());
    server.stop().await;
}
