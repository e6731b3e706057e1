//! Client ID Metadata Documents: a URL as client_id, its document fetched SSRF-safely.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;

use crate::both_backends;
use crate::flow::{self, Browser};
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    a_client_named_by_its_metadata_document_completes_a_code_flow_with_consent,
    unusable_metadata_documents_are_refused_with_the_reason,
);

/// Serves metadata documents on loopback; returns its base URL.
fn document_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let me = base.clone();
    let server = HttpServer::new(move || {
        let me = me.clone();
        App::new()
            .route(
                "/good",
                web::get().to({
                    let me = me.clone();
                    move || {
                        let doc = json!({
                            "client_id": format!("{me}/good"),
                            "client_name": "Agent Smith",
                            "redirect_uris": [flow::REDIRECT_URI],
                            "grant_types": ["authorization_code"],
                            "token_endpoint_auth_method": "none",
                        });
                        async move { HttpResponse::Ok().insert_header(("Cache-Control", "max-age=60")).json(doc) }
                    }
                }),
            )
            .route(
                "/mismatch",
                web::get().to(|| async {
                    HttpResponse::Ok().json(json!({"client_id": "https://elsewhere.example/client", "redirect_uris": [flow::REDIRECT_URI]}))
                }),
            )
            .route(
                "/big",
                web::get().to({
                    let me = me.clone();
                    move || {
                        let doc = json!({"client_id": format!("{me}/big"), "redirect_uris": [flow::REDIRECT_URI], "padding": "x".repeat(20_000)});
                        async move { HttpResponse::Ok().json(doc) }
                    }
                }),
            )
            .route(
                "/slow",
                web::get().to(|| async {
                    tokio::time::sleep(Duration::from_secs(8)).await;
                    HttpResponse::Ok().json(json!({}))
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    base
}

async fn a_client_named_by_its_metadata_document_completes_a_code_flow_with_consent(backend: Backend) {
    let db = TestDb::create(backend).await;
    // Dev mode (--dev-login) is what allows a loopback document.
    let server = TestServer::start_with(&db, |s| s.dev_login = true).await;
    flow::add_user(&server, "alice").await;
    let client_id = format!("{}/good", document_server());

    let discovery = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["client_id_metadata_document_supported"], true);

    let url = flow::authorize_url(&server, &client_id, &[("scope", "openid email"), ("login_hint", "alice")]);
    let browser = Browser::new(&server);
    let consent = browser.open(&url).await;
    // Even with dev-login, a metadata-document client gets the consent page, with its host.
    let html = consent.html().to_owned();
    assert!(html.contains("Agent Smith (127.0.0.1)"), "the consent page shows the document's host: {html}");
    let outcome = browser.consent(&consent, "allow").await;
    let code = outcome.params()["code"].clone();

    let response = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", flow::REDIRECT_URI),
            ("code_verifier", flow::VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tokens: serde_json::Value = response.json().await.unwrap();
    let (_, id_claims) = flow::decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_claims["aud"], client_id.as_str());

    // Consent is not remembered for such a client: the next sign-in asks again.
    let again = browser.open(&url).await;
    assert!(again.html().contains("value=\"allow\""), "consent asked again");
}

async fn unusable_metadata_documents_are_refused_with_the_reason(backend: Backend) {
    let db = TestDb::create(backend).await;
    let docs = document_server();
    let dev = TestServer::start_with(&db, |s| s.dev_login = true).await;
    let cases = [
        (format!("{docs}/mismatch"), "differs from the URL"),
        (format!("{docs}/big"), "larger than"),
        (format!("{docs}/slow"), "timed out"),
    ];
    for (client_id, reason) in &cases {
        let response = dev.get(&flow::authorize_url(&dev, client_id, &[]).replace(&dev.base, "")).await;
        assert_eq!(response.status(), 400, "{client_id}");
        assert!(response.headers().get("location").is_none(), "never redirected: {client_id}");
        let body = response.text().await.unwrap();
        assert!(body.contains("invalid_client") && body.contains(reason), "{client_id}: {body}");
    }
    // A redirect_uri the document does not list.
    let good = format!("{docs}/good");
    let url = flow::authorize_url(&dev, &good, &[("redirect_uri", "http://127.0.0.1:9999/other")]);
    let response = dev.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    assert!(response.text().await.unwrap().contains("not registered"));

    // Outside dev mode: loopback and private addresses are refused before any connection.
    let strict = TestServer::start(&db).await;
    for (client_id, reason) in [
        (good.clone(), "must use https"),
        ("https://127.0.0.1/client".to_owned(), "loopback"),
        ("https://10.1.2.3/client".to_owned(), "non-public address"),
        ("https://169.254.169.254/latest/meta-data".to_owned(), "non-public address"),
    ] {
        let response = strict.http.get(flow::authorize_url(&strict, &client_id, &[])).send().await.unwrap();
        assert_eq!(response.status(), 400, "{client_id}");
        let body = response.text().await.unwrap();
        assert!(body.contains(reason), "{client_id}: {body}");
    }
    // At the token endpoint the same failure is invalid_client, with the reason.
    let response = strict
        .http
        .post(strict.url("/token"))
        .form(&[("grant_type", "authorization_code"), ("client_id", "https://10.1.2.3/client"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].as_str().unwrap().contains("non-public address"), "{body}");
}
