//! The admin pages, as a browser uses them: sign-in and the admin role, clients, users,
//! APIs, signing keys and the token inspector; CSRF, field errors, escaping and the audit log.

use lanyard::registry::password;
use serde_json::Value;

use crate::both_backends;
use crate::flow::{self, API, Browser, Fixture, REDIRECT_URI, VERIFIER, form_field};
use crate::helpers::{Backend, TestDb, TestServer};
use lanyard::testing::decode_entities as unescape;

both_backends!(
    admin_pages_send_a_visitor_without_a_session_to_the_login_form_and_change_nothing,
    a_signed_in_user_without_the_admin_role_gets_a_403,
    registering_a_client_shows_its_secret_once_and_the_client_can_then_sign_a_user_in,
    editing_a_client_keeps_its_id_and_secret_and_refuses_to_make_it_public,
    rotating_a_client_secret_shows_the_new_one_once_and_the_old_one_stops_working,
    deleting_a_client_removes_it_from_the_list,
    invalid_client_fields_get_a_422_with_the_error_beside_the_field_and_the_entered_values_kept,
    a_client_named_like_a_script_is_shown_as_text,
    users_can_be_created_searched_edited_given_a_new_password_and_deleted,
    invalid_user_fields_get_a_422_with_the_error_beside_the_field,
    ending_a_users_sessions_or_disabling_them_signs_them_out_and_revokes_their_tokens,
    an_admin_cannot_disable_demote_or_delete_their_own_account,
    apis_can_be_registered_edited_and_deleted_by_identifier,
    invalid_api_fields_get_a_422_with_the_error_beside_the_field,
    rotating_signing_keys_publishes_the_next_key_before_it_signs_and_keeps_the_retired_one,
    the_token_inspector_says_what_a_token_is_and_whether_it_is_still_good,
    every_kind_of_admin_form_refuses_a_missing_or_wrong_csrf_token_and_changes_nothing,
    admin_changes_appear_in_the_audit_log_on_the_dashboard,
);

const ADMIN_PASSWORD: &str = "admin-password";

async fn start(backend: Backend) -> (TestDb, TestServer) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start_with(&db, |s| s.admin_password = Some(ADMIN_PASSWORD.into())).await;
    (db, server)
}

/// A browser signed in to the admin pages, with the CSRF token its forms carry.
struct AdminBrowser<'a> {
    server: &'a TestServer,
    http: reqwest::Client,
    csrf: String,
}

/// Status and body of a response (redirects are not followed).
struct Page {
    status: u16,
    location: String,
    html: String,
}

impl Page {
    async fn read(response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let location = response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("").to_owned();
        Page { status, location, html: response.text().await.unwrap() }
    }

    /// The body with askama's entities decoded, to compare with what was typed.
    fn text(&self) -> String {
        unescape(&self.html)
    }
}

/// Signs in through the login form the way a browser does, starting from /admin.
async fn sign_in_as(server: &TestServer, username: &str, password: &str) -> (reqwest::Client, Page) {
    let browser = Browser::new(server);
    let first = Page::read(browser.http.get(server.url("/admin")).send().await.unwrap()).await;
    assert_eq!(first.status, 303, "/admin without a session");
    assert_eq!(first.location, "/admin/login?return_to=%2Fadmin");
    let login = Page::read(browser.http.get(server.url(&first.location)).send().await.unwrap()).await;
    assert_eq!(login.status, 200);
    let form = [
        ("csrf_token", form_field(&login.html, "csrf_token").expect("csrf_token field")),
        ("return_to", form_field(&login.html, "return_to").expect("return_to field")),
        ("username", username.to_owned()),
        ("password", password.to_owned()),
    ];
    let done = Page::read(browser.http.post(server.url("/login")).form(&form).send().await.unwrap()).await;
    assert_eq!(done.status, 303, "login: {}", done.html);
    assert_eq!(done.location, "/admin");
    let landing = Page::read(browser.http.get(server.url("/admin")).send().await.unwrap()).await;
    (browser.http, landing)
}

impl<'a> AdminBrowser<'a> {
    async fn sign_in(server: &'a TestServer) -> AdminBrowser<'a> {
        let (http, dashboard) = sign_in_as(server, "admin", ADMIN_PASSWORD).await;
        assert_eq!(dashboard.status, 200, "the dashboard after sign-in");
        let csrf = form_field(&dashboard.html, "csrf_token").expect("the dashboard carries a CSRF token");
        AdminBrowser { server, http, csrf }
    }

    async fn get(&self, path: &str) -> Page {
        Page::read(self.http.get(self.server.url(path)).send().await.unwrap()).await
    }

    /// Submits a form with the page's CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", &self.csrf)];
        form.extend_from_slice(fields);
        self.post_exactly(path, &form).await
    }

    /// Submits exactly these fields (no CSRF token unless given).
    async fn post_exactly(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let response = self
            .http
            .post(self.server.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        Page::read(response).await
    }
}

/// The text of `<code id="{id}">…</code>`.
fn code_text(html: &str, id: &str) -> Option<String> {
    let marker = format!("<code id=\"{id}\">");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find("</code>")? + start;
    Some(unescape(&html[start..end]))
}

/// Asserts that `message` is shown after the input `id` and before the next field's label.
fn assert_error_beside(page: &Page, id: &str, message: &str) {
    let text = page.text();
    let field = text.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no field {id}"));
    let after = &text[field..];
    let next_label = after[1..].find("<label").map_or(after.len(), |i| i + 1);
    let shown = after[..next_label].find(message);
    assert!(shown.is_some(), "{message:?} is not shown beside {id}:\n{}", &after[..next_label.min(2000)]);
    assert!(after[..next_label].contains("class=\"field-error\""), "{id}: not marked as a field error");
}

/// The fields of a valid new-client form; tests override some.
fn client_form(client_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", client_id.to_owned()),
        ("client_name", "Shop".into()),
        ("redirect_uris", REDIRECT_URI.into()),
        ("post_logout_redirect_uris", String::new()),
        ("grant_types", "authorization_code".into()),
        ("grant_types", "refresh_token".into()),
        ("scope", "openid profile email".into()),
        ("default_api", String::new()),
        ("token_endpoint_auth_method", "client_secret_basic".into()),
        ("require_pkce", "true".into()),
        ("id_token_signed_response_alg", "RS256".into()),
        ("refresh_token_ttl", "2592000".into()),
        ("refresh_token_idle_ttl", "1209600".into()),
    ]
}

fn with(form: &[(&'static str, String)], overrides: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> =
        form.iter().filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k)).cloned().collect();
    out.extend(overrides.iter().map(|(k, v)| (*k, (*v).to_owned())));
    out
}

fn pairs<'f>(form: &'f [(&'static str, String)]) -> Vec<(&'static str, &'f str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Signs alice in to the fixture's client and exchanges the code: (id_token, access_token).
async fn alice_tokens(server: &TestServer, fx: &Fixture, browser: &Browser<'_>) -> (String, String) {
    let url = flow::authorize_url(server, &fx.client_id, &[("scope", "openid profile email read:appointments")]);
    let outcome = browser.sign_in(&url, "alice").await;
    let code = outcome.params().get("code").expect("a code").clone();
    let (status, tokens) = flow::exchange(server, fx, &code, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    (tokens["id_token"].as_str().unwrap().to_owned(), tokens["access_token"].as_str().unwrap().to_owned())
}

fn jti(access_token: &str) -> String {
    flow::decode_jwt(access_token).1["jti"].as_str().unwrap().to_owned()
}

async fn asks_alice_to_sign_in(server: &TestServer, fx: &Fixture, browser: &Browser<'_>) -> bool {
    let page = browser.open(&flow::authorize_url(server, &fx.client_id, &[])).await;
    matches!(&page, flow::Outcome::Page { html, .. } if html.contains("name=\"password\""))
}

async fn admin_pages_send_a_visitor_without_a_session_to_the_login_form_and_change_nothing(backend: Backend) {
    let (_db, server) = start(backend).await;
    for path in ["/admin/clients", "/admin/users?q=al", "/admin/apis", "/admin/keys", "/admin/inspect"] {
        let response = server.get(path).await;
        let (_, params) = flow::location_params(&response);
        let page = Page::read(response).await;
        assert_eq!(page.status, 303, "{path}");
        assert!(page.location.starts_with("/admin/login?"), "{path}: {}", page.location);
        assert_eq!(params["return_to"], path, "{path}: back to the page after sign-in");
    }
    let response = server
        .http
        .post(server.url("/admin/clients/new"))
        .form(&[("client_id", "sneaky"), ("redirect_uris", REDIRECT_URI)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(server.store.client("sneaky").await.unwrap().is_none(), "nothing registered");
}

async fn a_signed_in_user_without_the_admin_role_gets_a_403(backend: Backend) {
    let (_db, server) = start(backend).await;
    flow::add_user(&server, "alice").await;
    let (http, dashboard) = sign_in_as(&server, "alice", flow::PASSWORD).await;
    assert_eq!(dashboard.status, 403);
    assert!(dashboard.html.contains("admin role"), "{}", dashboard.html);
    for path in ["/admin/clients", "/admin/users", "/admin/apis", "/admin/keys", "/admin/inspect"] {
        let response = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    let response = http.post(server.url("/admin/clients/new")).form(&[("client_id", "sneaky")]).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(server.store.client("sneaky").await.unwrap().is_none());
}

async fn registering_a_client_shows_its_secret_once_and_the_client_can_then_sign_a_user_in(backend: Backend) {
    let (_db, server) = start(backend).await;
    let user_id = flow::add_user(&server, "alice").await;
    let admin = AdminBrowser::sign_in(&server).await;

    let form = admin.get("/admin/clients/new").await;
    assert_eq!(form.status, 200);
    for field in ["client_id", "client_name", "redirect_uris", "grant_types", "scope", "token_endpoint_auth_method"] {
        assert!(form.html.contains(&format!("name=\"{field}\"")), "the form has {field}");
    }

    let created = admin.post("/admin/clients/new", &pairs(&client_form("shop"))).await;
    assert_eq!(created.status, 200, "the secret is shown on the response, not after a redirect");
    let client_id = code_text(&created.html, "client-id").expect("the client_id is shown");
    let secret = code_text(&created.html, "client-secret").expect("the secret is shown");
    assert_eq!(client_id, "shop");
    assert!(secret.len() >= 43, "a 256-bit secret: {secret}");
    assert!(created.html.contains("data-copy=\"client-secret\"") && created.html.contains("data-copy=\"client-id\""));
    let stored = server.store.client("shop").await.unwrap().expect("registered");
    assert!(stored.secret_matches(&secret));

    let edit = admin.get("/admin/clients/shop").await;
    assert_eq!(edit.status, 200);
    assert!(!edit.html.contains(&secret), "the secret is never shown again");
    let list = admin.get("/admin/clients").await;
    for shown in ["Shop", "shop", REDIRECT_URI, "confidential"] {
        assert!(list.html.contains(shown), "the list shows {shown}");
    }
    assert!(!list.html.contains(&secret));

    // A generated client_id when the field is left blank.
    let generated = admin.post("/admin/clients/new", &pairs(&client_form(""))).await;
    assert_eq!(generated.status, 200);
    let generated_id = code_text(&generated.html, "client-id").unwrap();
    assert!(generated_id.len() >= 16, "{generated_id}");
    assert!(server.store.client(&generated_id).await.unwrap().is_some());

    // The new client signs a user in.
    let fx = Fixture { client_id, client_secret: secret, user_id };
    let browser = Browser::new(&server);
    let outcome = browser.sign_in(&flow::authorize_url(&server, "shop", &[]), "alice").await;
    let (status, tokens) = flow::exchange(&server, &fx, &outcome.params()["code"], VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(flow::decode_jwt(tokens["id_token"].as_str().unwrap()).1["aud"], "shop");
}

async fn editing_a_client_keeps_its_id_and_secret_and_refuses_to_make_it_public(backend: Backend) {
    let (_db, server) = start(backend).await;
    let fx = flow::fixture(&server).await;
    let admin = AdminBrowser::sign_in(&server).await;
    let before = server.store.client("web").await.unwrap().unwrap();

    let edit = admin.get("/admin/clients/web").await;
    assert_eq!(edit.status, 200);
    assert!(edit.text().contains("Web app"));
    assert!(edit.html.contains("/admin/clients/web/rotate-secret"), "a confidential client can rotate its secret");

    let form = with(
        &client_form("ignored"),
        &[
            ("client_name", "Web app v2"),
            ("redirect_uris", "https://app.example.test/cb\nhttp://127.0.0.1:9999/cb"),
            ("scope", "openid profile email read:appointments"),
            ("default_api", API),
            ("first_party", "true"),
        ],
    );
    let saved = admin.post("/admin/clients/web", &pairs(&form)).await;
    assert_eq!(saved.status, 303, "{}", saved.html);
    assert_eq!(saved.location, "/admin/clients/web?done=saved");
    let after = server.store.client("web").await.unwrap().expect("still there, under its id");
    assert_eq!(after.name, "Web app v2");
    assert_eq!(after.redirect_uris.len(), 2);
    assert_eq!(after.default_api.as_deref(), Some(API));
    assert!(after.first_party);
    assert!(after.secret_matches(&fx.client_secret), "the secret is kept");
    assert_eq!(after.created_at, before.created_at);
    assert!(server.store.client("ignored").await.unwrap().is_none(), "the id cannot be changed");
    let shown = admin.get(&saved.location).await;
    assert!(shown.html.contains("Changes saved."));
    assert!(shown.text().contains("Web app v2"));

    let public = with(&client_form("web"), &[("token_endpoint_auth_method", "none"), ("client_name", "Gone public")]);
    let refused = admin.post("/admin/clients/web", &pairs(&public)).await;
    assert_eq!(refused.status, 422);
    assert_error_beside(&refused, "token_endpoint_auth_method", "a confidential client cannot become public");
    assert!(refused.text().contains("value=\"Gone public\""), "the entered name is kept");
    let unchanged = server.store.client("web").await.unwrap().unwrap();
    assert_eq!(unchanged.name, "Web app v2");
    assert!(unchanged.secret_matches(&fx.client_secret));

    let missing = admin.get("/admin/clients/nope").await;
    assert_eq!(missing.status, 404);

    // A public client made confidential gets a secret, shown once like a new client's.
    let spa = with(&client_form("spa"), &[("token_endpoint_auth_method", "none"), ("client_name", "SPA")]);
    assert_eq!(admin.post("/admin/clients/new", &pairs(&spa)).await.status, 200);
    let page = admin.get("/admin/clients/spa").await;
    assert!(!page.html.contains("/admin/clients/spa/rotate-secret"), "a public client has no secret to rotate");
    assert_eq!(admin.post("/admin/clients/spa/rotate-secret", &[]).await.status, 404);
    let confidential = with(&spa, &[("token_endpoint_auth_method", "client_secret_post")]);
    let shown = admin.post("/admin/clients/spa", &pairs(&confidential)).await;
    assert_eq!(shown.status, 200, "{}", shown.html);
    let secret = code_text(&shown.html, "client-secret").expect("its new secret is shown");
    assert!(server.store.client("spa").await.unwrap().unwrap().secret_matches(&secret));
}

async fn rotating_a_client_secret_shows_the_new_one_once_and_the_old_one_stops_working(backend: Backend) {
    let (_db, server) = start(backend).await;
    let fx = flow::fixture(&server).await;
    let admin = AdminBrowser::sign_in(&server).await;
    let rotated = admin.post("/admin/clients/web/rotate-secret", &[]).await;
    assert_eq!(rotated.status, 200);
    let secret = code_text(&rotated.html, "client-secret").expect("the new secret is shown");
    assert_ne!(secret, fx.client_secret);
    let client = server.store.client("web").await.unwrap().unwrap();
    assert!(client.secret_matches(&secret));
    assert!(!client.secret_matches(&fx.client_secret), "the old secret stops working");
    assert!(!admin.get("/admin/clients/web").await.html.contains(&secret));
}

async fn deleting_a_client_removes_it_from_the_list(backend: Backend) {
    let (_db, server) = start(backend).await;
    flow::fixture(&server).await;
    let admin = AdminBrowser::sign_in(&server).await;
    let deleted = admin.post("/admin/clients/web/delete", &[]).await;
    assert_eq!(deleted.status, 303);
    assert_eq!(deleted.location, "/admin/clients?done=deleted");
    assert!(server.store.client("web").await.unwrap().is_none());
    let list = admin.get(&deleted.location).await;
    assert!(list.html.contains("Client deleted."));
    assert!(!list.html.contains("Web app"));
    assert_eq!(admin.post("/admin/clients/web/delete", &[]).await.status, 404, "deleting twice");
}

async fn invalid_client_fields_get_a_422_with_the_error_beside_the_field_and_the_entered_values_kept(backend: Backend) {
    let (_db, server) = start(backend).await;
    flow::fixture(&server).await;
    let admin = AdminBrowser::sign_in(&server).await;
    // (field, typed value, message shown beside the field)
    let cases = [
        ("redirect_uris", "http://evil.example/cb", "must use https (http is allowed only for localhost/loopback)"),
        ("redirect_uris", "https://app.example.test/cb#frag", "must not contain a fragment"),
        ("scope", "openid bad€scope", "\"bad€scope\" is not a valid scope"),
        ("scope", "openid read:nothing", "\"read:nothing\" is neither an OpenID Connect scope nor defined"),
        ("refresh_token_ttl", "soon", "must be a whole number of seconds"),
        ("refresh_token_idle_ttl", "5", "must be between 60 seconds and 365 days"),
        ("client_id", "web", "client \"web\" already exists"),
        ("client_id", "has space", "must be 1–255 visible ASCII characters"),
        ("subject_type", "ephemeral", "\"ephemeral\" is not supported: use public or pairwise"),
        ("sector_identifier_uri", "http://rp.example.test/uris.json", "must use https"),
    ];
    for (field, value, message) in cases {
        let form = with(&client_form("kept-id"), &[(field, value), ("client_name", "Kept name")]);
        let page = admin.post("/admin/clients/new", &pairs(&form)).await;
        assert_eq!(page.status, 422, "{field}={value}");
        assert_error_beside(&page, field, message);
        let text = page.text();
        assert!(text.contains(value), "{field}: the entered value {value:?} is kept");
        assert!(text.contains("value=\"Kept name\""), "{field}: the other fields are kept");
        assert!(text.contains("name=\"grant_types\" value=\"refresh_token\" checked"), "{field}: checkboxes kept");
    }
    assert!(server.store.client("kept-id").await.unwrap().is_none(), "nothing was registered");
    assert_eq!(server.store.count_clients().await.unwrap(), 1);
}

async fn a_client_named_like_a_script_is_shown_as_text(backend: Backend) {
    let (_db, server) = start(backend).await;
    let admin = AdminBrowser::sign_in(&server).await;
    let name = "<script>alert(1)</script>";
    let created = admin.post("/admin/clients/new", &pairs(&with(&client_form("xss"), &[("client_name", name)]))).await;
    assert_eq!(created.status, 200);
    for page in [created, admin.get("/admin/clients").await, admin.get("/admin/clients/xss").await] {
        assert!(!page.html.contains("<script>alert(1)"), "the name is not markup");
        assert!(
            page.html.contains("&lt;script&gt;alert(1)") || page.html.contains("&#60;script&#62;alert(1)"),
            "the name is shown escaped"
        );
    }
}

async fn users_can_be_created_searched_edited_given_a_new_password_and_deleted(backend: Backend) {
    let (_db, server) = start(backend).await;
    let admin = AdminBrowser::sign_in(&server).await;
    let created = admin
        .post(
            "/admin/users/new",
            &[
                ("username", "bob"),
                ("password", "bob-password"),
                ("name", "Bob Builder"),
                ("email", "bob@example.test"),
                ("email_verified", "true"),
                ("phone_number", "+15551234567"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.html);
    let bob = server.store.user_by_username("bob").await.unwrap().expect("bob exists");
    assert_eq!(created.location, format!("/admin/users/{}?done=created", bob.id));
    assert_eq!(bob.claims["name"], "Bob Builder");
    assert_eq!(bob.claims["email_verified"], Value::Bool(true));
    assert!(!bob.is_admin);
    assert!(password::verify("bob-password".into(), Some(bob.password_hash.clone())).await);

    for (q, found) in [("builder", true), ("BOB@example", true), ("", true), ("nobody-here", false)] {
        let list = admin.get(&format!("/admin/users?q={q}")).await;
        assert_eq!(list.status, 200);
        assert_eq!(list.html.contains("Bob Builder"), found, "search {q:?}");
        assert!(list.html.contains(&format!("value=\"{q}\"")), "the search box keeps {q:?}");
    }

    let page = admin.get(&format!("/admin/users/{}", bob.id)).await;
    assert!(page.html.contains("value=\"Bob Builder\""));
    let edited = admin
        .post(
            &format!("/admin/users/{}", bob.id),
            &[
                ("name", "Robert Builder"),
                ("email", "bob@example.test"),
                ("given_name", "Robert"),
                ("is_admin", "true"),
            ],
        )
        .await;
    assert_eq!(edited.status, 303, "{}", edited.html);
    let bob = server.store.user_by_username("bob").await.unwrap().unwrap();
    assert_eq!(bob.claims["name"], "Robert Builder");
    assert_eq!(bob.claims["given_name"], "Robert");
    assert_eq!(bob.claims["email_verified"], Value::Bool(false), "unticked");
    assert!(bob.claims.get("phone_number").is_none(), "a blank field removes its claim");
    assert!(bob.is_admin);

    let reset = admin.post(&format!("/admin/users/{}/password", bob.id), &[("password", "short")]).await;
    assert_eq!(reset.status, 422);
    assert_error_beside(&reset, "password", "must be at least 8 characters");
    let reset = admin.post(&format!("/admin/users/{}/password", bob.id), &[("password", "new-bob-password")]).await;
    assert_eq!(reset.status, 303);
    let bob = server.store.user_by_username("bob").await.unwrap().unwrap();
    assert!(password::verify("new-bob-password".into(), Some(bob.password_hash.clone())).await);
    assert!(admin.get(&reset.location).await.html.contains("Password changed."));

    let deleted = admin.post(&format!("/admin/users/{}/delete", bob.id), &[]).await;
    assert_eq!(deleted.status, 303);
    assert_eq!(deleted.location, "/admin/users?done=deleted");
    assert!(server.store.user_by_username("bob").await.unwrap().is_none());
    assert!(!admin.get("/admin/users").await.html.contains("Robert Builder"));
}

async fn invalid_user_fields_get_a_422_with_the_error_beside_the_field(backend: Backend) {
    let (_db, server) = start(backend).await;
    flow::add_user(&server, "alice").await;
    let admin = AdminBrowser::sign_in(&server).await;
    let cases = [
        ("username", "two words", "must not contain spaces or control characters"),
        ("username", "alice", "user \"alice\" already exists"),
        ("password", "short", "must be at least 8 characters"),
        ("email", "not-an-email", "\"email\" has the wrong type or form"),
    ];
    for (field, value, message) in cases {
        let mut form = vec![("username", "carol"), ("password", "carol-password"), ("name", "Carol Kept")];
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        let page = admin.post("/admin/users/new", &form).await;
        assert_eq!(page.status, 422, "{field}={value}");
        assert_error_beside(&page, field, message);
        assert!(page.text().contains("value=\"Carol Kept\""), "{field}: the entered values are kept");
        assert!(!page.html.contains("carol-password"), "a password is never sent back");
    }
    assert!(server.store.user_by_username("carol").await.unwrap().is_none());
}

async fn ending_a_users_sessions_or_disabling_them_signs_them_out_and_revokes_their_tokens(backend: Backend) {
    let (_db, server) = start(backend).await;
    let fx = flow::fixture_with(&server, |c| c.default_api = Some(API.into())).await;
    let admin = AdminBrowser::sign_in(&server).await;
    let alice = Browser::new(&server);
    let (_, access_token) = alice_tokens(&server, &fx, &alice).await;
    assert!(!asks_alice_to_sign_in(&server, &fx, &alice).await, "alice is signed in");

    let ended = admin.post(&format!("/admin/users/{}/revoke-sessions", fx.user_id), &[]).await;
    assert_eq!(ended.status, 303);
    assert!(asks_alice_to_sign_in(&server, &fx, &alice).await, "alice's session has ended");
    assert!(server.store.is_revoked(&jti(&access_token)).await.unwrap(), "her access token is revoked");
    assert!(admin.get(&ended.location).await.html.contains("Every session of this user has ended"));

    let alice = Browser::new(&server);
    let (_, access_token) = alice_tokens(&server, &fx, &alice).await;
    let form =
        [("name", "alice Example"), ("email", "alice@example.test"), ("email_verified", "true"), ("disabled", "true")];
    let disabled = admin.post(&format!("/admin/users/{}", fx.user_id), &form).await;
    assert_eq!(disabled.status, 303, "{}", disabled.html);
    assert!(server.store.user_by_id(&fx.user_id).await.unwrap().unwrap().disabled);
    assert!(server.store.is_revoked(&jti(&access_token)).await.unwrap(), "disabling revokes her tokens");
    let page = alice.open(&flow::authorize_url(&server, &fx.client_id, &[])).await;
    assert!(page.html().contains("name=\"password\""), "she must sign in again");
    let refused = alice.login(&page, "alice", flow::PASSWORD).await;
    assert_eq!(refused.status(), 401, "and cannot");
    let list = admin.get("/admin/users").await;
    assert!(list.html.contains("badge disabled"));
}

async fn an_admin_cannot_disable_demote_or_delete_their_own_account(backend: Backend) {
    let (_db, server) = start(backend).await;
    let admin = AdminBrowser::sign_in(&server).await;
    let me = server.store.user_by_username("admin").await.unwrap().unwrap();
    let path = format!("/admin/users/{}", me.id);
    let page = admin.get(&path).await;
    assert!(!page.html.contains(&format!("{path}/delete")), "no delete button for oneself");

    let demoted = admin.post(&path, &[("name", "The Admin")]).await;
    assert_eq!(demoted.status, 422);
    assert!(demoted.text().contains("<p class=\"field-error\" role=\"alert\">you cannot remove your own admin role"));
    let disabled = admin.post(&path, &[("is_admin", "true"), ("disabled", "true")]).await;
    assert_eq!(disabled.status, 422);
    assert!(disabled.text().contains("you cannot disable your own account"));
    let deleted = admin.post(&format!("{path}/delete"), &[]).await;
    assert_eq!(deleted.status, 422);
    assert!(deleted.text().contains("you cannot delete your own account"));

    let after = server.store.user_by_id(&me.id).await.unwrap().expect("still there");
    assert!(after.is_admin && !after.disabled);
    assert!(after.claims.get("name").is_none(), "nothing was saved");
    assert_eq!(admin.get("/admin").await.status, 200, "still signed in as an admin");
}

async fn apis_can_be_registered_edited_and_deleted_by_identifier(backend: Backend) {
    let (_db, server) = start(backend).await;
    flow::fixture(&server).await;
    let admin = AdminBrowser::sign_in(&server).await;
    let identifier = "https://api.example.test/orders?v=1";
    let form = [
        ("identifier", identifier),
        ("name", "Orders"),
        ("scopes", "read:orders - Read your orders\nwrite:orders\n"),
        ("access_token_ttl", "600"),
        ("signing_alg", "ES256"),
        ("introspection_client_id", "web"),
    ];
    let created = admin.post("/admin/apis/new", &form).await;
    assert_eq!(created.status, 303, "{}", created.html);
    let edit_path = "/admin/apis/edit?identifier=https%3A%2F%2Fapi.example.test%2Forders%3Fv%3D1";
    assert_eq!(created.location, format!("{edit_path}&done=created"));
    let api = server.store.api(identifier).await.unwrap().expect("registered");
    assert_eq!(api.access_token_ttl, 600);
    assert_eq!(api.scope_description("read:orders"), Some("Read your orders"));
    assert!(api.defines("write:orders"));
    assert_eq!(api.introspection_client_id.as_deref(), Some("web"));

    let list = admin.get("/admin/apis").await;
    assert!(list.html.contains("Orders") && list.html.contains("read:orders"));
    assert!(list.text().contains(edit_path), "the list links to the edit page by query parameter");
    let page = admin.get(&created.location).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("read:orders - Read your orders"));
    assert!(page.html.contains("API registered."));

    let edited = admin
        .post(
            "/admin/apis/edit",
            &[
                ("identifier", identifier),
                ("name", "Orders v2"),
                ("scopes", "read:orders"),
                ("access_token_ttl", "900"),
                ("signing_alg", "RS256"),
                ("introspection_client_id", ""),
            ],
        )
        .await;
    assert_eq!(edited.status, 303, "{}", edited.html);
    let api = server.store.api(identifier).await.unwrap().unwrap();
    assert_eq!(api.name, "Orders v2");
    assert_eq!(api.scopes.len(), 1);
    assert_eq!(api.access_token_ttl, 900);
    assert_eq!(api.introspection_client_id, None);

    let deleted = admin.post("/admin/apis/delete", &[("identifier", identifier)]).await;
    assert_eq!(deleted.status, 303);
    assert!(server.store.api(identifier).await.unwrap().is_none());
    assert!(admin.get(&deleted.location).await.html.contains("API deleted."));
    assert_eq!(admin.get(edit_path).await.status, 404);
}

async fn invalid_api_fields_get_a_422_with_the_error_beside_the_field(backend: Backend) {
    let (_db, server) = start(backend).await;
    flow::fixture_with(&server, |c| c.token_endpoint_auth_method = Some("none".into())).await;
    let admin = AdminBrowser::sign_in(&server).await;
    let cases = [
        ("identifier", "not a uri", "must be an absolute URI"),
        ("identifier", API, "already exists"),
        ("name", " ", "must not be empty"),
        ("scopes", "openid", "\"openid\" is an OpenID Connect scope, not an API scope"),
        ("scopes", "read orders - two words", "\"read orders\" must be a single scope"),
        ("access_token_ttl", "a while", "must be a whole number of seconds"),
        ("access_token_ttl", "5", "must be between 60 and 86400 seconds"),
        ("introspection_client_id", "web", "must be a confidential client"),
    ];
    for (field, value, message) in cases {
        let mut form = vec![
            ("identifier", "https://api.example.test/kept"),
            ("name", "Kept API"),
            ("scopes", "read:kept"),
            ("access_token_ttl", "3600"),
            ("signing_alg", "RS256"),
            ("introspection_client_id", ""),
        ];
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        let page = admin.post("/admin/apis/new", &form).await;
        assert_eq!(page.status, 422, "{field}={value}");
        assert_error_beside(&page, field, message);
        if field != "name" {
            assert!(page.text().contains("value=\"Kept API\""), "{field}: the entered values are kept");
        }
    }
    assert!(server.store.api("https://api.example.test/kept").await.unwrap().is_none());

    // Editing goes through the same rules.
    let edit = [("identifier", API), ("name", "Appointments"), ("scopes", "openid"), ("access_token_ttl", "3600")];
    let page = admin.post("/admin/apis/edit", &edit).await;
    assert_eq!(page.status, 422);
    assert_error_beside(&page, "scopes", "is an OpenID Connect scope");
    assert_eq!(server.store.api(API).await.unwrap().unwrap().scopes.len(), 2, "unchanged");
}

async fn jwks_kids(server: &TestServer) -> Vec<String> {
    let jwks = server.get_json("/jwks").await;
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

async fn machine_token_kid(server: &TestServer, fx: &Fixture) -> String {
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth(&fx.client_id, Some(&fx.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    flow::decode_jwt(body["access_token"].as_str().unwrap()).0["kid"].as_str().unwrap().to_owned()
}

async fn key_state(server: &TestServer, kid: &str) -> &'static str {
    let keys = server.store.signing_keys().await.unwrap();
    keys.iter().find(|k| k.kid == kid).map(|k| k.state.as_str()).unwrap_or("missing")
}

async fn rotating_signing_keys_publishes_the_next_key_before_it_signs_and_keeps_the_retired_one(backend: Backend) {
    let (_db, server) = start(backend).await;
    let fx = flow::fixture_with(&server, |c| {
        c.grant_types = vec!["client_credentials".into()];
        c.default_api = Some(API.into());
    })
    .await;
    let admin = AdminBrowser::sign_in(&server).await;
    let page = admin.get("/admin/keys").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("published in the"), "the states are explained");
    let before = jwks_kids(&server).await;
    assert_eq!(before.len(), 2, "one active key per algorithm");
    let old_kid = machine_token_kid(&server, &fx).await;

    let rotated = admin.post("/admin/keys/rotate", &[("alg", "RS256")]).await;
    assert_eq!(rotated.status, 303);
    let after = jwks_kids(&server).await;
    assert_eq!(after.len(), 3, "the next key is published");
    let new_kid = after.iter().find(|k| !before.contains(k)).unwrap().clone();
    assert_eq!(key_state(&server, &new_kid).await, "next");
    assert_eq!(machine_token_kid(&server, &fx).await, old_kid, "a next key does not sign");
    let page = admin.get(&rotated.location).await;
    assert!(page.html.contains(&new_kid) && page.html.contains("badge next"));

    let activated = admin.post(&format!("/admin/keys/{new_kid}/activate"), &[]).await;
    assert_eq!(activated.status, 303);
    assert_eq!(machine_token_kid(&server, &fx).await, new_kid, "the new key signs new tokens");
    assert_eq!(key_state(&server, &old_kid).await, "retired");
    assert!(jwks_kids(&server).await.contains(&old_kid), "the retired key is still published");
    assert_eq!(admin.post(&format!("/admin/keys/{new_kid}/activate"), &[]).await.status, 404, "only a next key");

    admin.post("/admin/keys/rotate", &[("alg", "ES256")]).await;
    let es_kid = jwks_kids(&server).await.into_iter().find(|k| !after.contains(k)).unwrap();
    let retired = admin.post(&format!("/admin/keys/{es_kid}/retire"), &[]).await;
    assert_eq!(retired.status, 303);
    assert_eq!(key_state(&server, &es_kid).await, "retired");

    let bad = admin.post("/admin/keys/rotate", &[("alg", "HS256")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.text().contains("unsupported signing algorithm \"HS256\""));
}

async fn inspect(admin: &AdminBrowser<'_>, token: &str) -> Page {
    admin.post("/admin/inspect", &[("token", token)]).await
}

async fn the_token_inspector_says_what_a_token_is_and_whether_it_is_still_good(backend: Backend) {
    let (_db, server) = start(backend).await;
    let fx = flow::fixture_with(&server, |c| c.default_api = Some(API.into())).await;
    let admin = AdminBrowser::sign_in(&server).await;
    assert_eq!(admin.get("/admin/inspect").await.status, 200);
    let alice = Browser::new(&server);
    let (id_token, access_token) = alice_tokens(&server, &fx, &alice).await;

    let page = inspect(&admin, &id_token).await;
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(text.contains("An id_token for client Web app (web)"), "{text}");
    assert!(text.contains("An API must reject it"));
    assert!(text.contains("badge valid"));

    let page = inspect(&admin, &format!("Bearer {access_token}\n")).await;
    let text = page.text();
    assert!(text.contains(&format!("An access token for API Appointments (aud {API}")), "{text}");
    assert!(text.contains("read:appointments"));
    assert!(text.contains("issued to client Web app (web) for user alice"));
    assert!(text.contains("badge valid"));
    assert!(text.contains("\"typ\": \"at+jwt\""), "the header, pretty-printed");
    assert!(text.contains(&format!("\"jti\": \"{}\"", jti(&access_token))), "the claims, pretty-printed");

    let tampered = format!("{}x", &access_token[..access_token.len() - 2]);
    let text = inspect(&admin, &tampered).await.text();
    assert!(text.contains("badge invalid") && text.contains("not verified by this server"), "{text}");

    admin.post(&format!("/admin/users/{}/revoke-sessions", fx.user_id), &[]).await;
    let text = inspect(&admin, &access_token).await.text();
    assert!(text.contains("badge revoked"), "{text}");

    for (input, message) in [
        ("not-a-jwt", "This is not a JWT"),
        ("", "Paste a token"),
        ("a.b.c.d.e", "encrypted JWT"),
        ("%%%.e30.x", "not base64url"),
        ("<script>.x.y", "not base64url"),
    ] {
        let page = inspect(&admin, input).await;
        assert_eq!(page.status, 422, "{input:?}");
        assert!(page.text().contains(message), "{input:?}: {}", page.html);
        assert!(!page.html.contains("<script>.x"), "the input is escaped");
    }
}

/// Everything a refused POST must leave alone.
async fn snapshot(server: &TestServer) -> String {
    let store = &server.store;
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{}\n{}",
        store.list_clients().await.unwrap(),
        store.list_users("", 1000).await.unwrap(),
        store.list_apis().await.unwrap(),
        store.signing_keys().await.unwrap().iter().map(|k| (k.kid.clone(), k.state.as_str())).collect::<Vec<_>>(),
        store.count_active_sessions().await.unwrap(),
        store.recent_audit(1000).await.unwrap().len(),
    )
}

async fn every_kind_of_admin_form_refuses_a_missing_or_wrong_csrf_token_and_changes_nothing(backend: Backend) {
    let (_db, server) = start(backend).await;
    let fx = flow::fixture(&server).await;
    let admin = AdminBrowser::sign_in(&server).await;
    admin.post("/admin/keys/rotate", &[("alg", "ES256")]).await;
    let next_kid = server.store.signing_keys().await.unwrap().into_iter().find(|k| k.state.as_str() == "next").unwrap();
    let user = format!("/admin/users/{}", fx.user_id);
    let new_client = client_form("csrf-client");
    let renamed_client = with(&new_client, &[("client_name", "Renamed")]);
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/admin/clients/new".into(), pairs(&new_client)),
        ("/admin/clients/web".into(), pairs(&renamed_client)),
        ("/admin/clients/web/rotate-secret".into(), vec![]),
        ("/admin/clients/web/delete".into(), vec![]),
        ("/admin/users/new".into(), vec![("username", "mallory"), ("password", "mallory-password")]),
        (user.clone(), vec![("name", "Renamed"), ("disabled", "true")]),
        (format!("{user}/password"), vec![("password", "attacker-password")]),
        (format!("{user}/revoke-sessions"), vec![]),
        (format!("{user}/delete"), vec![]),
        ("/admin/apis/new".into(), vec![("identifier", "https://evil.example.test/api"), ("name", "Evil")]),
        ("/admin/apis/edit".into(), vec![("identifier", API), ("name", "Renamed"), ("scopes", "")]),
        ("/admin/apis/delete".into(), vec![("identifier", API)]),
        ("/admin/keys/rotate".into(), vec![("alg", "RS256")]),
        (format!("/admin/keys/{}/activate", next_kid.kid), vec![]),
        (format!("/admin/keys/{}/retire", next_kid.kid), vec![]),
        ("/admin/inspect".into(), vec![("token", "x.y.z")]),
        ("/admin/logout".into(), vec![]),
    ];
    // alice has a live session, so that ending it would show.
    let alice = Browser::new(&server);
    alice.sign_in(&flow::authorize_url(&server, &fx.client_id, &[]), "alice").await;
    let before = snapshot(&server).await;
    for (path, fields) in &posts {
        let missing = admin.post_exactly(path, fields).await;
        assert_eq!(missing.status, 403, "{path} without a CSRF token");
        assert!(missing.html.contains("CSRF"), "{path}: the page says why");
        let mut wrong = vec![("csrf_token", "0123456789abcdef0123456789abcdef0123456789a")];
        wrong.extend_from_slice(fields);
        assert_eq!(admin.post_exactly(path, &wrong).await.status, 403, "{path} with a wrong CSRF token");
        let mut empty = vec![("csrf_token", "")];
        empty.extend_from_slice(fields);
        assert_eq!(admin.post_exactly(path, &empty).await.status, 403, "{path} with an empty CSRF token");
    }
    assert_eq!(snapshot(&server).await, before, "nothing changed");
    assert!(server.store.client("web").await.unwrap().unwrap().secret_matches(&fx.client_secret));
    assert_eq!(admin.get("/admin").await.status, 200, "still signed in");
}

async fn admin_changes_appear_in_the_audit_log_on_the_dashboard(backend: Backend) {
    let (_db, server) = start(backend).await;
    let admin = AdminBrowser::sign_in(&server).await;
    assert!(admin.get("/admin").await.html.contains("No admin changes yet."));
    admin.post("/admin/clients/new", &pairs(&client_form("shop"))).await;
    admin.post("/admin/users/new", &[("username", "bob"), ("password", "bob-password")]).await;
    admin.post("/admin/apis/new", &[("identifier", "https://api.example.test/audit"), ("name", "Audited")]).await;
    admin.post("/admin/clients/shop/rotate-secret", &[]).await;
    admin.post("/admin/keys/rotate", &[("alg", "RS256")]).await;
    let dashboard = admin.get("/admin").await;
    let text = dashboard.text();
    for entry in [
        "client.create shop",
        "user.create bob",
        "api.create https://api.example.test/audit",
        "client.rotate_secret shop",
        "key.add ",
    ] {
        assert!(text.contains(entry), "the audit log shows {entry:?}");
    }
    assert!(text.contains("<td>admin</td>"), "and who did it");
}
