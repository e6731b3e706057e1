//! The playground (`/playground`): a relying party in the browser, served only with
//! development features. Driven here over HTTP with a cookie jar, as a browser would; the
//! same walk in headless Chromium is in `browser.rs`.

use crate::both_backends;
use crate::flow::{self, Browser, Outcome, form_field};
use crate::helpers::{Backend, TestDb, TestServer};

both_backends!(
    the_playground_runs_a_whole_flow_userinfo_refresh_revoke_and_logout,
    the_playground_is_served_only_with_development_features,
    a_callback_with_a_forged_state_or_no_flow_is_flagged,
);

/// The hidden `value` of the form posting to `action` on `html`.
fn form_of<'h>(html: &'h str, action: &str) -> &'h str {
    let start = html.find(&format!("action=\"{action}\"")).unwrap_or_else(|| panic!("a form for {action}: {html}"));
    let end = html[start..].find("</form>").map_or(html.len(), |e| start + e);
    &html[start..end]
}

async fn post_step(browser: &Browser<'_>, html: &str, action: &str, extra: &[(&str, &str)]) -> String {
    let form = form_of(html, action);
    let mut fields: Vec<(String, String)> =
        ["csrf_token", "code", "access_token", "refresh_token", "id_token", "which"]
            .iter()
            .filter_map(|name| form_field(form, name).map(|v| ((*name).to_owned(), v)))
            .collect();
    fields.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let response = browser.http.post(browser.server.url(action)).form(&fields).send().await.unwrap();
    assert_eq!(response.status(), 200, "{action}");
    response.text().await.unwrap()
}

async fn the_playground_runs_a_whole_flow_userinfo_refresh_revoke_and_logout(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.dev = true).await;
    flow::fixture(&server).await;
    let browser = Browser::new(&server);

    // The start page offers the built-in client and the registered API.
    let start = browser.open(&server.url("/playground")).await;
    let html = start.html().to_owned();
    assert!(html.contains("Lanyard playground (playground)"), "{html}");
    assert!(html.contains(flow::API), "{html}");
    let form = [
        ("csrf_token", form_field(&html, "csrf_token").expect("csrf")),
        ("client_id", "playground".to_owned()),
        ("scope", "openid profile email offline_access read:appointments".to_owned()),
        ("resource", flow::API.to_owned()),
        ("prompt", String::new()),
        ("login_hint", String::new()),
        ("response_mode", "form_post".to_owned()),
    ];
    let response = browser.http.post(server.url("/playground/start")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&server.url("/authorize?")), "{location}");
    for expected in ["code_challenge_method=S256", "response_mode=form_post", "client_id=playground", "nonce="] {
        assert!(location.contains(expected), "{location} lacks {expected}");
    }

    // Sign in and consent; form_post hands the response to the playground's callback.
    let page = browser.follow(response).await;
    let page = browser.login(&page, "alice", flow::PASSWORD).await;
    let page = browser.consent(&page, "allow").await;
    let Outcome::Page { html: posting, .. } = &page else { panic!("the form_post page") };
    assert!(posting.contains("/playground/callback"), "an auto-submitting form to the callback: {posting}");
    let fields: Vec<(String, String)> = ["code", "state", "iss"]
        .iter()
        .map(|n| ((*n).to_owned(), form_field(posting, n).unwrap_or_else(|| panic!("{n} in {posting}"))))
        .collect();
    let response = browser.http.post(server.url("/playground/callback")).form(&fields).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let callback = response.text().await.unwrap();
    assert!(callback.contains("matches the one this browser sent"), "{callback}");
    assert!(callback.contains("Exchange the code"), "{callback}");

    // The exchange: real tokens, each explained.
    let tokens = post_step(&browser, &callback, "/playground/exchange", &[]).await;
    assert!(tokens.contains("the id_token&#39;s nonce is the one this flow sent"), "{tokens}");
    assert!(tokens.contains("An id_token for client Lanyard playground (playground)"), "{tokens}");
    assert!(tokens.contains("An access token for API Appointments"), "{tokens}");
    assert!(tokens.contains("read:appointments"), "{tokens}");
    assert!(tokens.contains("Opaque: a random string"), "the refresh token is explained: {tokens}");

    let userinfo = post_step(&browser, &tokens, "/playground/userinfo", &[]).await;
    assert!(userinfo.contains("alice@example.test"), "{userinfo}");
    let refreshed = post_step(&browser, &tokens, "/playground/refresh", &[]).await;
    assert!(refreshed.contains("&#34;token_type&#34;: &#34;Bearer&#34;"), "{refreshed}");
    let old_refresh = form_field(form_of(&tokens, "/playground/refresh"), "refresh_token").unwrap();
    let new_refresh = form_field(form_of(&refreshed, "/playground/refresh"), "refresh_token").unwrap();
    assert_ne!(old_refresh, new_refresh, "rotated");
    let revoked = post_step(&browser, &refreshed, "/playground/revoke", &[]).await;
    assert!(revoked.contains("POST ") && revoked.contains("/revoke"), "{revoked}");
    // After revoking the access token, userinfo refuses it.
    let after = post_step(&browser, &revoked, "/playground/userinfo", &[]).await;
    assert!(after.contains("401"), "{after}");

    // Log out: RP-initiated logout back to the playground.
    let logout = revoked.split("href=\"").find(|s| s.contains("/logout?")).expect("a logout link");
    let logout = lanyard::testing::decode_entities(&logout[..logout.find('"').unwrap()]);
    let outcome = browser.open(&logout).await;
    let Outcome::Page { status, html } = outcome else { panic!("back on Lanyard") };
    assert_eq!(status, 200);
    assert!(html.contains("Start the flow"), "back on the playground's start page: {html}");
    // The session is over: a silent request now needs a sign-in.
    let silent = flow::authorize_url(&server, "web", &[("prompt", "none")]);
    let outcome = browser.open(&silent).await;
    assert_eq!(outcome.params()["error"], "login_required");
    server.stop().await;
}

async fn the_playground_is_served_only_with_development_features(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    for path in ["/playground", "/playground/callback?code=x&state=y"] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(response.text().await.unwrap().contains("development feature"));
    }
    let response = server.http.post(server.url("/playground/start")).form(&[("client_id", "x")]).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(server.store.client("playground").await.unwrap().is_none(), "no built-in client without dev features");
    server.stop().await;
    // --dev-login and --ephemeral turn it on too.
    let server = TestServer::start_with(&db, |s| s.dev_login = true).await;
    assert_eq!(server.get("/playground").await.status(), 200);
    server.stop().await;
}

async fn a_callback_with_a_forged_state_or_no_flow_is_flagged(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.dev = true).await;
    let browser = Browser::new(&server);
    let page = browser.open(&server.url("/playground/callback?code=abc&state=forged")).await;
    assert_eq!(page.status(), 400);
    assert!(page.html().contains("No flow was started in this browser"));
    // With a flow started, a state that is not the flow's is flagged and no exchange offered.
    let start = browser.open(&server.url("/playground")).await;
    let form = [
        ("csrf_token", form_field(start.html(), "csrf_token").unwrap()),
        ("client_id", "playground".to_owned()),
        ("scope", "openid".to_owned()),
    ];
    let response = browser.http.post(server.url("/playground/start")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let iss = server.base.clone();
    let page = browser.open(&format!("{}/playground/callback?code=abc&state=forged&iss={iss}", server.base)).await;
    let html = page.html();
    assert!(html.contains("does not match the one this browser sent"), "{html}");
    assert!(!html.contains("Exchange the code"), "{html}");
    server.stop().await;
}
