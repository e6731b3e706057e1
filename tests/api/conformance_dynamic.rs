//! The Dynamic OP plan (`OIDCCDynamicTestPlan`): every client here registers itself at
//! `/register` as the suite's `OIDCCCreateDynamicClientRegistrationRequest` does (an RS256
//! key in `jwks`, `private_key_jwt`, `response_types`, `grant_types`, `contacts`, with the
//! initial access token of `registration = "token"`), sends no PKCE (the server runs with
//! `registration_require_pkce = false`), and checks what the module's conditions check.
//! Signatures are verified with josekit against the server's published JWKS, not through
//! Lanyard's code. Also: key rotation from the CLI and the admin API.

use std::collections::HashSet;
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use josekit::jwk::Jwk;
use josekit::jws::{ES256, JwsHeader, JwsVerifier, RS256};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::both_backends;
use crate::flow::{self, Browser, Outcome, PASSWORD};
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    oidcc_server_dynamic,
    oidcc_idtoken_rs256,
    oidcc_idtoken_unsigned,
    oidcc_userinfo_rs256,
    oidcc_ensure_redirect_uri_in_authorization_request,
    oidcc_redirect_uri_query_ok,
    oidcc_redirect_uri_query_mismatch,
    oidcc_redirect_uri_query_added,
    oidcc_redirect_uri_regfrag,
    oidcc_registration_logo_uri,
    oidcc_registration_policy_uri,
    oidcc_registration_tos_uri,
    oidcc_server_rotate_keys,
    oidcc_refresh_token_rp_key_rotation,
    the_admin_api_lists_signing_keys_and_rotates_one_in_a_step_with_an_audit_entry,
    key_rotate_on_the_command_line_reaches_a_running_server,
);

const INITIAL: &str = "initial-access-token-for-certification";
/// The suite's redirect URI is on its own (https) host; the browser here stops at it.
const CALLBACK: &str = "https://rp.example.test/test/a/lanyard/callback";
const NONCE: &str = "n-0S6_WzA2Mj";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A server as a Dynamic OP certification run configures it: registration with an
/// initial access token, PKCE not required of the confidential clients registered there.
async fn start_with(backend: Backend, adjust: impl FnOnce(&mut lanyard::config::Settings)) -> (TestDb, TestServer) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| {
        s.registration = "token".into();
        s.registration_token = Some(INITIAL.into());
        s.registration_require_pkce = false;
        adjust(s);
    })
    .await;
    flow::add_user(&server, "alice").await;
    (db, server)
}

async fn start(backend: Backend) -> (TestDb, TestServer) {
    start_with(backend, |_| {}).await
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The RP's RS256 key, as GenerateRS256ClientJWKs makes it: `use: sig`, `alg: RS256`, a kid.
struct RpKey {
    kid: String,
    private: Jwk,
    public: Jwk,
}

impl RpKey {
    fn generate(kid: &str) -> RpKey {
        let pair = RS256.generate_key_pair(2048).unwrap();
        let (mut private, mut public) = (pair.to_jwk_private_key(), pair.to_jwk_public_key());
        for key in [&mut private, &mut public] {
            key.set_key_id(kid);
            key.set_key_use("sig");
            key.set_algorithm("RS256");
        }
        RpKey { kid: kid.to_owned(), private, public }
    }

    fn jwks(&self) -> Value {
        json!({ "keys": [Value::Object(self.public.clone().into())] })
    }

    /// A client assertion as the suite makes it (CreateClientAuthenticationAssertionClaims).
    fn assertion(&self, client_id: &str, aud: &str) -> String {
        let now = now();
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": aud,
            "jti": lanyard::crypto::random_token(15), "iat": now, "nbf": now, "exp": now + 60,
        });
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        header.set_key_id(&self.kid);
        let signer = RS256.signer_from_jwk(&self.private).unwrap();
        josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, &signer).unwrap()
    }
}

/// OIDCCCreateDynamicClientRegistrationRequest for response_type `code` and
/// client_auth_type `private_key_jwt`.
fn suite_registration(key: &RpKey, redirect_uris: &[&str]) -> Value {
    json!({
        "client_name": "OIDF Conformance Test lanyard",
        "grant_types": ["authorization_code"],
        "jwks": key.jwks(),
        "token_endpoint_auth_method": "private_key_jwt",
        "response_types": ["code"],
        "redirect_uris": redirect_uris,
        "contacts": ["certification@oidf.org"],
    })
}

/// A response's status, headers and body (JSON when it is JSON, else `Null`).
struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, text, body }
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().expect("an ASCII header")).unwrap_or("")
    }
}

/// POSTs a registration with the initial access token (CallDynamicRegistrationEndpoint).
async fn register(server: &TestServer, request: &Value) -> Reply {
    let response =
        server.http.post(server.url("/register")).bearer_auth(INITIAL).json(request).send().await.expect("sent");
    Reply::read(response).await
}

/// A client the suite registered.
struct Rp {
    client_id: String,
    key: RpKey,
    redirect_uri: String,
    registration: Value,
}

/// Registers the suite's client, after `adjust` added what the module adds; checks what
/// CallDynamicRegistrationEndpointAndVerifySuccessfulResponse checks.
async fn registered(server: &TestServer, redirect_uris: &[&str], adjust: impl FnOnce(&mut Value)) -> Rp {
    let key = RpKey::generate("rp-key-1");
    let mut request = suite_registration(&key, redirect_uris);
    adjust(&mut request);
    let reply = register(server, &request).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert!(reply.header("content-type").starts_with("application/json"));
    let body = reply.body;
    assert!(body.get("error").is_none(), "{body}");
    let client_id = body["client_id"].as_str().expect("a client_id").to_owned();
    assert!(body.get("client_secret").is_none(), "a private_key_jwt client gets no secret: {body}");
    assert!(body["registration_access_token"].is_string() && body["registration_client_uri"].is_string(), "{body}");
    Rp { client_id, key, redirect_uri: redirect_uris[0].to_owned(), registration: body }
}

/// The suite's authorization request: no PKCE; `redirect_uri` as given (None: left out).
fn authorize_url(
    server: &TestServer,
    rp: &Rp,
    redirect_uri: Option<&str>,
    scope: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", &rp.client_id)
            .append_pair("response_type", "code")
            .append_pair("scope", scope)
            .append_pair("state", "xyz")
            .append_pair("nonce", NONCE);
        if let Some(uri) = redirect_uri {
            q.append_pair("redirect_uri", uri);
        }
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

/// Signs alice in and returns the code the client received.
async fn authorize(server: &TestServer, rp: &Rp, scope: &str, extra: &[(&str, &str)]) -> String {
    let url = authorize_url(server, rp, Some(&rp.redirect_uri), scope, extra);
    let outcome = Browser::new(server).sign_in(&url, "alice").await;
    let Outcome::Redirect { location, params } = &outcome else { panic!("no redirect: {}", outcome.html()) };
    assert!(location.starts_with(&rp.redirect_uri), "{location}");
    assert_eq!(params.get("state").map(String::as_str), Some("xyz"));
    params.get("code").cloned().expect("a code")
}

/// POSTs to /token with a client assertion signed by `key`.
async fn token_request(server: &TestServer, rp: &Rp, key: &RpKey, form: &[(&str, &str)]) -> Reply {
    let assertion = key.assertion(&rp.client_id, &server.url("/token"));
    let mut body: Vec<(&str, &str)> = vec![("client_assertion_type", ASSERTION_TYPE), ("client_assertion", &assertion)];
    body.extend_from_slice(form);
    Reply::read(server.http.post(server.url("/token")).form(&body).send().await.unwrap()).await
}

/// The code flow as AbstractOIDCCServerTest runs it; returns the token response.
async fn code_flow(server: &TestServer, rp: &Rp, scope: &str, extra: &[(&str, &str)]) -> Value {
    let code = authorize(server, rp, scope, extra).await;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", &rp.redirect_uri)];
    let reply = token_request(server, rp, &rp.key, &form).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

/// Verifies a compact JWS against the server's JWKS by its kid (ValidateIdTokenSignature,
/// ValidateUserInfoResponseSignature); returns its header and claims.
async fn verify_with_jwks(server: &TestServer, jws: &str) -> (Value, Value) {
    let (header, _) = flow::decode_jwt(jws);
    let kid = header["kid"].as_str().expect("a kid (OIDCC-10.1)");
    let jwks = server.get_json("/jwks").await;
    let key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).expect("the kid is published");
    let jwk = Jwk::from_map(key.as_object().unwrap().clone()).unwrap();
    let verifier: Box<dyn JwsVerifier> = match header["alg"].as_str() {
        Some("RS256") => Box::new(RS256.verifier_from_jwk(&jwk).unwrap()),
        Some("ES256") => Box::new(ES256.verifier_from_jwk(&jwk).unwrap()),
        other => panic!("unexpected alg {other:?}"),
    };
    let (payload, _) = josekit::jws::deserialize_compact(jws, verifier.as_ref()).expect("the signature verifies");
    (header, serde_json::from_slice(&payload).expect("JSON claims"))
}

fn issuer(server: &TestServer) -> String {
    server.config.issuer.as_str().to_owned()
}

/// The id_token checks of AbstractOIDCCServerTest (ValidateIdToken, ValidateIdTokenNonce,
/// ValidateIdTokenSignature); returns header and claims.
async fn check_id_token(server: &TestServer, rp: &Rp, id_token: &str) -> (Value, Value) {
    let (header, claims) = verify_with_jwks(server, id_token).await;
    assert_eq!(claims["iss"], issuer(server));
    assert_eq!(claims["aud"], rp.client_id.as_str());
    assert_eq!(claims["nonce"], NONCE);
    assert!(claims["exp"].as_i64().unwrap() > now() && claims["iat"].as_i64().unwrap() <= now() + 5, "{claims}");
    assert!(claims["sub"].is_string());
    (header, claims)
}

async fn userinfo(server: &TestServer, access_token: &str) -> Reply {
    Reply::read(server.http.get(server.url("/userinfo")).bearer_auth(access_token).send().await.unwrap()).await
}

/// OIDCCServerTest under dynamic registration: register, sign in without PKCE, redeem the
/// code with a client assertion, call userinfo, unregister (RFC 7592).
async fn oidcc_server_dynamic(backend: Backend) {
    let (_db, server) = start(backend).await;
    let discovery = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["registration_endpoint"], server.url("/register"));
    let rp = registered(&server, &[CALLBACK], |_| {}).await;
    assert_eq!(rp.registration["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(rp.registration["response_types"], json!(["code"]));
    assert_eq!(rp.registration["require_pkce"], false, "registration_require_pkce = false");
    let tokens = code_flow(&server, &rp, "openid", &[]).await;
    let (_, claims) = check_id_token(&server, &rp, tokens["id_token"].as_str().expect("an id_token")).await;
    let info = userinfo(&server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info.status, 200, "{}", info.text);
    assert!(info.header("content-type").starts_with("application/json"), "plain JSON unless asked");
    assert_eq!(info.body["sub"], claims["sub"]);

    // UnregisterDynamicallyRegisteredClient.
    let uri = rp.registration["registration_client_uri"].as_str().unwrap();
    let token = rp.registration["registration_access_token"].as_str().unwrap();
    let response = server.http.delete(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert!(server.store.client(&rp.client_id).await.unwrap().is_none());
    server.stop().await;
}

/// oidcc-idtoken-rs256: `id_token_signed_response_alg: RS256`; the id_token has a kid
/// (EnsureIdTokenContainsKid) and alg RS256 (CheckIdTokenSignatureAlgorithm).
async fn oidcc_idtoken_rs256(backend: Backend) {
    let (_db, server) = start(backend).await;
    let rp = registered(&server, &[CALLBACK], |r| r["id_token_signed_response_alg"] = json!("RS256")).await;
    assert_eq!(rp.registration["id_token_signed_response_alg"], "RS256");
    let tokens = code_flow(&server, &rp, "openid", &[]).await;
    let (header, _) = check_id_token(&server, &rp, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(header["alg"], "RS256");
    assert_eq!(
        header["kid"].as_str(),
        server
            .store
            .signing_keys()
            .await
            .unwrap()
            .iter()
            .find(|k| k.alg == "RS256" && k.state.as_str() == "active")
            .map(|k| k.kid.as_str())
    );
    server.stop().await;
}

/// oidcc-idtoken-unsigned: skipped by the suite, since discovery does not list `none`
/// (OIDCCCheckIdTokenSigningAlgValuesSupportedAlgNone); a registration asking for it
/// anyway is refused, saying why.
async fn oidcc_idtoken_unsigned(backend: Backend) {
    let (_db, server) = start(backend).await;
    let discovery = server.get_json("/.well-known/openid-configuration").await;
    let algs = discovery["id_token_signing_alg_values_supported"].as_array().unwrap();
    assert!(!algs.is_empty() && !algs.contains(&json!("none")), "{algs:?}");
    let key = RpKey::generate("k");
    let mut request = suite_registration(&key, &[CALLBACK]);
    request["id_token_signed_response_alg"] = json!("none");
    let reply = register(&server, &request).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body["error"], "invalid_client_metadata");
    let description = reply.body["error_description"].as_str().unwrap();
    assert!(description.contains("id_token_signed_response_alg") && description.contains("\"none\""), "{description}");
    assert!(server.store.list_clients().await.unwrap().is_empty(), "nothing registered");
    server.stop().await;
}

/// oidcc-userinfo-rs256: `userinfo_signed_response_alg: RS256`; userinfo answers
/// `application/jwt` (EnsureContentTypeApplicationJwt), signed with a published key
/// (ValidateUserInfoResponseSignature), RS256, with iss and aud
/// (ValidateSignedUserInfoResponseStandardJWTClaims) and no nonce
/// (EnsureUserInfoDoesNotContainNonce).
async fn oidcc_userinfo_rs256(backend: Backend) {
    let (_db, server) = start(backend).await;
    let discovery = server.get_json("/.well-known/openid-configuration").await;
    let algs = discovery["userinfo_signing_alg_values_supported"].as_array().expect("advertised (OIDCD-3)");
    assert!(algs.contains(&json!("RS256")), "{algs:?}");
    assert!(!algs.contains(&json!("none")));
    let rp = registered(&server, &[CALLBACK], |r| r["userinfo_signed_response_alg"] = json!("RS256")).await;
    assert_eq!(rp.registration["userinfo_signed_response_alg"], "RS256");
    let tokens = code_flow(&server, &rp, "openid email", &[]).await;
    let (_, id_claims) = check_id_token(&server, &rp, tokens["id_token"].as_str().unwrap()).await;
    let access_token = tokens["access_token"].as_str().unwrap();

    let reply = userinfo(&server, access_token).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("content-type"), "application/jwt");
    assert_eq!(reply.header("cache-control"), "no-store");
    let (header, claims) = verify_with_jwks(&server, reply.text.trim()).await;
    assert_eq!(header["alg"], "RS256", "ValidateUserInfoSigningAlgIsRS256");
    assert_ne!(header["typ"], "at+jwt", "never mistaken for an access token");
    assert_eq!(claims["iss"], issuer(&server));
    assert_eq!(claims["aud"], rp.client_id.as_str());
    assert_eq!(claims["sub"], id_claims["sub"], "the same subject as the id_token");
    assert_eq!(claims["email"], "alice@example.test", "the usual userinfo claims");
    for absent in ["nonce", "exp", "iat"] {
        assert!(claims.get(absent).is_none(), "{absent}: {claims}");
    }
    // POST gives the same; errors stay RFC 6750 JSON with a challenge.
    let post = server.http.post(server.url("/userinfo")).bearer_auth(access_token).send().await.unwrap();
    assert_eq!(post.headers()["content-type"], "application/jwt");
    let bad = userinfo(&server, "not-a-token").await;
    assert_eq!(bad.status, 401);
    assert!(bad.header("www-authenticate").contains("invalid_token"));
    assert_eq!(bad.body["error"], "invalid_token");

    // ES256 too: signed with the active ES256 key.
    let es = registered(&server, &[CALLBACK], |r| r["userinfo_signed_response_alg"] = json!("ES256")).await;
    let tokens = code_flow(&server, &es, "openid", &[]).await;
    let reply = userinfo(&server, tokens["access_token"].as_str().unwrap()).await;
    let (header, claims) = verify_with_jwks(&server, reply.text.trim()).await;
    assert_eq!((header["alg"].as_str(), claims["aud"].as_str()), (Some("ES256"), Some(es.client_id.as_str())));
    server.stop().await;
}

/// The HTML error page an authorization request with a bad redirect_uri gets: no redirect
/// to the client (ExpectRedirectUriErrorPage; AuthorizationEndpointRedirectedBackUnexpectedly).
async fn expect_error_page(server: &TestServer, url: &str) -> String {
    match Browser::new(server).open(url).await {
        Outcome::Page { status, html } => {
            assert_eq!(status, 400, "{html}");
            lanyard::testing::decode_entities(&html)
        }
        Outcome::Redirect { location, .. } => panic!("redirected back to the client: {location}"),
    }
}

/// oidcc-ensure-redirect-uri-in-authorization-request: two redirect URIs registered, none
/// sent: an error page.
async fn oidcc_ensure_redirect_uri_in_authorization_request(backend: Backend) {
    let (_db, server) = start(backend).await;
    let rp = registered(&server, &[CALLBACK, "https://example.org/redirect"], |_| {}).await;
    assert_eq!(rp.registration["redirect_uris"].as_array().unwrap().len(), 2);
    let html = expect_error_page(&server, &authorize_url(&server, &rp, None, "openid", &[])).await;
    assert!(html.contains("redirect_uri"), "{html}");
    server.stop().await;
}

/// oidcc-redirect-uri-query-OK: a redirect URI with a query, registered and sent alike:
/// the code arrives there, the registered query kept.
async fn oidcc_redirect_uri_query_ok(backend: Backend) {
    let (_db, server) = start(backend).await;
    let with_query = format!("{CALLBACK}?bar=foo");
    let rp = registered(&server, &[&with_query], |_| {}).await;
    let url = authorize_url(&server, &rp, Some(&with_query), "openid", &[]);
    let outcome = Browser::new(&server).sign_in(&url, "alice").await;
    let Outcome::Redirect { location, params } = &outcome else { panic!("no redirect: {}", outcome.html()) };
    assert!(location.starts_with(&format!("{with_query}&")), "{location}");
    assert_eq!(params.get("bar").map(String::as_str), Some("foo"));
    let code = params.get("code").expect("a code");
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", with_query.as_str())];
    let reply = token_request(&server, &rp, &rp.key, &form).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    server.stop().await;
}

/// oidcc-redirect-uri-query-mismatch: registered `?bar=foo`, sent `?foo=bar`: an error page.
async fn oidcc_redirect_uri_query_mismatch(backend: Backend) {
    let (_db, server) = start(backend).await;
    let registered_uri = format!("{CALLBACK}?bar=foo");
    let rp = registered(&server, &[&registered_uri], |_| {}).await;
    let sent = format!("{CALLBACK}?foo=bar");
    let html = expect_error_page(&server, &authorize_url(&server, &rp, Some(&sent), "openid", &[])).await;
    assert!(html.contains("not registered"), "{html}");
    server.stop().await;
}

/// oidcc-redirect-uri-query-added: registered without a query, sent with `?foo=bar`: an
/// error page.
async fn oidcc_redirect_uri_query_added(backend: Backend) {
    let (_db, server) = start(backend).await;
    let rp = registered(&server, &[CALLBACK], |_| {}).await;
    let sent = format!("{CALLBACK}?foo=bar");
    let html = expect_error_page(&server, &authorize_url(&server, &rp, Some(&sent), "openid", &[])).await;
    assert!(html.contains("not registered"), "{html}");
    server.stop().await;
}

/// oidcc-redirect-uri-regfrag: a redirect URI with a fragment is refused at registration:
/// 400, JSON, `invalid_redirect_uri` (CheckErrorFromDynamicRegistrationEndpointIsInvalidRedirectUriOrInvalidClientMetadata).
async fn oidcc_redirect_uri_regfrag(backend: Backend) {
    let (_db, server) = start(backend).await;
    let key = RpKey::generate("k");
    let reply = register(&server, &suite_registration(&key, &[&format!("{CALLBACK}#foobar")])).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.header("content-type").starts_with("application/json"));
    assert_eq!(reply.body["error"], "invalid_redirect_uri");
    assert!(reply.body["error_description"].as_str().unwrap().contains("fragment"));
    assert!(server.store.list_clients().await.unwrap().is_empty());
    server.stop().await;
}

/// A page of the sign-in flow with its headers: follows Lanyard's own redirects.
async fn page(browser: &Browser<'_>, mut response: reqwest::Response) -> (HeaderMap, String) {
    while response.status().is_redirection() {
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let next = if location.starts_with('/') { browser.server.url(&location) } else { location };
        assert!(next.starts_with(&browser.server.base), "left Lanyard for {next}");
        response = browser.http.get(next).send().await.unwrap();
    }
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, lanyard::testing::decode_entities(&response.text().await.unwrap()))
}

/// The login page and then the consent page for `rp`, with their headers.
async fn login_and_consent_pages(server: &TestServer, rp: &Rp) -> [(HeaderMap, String); 2] {
    let browser = Browser::new(server);
    let url = authorize_url(server, rp, Some(&rp.redirect_uri), "openid", &[]);
    let login = page(&browser, browser.http.get(url).send().await.unwrap()).await;
    let form = [
        ("csrf_token", flow::form_field(&login.1, "csrf_token").expect("csrf_token")),
        ("request_id", flow::form_field(&login.1, "request_id").expect("request_id")),
        ("username", "alice".to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    let consent = page(&browser, browser.http.post(server.url("/login")).form(&form).send().await.unwrap()).await;
    assert!(consent.1.contains("value=\"allow\""), "the consent page: {}", consent.1);
    [login, consent]
}

fn csp(headers: &HeaderMap) -> &str {
    headers["content-security-policy"].to_str().unwrap()
}

/// oidcc-registration-logo-uri: the logo is shown on the login page (and on consent), as an
/// image named by the client's name, allowed by the page's CSP for its origin only.
async fn oidcc_registration_logo_uri(backend: Backend) {
    let (_db, server) = start(backend).await;
    let logo = "https://rp.example.test/images/openid-logo.png";
    let rp = registered(&server, &[CALLBACK], |r| r["logo_uri"] = json!(logo)).await;
    assert_eq!(rp.registration["logo_uri"], logo);
    let name = rp.registration["client_name"].as_str().unwrap();
    for (headers, html) in login_and_consent_pages(&server, &rp).await {
        let img = format!("<img class=\"client-logo\" src=\"{logo}\" alt=\"{name}\"");
        assert!(html.contains(&img), "{html}");
        let policy = csp(&headers);
        assert!(policy.contains("img-src 'self' https://rp.example.test;"), "{policy}");
        assert!(policy.starts_with("default-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    }
    // A client without a logo: no image, and the site-wide policy unchanged.
    let plain = registered(&server, &[CALLBACK], |_| {}).await;
    for (headers, html) in login_and_consent_pages(&server, &plain).await {
        assert!(!html.contains("client-logo"));
        assert!(!csp(&headers).contains("img-src"), "{}", csp(&headers));
    }
    // Only https (or loopback in dev mode) logos are registered.
    let key = RpKey::generate("k");
    let mut request = suite_registration(&key, &[CALLBACK]);
    request["logo_uri"] = json!("http://rp.example.test/logo.png");
    let reply = register(&server, &request).await;
    assert_eq!((reply.status, reply.body["error"].as_str()), (400, Some("invalid_client_metadata")), "{}", reply.text);
    assert!(reply.text.contains("logo_uri"));
    server.stop().await;
}

/// A display link registered as `member` is on the login and consent pages, opened without
/// giving the client a handle on the page or the referrer.
async fn display_link_is_shown(backend: Backend, member: &str, label: &str) {
    let (_db, server) = start(backend).await;
    let target = format!("https://rp.example.test/{member}.html?lang=en&v=2");
    let rp = registered(&server, &[CALLBACK], |r| r[member] = json!(target)).await;
    assert_eq!(rp.registration[member], target.as_str());
    let stored = server.store.client(&rp.client_id).await.unwrap().unwrap();
    let stored = if member == "policy_uri" { stored.policy_uri } else { stored.tos_uri };
    assert_eq!(stored.map(String::from).as_deref(), Some(target.as_str()));
    for (headers, html) in login_and_consent_pages(&server, &rp).await {
        let link = format!("<a href=\"{target}\" rel=\"noopener noreferrer\" target=\"_blank\">{label}</a>");
        assert!(html.contains(&link), "{html}");
        assert!(!csp(&headers).contains("img-src"), "a link loads nothing");
    }
    let key = RpKey::generate("k");
    let mut request = suite_registration(&key, &[CALLBACK]);
    request[member] = json!("javascript:alert(1)");
    let reply = register(&server, &request).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.text.contains(member), "{}", reply.text);
    server.stop().await;
}

/// oidcc-registration-policy-uri.
async fn oidcc_registration_policy_uri(backend: Backend) {
    display_link_is_shown(backend, "policy_uri", "Privacy policy").await;
}

/// oidcc-registration-tos-uri.
async fn oidcc_registration_tos_uri(backend: Backend) {
    display_link_is_shown(backend, "tos_uri", "Terms of service").await;
}

/// The kids of the server's JWKS (FetchServerKeys), checked distinct
/// (CheckDistinctKeyIdValueInServerJWKs) and present (CheckForKeyIdInServerJWKs).
async fn jwks_kids(server: &TestServer) -> Vec<String> {
    let jwks = server.get_json("/jwks").await;
    let kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().expect("every key has a kid").to_owned())
        .collect();
    assert_eq!(kids.iter().collect::<HashSet<_>>().len(), kids.len(), "distinct kids: {kids:?}");
    kids
}

/// oidcc-server-rotate-keys: the JWKS before and after a rotation (triggered here through
/// the admin API): a new kid, every old one still there (VerifyNewJwksHasNewSigningKey,
/// VerifyNewJwksStillHasOldSigningKey); new id_tokens are signed with the new key, and a
/// token signed before still works at userinfo.
async fn oidcc_server_rotate_keys(backend: Backend) {
    let (_db, server) = start(backend).await;
    let rp = registered(&server, &[CALLBACK], |_| {}).await;
    let before_tokens = code_flow(&server, &rp, "openid", &[]).await;
    let (old_header, _) = check_id_token(&server, &rp, before_tokens["id_token"].as_str().unwrap()).await;
    let before = jwks_kids(&server).await;
    assert!(before.contains(&old_header["kid"].as_str().unwrap().to_owned()));
    let (access_header, _) = flow::decode_jwt(before_tokens["access_token"].as_str().unwrap());
    assert_eq!(access_header["kid"], old_header["kid"], "the access token too is signed by the key rotated out");

    let admin = lanyard::admin_api::issue_token(&server.store, "rotator").await.unwrap().token;
    let response = server
        .http
        .post(server.url("/admin/api/keys/rotate"))
        .bearer_auth(&admin)
        .json(&json!({"alg": "RS256"}))
        .send()
        .await
        .unwrap();
    let rotation = Reply::read(response).await;
    assert_eq!(rotation.status, 200, "{}", rotation.text);
    let new_kid = rotation.body["kid"].as_str().unwrap().to_owned();
    assert_eq!(rotation.body["retired"], old_header["kid"], "the RS256 key that signed before is retired");

    let after = jwks_kids(&server).await;
    assert!(!before.contains(&new_kid) && after.contains(&new_kid), "a new key: {before:?} → {after:?}");
    for kid in &before {
        assert!(after.contains(kid), "{kid} still published: {after:?}");
    }
    let info = userinfo(&server, before_tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info.status, 200, "a token signed before the rotation: {}", info.text);
    let after_tokens = code_flow(&server, &rp, "openid", &[]).await;
    let (new_header, _) = check_id_token(&server, &rp, after_tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(new_header["kid"], new_kid.as_str(), "new id_tokens are signed with the new key");
    server.stop().await;
}

/// Serves a JWK Set on loopback that the test can replace (the RP's jwks_uri); its URL.
fn jwks_server(set: Arc<Mutex<Value>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/client1_jwks", listener.local_addr().unwrap().port());
    let server = HttpServer::new(move || {
        let set = set.clone();
        App::new().route(
            "/client1_jwks",
            web::get().to(move || {
                let body = set.lock().unwrap().clone();
                async move { HttpResponse::Ok().json(body) }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

/// oidcc-refresh-token-rp-key-rotation: a client with a jwks_uri and the refresh grant
/// gets a refresh token (offline_access, prompt=consent), rotates the key at its jwks_uri,
/// and refreshes with an assertion signed by the new key (a kid Lanyard has not seen).
async fn oidcc_refresh_token_rp_key_rotation(backend: Backend) {
    // Dev mode: the test's jwks_uri is on loopback.
    let (_db, server) = start_with(backend, |s| s.dev_login = true).await;
    let first = RpKey::generate("rp-2024-01");
    let set = Arc::new(Mutex::new(first.jwks()));
    let jwks_uri = jwks_server(set.clone());
    let mut rp = registered(&server, &[CALLBACK], |r| {
        r.as_object_mut().unwrap().remove("jwks");
        r["jwks_uri"] = json!(jwks_uri);
        r["grant_types"] = json!(["authorization_code", "refresh_token"]);
    })
    .await;
    rp.key = first;
    assert_eq!(rp.registration["jwks_uri"], jwks_uri.as_str());
    let tokens = code_flow(&server, &rp, "openid offline_access", &[("prompt", "consent")]).await;
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token for offline_access").to_owned();
    let (_, first_claims) = check_id_token(&server, &rp, tokens["id_token"].as_str().unwrap()).await;

    // GenerateRS256ClientJWKsWithKeyID: the RP's jwks_uri now serves only a new key.
    let second = RpKey::generate("rp-2024-02");
    *set.lock().unwrap() = second.jwks();
    // WaitForJWKSRefreshDelay: past Lanyard's refetch cool-down.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
    let refreshed = token_request(&server, &rp, &second, &form).await;
    assert_eq!(refreshed.status, 200, "an assertion under the new kid: {}", refreshed.text);
    if let Some(id_token) = refreshed.body["id_token"].as_str() {
        let (_, claims) = verify_with_jwks(&server, id_token).await;
        assert_eq!((&claims["sub"], &claims["aud"]), (&first_claims["sub"], &first_claims["aud"]));
    }
    let info = userinfo(&server, refreshed.body["access_token"].as_str().unwrap()).await;
    assert_eq!(info.status, 200, "{}", info.text);
    // The retired key no longer authenticates the client.
    let rotated = refreshed.body["refresh_token"].as_str().unwrap().to_owned();
    let form = [("grant_type", "refresh_token"), ("refresh_token", rotated.as_str())];
    let stale = token_request(&server, &rp, &rp.key, &form).await;
    assert_eq!((stale.status, stale.body["error"].as_str()), (401, Some("invalid_client")), "{}", stale.text);
    server.stop().await;
}

async fn the_admin_api_lists_signing_keys_and_rotates_one_in_a_step_with_an_audit_entry(backend: Backend) {
    let (_db, server) = start(backend).await;
    let admin = lanyard::admin_api::issue_token(&server.store, "rotator").await.unwrap().token;
    let list = |token: Option<String>| {
        let mut request = server.http.get(server.url("/admin/api/keys"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { Reply::read(request.send().await.unwrap()).await }
    };
    assert_eq!(list(None).await.status, 401);
    let keys = list(Some(admin.clone())).await;
    assert_eq!(keys.status, 200, "{}", keys.text);
    let active = |body: &Value, alg: &str| -> String {
        let keys = body.as_array().unwrap();
        let found: Vec<_> = keys.iter().filter(|k| k["alg"] == alg && k["state"] == "active").collect();
        assert_eq!(found.len(), 1, "one active {alg} key: {body}");
        found[0]["kid"].as_str().unwrap().to_owned()
    };
    let old_es = active(&keys.body, "ES256");
    let old_rs = active(&keys.body, "RS256");

    let rotate = |body: Option<Value>| {
        let mut request = server.http.post(server.url("/admin/api/keys/rotate")).bearer_auth(&admin);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move { Reply::read(request.send().await.unwrap()).await }
    };
    let done = rotate(Some(json!({"alg": "ES256"}))).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!((done.body["alg"].as_str(), done.body["retired"].as_str()), (Some("ES256"), Some(old_es.as_str())));
    let new_es = done.body["kid"].as_str().unwrap().to_owned();
    let keys = list(Some(admin.clone())).await.body;
    assert_eq!(active(&keys, "ES256"), new_es);
    assert_eq!(active(&keys, "RS256"), old_rs, "the other algorithm is untouched");
    let old = keys.as_array().unwrap().iter().find(|k| k["kid"] == old_es.as_str()).expect("the old key is listed");
    assert_eq!(old["state"], "retired");
    assert!(jwks_kids(&server).await.contains(&old_es), "and still published");

    // No body: RS256.
    let done = rotate(None).await;
    assert_eq!((done.status, done.body["retired"].as_str()), (200, Some(old_rs.as_str())), "{}", done.text);
    for (body, status) in [(json!({"alg": "none"}), 422), (json!({"alg": "HS256"}), 422), (json!({"kid": "x"}), 400)] {
        let refused = rotate(Some(body.clone())).await;
        assert_eq!(refused.status, status, "{body}: {}", refused.text);
        assert!(refused.header("content-type").starts_with("application/problem+json"));
    }
    let unauthenticated = server.http.post(server.url("/admin/api/keys/rotate")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let audit = server.store.recent_audit(20).await.unwrap();
    let rotations: Vec<_> =
        audit.iter().filter(|e| e.action == "key.rotate").map(|e| (e.actor.as_str(), e.target.as_str())).collect();
    assert_eq!(rotations.len(), 2, "{rotations:?}");
    assert!(rotations.contains(&("token:rotator", new_es.as_str())), "{rotations:?}");
    server.stop().await;
}

async fn key_rotate_on_the_command_line_reaches_a_running_server(backend: Backend) {
    let (db, server) = start(backend).await;
    let lanyard = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanyard"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("LANYARD_")) {
            cmd.env_remove(key);
        }
        let output = cmd.args(args).arg("--database-url").arg(&db.url).env_remove("RUST_LOG").output().unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        (output.status.code(), stdout, String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let before = jwks_kids(&server).await;
    let (code, stdout, stderr) = lanyard(&["key", "list", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).expect("one JSON document");
    let mut listed: Vec<String> =
        listed.as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().into()).collect();
    let mut published = before.clone();
    listed.sort();
    published.sort();
    assert_eq!(listed, published, "the keys the server publishes");

    let (code, stdout, stderr) = lanyard(&["key", "rotate", "--alg", "RS256", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let rotation: Value = serde_json::from_str(&stdout).expect("one JSON document");
    let new_kid = rotation["kid"].as_str().unwrap().to_owned();
    assert_eq!(rotation["alg"], "RS256");
    assert!(before.contains(&rotation["retired"].as_str().unwrap().to_owned()));

    // The running server sees the change without a restart.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut after = jwks_kids(&server).await;
    while !after.contains(&new_kid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = jwks_kids(&server).await;
    }
    assert!(after.contains(&new_kid), "the new key is published: {after:?}");
    assert!(before.iter().all(|k| after.contains(k)), "the old keys too: {after:?}");
    let rp = registered(&server, &[CALLBACK], |_| {}).await;
    let tokens = code_flow(&server, &rp, "openid", &[]).await;
    let (header, _) = check_id_token(&server, &rp, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(header["kid"], new_kid.as_str(), "and signs new id_tokens");

    let (code, stdout, _) = lanyard(&["key", "rotate"]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("rotated RS256: "), "{stdout}");
    let (code, _, stderr) = lanyard(&["key", "rotate", "--alg", "none"]);
    assert_eq!(code, Some(2), "a usage error");
    assert!(stderr.contains("none"), "{stderr}");
    let audit = server.store.recent_audit(20).await.unwrap();
    assert!(audit.iter().any(|e| e.actor == "cli" && e.action == "key.rotate" && e.target == new_kid));
    server.stop().await;
}
