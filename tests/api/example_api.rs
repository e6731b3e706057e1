//! The example appointments API (examples/support/appointments_api.rs), served for real on
//! a random port and protected by `lanyard::verify::Verifier`: it accepts only Lanyard
//! access tokens for its own audience with the scope each route needs.

use std::net::TcpListener;

use actix_web::{App, HttpServer, web};
use lanyard::verify::Verifier;
use serde_json::{Value, json};

use crate::appointments_api;
use crate::both_backends;
use crate::flow::{self, API, Browser, Fixture};
use crate::helpers::{Backend, TestDb, TestServer};
use crate::token_lifecycle::{
    OTHER_API, Reply, access_token_expiring_at, add_other_api, machine_client, machine_token, member, now, sign_in,
};

both_backends!(
    the_example_api_lists_appointments_for_an_access_token_with_read_appointments,
    the_example_api_refuses_an_id_token_and_says_why,
    the_example_api_refuses_an_access_token_for_another_api,
    the_example_api_refuses_an_expired_access_token,
    the_example_api_answers_403_insufficient_scope_naming_the_scope_it_needs,
    the_example_api_challenges_a_request_without_a_token_without_an_error_code,
    the_example_api_creates_an_appointment_with_write_appointments_and_lists_it_to_its_owner,
    the_example_api_publishes_protected_resource_metadata_and_points_401s_to_it,
);

/// The example API, running on its own random port.
struct ExampleApi {
    base: String,
    http: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

impl ExampleApi {
    /// Starts the API with a verifier discovered from `idp` for the appointments audience.
    async fn start(idp: &TestServer) -> ExampleApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a random port");
        let port = listener.local_addr().expect("local addr").port();
        let verifier = Verifier::discover(&idp.base, API)
            .await
            .expect("the verifier discovers the issuer's keys")
            .with_resource_metadata(format!("http://127.0.0.1:{port}/.well-known/oauth-protected-resource"));
        assert_eq!(verifier.issuer(), idp.base);
        assert_eq!(verifier.audience(), API);
        let verifier = web::Data::new(verifier);
        let calendar = web::Data::new(appointments_api::Calendar::default());
        let server = HttpServer::new(move || {
            App::new().app_data(verifier.clone()).app_data(calendar.clone()).configure(appointments_api::configure)
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        ExampleApi { base: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new(), handle }
    }

    async fn list(&self, token: Option<&str>) -> Reply {
        let mut request = self.http.get(format!("{}/appointments", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::read(request.send().await.expect("sent")).await
    }

    async fn create(&self, token: &str, appointment: &Value) -> Reply {
        let request = self.http.post(format!("{}/appointments", self.base)).bearer_auth(token).json(appointment);
        Reply::read(request.send().await.expect("sent")).await
    }
}

impl Drop for ExampleApi {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}

/// The challenge of a refusal, checked to be a Bearer challenge.
fn bearer_challenge(reply: &Reply, status: u16, what: &str) -> String {
    assert_eq!(reply.status, status, "{what}: {}", reply.text);
    let challenge = reply.challenge().to_owned();
    assert!(challenge.starts_with("Bearer "), "{what}: a Bearer challenge, got {challenge:?}");
    challenge
}

/// A signed-in user's tokens for the appointments API (`web` may read and write).
async fn user_tokens(server: &TestServer, scope: &str) -> (Fixture, Value) {
    let fx = flow::fixture_with(server, |c| {
        c.scope = Some("openid profile email read:appointments write:appointments".into());
    })
    .await;
    let browser = Browser::new(server);
    let tokens = sign_in(server, &browser, &fx, &[("scope", scope), ("resource", API)]).await;
    (fx, tokens)
}

async fn the_example_api_lists_appointments_for_an_access_token_with_read_appointments(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let (fx, tokens) = user_tokens(&server, "openid read:appointments").await;
    let api = ExampleApi::start(&server).await;

    let reply = api.list(Some(member(&tokens, "access_token"))).await;
    assert_eq!(reply.status, 200, "{} {}", reply.challenge(), reply.text);
    assert_eq!(reply.body, json!({ "owner": fx.user_id, "client": "web", "appointments": [] }));

    // A machine's token with the scope is as good (its subject is the client).
    let machine = machine_client(&server, "reminders", "read:appointments", |_| {}).await;
    let token = machine_token(&server, &machine, &[("resource", API)]).await;
    let reply = api.list(Some(&token)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, json!({ "owner": "reminders", "client": "reminders", "appointments": [] }));
}

async fn the_example_api_refuses_an_id_token_and_says_why(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let (_, tokens) = user_tokens(&server, "openid read:appointments").await;
    let api = ExampleApi::start(&server).await;

    let reply = api.list(Some(member(&tokens, "id_token"))).await;
    let challenge = bearer_challenge(&reply, 401, "an id_token");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.contains("error_description=\"") && challenge.contains("id_token"),
        "names the id_token: {challenge}"
    );
    assert_eq!(reply.error(), "invalid_token");
    assert!(reply.str("error_description").contains("id_token"), "{}", reply.text);
    assert!(reply.body.get("appointments").is_none());
}

async fn the_example_api_refuses_an_access_token_for_another_api(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    flow::fixture(&server).await;
    add_other_api(&server).await;
    // Allowed read:appointments too: the audience, not the scope, is what is wrong.
    let machine = machine_client(&server, "other-machine", "read:other read:appointments", |_| {}).await;
    let token = machine_token(&server, &machine, &[("resource", OTHER_API)]).await;
    assert_eq!(flow::decode_jwt(&token).1["aud"], OTHER_API);
    let api = ExampleApi::start(&server).await;

    let reply = api.list(Some(&token)).await;
    let challenge = bearer_challenge(&reply, 401, "a token for another API");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("audience"), "the reason is the audience: {challenge}");
    assert_eq!(reply.error(), "invalid_token");
}

async fn the_example_api_refuses_an_expired_access_token(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    flow::fixture(&server).await;
    let api = ExampleApi::start(&server).await;

    // Control: the same token unexpired passes, so only `exp` differs.
    let fresh = access_token_expiring_at(&server, API, "someone", now() + 600).await;
    assert_eq!(api.list(Some(&fresh)).await.status, 200);
    let expired = access_token_expiring_at(&server, API, "someone", now() - 3600).await;
    let reply = api.list(Some(&expired)).await;
    let challenge = bearer_challenge(&reply, 401, "an expired token");
    assert!(challenge.contains("error=\"invalid_token\"") && challenge.contains("expired"), "{challenge}");
}

async fn the_example_api_answers_403_insufficient_scope_naming_the_scope_it_needs(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    flow::fixture(&server).await;
    let writer = machine_client(&server, "importer", "write:appointments", |_| {}).await;
    let token = machine_token(&server, &writer, &[("resource", API)]).await;
    assert_eq!(flow::decode_jwt(&token).1["scope"], "write:appointments");
    let api = ExampleApi::start(&server).await;

    let reply = api.list(Some(&token)).await;
    let challenge = bearer_challenge(&reply, 403, "a token without read:appointments");
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
    assert!(challenge.contains("scope=\"read:appointments\""), "RFC 6750 §3: the scope needed: {challenge}");
    assert_eq!(reply.error(), "insufficient_scope");
}

async fn the_example_api_challenges_a_request_without_a_token_without_an_error_code(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    flow::fixture(&server).await;
    let api = ExampleApi::start(&server).await;

    let reply = api.list(None).await;
    let challenge = bearer_challenge(&reply, 401, "no token");
    // RFC 6750 §3.1: a request without authentication gets no error code.
    assert!(!challenge.contains("error="), "{challenge}");
    assert!(!challenge.contains("error_description="), "{challenge}");
}

async fn the_example_api_creates_an_appointment_with_write_appointments_and_lists_it_to_its_owner(backend: Backend) {
    let db = TestDb::create(backend).await;
    let server = TestServer::start(&db).await;
    let (fx, tokens) = user_tokens(&server, "openid read:appointments write:appointments").await;
    let access_token = member(&tokens, "access_token");
    let api = ExampleApi::start(&server).await;

    let appointment = json!({ "title": "Dentist", "at": "2030-01-02T09:30:00Z" });
    let reply = api.create(access_token, &appointment).await;
    assert_eq!(reply.status, 201, "{} {}", reply.challenge(), reply.text);
    assert_eq!(reply.body, json!({ "owner": fx.user_id, "title": "Dentist", "at": "2030-01-02T09:30:00Z" }));

    let reply = api.list(Some(access_token)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.body["appointments"],
        json!([{ "owner": fx.user_id, "title": "Dentist", "at": "2030-01-02T09:30:00Z" }])
    );

    // Someone else (a machine with read access) does not see alice's appointment.
    let machine = machine_client(&server, "reminders", "read:appointments", |_| {}).await;
    let token = machine_token(&server, &machine, &[("resource", API)]).await;
    let reply = api.list(Some(&token)).await;
    assert_eq!(reply.body["appointments"], json!([]), "{}", reply.text);

    // Reading alone does not allow writing.
    let reply = api.create(&token, &appointment).await;
    let challenge = bearer_challenge(&reply, 403, "POST without write:appointments");
    assert!(challenge.contains("scope=\"write:appointments\""), "{challenge}");
}

async fn the_example_api_publishes_protected_resource_metadata_and_points_401s_to_it(backend: Backend) {
    let db = TestDb::create(backend).await;
    let idp = TestServer::start(&db).await;
    flow::fixture(&idp).await;
    let api = ExampleApi::start(&idp).await;
    let metadata: Value = api
        .http
        .get(format!("{}/.well-known/oauth-protected-resource", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], API);
    assert_eq!(metadata["authorization_servers"], serde_json::json!([idp.base]));
    assert_eq!(metadata["scopes_supported"], serde_json::json!(["read:appointments", "write:appointments"]));
    assert_eq!(metadata["bearer_methods_supported"], serde_json::json!(["header"]));
    let reply = api.list(None).await;
    assert_eq!(reply.status, 401);
    let expected = format!("resource_metadata=\"{}/.well-known/oauth-protected-resource\"", api.base);
    let challenge = reply.header("www-authenticate").unwrap_or_default().to_owned();
    assert!(challenge.contains(&expected), "{challenge}");
    let reply = api.list(Some("not-a-token")).await;
    let challenge = reply.header("www-authenticate").unwrap_or_default().to_owned();
    assert!(challenge.contains("error=\"invalid_token\"") && challenge.contains(&expected), "{challenge}");
}
