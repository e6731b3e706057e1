//! The OpenID Foundation conformance suite's logout plans, mirrored module by module:
//! `OIDCCRpInitiatedLogoutTestPlan`, `OIDCCBackchannelRpInitiatedLogoutTestPlan` and
//! `OIDCCFrontchannelRpInitiatedLogoutTestPlan` (what each module sends and checks; the
//! suite's screenshots become assertions on the HTML). Each test is named after its module.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::both_backends;
use crate::flow::{self, Browser, Fixture, Outcome};
use crate::helpers::{Backend, TestDb, TestServer};
use crate::token_lifecycle::{Reply, member, now, sign_in};
use lanyard::store::logout::Delivery;
use lanyard::testing::decode_entities as unescape;

both_backends!(
    oidcc_rp_initiated_logout_discovery_endpoint_verification,
    oidcc_rp_initiated_logout,
    oidcc_rp_initiated_logout_bad_post_logout_redirect_uri,
    oidcc_rp_initiated_logout_modified_id_token_hint,
    oidcc_rp_initiated_logout_no_id_token_hint,
    oidcc_rp_initiated_logout_no_params,
    oidcc_rp_initiated_logout_no_post_logout_redirect_uri,
    oidcc_rp_initiated_logout_no_state,
    oidcc_rp_initiated_logout_only_state,
    oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri,
    oidcc_rp_initiated_logout_bad_id_token_hint,
    oidcc_backchannel_logout_discovery_endpoint_verification,
    oidcc_backchannel_rp_initiated_logout,
    oidcc_frontchannel_logout_discovery_endpoint_verification,
    oidcc_frontchannel_rp_initiated_logout,
    disabling_a_user_through_the_admin_api_sends_their_clients_a_logout_token,
    removing_a_user_with_the_cli_sends_their_clients_a_logout_token,
    a_failing_backchannel_endpoint_is_tried_three_times_and_recorded_as_undelivered,
);

/// The registered post-logout redirect URI (the suite's `…/post_logout_redirect`).
const POST_LOGOUT: &str = "http://127.0.0.1:9999/post_logout_redirect";
/// A front-channel logout URI (the suite's `…/frontchannel_logout`).
const FRONTCHANNEL: &str = "https://rp.example.test/frontchannel_logout";

/// A server and the fixture client (allowed `POST_LOGOUT`); tests then sign alice in (the
/// suite's "normal authorization flow").
struct LoggedIn {
    server: TestServer,
    fx: Fixture,
    _db: TestDb,
}

async fn logged_in(
    backend: Backend,
    dev: bool,
    adjust: impl FnOnce(&mut lanyard::registry::client::ClientSpec),
) -> LoggedIn {
    let db = TestDb::create(backend).await;
    // Dev mode lets back-channel deliveries reach the test's loopback listener (the same
    // SSRF rule as Client ID Metadata Documents).
    let server = TestServer::start_with(&db, |s| s.dev_login = dev).await;
    let fx = flow::fixture_with(&server, |c| {
        c.post_logout_redirect_uris = vec![POST_LOGOUT.into()];
        adjust(c);
    })
    .await;
    LoggedIn { server, fx, _db: db }
}

/// GET /logout with these parameters in `browser`.
async fn end_session(browser: &Browser<'_>, params: &[(&str, &str)]) -> Reply {
    let mut url = url::Url::parse(&browser.server.url("/logout")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    Reply::read(browser.http.get(url.as_str()).send().await.expect("sent")).await
}

/// The suite's second authorization: `prompt=none` must fail with `login_required` once
/// the user is logged out, and return a code while they are not.
async fn prompt_none(server: &TestServer, browser: &Browser<'_>, fx: &Fixture) -> HashMap<String, String> {
    match browser.open(&flow::authorize_url(server, &fx.client_id, &[("prompt", "none")])).await {
        Outcome::Redirect { params, .. } => params,
        page => panic!("prompt=none answers with a redirect, got a page: {}", page.html()),
    }
}

async fn assert_logged_out(server: &TestServer, browser: &Browser<'_>, fx: &Fixture, what: &str) {
    let params = prompt_none(server, browser, fx).await;
    assert_eq!(params.get("error").map(String::as_str), Some("login_required"), "{what}: {params:?}");
}

async fn assert_still_logged_in(server: &TestServer, browser: &Browser<'_>, fx: &Fixture, what: &str) {
    let params = prompt_none(server, browser, fx).await;
    assert!(params.contains_key("code"), "{what}: the session goes on: {params:?}");
}

/// An HTML page, never a redirect (the suite fails a module when its post-logout URI is
/// called).
fn assert_page(reply: &Reply, status: u16, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.text);
    assert!(reply.header("location").is_none(), "{what}: no redirect, got {:?}", reply.header("location"));
    assert!(reply.header("content-type").unwrap_or("").starts_with("text/html"), "{what}");
}

/// The post-logout redirect: the registered URI, then exactly the expected parameters.
fn assert_post_logout_redirect(reply: &Reply, state: Option<&str>) {
    assert_eq!(reply.status, 303, "{}", reply.text);
    let location = url::Url::parse(reply.header("location").expect("a Location")).unwrap();
    assert_eq!(&location[..url::Position::AfterPath], POST_LOGOUT);
    let params: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    let expected: Vec<(String, String)> = state.map(|s| ("state".to_owned(), s.to_owned())).into_iter().collect();
    assert_eq!(params, expected, "CheckPostLogoutState / CheckForUnexpectedParametersInPostLogoutRedirect");
}

/// Confirms the "Sign out?" page shown when the request carried no id_token_hint.
async fn confirm(browser: &Browser<'_>, page: &Reply) -> Reply {
    assert_page(page, 200, "a confirmation page");
    assert!(page.text.contains("action=\"/logout\""), "{}", page.text);
    let mut form = vec![("confirm", "yes".to_owned())];
    for field in ["csrf_token", "client_id", "post_logout_redirect_uri", "state"] {
        if let Some(value) = flow::form_field(&page.text, field) {
            form.push((field, value));
        }
    }
    Reply::read(browser.http.post(browser.server.url("/logout")).form(&form).send().await.unwrap()).await
}

// ---------------------------------------------------------------------------------------
// OIDCCRpInitiatedLogoutTestPlan
// ---------------------------------------------------------------------------------------

async fn oidcc_rp_initiated_logout_discovery_endpoint_verification(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let response = server.get("/.well-known/openid-configuration").await;
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let doc: Value = response.json().await.unwrap();
    // CheckDiscEndSessionEndpoint (the https check is the deployment's: tests run on loopback).
    assert_eq!(doc["end_session_endpoint"], json!(server.url("/logout")));
}

async fn oidcc_rp_initiated_logout(backend: Backend) {
    let t = logged_in(backend, false, |_| {}).await;
    let browser = Browser::new(&t.server);
    let tokens = sign_in(&t.server, &browser, &t.fx, &[]).await;
    let state = "s".repeat(128); // the suite's requested_state_length
    let reply = end_session(
        &browser,
        &[
            ("id_token_hint", member(&tokens, "id_token")),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", &state),
            ("ui_locales", "fr-CA fr en"),
        ],
    )
    .await;
    assert_post_logout_redirect(&reply, Some(&state));
    assert_logged_out(&t.server, &browser, &t.fx, "after the logout").await;
}

async fn oidcc_rp_initiated_logout_bad_post_logout_redirect_uri(backend: Backend) {
    let t = logged_in(backend, false, |_| {}).await;
    let browser = Browser::new(&t.server);
    let tokens = sign_in(&t.server, &browser, &t.fx, &[]).await;
    let reply = end_session(
        &browser,
        &[
            ("id_token_hint", member(&tokens, "id_token")),
            ("post_logout_redirect_uri", "http://127.0.0.1:9999/not_registered"),
            ("state", "x"),
        ],
    )
    .await;
    assert_page(&reply, 400, "an unregistered post_logout_redirect_uri");
    assert!(reply.text.contains("not registered"), "ExpectPostLogoutRedirectUriNotRegisteredErrorPage: {}", reply.text);
    assert_still_logged_in(&t.server, &browser, &t.fx, "a refused logout").await;
}

async fn oidcc_rp_initiated_logout_modified_id_token_hint(backend: Backend) {
    use base64::Engine;
    let t = logged_in(backend, false, |_| {}).await;
    let browser = Browser::new(&t.server);
    let tokens = sign_in(&t.server, &browser, &t.fx, &[]).await;
    // ChangeIdTokenToAlgNone: same claims, alg none, no signature.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (mut header, claims) = flow::decode_jwt(member(&tokens, "id_token"));
    header["alg"] = json!("none");
    let modified = format!("{}.{}.", b64.encode(header.to_string()), b64.encode(claims.to_string()));
    let reply = end_session(
        &browser,
        &[("id_token_hint", &modified), ("post_logout_redirect_uri", POST_LOGOUT), ("state", "x")],
    )
    .await;
    assert_page(&reply, 400, "an alg:none id_token_hint");
    assert!(reply.text.contains("id_token_hint"), "ExpectInvalidIdTokenHintErrorPage: {}", reply.text);
    assert_still_logged_in(&t.server, &browser, &t.fx, "a refused logout").await;
}

async fn oidcc_rp_initiated_logout_no_id_token_hint(backend: Backend) {
    let t = logged_in(backend, false, |_| {}).await;
    let browser = Browser::new(&t.server);
    sign_in(&t.server, &browser, &t.fx, &[]).await;
    let reply = end_session(&browser, &[("post_logout_redirect_uri", POST_LOGOUT), ("state", "x")]).await;
    assert_page(&reply, 400, "a post_logout_redirect_uri without id_token_hint or client_id");
    assert!(reply.text.contains("id_token_hint"), "ExpectIdTokenHintRequiredErrorPage: {}", reply.text);
    assert_still_logged_in(&t.server, &browser, &t.fx, "a refused logout").await;
}

async fn oidcc_rp_initiated_logout_no_params(backend: Backend) {
    let t = logged_in(backend, false, |_| {}).await;
    let browser = Browser::new(&t.server);
    sign_in(&t.server, &browser, &t.fx, &[]).await;
    let page = end_session(&browser, &[]).await;
    let done = confirm(&browser, &page).await;
    assert_page(&done, 200, "ExpectSuccessfulLogoutPage");
    assert!(done.text.contains("Signed out"), "{}", done.text);
    assert_logged_out(&t.server, &browser, &t.fx, "after the logout").await;
}

async fn oidcc_rp_initiated_logout_no_post_logout_redirect_uri(backend: Backend) {
    let t = logged_in(backend, false, |_| {}).await;
    let browser = Browser::new(&t.server);
    let tokens = sign_in(&t.server, &browser, &t.fx, &[]).await;
    let reply = end_session(&browser, &[("id_token_hint", member(&tokens, "id_token")), ("state", "x")]).await;
    assert_page(&reply, 200, "ExpectSuccessfulLogoutPage");
    assert!(reply.text.contains("Signed out"), "{}", reply.text);
    assert_logged_out(&t.server, &browser, &t.fx, "after the logout").await;
}

async fn oidcc_rp_initiated_logout_no_state(backend: Backend) {
    let t = logged_in(backend, false, |_| {}).await;
    let browser = Browser::new(&t.server);
    let tokens = sign_in(&t.server, &browser, &t.fx, &[]).await;
    let reply = end_session(
        &browser,
        &[("id_token_hint", member(&tokens, "id_token")), ("post_logout_redirect_uri", POST_LOGOUT)],
    )
    .await;
    // CheckNoPostLogoutState: nothing is added when no state was sent.
    assert_post_logout_redirect(&reply, None);
    assert_logged_out(&t.server, &browser, &t.fx, "after the logout").await;
}

async fn oidcc_rp_initiated_logout_only_state(backend: Backend) {
    let t = logged_in(backend, false, |_| {}).await;
    let browser = Browser::new(&t.server);
    sign_in(&t.server, &browser, &t.fx, &[]).await;
    let page = end_session(&browser, &[("state", "only-state")]).await;
    let done = confirm(&browser, &page).await;
    assert_page(&done, 200, "ExpectSuccessfulLogoutPage");
    assert!(done.text.contains("Signed out"), "{}", done.text);
    assert_logged_out(&t.server, &browser, &t.fx, "after the logout").await;
}

async fn oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri(backend: Backend) {
    let t = logged_in(backend, false, |_| {}).await;
    let browser = Browser::new(&t.server);
    let tokens = sign_in(&t.server, &browser, &t.fx, &[]).await;
    let altered = format!("{POST_LOGOUT}?foo=bar");
    let reply = end_session(
        &browser,
        &[("id_token_hint", member(&tokens, "id_token")), ("post_logout_redirect_uri", &altered), ("state", "x")],
    )
    .await;
    assert_page(&reply, 400, "a post_logout_redirect_uri with a query added");
    assert!(reply.text.contains("not registered"), "{}", reply.text);
    assert_still_logged_in(&t.server, &browser, &t.fx, "a refused logout").await;
}

async fn oidcc_rp_initiated_logout_bad_id_token_hint(backend: Backend) {
    let t = logged_in(backend, false, |_| {}).await;
    let browser = Browser::new(&t.server);
    let tokens = sign_in(&t.server, &browser, &t.fx, &[]).await;
    // GenerateFakeIdTokenClaims + SignFakeIdToken: right claims, the suite's own key.
    let (_, claims) = flow::decode_jwt(member(&tokens, "id_token"));
    let key = josekit::jws::RS256.generate_key_pair(2048).unwrap();
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id("suite-key");
    let signer = josekit::jws::RS256.signer_from_der(key.to_der_private_key()).unwrap();
    let fake = josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, &signer).unwrap();
    let reply =
        end_session(&browser, &[("id_token_hint", &fake), ("post_logout_redirect_uri", POST_LOGOUT), ("state", "x")])
            .await;
    assert_page(&reply, 400, "an id_token_hint signed by someone else");
    assert!(reply.text.contains("id_token_hint"), "ExpectInvalidIdTokenHintErrorPage: {}", reply.text);
    assert_still_logged_in(&t.server, &browser, &t.fx, "a refused logout").await;
}

// ---------------------------------------------------------------------------------------
// OIDCCBackchannelRpInitiatedLogoutTestPlan
// ---------------------------------------------------------------------------------------

async fn oidcc_backchannel_logout_discovery_endpoint_verification(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let doc = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["end_session_endpoint"], json!(server.url("/logout")));
    assert_eq!(doc["backchannel_logout_supported"], json!(true));
    assert_eq!(doc["backchannel_logout_session_supported"], json!(true));
}

/// One request the RP's back-channel endpoint received.
struct Received {
    request_line: String,
    headers: HashMap<String, String>,
    body: String,
}

/// A raw HTTP listener on loopback playing the RP's back-channel logout endpoint: answers
/// every request with `status`, and hands what it received to the test.
async fn rp_endpoint(status: u16) -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/backchannel_logout", listener.local_addr().unwrap().port());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let received = loop {
                let Ok(n) = socket.read(&mut buf).await else { break None };
                if n == 0 {
                    break None;
                }
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).to_string();
                let Some(end) = text.find("\r\n\r\n") else { continue };
                let mut lines = text[..end].split("\r\n");
                let request_line = lines.next().unwrap_or_default().to_owned();
                let headers: HashMap<String, String> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                if raw.len() < end + 4 + length {
                    continue;
                }
                let body = String::from_utf8_lossy(&raw[end + 4..end + 4 + length]).to_string();
                break Some(Received { request_line, headers, body });
            };
            let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = socket.write_all(answer.as_bytes()).await;
            if let Some(received) = received {
                let _ = tx.send(received);
            }
        }
    });
    (url, rx)
}

/// Verifies a logout token with the server's published JWKS, as an RP would
/// (ValidateLogoutTokenSignature); returns its header and claims.
async fn verify_with_jwks(server: &TestServer, token: &str) -> (Value, Value) {
    let (header, _) = flow::decode_jwt(token);
    let jwks = server.get_json("/jwks").await;
    let kid = header["kid"].as_str().expect("a kid");
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).expect("the kid is published");
    let jwk = josekit::jwk::Jwk::from_bytes(jwk.to_string().as_bytes()).unwrap();
    let verifier = match header["alg"].as_str() {
        Some("RS256") => {
            josekit::jws::RS256.verifier_from_jwk(&jwk).map(|v| Box::new(v) as Box<dyn josekit::jws::JwsVerifier>)
        }
        Some("ES256") => {
            josekit::jws::ES256.verifier_from_jwk(&jwk).map(|v| Box::new(v) as Box<dyn josekit::jws::JwsVerifier>)
        }
        other => panic!("unexpected alg {other:?}"),
    }
    .unwrap();
    let (payload, _) = josekit::jws::deserialize_compact(token, verifier.as_ref()).expect("the signature verifies");
    (header, serde_json::from_slice(&payload).unwrap())
}

async fn oidcc_backchannel_rp_initiated_logout(backend: Backend) {
    let (endpoint, mut received) = rp_endpoint(200).await;
    let t = logged_in(backend, true, |c| {
        c.backchannel_logout_uri = Some(endpoint.clone());
        c.backchannel_logout_session_required = Some(true);
    })
    .await;
    let browser = Browser::new(&t.server);
    let tokens = sign_in(&t.server, &browser, &t.fx, &[]).await;
    let (_, id_token) = flow::decode_jwt(member(&tokens, "id_token"));
    let reply = end_session(
        &browser,
        &[("id_token_hint", member(&tokens, "id_token")), ("post_logout_redirect_uri", POST_LOGOUT), ("state", "bc")],
    )
    .await;
    assert_post_logout_redirect(&reply, Some("bc"));

    let request = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the back-channel logout endpoint is called")
        .expect("a request");
    assert!(request.request_line.starts_with("POST /backchannel_logout "), "{}", request.request_line);
    assert_eq!(request.headers.get("content-type").map(String::as_str), Some("application/x-www-form-urlencoded"));
    // ExtractLogoutTokenFromBackchannelLogoutRequest, CheckForUnexpectedParametersInBackchannelLogoutRequest
    let form: Vec<(String, String)> = url::form_urlencoded::parse(request.body.as_bytes()).into_owned().collect();
    assert_eq!(form.len(), 1, "only logout_token: {form:?}");
    assert_eq!(form[0].0, "logout_token");
    let (header, claims) = verify_with_jwks(&t.server, &form[0].1).await;
    assert_eq!(header["typ"], json!("logout+jwt"), "{header}");
    assert_eq!(header["alg"], json!("RS256"), "the client's id_token_signed_response_alg");
    // ValidateLogoutTokenClaims
    assert_eq!(claims["iss"], json!(t.server.base), "{claims}");
    assert_eq!(claims["aud"], json!(t.fx.client_id), "{claims}");
    assert_eq!(claims["events"], json!({"http://schemas.openid.net/event/backchannel-logout": {}}), "{claims}");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16), "{claims}");
    let iat = claims["iat"].as_i64().expect("iat");
    let exp = claims["exp"].as_i64().expect("exp");
    assert!((now() - iat).abs() <= 60 && exp > now() && exp - iat <= 300, "a short-lived token: {claims}");
    // CheckLogoutTokenHasSubOrSid, CheckIdTokenSidMatchesLogoutToken, CheckIdTokenSubMatchesLogoutToken
    assert_eq!(claims["sid"], id_token["sid"], "{claims}");
    assert_eq!(claims["sub"], id_token["sub"], "{claims}");
    // CheckLogoutTokenNoNonce
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert_logged_out(&t.server, &browser, &t.fx, "after the logout").await;

    // The delivery is recorded for the client's admin page.
    let mut deliveries = Vec::new();
    for _ in 0..50 {
        deliveries = t.server.store.backchannel_deliveries(&t.fx.client_id, 10).await.unwrap();
        if !deliveries.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(deliveries.len(), 1, "one delivery recorded");
    assert!(deliveries[0].delivered && deliveries[0].attempts == 1, "{:?}", deliveries[0]);
    assert_eq!(deliveries[0].outcome, "HTTP 200");
    assert_eq!(json!(deliveries[0].sid), id_token["sid"]);
}

// ---------------------------------------------------------------------------------------
// OIDCCFrontchannelRpInitiatedLogoutTestPlan (at the HTML level: no browser loads iframes)
// ---------------------------------------------------------------------------------------

async fn oidcc_frontchannel_logout_discovery_endpoint_verification(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let doc = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["end_session_endpoint"], json!(server.url("/logout")));
    assert_eq!(doc["frontchannel_logout_supported"], json!(true));
    assert_eq!(doc["frontchannel_logout_session_supported"], json!(true));
}

async fn oidcc_frontchannel_rp_initiated_logout(backend: Backend) {
    let t = logged_in(backend, false, |c| {
        c.frontchannel_logout_uri = Some(FRONTCHANNEL.into());
        c.frontchannel_logout_session_required = Some(true);
    })
    .await;
    let browser = Browser::new(&t.server);
    let tokens = sign_in(&t.server, &browser, &t.fx, &[]).await;
    let (_, id_token) = flow::decode_jwt(member(&tokens, "id_token"));
    let reply = end_session(
        &browser,
        &[("id_token_hint", member(&tokens, "id_token")), ("post_logout_redirect_uri", POST_LOGOUT), ("state", "fc")],
    )
    .await;
    // The page that loads the iframes, then moves on to the post-logout redirect.
    assert_page(&reply, 200, "the front-channel logout page");
    let html = unescape(&reply.text);
    let start = html.find("<iframe src=\"").expect("an iframe") + "<iframe src=\"".len();
    let src = url::Url::parse(&html[start..start + html[start..].find('"').unwrap()]).unwrap();
    assert_eq!(&src[..url::Position::AfterPath], FRONTCHANNEL);
    let params: HashMap<String, String> = src.query_pairs().into_owned().collect();
    // ValidateFrontchannelLogoutIss, CheckIdTokenSidMatchesFrontChannelLogoutRequest,
    // CheckForUnexpectedParametersInFrontchannelLogoutRequest
    assert_eq!(params.len(), 2, "{params:?}");
    assert_eq!(params["iss"], t.server.base);
    assert_eq!(json!(params["sid"]), id_token["sid"]);
    let csp = reply.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("frame-src https://rp.example.test"), "the CSP lets the iframe load: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!reply.text.contains("<script"), "no script: the CSP forbids inline ones");
    // CheckPostLogoutState: the page continues (meta refresh and a link) to the redirect.
    let continue_to = format!("{POST_LOGOUT}?state=fc");
    assert!(html.contains(&format!("url={continue_to}\"")), "a meta refresh: {html}");
    assert!(html.contains(&format!("href=\"{continue_to}\"")), "a link: {html}");
    assert_logged_out(&t.server, &browser, &t.fx, "after the logout").await;
}

// ---------------------------------------------------------------------------------------
// Back-channel deliveries beyond RP-initiated logout
// ---------------------------------------------------------------------------------------

/// The deliveries recorded for `client_id`, once `until` holds of them (bounded wait).
async fn recorded_deliveries(
    server: &TestServer,
    client_id: &str,
    until: impl Fn(&[Delivery]) -> bool,
) -> Vec<Delivery> {
    let mut deliveries = Vec::new();
    for _ in 0..100 {
        deliveries = server.store.backchannel_deliveries(client_id, 10).await.unwrap();
        if until(&deliveries) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    deliveries
}

async fn disabling_a_user_through_the_admin_api_sends_their_clients_a_logout_token(backend: Backend) {
    let (endpoint, mut received) = rp_endpoint(200).await;
    let t = logged_in(backend, true, |c| c.backchannel_logout_uri = Some(endpoint.clone())).await;
    let browser = Browser::new(&t.server);
    let tokens = sign_in(&t.server, &browser, &t.fx, &[]).await;
    let (_, id_token) = flow::decode_jwt(member(&tokens, "id_token"));
    t.server.store.insert_admin_token("ci", &lanyard::crypto::sha256_hex("admin-token-for-tests")).await.unwrap();

    let response = t
        .server
        .http
        .put(t.server.url("/admin/api/users/alice"))
        .bearer_auth("admin-token-for-tests")
        .json(&json!({ "disabled": true }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200, "{}", response.text().await.unwrap_or_default());

    let request = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the back-channel logout endpoint is called when the user is disabled")
        .expect("a request");
    let form: Vec<(String, String)> = url::form_urlencoded::parse(request.body.as_bytes()).into_owned().collect();
    assert_eq!(form.first().map(|(k, _)| k.as_str()), Some("logout_token"), "{form:?}");
    let (header, claims) = verify_with_jwks(&t.server, &form[0].1).await;
    assert_eq!(header["typ"], json!("logout+jwt"), "{header}");
    assert_eq!(claims["aud"], json!(t.fx.client_id), "{claims}");
    assert_eq!(claims["sub"], id_token["sub"], "{claims}");
    assert_eq!(claims["sid"], id_token["sid"], "{claims}");
    let deliveries = recorded_deliveries(&t.server, &t.fx.client_id, |d| !d.is_empty()).await;
    assert!(deliveries.first().is_some_and(|d| d.delivered), "{deliveries:?}");
}

/// The CLI is another process: it signs and sends the logout tokens itself, and waits for
/// them before it returns.
async fn removing_a_user_with_the_cli_sends_their_clients_a_logout_token(backend: Backend) {
    let (endpoint, mut received) = rp_endpoint(200).await;
    let t = logged_in(backend, true, |c| c.backchannel_logout_uri = Some(endpoint.clone())).await;
    let browser = Browser::new(&t.server);
    let tokens = sign_in(&t.server, &browser, &t.fx, &[]).await;
    let (_, id_token) = flow::decode_jwt(member(&tokens, "id_token"));

    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_lanyard"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("LANYARD_")) {
        cli.env_remove(key);
    }
    // --dev-login: the listener is on loopback, reachable in dev mode only (as for the server).
    let output = cli
        .args(["--dev-login", "--issuer", &t.server.base, "--database-url", &t._db.url, "user", "remove", "alice"])
        .output()
        .expect("lanyard runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // The command returned: the delivery is done and recorded already.
    let deliveries = t.server.store.backchannel_deliveries(&t.fx.client_id, 10).await.unwrap();
    assert!(deliveries.first().is_some_and(|d| d.delivered), "delivered before `user remove` returned: {deliveries:?}");
    let request = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .expect("the back-channel logout endpoint was called")
        .expect("a request");
    let form: Vec<(String, String)> = url::form_urlencoded::parse(request.body.as_bytes()).into_owned().collect();
    assert_eq!(form.first().map(|(k, _)| k.as_str()), Some("logout_token"), "{form:?}");
    let (_, claims) = verify_with_jwks(&t.server, &form[0].1).await;
    assert_eq!(claims["sub"], id_token["sub"], "{claims}");
    assert_eq!(claims["sid"], id_token["sid"], "{claims}");
    assert!(t.server.store.user_by_username("alice").await.unwrap().is_none());
}

async fn a_failing_backchannel_endpoint_is_tried_three_times_and_recorded_as_undelivered(backend: Backend) {
    let (endpoint, mut received) = rp_endpoint(503).await;
    let t = logged_in(backend, true, |c| c.backchannel_logout_uri = Some(endpoint.clone())).await;
    let browser = Browser::new(&t.server);
    let tokens = sign_in(&t.server, &browser, &t.fx, &[]).await;
    let reply = end_session(
        &browser,
        &[("id_token_hint", member(&tokens, "id_token")), ("post_logout_redirect_uri", POST_LOGOUT)],
    )
    .await;
    assert_post_logout_redirect(&reply, None);
    // The logout itself does not wait for the client: the session ended already.
    assert_logged_out(&t.server, &browser, &t.fx, "while the deliveries are still being tried").await;

    let settled = |d: &[Delivery]| d.first().is_some_and(|d| d.delivered || d.attempts >= 3);
    let deliveries = recorded_deliveries(&t.server, &t.fx.client_id, settled).await;
    assert_eq!(deliveries.len(), 1, "one delivery, however many attempts: {deliveries:?}");
    assert!(!deliveries[0].delivered, "{:?}", deliveries[0]);
    assert_eq!(deliveries[0].attempts, 3, "{:?}", deliveries[0]);
    assert!(deliveries[0].outcome.contains("503"), "{:?}", deliveries[0]);
    let mut requests = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), received.recv()).await {
        requests += 1;
    }
    assert_eq!(requests, 3, "the endpoint was called three times");
}
