//! Discovery, JWKS, signing keys, readiness.

use base64::Engine;
use serde_json::Value;

use crate::both_backends;
use crate::flow::{self, decode_jwt};
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    discovery_documents_name_the_exact_issuer_and_its_endpoints,
    jwks_publishes_public_members_only_with_thumbprint_kids,
    signing_keys_survive_a_restart,
    two_servers_on_one_database_share_one_key_set,
    private_keys_are_encrypted_at_rest_when_a_key_encryption_key_is_set,
    browser_clients_may_call_the_token_endpoints_cross_origin_but_not_the_pages,
    a_backchannel_url_serves_other_services_while_browsers_and_tokens_keep_the_issuer,
);

async fn discovery_documents_name_the_exact_issuer_and_its_endpoints(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let cache = response.headers().get("cache-control").expect("cache-control").to_str().unwrap();
        assert!(cache.contains("max-age"), "{path}: {cache}");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc["issuer"], server.base, "{path}: issuer must match byte for byte");
        for endpoint in ["authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"] {
            let url = doc[endpoint].as_str().unwrap_or_else(|| panic!("{path}: {endpoint} missing"));
            assert!(url.starts_with(&server.base), "{endpoint} = {url}");
        }
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        let algs = doc["id_token_signing_alg_values_supported"].as_array().unwrap();
        assert!(!algs.iter().any(|a| a == "none"), "alg none advertised");
    }
}

/// RFC 7638, computed independently of the server's code.
fn thumbprint(jwk: &Value) -> String {
    let s = |k: &str| jwk[k].as_str().unwrap_or_else(|| panic!("member {k} missing")).to_owned();
    let canonical = match jwk["kty"].as_str() {
        Some("RSA") => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e"), s("n")),
        Some("EC") => format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, s("crv"), s("x"), s("y")),
        other => panic!("unexpected kty {other:?}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(openssl::sha::sha256(canonical.as_bytes()))
}

async fn jwks_publishes_public_members_only_with_thumbprint_kids(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let response = server.get("/jwks").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("cache-control").is_some());
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().expect("keys array");
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "RS256"]);
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(key.get(private).is_none(), "private member {private} published: {key}");
        }
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"].as_str().unwrap(), thumbprint(key));
    }
    let rsa = keys.iter().find(|k| k["kty"] == "RSA").unwrap();
    let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(rsa["n"].as_str().unwrap()).unwrap();
    assert_eq!(modulus.len() * 8, 2048, "RSA key is 2048-bit");
}

async fn signing_keys_survive_a_restart(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let before = server.get_json("/jwks").await;
    server.stop().await;
    let server = TestServer::start(&db).await;
    let after = server.get_json("/jwks").await;
    assert_eq!(before, after);
}

async fn two_servers_on_one_database_share_one_key_set(backend: Backend) {
    let db = TestDb::create(backend).await;
    // Both start on an empty database at once: both race to create the first keys.
    let (a, b) = tokio::join!(TestServer::start(&db), TestServer::start(&db));
    let jwks_a = a.get_json("/jwks").await;
    let jwks_b = b.get_json("/jwks").await;
    assert_eq!(jwks_a["keys"].as_array().unwrap().len(), 2, "one key per alg: {jwks_a}");
    assert_eq!(jwks_a, jwks_b);
}

async fn private_keys_are_encrypted_at_rest_when_a_key_encryption_key_is_set(backend: Backend) {
    let db = TestDb::create(backend).await;
    let kek = "ab".repeat(32);
    let server = TestServer::start_with(&db, |s| s.key_encryption_key = Some(kek.clone())).await;
    let before = server.get_json("/jwks").await;
    server.stop().await;

    let store = lanyard::store::Store::connect(&db.url, 1).await.unwrap();
    let stored = store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 2);
    for key in &stored {
        assert!(key.private_jwk.starts_with("v1:"), "private key stored in the clear");
    }
    // Without the key-encryption key the keys can't be used: start-up must say why.
    let config = crate::helpers::test_settings(&db, 0).validate().unwrap();
    let err = lanyard::app::Application::build(config).await.err().expect("start without the KEK fails");
    assert!(err.to_string().contains("LANYARD_KEY_ENCRYPTION_KEY"), "{err}");
    store.close().await;

    let server = TestServer::start_with(&db, |s| s.key_encryption_key = Some(kek.clone())).await;
    assert_eq!(server.get_json("/jwks").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_when_the_database_is_gone() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    let mut db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    assert_eq!(server.get("/healthz").await.status(), 200);
    assert_eq!(server.get("/readyz").await.status(), 200);
    db.destroy();
    let response = server.get("/readyz").await;
    assert_eq!(response.status(), 503);
    assert_eq!(server.get("/healthz").await.status(), 200, "liveness does not depend on the database");
}

async fn browser_clients_may_call_the_token_endpoints_cross_origin_but_not_the_pages(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let origin = "http://spa.example.test";
    for path in ["/token", "/userinfo", "/revoke", "/introspect"] {
        let preflight = server
            .http
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization, content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 204, "{path}");
        assert_eq!(preflight.headers()["access-control-allow-origin"], "*", "{path}");
        let allowed = preflight.headers()["access-control-allow-headers"].to_str().unwrap().to_lowercase();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{path}: {allowed}");
    }
    let response = server
        .http
        .post(server.url("/token"))
        .header("Origin", origin)
        .form(&[("grant_type", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "no client: invalid_client");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(response.headers()["access-control-expose-headers"].to_str().unwrap().contains("WWW-Authenticate"));
    // No credentials are ever allowed, and the HTML pages get no CORS headers at all.
    assert!(response.headers().get("access-control-allow-credentials").is_none());
    let page = server.http.get(server.url("/authorize?client_id=x")).header("Origin", origin).send().await.unwrap();
    assert!(page.headers().get("access-control-allow-origin").is_none());
    let admin = server.http.get(server.url("/admin")).header("Origin", origin).send().await.unwrap();
    assert!(admin.headers().get("access-control-allow-origin").is_none());
}

/// The container case: browsers reach Lanyard at the issuer (`http://localhost:8080` on the
/// host), other services at the back-channel URL (`http://lanyard:8080` in the container
/// network). Here `localhost` and `127.0.0.1` play the two names of one server.
async fn a_backchannel_url_serves_other_services_while_browsers_and_tokens_keep_the_issuer(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| {
        s.backchannel_url = s.issuer.clone();
        s.issuer = s.issuer.as_ref().map(|i| i.replace("127.0.0.1", "localhost"));
        s.dev_login = true;
        // So that the registration endpoint is advertised too.
        s.registration_token = Some("an-initial-access-token-for-this-test".into());
    })
    .await;
    let issuer = server.config.issuer.as_str().to_owned();
    let backchannel = server.base.clone();
    assert_ne!(issuer, backchannel);

    let doc = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["issuer"], issuer, "the issuer never moves");
    for (field, path) in [("authorization_endpoint", "/authorize"), ("end_session_endpoint", "/logout")] {
        assert_eq!(doc[field], format!("{issuer}{path}"), "{field} is visited by browsers");
    }
    for (field, path) in [
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("introspection_endpoint", "/introspect"),
        ("revocation_endpoint", "/revoke"),
        ("registration_endpoint", "/register"),
    ] {
        assert_eq!(doc[field], format!("{backchannel}{path}"), "{field} is called by services");
    }
    assert_eq!(server.get_json("/.well-known/oauth-authorization-server").await, doc);

    // A sign-in: the browser at the issuer, the relying party on the back channel.
    let fx = flow::fixture(&server).await;
    let url =
        flow::authorize_url(&server, &fx.client_id, &[("login_hint", "alice")]).replacen(&backchannel, &issuer, 1);
    assert!(url.starts_with(&format!("{issuer}/authorize?")), "{url}");
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303, "dev-login answers with the redirect");
    let (_, params) = flow::location_params(&response);
    assert_eq!(params["iss"], issuer, "RFC 9207 iss is the issuer");

    let token_endpoint = doc["token_endpoint"].as_str().unwrap();
    let tokens: Value = server
        .http
        .post(token_endpoint)
        .basic_auth(&fx.client_id, Some(&fx.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", flow::REDIRECT_URI),
            ("code_verifier", flow::VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (_, id_claims) = decode_jwt(tokens["id_token"].as_str().expect("an id_token"));
    assert_eq!(id_claims["iss"], issuer, "{tokens}");
    let access_token = tokens["access_token"].as_str().expect("an access_token");
    let (_, access_claims) = decode_jwt(access_token);
    assert_eq!(access_claims["iss"], issuer);
    let audience = access_claims["aud"].to_string();
    assert!(
        audience.contains(&format!("\"{issuer}/userinfo\"")),
        "the userinfo audience stays the issuer's: {audience}"
    );

    // The back-channel userinfo endpoint accepts that token, and the JWKS is there too.
    let userinfo = server.http.get(doc["userinfo_endpoint"].as_str().unwrap()).bearer_auth(access_token).send().await;
    let userinfo = userinfo.unwrap();
    assert_eq!(userinfo.status(), 200);
    let userinfo: Value = userinfo.json().await.unwrap();
    assert_eq!(userinfo["sub"], fx.user_id);
    let jwks: Value = server.http.get(doc["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert!(!jwks["keys"].as_array().expect("keys").is_empty());
}
