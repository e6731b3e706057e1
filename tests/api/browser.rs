//! The admin page in a real headless browser (Debian's chromium + chromium-driver over
//! WebDriver): an admin signs in, registers a client, reads its secret, and that client then
//! completes a code flow in the same browser. Screenshots go to target/screenshots/.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::flow;
use crate::helpers::{Backend, TestDb, TestServer};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The browser, or a loud SKIP (a failure under CI) when chromium or chromedriver is missing.
async fn browser() -> Option<(Driver, Client)> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        let why = format!("{CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)");
        if std::env::var_os("CI").is_some() {
            panic!("the browser tests are required in CI but {why}");
        }
        eprintln!("\n*** SKIP: browser test skipped: {why} ***\n");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = std::env::temp_dir().join(format!("lanyard-chromium-{}", uuid::Uuid::new_v4()));
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}"), profile };
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            // As root, without a display, on a machine whose only network is loopback.
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", driver.profile.display()),
            ]
        }
    });
    let capabilities = capabilities.as_object().unwrap().clone();
    for _ in 0..50 {
        let attempt = ClientBuilder::native().capabilities(capabilities.clone()).connect(&driver.url).await;
        if let Ok(client) = attempt {
            return Some((driver, client));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("chromedriver did not accept a session at {}", driver.url);
}

async fn screenshot(client: &Client, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn fill(client: &Client, css: &str, value: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("{css} on the page"));
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn submit(client: &Client, form_css: &str) {
    client.find(Locator::Css(&format!("{form_css} button[type=submit]"))).await.unwrap().click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_registers_a_client_in_the_browser_and_it_signs_a_user_in() {
    let Some((_driver, client)) = browser().await else { return };
    let db = TestDb::create(Backend::Sqlite).await;
    let server = TestServer::start_with(&db, |s| s.admin_password = Some("admin-password".into())).await;
    flow::add_user(&server, "alice").await;

    // Sign in to the admin page.
    client.goto(&server.url("/admin")).await.unwrap();
    assert!(client.current_url().await.unwrap().path().starts_with("/admin/login"));
    fill(&client, "input[name=username]", "admin").await;
    fill(&client, "input[name=password]", "admin-password").await;
    submit(&client, "form").await;
    client.wait().for_element(Locator::Css("nav.sidebar")).await.unwrap();
    assert_eq!(client.current_url().await.unwrap().path(), "/admin");
    screenshot(&client, "dashboard").await;

    // Register a client with a redirect URI.
    client.goto(&server.url("/admin/clients/new")).await.unwrap();
    fill(&client, "#client_id", "browser-app").await;
    fill(&client, "#client_name", "Browser app").await;
    fill(&client, "#redirect_uris", flow::REDIRECT_URI).await;
    fill(&client, "#scope", "openid profile email").await;
    screenshot(&client, "client-new").await;
    submit(&client, "form.stacked").await;
    let secret = client.wait().for_element(Locator::Id("client-secret")).await.unwrap().text().await.unwrap();
    let client_id = client.find(Locator::Id("client-id")).await.unwrap().text().await.unwrap();
    assert_eq!(client_id.trim(), "browser-app");
    assert_eq!(secret.trim().len(), 43, "a 256-bit secret, shown once");
    screenshot(&client, "client-created").await;

    for (page, name) in [
        ("/admin/clients", "clients"),
        ("/admin/users", "users"),
        ("/admin/apis", "apis"),
        ("/admin/keys", "keys"),
        ("/admin/inspect", "inspector"),
    ] {
        client.goto(&server.url(page)).await.unwrap();
        screenshot(&client, name).await;
    }
    client.goto(&server.url("/admin/clients")).await.unwrap();
    assert!(client.source().await.unwrap().contains("Browser app"));

    // The new client signs alice in, in the same browser: login form, consent, redirect.
    let fx = flow::Fixture {
        client_id: "browser-app".into(),
        client_secret: secret.trim().to_owned(),
        user_id: String::new(),
    };
    client.goto(&flow::authorize_url(&server, &fx.client_id, &[])).await.unwrap();
    // The admin session is reused: Lanyard asks for consent (a third-party client).
    client.wait().for_element(Locator::Css("button[value=allow]")).await.unwrap();
    screenshot(&client, "consent").await;
    client.find(Locator::Css("button[value=allow]")).await.unwrap().click().await.unwrap();
    // The browser lands on the client's redirect URI (nothing listens there).
    let mut landed = client.current_url().await.unwrap();
    for _ in 0..50 {
        if landed.as_str().starts_with(flow::REDIRECT_URI) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        landed = client.current_url().await.unwrap();
    }
    let code = landed.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).expect("a code");
    let (status, tokens) = flow::exchange(&server, &fx, &code, flow::VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, id_claims) = flow::decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_claims["aud"], "browser-app");
    let _ = client.close().await;
}

/// Clicks the submit button of the form posting to `action`, and waits for `until`.
async fn click_step(client: &Client, action: &str, until: &str) {
    let button = format!("form[action='{action}'] button[type=submit]");
    client.find(Locator::Css(&button)).await.unwrap_or_else(|_| panic!("{button}")).click().await.unwrap();
    wait_for_text(client, until).await;
}

async fn wait_for_text(client: &Client, text: &str) {
    for _ in 0..100 {
        if client.source().await.unwrap().contains(text) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{text:?} never appeared: {}", client.source().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_signs_in_shows_tokens_refreshes_and_logs_out_in_the_browser() {
    let Some((_driver, client)) = browser().await else { return };
    let db = TestDb::create(Backend::Sqlite).await;
    let server = TestServer::start_with(&db, |s| s.dev = true).await;
    flow::fixture(&server).await;

    client.goto(&server.url("/playground")).await.unwrap();
    client.wait().for_element(Locator::Css("form[action='/playground/start']")).await.unwrap();
    screenshot(&client, "playground-start").await;
    submit(&client, "form[action='/playground/start']").await;

    // Lanyard's login page, then consent for the playground client.
    client.wait().for_element(Locator::Css("input[name=password]")).await.unwrap();
    fill(&client, "input[name=username]", "alice").await;
    fill(&client, "input[name=password]", flow::PASSWORD).await;
    submit(&client, "form[action='/login']").await;
    client.wait().for_element(Locator::Css("button[value=allow]")).await.unwrap();
    client.find(Locator::Css("button[value=allow]")).await.unwrap().click().await.unwrap();

    wait_for_text(&client, "Exchange the code").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/playground/callback");
    screenshot(&client, "playground-callback").await;
    click_step(&client, "/playground/exchange", "An id_token for client Lanyard playground").await;
    screenshot(&client, "playground-tokens").await;
    click_step(&client, "/playground/userinfo", "alice@example.test").await;
    screenshot(&client, "playground-userinfo").await;
    click_step(&client, "/playground/refresh", "<h1>Refresh</h1>").await;
    screenshot(&client, "playground-refresh").await;

    // Log out (RP-initiated, with the id_token as hint), back to the playground.
    client.find(Locator::LinkText("Log out")).await.unwrap().click().await.unwrap();
    wait_for_text(&client, "Start the flow").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/playground");
    screenshot(&client, "playground-logged-out").await;
    let _ = client.close().await;
    server.stop().await;
}

/// The user page's claims editor: a reserved claim is refused beside the editor with what was
/// typed kept, and valid JSON is saved. Screenshots: user-claims-refused, user-claims-saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edits_a_users_custom_claims_in_the_json_editor() {
    let Some((_driver, client)) = browser().await else { return };
    let db = TestDb::create(Backend::Sqlite).await;
    let server = TestServer::start_with(&db, |s| s.admin_password = Some("admin-password".into())).await;
    let alice = flow::add_user(&server, "alice").await;

    client.goto(&server.url("/admin")).await.unwrap();
    fill(&client, "input[name=username]", "admin").await;
    fill(&client, "input[name=password]", "admin-password").await;
    submit(&client, "form").await;
    client.wait().for_element(Locator::Css("nav.sidebar")).await.unwrap();

    let form = format!("form[action='/admin/users/{alice}']");
    client.goto(&server.url(&format!("/admin/users/{alice}"))).await.unwrap();
    fill(&client, "#other_claims", r#"{"roles": ["admin"], "sub": "someone-else"}"#).await;
    submit(&client, &form).await;
    let error = client.wait().for_element(Locator::Css("#other_claims ~ p.field-error")).await.unwrap();
    let message = error.text().await.unwrap();
    assert!(message.contains("\"sub\" is a reserved claim"), "{message}");
    let kept = client.find(Locator::Css("#other_claims")).await.unwrap().prop("value").await.unwrap();
    assert!(kept.is_some_and(|v| v.contains("someone-else")), "the editor keeps what was typed");
    show_editor(&client).await;
    screenshot(&client, "user-claims-refused").await;

    fill(&client, "#other_claims", r#"{"roles": ["admin", "editor"], "tenant": "acme"}"#).await;
    submit(&client, &form).await;
    client.wait().for_element(Locator::Css("p.notice")).await.unwrap();
    show_editor(&client).await;
    screenshot(&client, "user-claims-saved").await;
    let user = server.store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(user.claims["roles"], serde_json::json!(["admin", "editor"]));
    assert_eq!(user.claims["tenant"], "acme");
    let _ = client.close().await;
}

/// Scrolls the claims editor to the middle of the window, for the screenshots.
async fn show_editor(client: &Client) {
    let script = "document.getElementById('other_claims').scrollIntoView({block: 'center'})";
    client.execute(script, vec![]).await.expect("scroll to the editor");
}

/// The test lab in the browser: the dashboard's clock bar moves every server's time (the
/// banner says so on every admin page), and the API check shows a naive API failing and
/// the example API passing. Screenshots: lab-dashboard-clock, lab-check-failed,
/// lab-check-passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_lab_moves_the_clock_and_checks_apis_in_the_browser() {
    let Some((_driver, client)) = browser().await else { return };
    let db = TestDb::create(Backend::Sqlite).await;
    let server = TestServer::start_with(&db, |s| {
        s.dev = true;
        s.admin_password = Some("admin-password".into());
    })
    .await;
    flow::fixture(&server).await;

    client.goto(&server.url("/admin")).await.unwrap();
    fill(&client, "input[name=username]", "admin").await;
    fill(&client, "input[name=password]", "admin-password").await;
    submit(&client, "form").await;
    client.wait().for_element(Locator::Css("section.clock-bar")).await.unwrap();
    let before = lanyard::clock::real_now();
    let advance_hour = "section.clock-bar form:has(input[name=seconds][value='3600']) button";
    client.find(Locator::Css(advance_hour)).await.unwrap().click().await.unwrap();
    wait_for_text(&client, "Clock changed").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/admin");
    let banner = client.find(Locator::Css("p.clock-moved")).await.unwrap().text().await.unwrap();
    assert!(banner.contains("wall clock +3600 s"), "{banner}");
    let offset = server.store.clock_setting().await.unwrap().offset_seconds;
    assert_eq!(offset, 3600);
    assert!(server.store.now() - before >= 3600, "the server's own clock moved");
    screenshot(&client, "lab-dashboard-clock").await;

    // Reset from the lab page; then the API check against a naive API, then the example.
    client.find(Locator::LinkText("Test lab")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Css("form.check-api")).await.unwrap();
    let reset = "section.clock-bar form:has(input[name=action][value=reset]) button";
    client.find(Locator::Css(reset)).await.unwrap().click().await.unwrap();
    wait_for_text(&client, "Clock changed").await;
    assert!(client.find(Locator::Css("p.clock-moved")).await.is_err(), "no banner on the wall clock");

    let (naive, naive_handle) = crate::test_lab::naive_api(&server.base).await;
    fill(&client, "#check-url", &naive).await;
    fill(&client, "#check-audience", flow::API).await;
    fill(&client, "#check-scope", "read:appointments").await;
    submit(&client, "form.check-api").await;
    wait_for_text(&client, "Failed").await;
    let failed = client.find_all(Locator::Css("section.api-report tr.failed")).await.unwrap();
    assert!(failed.len() >= 6, "the accepted defects are highlighted ({} rows)", failed.len());
    let report = client.find(Locator::Css("section.api-report")).await.unwrap().text().await.unwrap();
    assert!(report.contains("wrong_audience") && report.contains("ACCEPTED"), "{report}");
    show_report(&client).await;
    screenshot(&client, "lab-check-failed").await;
    naive_handle.stop(true).await;

    let (example, example_handle) = crate::test_lab::example_api(&server.base).await;
    fill(&client, "#check-url", &example).await;
    submit(&client, "form.check-api").await;
    wait_for_text(&client, "Passed").await;
    assert!(client.find(Locator::Css("section.api-report tr.failed")).await.is_err(), "nothing failed");
    show_report(&client).await;
    screenshot(&client, "lab-check-passed").await;
    example_handle.stop(true).await;
    let _ = client.close().await;
    server.stop().await;
}

/// Scrolls the API check's report into view, for the screenshots.
async fn show_report(client: &Client) {
    let script = "document.querySelector('section.api-report').scrollIntoView({block: 'start'})";
    client.execute(script, vec![]).await.unwrap();
}

/// The protocol recorder's page: a failed code exchange is in the list with its error, and
/// one click shows why, with the parameters masked and the tokens decoded. Screenshots:
/// activity-list, activity-entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_exchange_shows_why_in_one_click_on_the_activity_page() {
    let Some((_driver, client)) = browser().await else { return };
    let db = TestDb::create(Backend::Sqlite).await;
    let server = TestServer::start_with(&db, |s| {
        s.dev = true;
        s.admin_password = Some("admin-password".into());
    })
    .await;
    let fx = flow::fixture(&server).await;
    // alice signs in to the web client, which then sends the wrong PKCE verifier.
    let alice = flow::Browser::new(&server);
    let outcome = alice.sign_in(&flow::authorize_url(&server, "web", &[]), "alice").await;
    let (status, refused) =
        flow::exchange(&server, &fx, &outcome.params()["code"], "a-wrong-verifier-0123456789-0123456789-xx").await;
    assert_eq!(status, 400, "{refused}");
    let outcome = alice.sign_in(&flow::authorize_url(&server, "web", &[]), "alice").await;
    let (status, _) = flow::exchange(&server, &fx, &outcome.params()["code"], flow::VERIFIER).await;
    assert_eq!(status, 200);

    client.goto(&server.url("/admin/activity")).await.unwrap();
    fill(&client, "input[name=username]", "admin").await;
    fill(&client, "input[name=password]", "admin-password").await;
    submit(&client, "form").await;
    client.wait().for_element(Locator::Css("table.activity")).await.unwrap();
    assert_eq!(client.current_url().await.unwrap().path(), "/admin/activity");
    screenshot(&client, "activity-list").await;

    // The failed row names the error; its link shows why.
    let failed = client.find(Locator::Css("tr.failed td a")).await.expect("a failed row");
    failed.click().await.unwrap();
    wait_for_text(&client, "invalid_grant").await;
    let page = client.source().await.unwrap();
    assert!(page.contains(refused["error_description"].as_str().unwrap()), "the reason is shown");
    assert!(page.contains("(masked, ") && !page.contains("a-wrong-verifier"), "the verifier is masked");
    screenshot(&client, "activity-entry").await;

    // The successful exchange's tokens, decoded and explained.
    client.goto(&server.url("/admin/activity?endpoint=token")).await.unwrap();
    client.find(Locator::Css("tr:not(.failed) td a")).await.unwrap().click().await.unwrap();
    wait_for_text(&client, "An access token for").await;
    screenshot(&client, "activity-tokens").await;
    let _ = client.close().await;
    server.stop().await;
}
