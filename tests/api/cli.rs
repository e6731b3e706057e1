//! The binary itself: configuration errors, precedence, migrate, and the management
//! subcommands (`user`, `client`, `api`) run against a fresh SQLite file per test.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use lanyard::store::Store;
use serde_json::Value;

fn lanyard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanyard"));
    // The tests must not pick up a developer's own configuration.
    for (key, _) in std::env::vars() {
        if key.starts_with("LANYARD_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Arguments, environment variables, and the setting the error message must name.
type ConfigCase = (&'static [&'static str], &'static [(&'static str, &'static str)], &'static str);

#[test]
fn bad_configuration_is_refused_with_a_message_naming_the_setting() {
    let cases: [ConfigCase; 5] = [
        (&["--issuer", "https://id.example.test/?tenant=1", "migrate"], &[], "issuer"),
        (&["--issuer", "id.example.test", "migrate"], &[], "issuer"),
        (&["--bind", "nowhere", "migrate"], &[], "bind"),
        (&["migrate"], &[("LANYARD_DATABASE_URL", "mysql://db")], "database_url"),
        (&["migrate"], &[("LANYARD_KEY_ENCRYPTION_KEY", "too-short")], "key_encryption_key"),
    ];
    for (args, env, setting) in cases {
        let output = lanyard().args(args).envs(env.iter().copied()).output().expect("run lanyard");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(setting), "{args:?}: message should name {setting}: {stderr}");
    }
}

#[test]
fn flags_override_environment_which_overrides_the_config_file() {
    let dir = std::env::temp_dir().join(format!("lanyard-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lanyard.toml");
    // The file sets a bad issuer and a good database; env fixes the issuer badly again
    // in a way the flag then fixes: the outcome shows each layer's rank.
    std::fs::write(
        &file,
        "issuer = \"file-issuer-invalid\"\ndatabase_url = \"sqlite://FILE\"\n"
            .replace("FILE", &dir.join("a.db").display().to_string()),
    )
    .unwrap();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        lanyard().arg("--config").arg(&file).args(args).arg("migrate").envs(env.iter().copied()).output().unwrap()
    };
    let from_file = run(&[], &[]);
    assert!(String::from_utf8_lossy(&from_file.stderr).contains("issuer"), "the file's issuer is used");
    let from_env = run(&[("LANYARD_ISSUER", "http://127.0.0.1:1")], &[]);
    assert!(from_env.status.success(), "env overrides file: {}", String::from_utf8_lossy(&from_env.stderr));
    assert!(dir.join("a.db").exists(), "the file's database is used");
    let from_flag = run(&[("LANYARD_ISSUER", "http://127.0.0.1:1")], &["--issuer", "bad flag issuer"]);
    assert_eq!(from_flag.status.code(), Some(2), "flag overrides env");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unknown_settings_in_the_config_file_are_refused() {
    let dir = std::env::temp_dir().join(format!("lanyard-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lanyard.toml");
    std::fs::write(&file, "isuer = \"http://localhost\"\n").unwrap();
    let output = lanyard().arg("--config").arg(&file).arg("migrate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("isuer"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn help_explains_every_flag() {
    let output = lanyard().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--config",
        "--issuer",
        "--backchannel-url",
        "--bind",
        "--database-url",
        "--log-format",
        "serve",
        "migrate",
        "healthcheck",
        "user",
        "client",
        "api",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

/// `lanyard healthcheck` is what the container image's HEALTHCHECK runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_for_a_ready_server_and_1_saying_why_otherwise() {
    use crate::helpers::{Backend, TestDb, TestServer};
    let db = TestDb::create(Backend::Sqlite).await;
    let server = TestServer::start(&db).await;
    let bind = server.config.bind.to_string();
    let run = |args: Vec<String>| tokio::task::spawn_blocking(move || lanyard().args(args).output().unwrap());

    // The configured bind address is where it asks, as in the image (LANYARD_BIND).
    let ready = run(vec!["--bind".into(), bind.clone(), "healthcheck".into()]).await.unwrap();
    assert_eq!(ready.status.code(), Some(0), "{}", String::from_utf8_lossy(&ready.stderr));
    assert!(String::from_utf8_lossy(&ready.stdout).contains("/readyz answered 200"));

    // Settings only the server uses don't stop it (here a seed file that does not exist).
    let args = vec!["--seed".into(), "/nonexistent/seed.toml".into(), "--bind".into(), bind, "healthcheck".into()];
    assert_eq!(run(args).await.unwrap().status.code(), Some(0));

    let not_ready = run(vec!["healthcheck".into(), "--url".into(), server.url("/nothing-here")]).await.unwrap();
    assert_eq!(not_ready.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&not_ready.stderr);
    assert!(stderr.contains("unhealthy") && stderr.contains("404"), "{stderr}");

    let readyz = server.url("/readyz");
    server.stop().await;
    let down = run(vec!["healthcheck".into(), "--url".into(), readyz]).await.unwrap();
    assert_eq!(down.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(stderr.contains("refused the connection"), "{stderr}");
}

/// The binary pointed at its own fresh SQLite file, removed when dropped.
struct Cli {
    dir: PathBuf,
    url: String,
}

impl Cli {
    fn new() -> Cli {
        let dir = std::env::temp_dir().join(format!("lanyard-cli-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("x.db").display());
        Cli { dir, url }
    }

    /// Runs `lanyard ARGS --database-url URL` with `stdin` as standard input.
    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = lanyard()
            .args(args)
            .arg("--database-url")
            .arg(&self.url)
            // Logs must stay off stdout whatever the developer's RUST_LOG says.
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run lanyard");
        // A command that fails before reading its input closes the pipe: its output says why.
        let _ = child.stdin.take().expect("stdin").write_all(stdin.as_bytes());
        child.wait_with_output().expect("lanyard finishes")
    }

    /// Runs a command that must succeed, returning its stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with_stdin(args, "")
    }

    fn ok_with_stdin(&self, args: &[&str], stdin: &str) -> String {
        let output = self.run_with_stdin(args, stdin);
        assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf-8 stdout")
    }

    /// Runs a command with `--json` that must succeed; stdout must be one JSON document.
    fn json(&self, args: &[&str]) -> Value {
        self.json_with_stdin(args, "")
    }

    fn json_with_stdin(&self, args: &[&str], stdin: &str) -> Value {
        let args = [args, &["--json"]].concat();
        let stdout = self.ok_with_stdin(&args, stdin);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not one JSON document ({e}): {stdout}"))
    }

    /// Runs a command that must fail with exit code 1, print nothing on stdout and
    /// `lanyard: …` on stderr; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        self.fails_with_stdin(args, "")
    }

    fn fails_with_stdin(&self, args: &[&str], stdin: &str) -> String {
        let output = self.run_with_stdin(args, stdin);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            output.stdout.is_empty(),
            "{args:?}: nothing on stdout on failure, got {}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(stderr.starts_with("lanyard: "), "{args:?}: {stderr}");
        stderr
    }

    fn add_user(&self, username: &str, password: &str) -> Value {
        self.json_with_stdin(&["user", "add", username, "--password-stdin"], &format!("{password}\n"))
    }

    fn add_orders_api(&self) {
        self.ok(&["api", "add", ORDERS, "--name", "Orders", "--scope", "read:orders"]);
    }

    async fn store(&self) -> Store {
        Store::connect(&self.url, 1).await.expect("open the database")
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const PASSWORD: &str = "correct horse battery staple";
const ORDERS: &str = "https://api.example.test/orders";
const CALLBACK: &str = "https://app.example.test/cb";

#[tokio::test]
async fn user_add_with_password_stdin_is_listed_and_stored_as_argon2id() {
    let cli = Cli::new();
    let output = cli.run_with_stdin(
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--email",
            "alice@example.test",
            "--email-verified",
            "--name",
            "Alice Liddell",
            "--given-name",
            "Alice",
            "--admin",
            "--json",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(output.status.success());
    assert!(
        output.stderr.is_empty(),
        "management commands log nothing by default: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(created["username"], "alice");
    assert_eq!(created["is_admin"], true);
    assert_eq!(created["email"], "alice@example.test");
    assert_eq!(created["email_verified"], true);
    assert_eq!(created["given_name"], "Alice");
    assert!(created.get("password_hash").is_none(), "{created}");
    let id = created["id"].as_str().expect("id").to_owned();

    let listed = cli.json(&["user", "list"]);
    let users = listed.as_array().expect("an array");
    assert_eq!(users.len(), 1, "{listed}");
    assert_eq!(users[0]["id"], id.as_str());
    assert_eq!(users[0]["name"], "Alice Liddell");
    let table = cli.ok(&["user", "list"]);
    assert!(table.contains("alice") && table.contains(&id) && table.contains("alice@example.test"), "{table}");

    let store = cli.store().await;
    let stored = store.user_by_username("alice").await.unwrap().expect("stored");
    assert_eq!(stored.id, id);
    assert!(stored.password_hash.starts_with("$argon2id$"), "{}", stored.password_hash);
    // Only the trailing newline is removed from the line read on stdin.
    assert!(lanyard::registry::password::verify(PASSWORD.into(), Some(stored.password_hash)).await);
}

#[test]
fn user_add_refuses_a_too_short_password_naming_password() {
    let cli = Cli::new();
    let stderr = cli.fails_with_stdin(&["user", "add", "bob", "--password-stdin"], "short\n");
    assert!(stderr.contains("password"), "{stderr}");
    assert_eq!(cli.json(&["user", "list"]), serde_json::json!([]));
}

#[test]
fn user_add_refuses_an_empty_standard_input() {
    let cli = Cli::new();
    let stderr = cli.fails(&["user", "add", "bob", "--password-stdin"]);
    assert!(stderr.contains("standard input"), "{stderr}");
}

#[test]
fn adding_a_user_twice_fails_saying_it_already_exists() {
    let cli = Cli::new();
    cli.add_user("carol", PASSWORD);
    let stderr = cli.fails_with_stdin(&["user", "add", "carol", "--password-stdin"], &format!("{PASSWORD}\n"));
    assert!(stderr.contains("\"carol\"") && stderr.contains("already exists"), "{stderr}");
}

#[tokio::test]
async fn set_password_replaces_the_stored_hash() {
    let cli = Cli::new();
    cli.add_user("dave", PASSWORD);
    let stdout = cli.ok_with_stdin(&["user", "set-password", "dave", "--password-stdin"], "a brand new passphrase\r\n");
    assert!(stdout.contains("dave"), "{stdout}");
    let hash = cli.store().await.user_by_username("dave").await.unwrap().expect("stored").password_hash;
    let verify = |password: &str| lanyard::registry::password::verify(password.into(), Some(hash.clone()));
    assert!(verify("a brand new passphrase").await);
    assert!(!verify(PASSWORD).await);

    let stderr = cli.fails_with_stdin(&["user", "set-password", "dave", "--password-stdin"], "short\n");
    assert!(stderr.contains("password"), "{stderr}");
    let stderr =
        cli.fails_with_stdin(&["user", "set-password", "nobody", "--password-stdin"], "long enough password\n");
    assert!(stderr.contains("not found"), "{stderr}");
}

#[test]
fn user_remove_removes_and_refuses_an_unknown_user() {
    let cli = Cli::new();
    cli.add_user("erin", PASSWORD);
    cli.add_user("frank", PASSWORD);
    let stdout = cli.ok(&["user", "remove", "erin"]);
    assert!(stdout.contains("erin"), "{stdout}");
    let listed = cli.json(&["user", "list"]);
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["frank"]);
    let stderr = cli.fails(&["user", "remove", "erin"]);
    assert!(stderr.contains("\"erin\" not found"), "{stderr}");
}

#[tokio::test]
async fn a_client_with_a_default_api_gets_a_secret_once_and_show_never_prints_it() {
    let cli = Cli::new();
    let api = cli.json(&[
        "api",
        "add",
        ORDERS,
        "--name",
        "Orders",
        "--scope",
        "read:orders",
        "--scope",
        "write:orders",
        "--access-token-ttl",
        "600",
        "--signing-alg",
        "ES256",
    ]);
    assert_eq!(api["identifier"], ORDERS);
    assert_eq!(api["access_token_ttl"], 600);
    assert_eq!(api["signing_alg"], "ES256");
    assert_eq!(api["scopes"][1]["name"], "write:orders");

    let created = cli.json(&[
        "client",
        "add",
        "web",
        "--name",
        "Web shop",
        "--redirect-uri",
        CALLBACK,
        "--scope",
        "openid profile read:orders",
        "--default-api",
        ORDERS,
        "--grant",
        "authorization_code",
        "--grant",
        "refresh_token",
        "--first-party",
    ]);
    let secret = created["client_secret"].as_str().expect("a client_secret");
    assert_eq!(secret.len(), 43, "256 bits, base64url: {secret}");
    assert_eq!(created["client_id"], "web");
    assert_eq!(created["client_name"], "Web shop");
    assert_eq!(created["client_secret_expires_at"], 0);
    assert_eq!(created["redirect_uris"], serde_json::json!([CALLBACK]));
    assert_eq!(created["grant_types"], serde_json::json!(["authorization_code", "refresh_token"]));
    assert_eq!(created["scope"], "openid profile read:orders");
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(created["default_api"], ORDERS);
    assert_eq!(created["first_party"], true);
    assert_eq!(created["require_pkce"], true);

    let client = cli.store().await.client("web").await.unwrap().expect("stored");
    assert!(client.secret_matches(secret));
    let hash = client.secret_hash.expect("a hash");

    let shown = cli.json(&["client", "show", "web"]);
    for (key, value) in created.as_object().unwrap() {
        if !key.starts_with("client_secret") {
            assert_eq!(&shown[key], value, "show differs from add on {key}");
        }
    }
    let text = cli.ok(&["client", "show", "web"]);
    let listed = cli.ok(&["client", "list", "--json"]);
    assert!(shown.get("client_secret").is_none(), "{shown}");
    assert!(!text.contains("client_secret:"), "{text}");
    for output in [shown.to_string(), text.clone(), listed] {
        assert!(!output.contains(secret) && !output.contains(&hash), "{output}");
    }
    assert!(text.contains("Web shop") && text.contains(ORDERS), "{text}");
}

#[test]
fn human_output_of_client_add_shows_the_secret_once_with_a_warning() {
    let cli = Cli::new();
    let stdout = cli.ok(&["client", "add", "web", "--redirect-uri", CALLBACK]);
    assert!(stdout.contains("created confidential client web"), "{stdout}");
    let secret_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("client_secret: "))
        .unwrap_or_else(|| panic!("no secret line: {stdout}"));
    assert_eq!(secret_line.trim_start()["client_secret: ".len()..].len(), 43);
    assert!(stdout.contains("cannot show it again"), "{stdout}");
    // No --scope: told on stderr that only openid may be requested; with --scope, not.
    let output = cli.run_with_stdin(&["client", "add", "bare", "--redirect-uri", CALLBACK], "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("warning: no --scope given: client bare may request only \"openid\""), "{stderr}");
    let output =
        cli.run_with_stdin(&["client", "add", "scoped", "--redirect-uri", CALLBACK, "--scope", "openid email"], "");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("warning"));
}

#[test]
fn client_add_refuses_invalid_registrations_naming_the_field() {
    let cli = Cli::new();
    cli.add_orders_api();
    let cases: [(&[&str], &str, &str); 7] = [
        (&["--redirect-uri", CALLBACK, "--scope", "openid write:everything"], "scope", "a scope no API defines"),
        (&["--redirect-uri", "http://evil.example/cb"], "redirect_uris", "plain http to a remote host"),
        (&[], "redirect_uris", "no redirect URI for authorization_code"),
        (
            &["--redirect-uri", CALLBACK, "--default-api", "https://api.example.test/nope"],
            "default_api",
            "an unregistered default API",
        ),
        (&["--public", "--grant", "client_credentials"], "grant_types", "a public client with client_credentials"),
        (
            &["--redirect-uri", CALLBACK, "--public", "--secret", "s3cret-but-public"],
            "client_secret",
            "a public client with a secret",
        ),
        (
            &["--redirect-uri", CALLBACK, "--id-token-alg", "HS256"],
            "id_token_signed_response_alg",
            "a symmetric id_token algorithm",
        ),
    ];
    for (flags, field, case) in cases {
        let args = [&["client", "add", "bad"], flags].concat();
        let stderr = cli.fails(&args);
        assert!(stderr.contains(field), "{case}: should name {field}: {stderr}");
    }
    assert_eq!(cli.json(&["client", "list"]), serde_json::json!([]));
}

#[tokio::test]
async fn a_public_client_has_no_secret_and_always_uses_pkce() {
    let cli = Cli::new();
    let created = cli.json(&["client", "add", "spa", "--public", "--redirect-uri", "http://127.0.0.1:5173/cb"]);
    assert!(created.get("client_secret").is_none(), "{created}");
    assert!(created.get("client_secret_expires_at").is_none(), "{created}");
    assert_eq!(created["token_endpoint_auth_method"], "none");
    assert_eq!(created["require_pkce"], true);
    let stored = cli.store().await.client("spa").await.unwrap().expect("stored");
    assert!(stored.secret_hash.is_none());

    let stdout = cli.ok(&["client", "add", "native", "--public", "--redirect-uri", CALLBACK]);
    assert!(stdout.contains("created public client native"), "{stdout}");
    assert!(!stdout.contains("secret"), "{stdout}");

    let stderr = cli.fails(&["client", "add", "lax", "--public", "--no-pkce", "--redirect-uri", CALLBACK]);
    assert!(stderr.contains("require_pkce"), "{stderr}");
}

#[tokio::test]
async fn rotate_secret_replaces_the_stored_hash() {
    let cli = Cli::new();
    let created = cli.json(&["client", "add", "web", "--redirect-uri", CALLBACK]);
    let old = created["client_secret"].as_str().unwrap().to_owned();

    let rotated = cli.json(&["client", "rotate-secret", "web"]);
    let object = rotated.as_object().unwrap();
    assert_eq!(object.keys().collect::<Vec<_>>(), ["client_id", "client_secret"], "{rotated}");
    assert_eq!(rotated["client_id"], "web");
    let new = rotated["client_secret"].as_str().unwrap();
    assert_eq!(new.len(), 43);
    assert_ne!(new, old);

    let client = cli.store().await.client("web").await.unwrap().expect("stored");
    assert!(client.secret_matches(new));
    assert!(!client.secret_matches(&old));

    let stdout = cli.ok(&["client", "rotate-secret", "web"]);
    assert!(stdout.contains("cannot show it again"), "{stdout}");

    cli.ok(&["client", "add", "spa", "--public", "--redirect-uri", CALLBACK]);
    for client_id in ["spa", "missing"] {
        let stderr = cli.fails(&["client", "rotate-secret", client_id]);
        assert!(stderr.contains("not found"), "{client_id}: {stderr}");
    }
}

#[test]
fn remove_commands_remove_and_refuse_unknown_names() {
    let cli = Cli::new();
    cli.add_orders_api();
    cli.ok(&["client", "add", "web", "--redirect-uri", CALLBACK, "--default-api", ORDERS]);
    cli.ok(&["client", "add", "other", "--redirect-uri", CALLBACK]);

    let stdout = cli.ok(&["client", "remove", "web"]);
    assert!(stdout.contains("web"), "{stdout}");
    let ids: Vec<Value> =
        cli.json(&["client", "list"]).as_array().unwrap().iter().map(|c| c["client_id"].clone()).collect();
    assert_eq!(ids, ["other"]);
    assert!(cli.fails(&["client", "show", "web"]).contains("not found"));
    assert!(cli.fails(&["client", "remove", "web"]).contains("not found"));

    cli.ok(&["api", "remove", ORDERS]);
    assert_eq!(cli.json(&["api", "list"]), serde_json::json!([]));
    assert!(cli.fails(&["api", "remove", ORDERS]).contains("not found"));
}

#[test]
fn client_add_without_a_client_id_generates_one() {
    let cli = Cli::new();
    let first = cli.json(&["client", "add", "--redirect-uri", CALLBACK]);
    let second = cli.json(&["client", "add", "--redirect-uri", CALLBACK]);
    let id = first["client_id"].as_str().expect("client_id");
    assert_eq!(id.len(), 22, "128 bits, base64url: {id}");
    assert_ne!(first["client_id"], second["client_id"]);
    assert_eq!(cli.json(&["client", "show", id])["client_id"], id);
}

#[test]
fn api_add_refuses_invalid_apis_naming_the_field() {
    let cli = Cli::new();
    let cases: [(&[&str], &str); 6] = [
        (&["api", "add", "not a uri", "--name", "X"], "identifier"),
        (&["api", "add", ORDERS, "--name", " "], "name"),
        (&["api", "add", ORDERS, "--name", "X", "--scope", "openid"], "scopes"),
        (&["api", "add", ORDERS, "--name", "X", "--access-token-ttl", "5"], "access_token_ttl"),
        (&["api", "add", ORDERS, "--name", "X", "--signing-alg", "none"], "signing_alg"),
        (&["api", "add", ORDERS, "--name", "X", "--introspection-client-id", "nobody"], "introspection_client_id"),
    ];
    for (args, field) in cases {
        let stderr = cli.fails(args);
        assert!(stderr.contains(field), "{args:?} should name {field}: {stderr}");
    }
    cli.add_orders_api();
    let stderr = cli.fails(&["api", "add", ORDERS, "--name", "Again"]);
    assert!(stderr.contains("already exists"), "{stderr}");
    let listed = cli.ok(&["api", "list"]);
    assert!(listed.contains(ORDERS) && listed.contains("read:orders"), "{listed}");
}

#[test]
fn an_api_can_name_a_confidential_client_for_introspection() {
    let cli = Cli::new();
    cli.ok(&["client", "add", "introspector", "--grant", "client_credentials"]);
    cli.ok(&["client", "add", "spa", "--public", "--redirect-uri", CALLBACK]);
    let api = cli.json(&["api", "add", ORDERS, "--name", "Orders", "--introspection-client-id", "introspector"]);
    assert_eq!(api["introspection_client_id"], "introspector");
    let stderr =
        cli.fails(&["api", "add", "https://api.example.test/b", "--name", "B", "--introspection-client-id", "spa"]);
    assert!(stderr.contains("introspection_client_id"), "{stderr}");
}

#[test]
fn every_management_subcommand_explains_its_flags() {
    let cases: [(&[&str], &[&str]); 12] = [
        (
            &["user", "add"],
            &[
                "--password-stdin",
                "--email",
                "--email-verified",
                "--name",
                "--given-name",
                "--family-name",
                "--picture",
                "--phone-number",
                "--admin",
                "--json",
                "--database-url",
            ],
        ),
        (&["user", "list"], &["--json"]),
        (&["user", "set-password"], &["--password-stdin", "USERNAME"]),
        (&["user", "remove"], &["USERNAME"]),
        (
            &["api", "add"],
            &[
                "IDENTIFIER",
                "--name",
                "--scope",
                "--access-token-ttl",
                "--signing-alg",
                "--introspection-client-id",
                "--json",
            ],
        ),
        (&["api", "list"], &["--json"]),
        (&["api", "remove"], &["IDENTIFIER"]),
        (
            &["client", "add"],
            &[
                "CLIENT_ID",
                "--name",
                "--redirect-uri",
                "--post-logout-redirect-uri",
                "--scope",
                "--default-api",
                "--public",
                "--grant",
                "--first-party",
                "--no-pkce",
                "--id-token-alg",
                "--secret",
                "--json",
            ],
        ),
        (&["client", "list"], &["--json"]),
        (&["client", "show"], &["CLIENT_ID", "--json"]),
        (&["client", "remove"], &["CLIENT_ID"]),
        (&["client", "rotate-secret"], &["CLIENT_ID", "--json"]),
    ];
    for (command, flags) in cases {
        let output = lanyard().args(command).arg("--help").output().unwrap();
        assert!(output.status.success(), "{command:?} --help");
        let help = String::from_utf8_lossy(&output.stdout);
        for flag in flags {
            assert!(help.contains(flag), "{command:?} --help lacks {flag}: {help}");
        }
    }
}

#[test]
fn every_argument_of_every_subcommand_has_a_help_text() {
    use clap::CommandFactory;
    fn check(command: &clap::Command, path: &str) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(!help.trim().is_empty(), "{path} {id} has no help text");
        }
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            let path = format!("{path} {}", sub.get_name());
            assert!(!about.trim().is_empty(), "{path} has no description");
            check(sub, &path);
        }
    }
    let mut root = lanyard::cli::Cli::command();
    root.build();
    check(&root, "lanyard");
}

#[tokio::test]
async fn api_add_takes_token_exchange_audiences_and_client_add_the_token_exchange_grant() {
    const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    const CALENDAR: &str = "https://api.example.test/calendar";
    let cli = Cli::new();
    cli.ok(&["api", "add", CALENDAR, "--name", "Calendar", "--scope", "read:schedule"]);
    let client = cli.json(&["client", "add", "orders-api", "--grant", GRANT, "--scope", ""]);
    assert_eq!(client["grant_types"], serde_json::json!([GRANT]));
    let api = cli.json(&[
        "api",
        "add",
        ORDERS,
        "--name",
        "Orders",
        "--scope",
        "read:schedule",
        "--introspection-client-id",
        "orders-api",
        "--token-exchange-audience",
        CALENDAR,
    ]);
    assert_eq!(api["token_exchange_audiences"], serde_json::json!([CALENDAR]));
    let listed = cli.json(&["api", "list"]);
    let orders = listed.as_array().unwrap().iter().find(|a| a["identifier"] == ORDERS).expect("listed");
    assert_eq!(orders["token_exchange_audiences"], serde_json::json!([CALENDAR]));
    // An API that is not registered is refused by name.
    let stderr = cli.fails(&[
        "api",
        "add",
        "https://api.example.test/rooms",
        "--name",
        "Rooms",
        "--token-exchange-audience",
        "https://api.example.test/nowhere",
    ]);
    assert!(stderr.contains("token_exchange_audiences") && stderr.contains("nowhere"), "{stderr}");
}
