//! The test lab (development features only): tokens an API must refuse, minted through the
//! admin API, the CLI and `TestIdp`, and refused by userinfo and by `lanyard::verify`.

use lanyard::tokens::defects::Defect;
use lanyard::verify::Verifier;
use serde_json::{Value, json};

use crate::both_backends;
use crate::flow::{self, API};
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    every_defective_token_is_refused_by_userinfo_and_by_lanyard_verify,
    defective_tokens_are_refused_without_development_features,
    check_api_passes_the_example_api_and_fails_an_api_that_checks_only_the_signature,
    the_admin_api_runs_the_api_check_and_reports_in_json,
);

const TOKEN: &str = "test-lab-admin-token-with-plenty-of-entropy";

/// POSTs `body` to the admin API at `path` with the lab's admin token: (status, JSON).
async fn admin_post(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let response = server.http.post(server.url(path)).bearer_auth(TOKEN).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn mint(server: &TestServer, body: Value) -> (u16, Value) {
    admin_post(server, "/admin/api/tokens/mint", body).await
}

async fn every_defective_token_is_refused_by_userinfo_and_by_lanyard_verify(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.dev = true).await;
    flow::fixture(&server).await;
    server.store.insert_admin_token("ci", &lanyard::crypto::sha256_hex(TOKEN)).await.unwrap();
    let verifier = Verifier::with_jwks_uri(&server.base, API, &server.url("/jwks")).expect("verifier");

    // The perfect token passes both, so that each refusal below is the defect's doing.
    let body = json!({"user": "alice", "client": "web", "api": API, "scope": "openid read:appointments"});
    let (status, perfect) = mint(&server, body.clone()).await;
    assert_eq!(status, 200, "{perfect}");
    let perfect = perfect["access_token"].as_str().unwrap().to_owned();
    assert!(verifier.authorize_header(Some(&format!("Bearer {perfect}")), &["read:appointments"]).await.is_ok());
    assert_eq!(userinfo(&server, &perfect).await, 200);

    for defect in Defect::ALL {
        let mut request = body.clone();
        request["defect"] = json!(defect.as_str());
        let (status, minted) = mint(&server, request).await;
        assert_eq!(status, 200, "{defect}: {minted}");
        assert_eq!(minted["defect"], defect.as_str());
        assert_eq!(minted["expected_status"], defect.expected_status());
        let token = minted["access_token"].as_str().unwrap();
        assert_ne!(token, perfect, "{defect}");

        // lanyard::verify: a JWT verifier, so it cannot see a revocation (reported apart).
        let verdict = verifier.authorize_header(Some(&format!("Bearer {token}")), &["read:appointments"]).await;
        match (defect, verdict) {
            (Defect::Revoked, Ok(_)) => {}
            (Defect::Revoked, Err(e)) => panic!("a revoked token is valid in form: {e}"),
            (_, Ok(_)) => panic!("lanyard::verify accepted the {defect} token"),
            (_, Err(e)) => {
                assert_eq!(e.status(), defect.expected_status(), "{defect}: {e}");
                let said = e.to_string();
                assert!(
                    said.contains(expected_reason(defect)),
                    "{defect}: {said:?} should say {:?}",
                    expected_reason(defect)
                );
            }
        }
        // Userinfo checks revocation too; a token without the API scope is still fine there.
        let expected = if defect == Defect::MissingScope { 200 } else { 401 };
        assert_eq!(userinfo(&server, token).await, expected, "userinfo and {defect}");
    }

    // The id_token defect names what it hands over; client_credentials tokens can be broken too.
    let (_, minted) =
        mint(&server, json!({"user": "alice", "client": "web", "api": API, "scope": "openid", "defect": "id_token"}))
            .await;
    let (header, claims) = flow::decode_jwt(minted["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["aud"], "web");
    let (status, refused) =
        mint(&server, json!({"client": "web", "api": API, "scope": "read:appointments", "defect": "id_token"})).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("needs a user"), "{refused}");
    server.stop().await;
}

/// What `lanyard::verify` says about each defect.
fn expected_reason(defect: Defect) -> &'static str {
    match defect {
        Defect::IdToken => "this is an id_token",
        Defect::TypJwt => "not at+jwt",
        Defect::WrongAudience => "not meant for this audience",
        Defect::AlgNone | Defect::Hs256PublicKey | Defect::UnknownKid | Defect::ForeignKey | Defect::BadSignature => {
            "not a signed JWT issued by this server"
        }
        Defect::Expired => "has expired",
        Defect::NotYetValid | Defect::IssuedInFuture => "not valid yet",
        Defect::WrongIssuer => "was issued by",
        Defect::MissingScope => "lacks the scope",
        Defect::Revoked => "revoked",
    }
}

async fn userinfo(server: &TestServer, token: &str) -> u16 {
    server.http.get(server.url("/userinfo")).bearer_auth(token).send().await.unwrap().status().as_u16()
}

async fn defective_tokens_are_refused_without_development_features(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    flow::fixture(&server).await;
    server.store.insert_admin_token("ci", &lanyard::crypto::sha256_hex(TOKEN)).await.unwrap();
    let body =
        json!({"user": "alice", "client": "web", "api": API, "scope": "openid read:appointments", "defect": "expired"});
    let (status, problem) = mint(&server, body).await;
    assert_eq!(status, 403, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("test-lab feature"), "{problem}");
    // A perfect token is still minted.
    let (status, _) =
        mint(&server, json!({"user": "alice", "client": "web", "api": API, "scope": "read:appointments"})).await;
    assert_eq!(status, 200);
    server.stop().await;
}

/// An API that checks only the token's signature (against the issuer's JWKS): the kind of
/// API `check-api` is for.
pub(crate) async fn naive_api(issuer: &str) -> (String, actix_web::dev::ServerHandle) {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    let jwks: Value = reqwest::get(format!("{issuer}/jwks")).await.unwrap().json().await.unwrap();
    let jwks = web::Data::new(jwks);
    async fn handler(req: HttpRequest, jwks: web::Data<Value>) -> HttpResponse {
        let token = req
            .headers()
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or_default();
        let verified = jwks["keys"].as_array().into_iter().flatten().any(|key| {
            let Ok(jwk) = josekit::jwk::Jwk::from_map(key.as_object().cloned().unwrap_or_default()) else {
                return false;
            };
            let verifier = match key["kty"].as_str() {
                Some("RSA") => josekit::jws::RS256
                    .verifier_from_jwk(&jwk)
                    .map(|v| Box::new(v) as Box<dyn josekit::jws::JwsVerifier>),
                _ => josekit::jws::ES256
                    .verifier_from_jwk(&jwk)
                    .map(|v| Box::new(v) as Box<dyn josekit::jws::JwsVerifier>),
            };
            verifier.is_ok_and(|v| josekit::jws::deserialize_compact(token, v.as_ref()).is_ok())
        });
        if verified { HttpResponse::Ok().json(json!([])) } else { HttpResponse::Unauthorized().finish() }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/appointments", listener.local_addr().unwrap().port());
    let server =
        HttpServer::new(move || App::new().app_data(jwks.clone()).route("/appointments", web::get().to(handler)))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run();
    let handle = server.handle();
    tokio::spawn(server);
    (url, handle)
}

/// The example appointments API, protected by `lanyard::verify`.
pub(crate) async fn example_api(issuer: &str) -> (String, actix_web::dev::ServerHandle) {
    use actix_web::{App, HttpServer, web};
    let verifier = web::Data::new(Verifier::discover(issuer, API).await.expect("discovery"));
    let calendar = web::Data::new(crate::appointments_api::Calendar::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/appointments", listener.local_addr().unwrap().port());
    let server = HttpServer::new(move || {
        App::new().app_data(verifier.clone()).app_data(calendar.clone()).configure(crate::appointments_api::configure)
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (url, handle)
}

/// `lanyard check-api` against `url`, minting through `server`'s admin API.
async fn check_api(server: &TestServer, url: &str) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_lanyard"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("LANYARD_")) {
        command.env_remove(key);
    }
    command
        .env("LANYARD_ADMIN_TOKEN", TOKEN)
        .args(["check-api", "--url", url, "--audience", API, "--scope", "read:appointments"])
        .args(["--server", &server.base])
        .output()
        .await
        .expect("lanyard runs")
}

async fn check_api_passes_the_example_api_and_fails_an_api_that_checks_only_the_signature(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.dev = true).await;
    flow::fixture(&server).await;
    server.store.insert_admin_token("ci", &lanyard::crypto::sha256_hex(TOKEN)).await.unwrap();

    let (url, handle) = example_api(&server.base).await;
    let output = check_api(&server, &url).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("PASS"), "{stdout}");
    for defect in Defect::ALL.into_iter().filter(|d| *d != Defect::Revoked) {
        let line =
            stdout.lines().find(|l| l.starts_with(defect.as_str())).unwrap_or_else(|| panic!("{defect}: {stdout}"));
        assert!(line.contains(" refused "), "{line}");
    }
    // The example API verifies JWTs without introspection: a revoked token is reported apart.
    assert!(stdout.lines().any(|l| l.starts_with("revoked") && l.contains("accepted (no introspection)")), "{stdout}");
    handle.stop(true).await;

    let (url, handle) = naive_api(&server.base).await;
    let output = check_api(&server, &url).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    for accepted in ["id_token", "wrong_audience", "typ_jwt", "expired", "wrong_issuer", "missing_scope"] {
        let line = stdout.lines().find(|l| l.starts_with(accepted)).unwrap_or_else(|| panic!("{accepted}: {stdout}"));
        assert!(line.contains("ACCEPTED"), "{line}");
        assert!(stderr.contains(accepted), "{stderr}");
    }
    for refused in ["alg_none", "bad_signature", "foreign_key", "unknown_kid", "hs256_public_key"] {
        let line = stdout.lines().find(|l| l.starts_with(refused)).unwrap_or_else(|| panic!("{refused}: {stdout}"));
        assert!(line.contains(" refused "), "{line}");
    }
    handle.stop(true).await;
    server.stop().await;
}

async fn post_check(server: &TestServer, body: Value) -> (u16, Value) {
    admin_post(server, "/admin/api/check-api", body).await
}

async fn the_admin_api_runs_the_api_check_and_reports_in_json(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.dev = true).await;
    flow::fixture(&server).await;
    server.store.insert_admin_token("ci", &lanyard::crypto::sha256_hex(TOKEN)).await.unwrap();
    let verdicts = |report: &Value| -> Vec<(String, String)> {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["token"].as_str().unwrap().to_owned(), r["verdict"].as_str().unwrap().to_owned()))
            .collect()
    };

    let (url, handle) = example_api(&server.base).await;
    let (status, report) =
        post_check(&server, json!({"url": url, "audience": API, "scope": "read:appointments"})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(report["client"], "web");
    assert_eq!(report["user"], "alice");
    let rows = verdicts(&report);
    assert_eq!(rows.len(), 1 + Defect::ALL.len());
    assert_eq!(rows[0], ("valid".to_owned(), "accepted".to_owned()));
    assert!(rows.contains(&("revoked".to_owned(), "accepted_without_introspection".to_owned())), "{report}");
    // With introspection required, the same API fails on the revoked token.
    let body = json!({"url": url, "audience": API, "scope": "read:appointments", "require_introspection": true});
    let (_, strict) = post_check(&server, body).await;
    assert_eq!(strict["passed"], false, "{strict}");
    assert!(verdicts(&strict).contains(&("revoked".to_owned(), "defect_accepted".to_owned())), "{strict}");
    handle.stop(true).await;

    let (url, handle) = naive_api(&server.base).await;
    let (status, report) =
        post_check(&server, json!({"url": url, "audience": API, "scope": "read:appointments"})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["passed"], false);
    let rows = verdicts(&report);
    for accepted in ["id_token", "wrong_audience", "expired", "missing_scope"] {
        assert!(rows.contains(&(accepted.to_owned(), "defect_accepted".to_owned())), "{accepted}: {report}");
    }
    assert!(report["summary"].as_str().unwrap().contains("id_token"), "{report}");
    handle.stop(true).await;

    // A check that cannot run says why; the audit log has the runs.
    for (body, said) in [
        (json!({"url": "ftp://x", "audience": API}), "not an http(s) URL"),
        (json!({"url": url, "audience": API, "scope": "read:appointments", "client": "nobody"}), "nobody"),
        (json!({"url": url, "audience": API, "scope": "no:such-scope"}), "no client is allowed"),
    ] {
        let (status, problem) = post_check(&server, body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert!(problem["detail"].as_str().unwrap_or_default().contains(said), "{body}: {problem}");
    }
    let (status, _) = post_check(&server, json!({"url": url})).await;
    assert_eq!(status, 400, "audience is required");
    let audit = server.store.recent_audit(10).await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "api.check").count(), 3, "{audit:?}");
    server.stop().await;
}
