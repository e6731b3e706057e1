//! Lanyard as the authorization server of an MCP server, end to end with the official MCP
//! Rust SDK (`rmcp`) on both sides: the example MCP server (`examples/mcp_server.rs`) behind
//! `lanyard::verify`, and rmcp's client doing MCP authorization on its own — the 401, the
//! protected resource metadata, Lanyard's metadata, open dynamic registration, PKCE with
//! `resource` — with only the browser played by the test (dev-login: `login_hint`).
//!
//! SQLite only: what is under test is the wire between three parties, not storage.

#[path = "../examples/support/mcp_server.rs"]
#[allow(dead_code)]
mod mcp_server;

use std::net::TcpListener;
use std::path::PathBuf;

use actix_web::web;
use lanyard::app::Application;
use lanyard::config::Settings;
use lanyard::registry::{self, api::ApiSpec, api::ScopeSpec, client::ClientSpec, user::UserSpec};
use lanyard::state::AppState;
use lanyard::tokens::mint::{MintRequest, mint};
use mcp_server::{Appointment, Calendar, LIST_APPOINTMENTS, McpSettings, READ_APPOINTMENTS};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationManager, AuthorizationRequest, AuthorizationSession};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

/// Where the MCP client says it receives the authorization response. Nothing listens: the
/// test reads the code from the 303 that dev-login answers with.
const REDIRECT_URI: &str = "http://127.0.0.1:8976/callback";
/// Another API, for a token that is valid but not meant for the MCP server.
const OTHER_API: &str = "https://api.example.test/appointments";
/// A pre-registered client, only for minting the tokens the refusals are about.
const MINTING_CLIENT: &str = "token-minter";

/// Lanyard on a random loopback port, SQLite in a temporary directory, dev-login on and
/// registration open: what `LANYARD_REGISTRATION=open lanyard --dev-login` runs.
struct Lanyard {
    issuer: String,
    state: web::Data<AppState>,
    handle: actix_web::dev::ServerHandle,
    dir: PathBuf,
}

impl Lanyard {
    async fn start() -> Lanyard {
        let dir = std::env::temp_dir().join(format!("lanyard-mcp-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a random port");
        let port = listener.local_addr().expect("local addr").port();
        let issuer = format!("http://127.0.0.1:{port}");
        let settings = Settings {
            issuer: Some(issuer.clone()),
            bind: Some(format!("127.0.0.1:{port}")),
            database_url: format!("sqlite://{}", dir.join("lanyard.db").display()),
            database_max_connections: 5,
            workers: 2,
            demo: false,
            dev_login: true,
            registration: "open".into(),
            ..Settings::default()
        };
        let config = settings.validate().expect("valid settings");
        let app = Application::build_with_listener(config, listener).await.expect("Lanyard starts");
        let (state, handle) = (app.state(), app.handle());
        tokio::spawn(app.run_until_stopped());
        Lanyard { issuer, state, handle, dir }
    }

    /// A token as a flow would have issued it (`lanyard token mint`).
    async fn mint(&self, api: &str, scope: &str, id_token: bool) -> lanyard::tokens::mint::MintedTokens {
        let request = MintRequest {
            user: Some("alice".into()),
            client: MINTING_CLIENT.into(),
            api: Some(api.into()),
            scope: scope.into(),
            id_token,
            defect: None,
        };
        let state = &self.state;
        mint(
            &state.store,
            &state.keys.ring(),
            &state.config.issuer,
            &state.subjects,
            state.config.id_token_ttl,
            &request,
        )
        .await
        .expect("token minted")
    }
}

impl Drop for Lanyard {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Lanyard with alice and the two APIs, and the example MCP server registered in it.
struct World {
    lanyard: Lanyard,
    /// The MCP endpoint: the resource identifier and the URL the client connects to.
    mcp: String,
    /// Where the MCP server's challenges point (RFC 9728 §5.1).
    resource_metadata: String,
    alice: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl World {
    async fn start() -> World {
        let lanyard = Lanyard::start().await;
        let store = &lanyard.state.store;
        let alice = registry::create_user(
            store,
            UserSpec {
                username: "alice".into(),
                password: "alice-password".into(),
                is_admin: false,
                claims: serde_json::Map::new(),
            },
        )
        .await
        .expect("alice registered")
        .id;
        // The MCP server's identifier is its URL, so its port is chosen first.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a random port");
        let port = listener.local_addr().expect("local addr").port();
        let mcp = format!("http://127.0.0.1:{port}/mcp");
        for (identifier, name) in [(mcp.as_str(), "Appointments (MCP)"), (OTHER_API, "Appointments API")] {
            let spec = ApiSpec {
                identifier: identifier.into(),
                name: name.into(),
                scopes: vec![ScopeSpec::Name(READ_APPOINTMENTS.into())],
                ..Default::default()
            };
            registry::create_api(store, spec).await.expect("API registered");
        }
        let minting = ClientSpec {
            client_id: Some(MINTING_CLIENT.into()),
            redirect_uris: vec![REDIRECT_URI.into()],
            scope: Some(format!("openid {READ_APPOINTMENTS}")),
            token_endpoint_auth_method: Some("none".into()),
            ..Default::default()
        };
        registry::create_client(store, minting).await.expect("client registered");

        let settings = McpSettings { issuer: lanyard.issuer.clone(), resource: url::Url::parse(&mcp).expect("URL") };
        let calendar = Calendar::default();
        calendar.add(Appointment { owner: alice.clone(), title: "Dentist".into(), at: "2030-01-02T09:30:00Z".into() });
        calendar.add(Appointment {
            owner: "someone-else".into(),
            title: "Not alice's".into(),
            at: "2030-01-03".into(),
        });
        let router = mcp_server::router(&settings, calendar).await.expect("the MCP server reads Lanyard's metadata");
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        World { resource_metadata: settings.resource_metadata_url(), lanyard, mcp, alice, server }
    }

    /// The first MCP message, sent raw, with this `Authorization` header (if any).
    async fn post_raw(&self, authorization: Option<&str>, message: Value) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(&self.mcp)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .body(message.to_string());
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        request.send().await.expect("request sent")
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": { "name": "raw", "version": "0" }
        }
    })
}

fn call_list_appointments() -> Value {
    json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": LIST_APPOINTMENTS, "arguments": {} } })
}

fn www_authenticate(response: &reqwest::Response) -> String {
    let header = response.headers().get("www-authenticate").expect("a WWW-Authenticate challenge");
    header.to_str().expect("ASCII").to_owned()
}

/// The claims of a JWT, unverified (the servers verify; the test only looks).
fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWS");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// An rmcp client that sends this bearer token and nothing else (no OAuth of its own).
fn client_with_token(world: &World, token: &str) -> StreamableHttpClientTransport<reqwest_rmcp::Client> {
    StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(world.mcp.as_str()).auth_header(token),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_finds_lanyard_registers_signs_alice_in_and_calls_the_tool() {
    let world = World::start().await;

    // 1. rmcp's client connects without a token: the MCP server answers 401 and points to
    //    its protected resource metadata.
    let refused = ().serve(StreamableHttpClientTransport::from_uri(world.mcp.as_str())).await.expect_err("401");
    assert!(refused.is_authorization_required(), "{refused}");
    let challenge = refused.auth_challenge().expect("the 401's WWW-Authenticate").to_owned();
    assert!(challenge.contains(&format!("resource_metadata=\"{}\"", world.resource_metadata)), "{challenge}");
    assert!(!challenge.contains("error="), "no token is not an error (RFC 6750 §3.1): {challenge}");

    // 2. rmcp follows the challenge: protected resource metadata, then Lanyard's metadata.
    let mut manager = AuthorizationManager::new(world.mcp.as_str()).await.expect("manager");
    let resolution = manager.resolve_metadata_from_challenge(Some(&challenge)).await.expect("discovery");
    assert!(resolution.source.is_discovered(), "{:?}", resolution.source);
    assert_eq!(resolution.metadata.issuer.as_deref(), Some(world.lanyard.issuer.as_str()));
    assert_eq!(resolution.metadata.registration_endpoint, Some(format!("{}/register", world.lanyard.issuer)));
    manager.set_metadata(resolution.metadata);

    // 3. It registers itself at /register (open dynamic registration: a public client) and
    //    builds the authorization URL: PKCE S256, the scopes from the resource's metadata,
    //    and `resource` = the MCP server (RFC 8707).
    let request = AuthorizationRequest::new(REDIRECT_URI).with_client_name("rmcp test client");
    let session = match AuthorizationSession::new(manager, request).await {
        Ok(session) => session,
        Err((_, e)) => panic!("registration or authorization URL failed: {e}"),
    };
    let (client_id, _) = session.get_credentials().await.expect("client id");
    let registered = world.lanyard.state.store.client(&client_id).await.expect("store").expect("registered");
    assert_eq!(registered.auth_method.as_str(), "none", "a public client");
    assert_eq!(registered.name, "rmcp test client");
    let authorization_url = url::Url::parse(session.get_authorization_url()).expect("URL");
    let query: std::collections::HashMap<String, String> = authorization_url.query_pairs().into_owned().collect();
    assert!(authorization_url.as_str().starts_with(&format!("{}/authorize?", world.lanyard.issuer)));
    assert_eq!(query["client_id"], client_id);
    assert_eq!(query["resource"], world.mcp, "rmcp sends RFC 8707's resource itself");
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["scope"].split(' ').any(|s| s == READ_APPOINTMENTS), "{}", query["scope"]);

    // 4. The browser: dev-login signs alice in without a page and redirects with the code.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let response =
        browser.get(format!("{authorization_url}&login_hint=alice")).send().await.expect("authorization request");
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().expect("ASCII").to_owned();
    assert!(location.starts_with(REDIRECT_URI), "{location}");

    // 5. rmcp takes the callback (state, RFC 9207 iss) and redeems the code with the verifier.
    session.handle_callback_url(&location).await.expect("code exchanged");
    let manager = session.auth_manager;
    let access_token = manager.get_access_token().await.expect("an access token");
    let token = claims(&access_token);
    assert_eq!(token["aud"], json!(world.mcp), "the token is for the MCP server alone");
    assert_eq!(token["sub"], json!(world.alice));
    assert_eq!(token["client_id"], json!(client_id));
    assert_eq!(token["scope"], json!(READ_APPOINTMENTS));

    // rmcp asked for offline_access too (Lanyard advertises it), so it holds a refresh token;
    // its refresh names the resource again, and the rotated grant keeps the audience.
    manager.refresh_token().await.expect("refreshed");
    let refreshed = manager.get_access_token().await.expect("the refreshed access token");
    assert_ne!(refreshed, access_token);
    assert_eq!(claims(&refreshed)["aud"], json!(world.mcp));

    // 6. The MCP session, through rmcp's authorized client: the tool answers for alice.
    let auth_client = AuthClient::new(reqwest_rmcp::Client::default(), manager);
    let transport = StreamableHttpClientTransport::with_client(
        auth_client,
        StreamableHttpClientTransportConfig::with_uri(world.mcp.as_str()),
    );
    let client = ().serve(transport).await.expect("initialized with the token");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.iter().map(|t| t.name.as_ref()).collect::<Vec<_>>(), [LIST_APPOINTMENTS]);
    let result = client.call_tool(CallToolRequestParams::new(LIST_APPOINTMENTS)).await.expect("tools/call");
    assert_eq!(result.is_error, Some(false));
    let listing = result.structured_content.expect("structured content");
    assert_eq!(listing["owner"], json!(world.alice));
    assert_eq!(listing["client"], json!(client_id));
    assert_eq!(
        listing["appointments"],
        json!([{ "owner": world.alice, "title": "Dentist", "at": "2030-01-02T09:30:00Z" }])
    );
    client.cancel().await.expect("closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_server_refuses_an_id_token_and_a_token_for_another_resource_with_401() {
    let world = World::start().await;
    let id_token =
        world.lanyard.mint(&world.mcp, &format!("openid {READ_APPOINTMENTS}"), true).await.id_token.expect("id_token");
    let foreign = world.lanyard.mint(OTHER_API, READ_APPOINTMENTS, false).await.access_token;
    let cases = [
        (id_token.as_str(), "an id_token", "id_token"),
        (foreign.as_str(), "an access token for another API", "not meant for this audience"),
        ("not-a-jwt", "garbage", "not a compact JWS"),
    ];
    for (token, what, description) in cases {
        // Through rmcp's client: the handshake fails on the challenge.
        let refused = ().serve(client_with_token(&world, token)).await.expect_err(what);
        let challenge = refused.auth_challenge().unwrap_or_else(|| panic!("{what}: no challenge in {refused}"));
        assert!(challenge.contains("error=\"invalid_token\""), "{what}: {challenge}");

        // On the wire: 401, the challenge names the metadata, the body says why.
        let response = world.post_raw(Some(&format!("Bearer {token}")), initialize()).await;
        assert_eq!(response.status(), 401, "{what}");
        let challenge = www_authenticate(&response);
        assert!(challenge.starts_with("Bearer "), "{what}: {challenge}");
        assert!(challenge.contains("error=\"invalid_token\""), "{what}: {challenge}");
        assert!(
            challenge.contains(&format!("resource_metadata=\"{}\"", world.resource_metadata)),
            "{what}: {challenge}"
        );
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(body["error"], "invalid_token", "{what}");
        let text = body["error_description"].as_str().unwrap_or_default();
        assert!(text.contains(description), "{what}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_read_appointments_may_connect_but_the_tool_call_is_403_insufficient_scope() {
    let world = World::start().await;
    // Valid for the MCP server, but only `openid` was granted.
    let token = world.lanyard.mint(&world.mcp, "openid", false).await.access_token;
    assert_eq!(claims(&token)["scope"], "openid");

    let client = ().serve(client_with_token(&world, &token)).await.expect("a valid token may initialize");
    let refused = client.call_tool(CallToolRequestParams::new(LIST_APPOINTMENTS)).await.expect_err("403");
    let challenge = refused.auth_challenge().unwrap_or_else(|| panic!("no challenge in {refused}")).to_owned();
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
    assert!(challenge.contains(&format!("scope=\"{READ_APPOINTMENTS}\"")), "{challenge}");
    let _ = client.cancel().await;

    let response = world.post_raw(Some(&format!("Bearer {token}")), call_list_appointments()).await;
    assert_eq!(response.status(), 403);
    let challenge = www_authenticate(&response);
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
    assert!(challenge.contains(&format!("scope=\"{READ_APPOINTMENTS}\"")), "{challenge}");
    assert!(challenge.contains(&format!("resource_metadata=\"{}\"", world.resource_metadata)), "{challenge}");
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["error"], "insufficient_scope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protected_resource_metadata_names_the_mcp_server_and_lanyard_at_both_well_known_urls() {
    let world = World::start().await;
    let base = world.mcp.trim_end_matches("/mcp");
    for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"] {
        let response = reqwest::get(format!("{base}{path}")).await.expect("request sent");
        assert_eq!(response.status(), 200, "{path}");
        let document: Value = response.json().await.expect("JSON");
        assert_eq!(
            document,
            json!({
                "resource": world.mcp,
                "authorization_servers": [world.lanyard.issuer],
                "scopes_supported": [READ_APPOINTMENTS],
                "bearer_methods_supported": ["header"],
            }),
            "{path}"
        );
    }
    // No token at all: 401 without an error code, pointing at the document.
    let response = world.post_raw(None, initialize()).await;
    assert_eq!(response.status(), 401);
    let challenge = www_authenticate(&response);
    assert_eq!(challenge, format!("Bearer realm=\"api\", resource_metadata=\"{}\"", world.resource_metadata));
}
