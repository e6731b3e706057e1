//! The appointments MCP server: one tool, `list_appointments`, served over MCP's streamable
//! HTTP transport (the official Rust SDK, `rmcp`) and protected by `lanyard::verify`.
//! Shared by `examples/mcp_server.rs` and `tests/mcp.rs`.
//!
//! The MCP server is an OAuth protected resource (MCP authorization, RFC 9728): every
//! request to `/mcp` carries a Lanyard access token whose `aud` is the server's own URL.
//! The server names its authorization server in `/.well-known/oauth-protected-resource`, and
//! every refusal is a Bearer challenge that points there, so an MCP client can find Lanyard,
//! register, sign the user in and come back with the right token on its own.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use lanyard::verify::{AccessTokenClaims, SetupError, Verifier, VerifyError};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use serde::Serialize;

/// The scope `list_appointments` needs.
pub const READ_APPOINTMENTS: &str = "read:appointments";
/// The one tool.
pub const LIST_APPOINTMENTS: &str = "list_appointments";
/// The scopes each tool needs; every other request needs only a valid token.
const TOOL_SCOPES: &[(&str, &[&str])] = &[(LIST_APPOINTMENTS, &[READ_APPOINTMENTS])];
/// The MCP endpoint's path.
pub const MCP_PATH: &str = "/mcp";
/// RFC 9728 §3: the protected resource metadata's well-known path.
const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";
/// MCP messages are small; the gate reads a request body whole, so it bounds it.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Where the server runs and whom it trusts.
#[derive(Debug, Clone)]
pub struct McpSettings {
    /// Lanyard's issuer URL.
    pub issuer: String,
    /// The MCP endpoint's URL: the resource identifier, registered in Lanyard as an API
    /// (`lanyard api add http://127.0.0.1:9002/mcp --scope read:appointments`), and so
    /// the `aud` every accepted token must carry.
    pub resource: url::Url,
}

impl McpSettings {
    /// The URL of the protected resource metadata, as the challenges name it.
    pub fn resource_metadata_url(&self) -> String {
        let mut url = self.resource.clone();
        url.set_path(METADATA_PATH);
        url.set_query(None);
        url.to_string()
    }
}

/// One appointment, owned by the user (`sub`) it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct Appointment {
    pub owner: String,
    pub title: String,
    pub at: String,
}

/// The in-memory calendar (an example: a real server has a database).
#[derive(Debug, Clone, Default)]
pub struct Calendar(Arc<Mutex<Vec<Appointment>>>);

impl Calendar {
    #[cfg_attr(not(test), expect(dead_code, reason = "the tests fill the calendar; the example starts it empty"))]
    pub fn add(&self, appointment: Appointment) {
        if let Ok(mut all) = self.0.lock() {
            all.push(appointment);
        }
    }

    fn of(&self, owner: &str) -> Vec<Appointment> {
        match self.0.lock() {
            Ok(all) => all.iter().filter(|a| a.owner == owner).cloned().collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Fetches Lanyard's keys and builds the server's routes: `/mcp` behind the token gate,
/// and the protected resource metadata at both of its well-known URLs.
pub async fn router(settings: &McpSettings, calendar: Calendar) -> Result<Router, SetupError> {
    let resource_metadata = settings.resource_metadata_url();
    let verifier = Verifier::discover(&settings.issuer, settings.resource.as_str())
        .await?
        .with_resource_metadata(resource_metadata.clone());
    let metadata = verifier.resource_metadata(&[READ_APPOINTMENTS]).to_string();
    // RFC 9728 §3.1: for a resource with a path, the well-known suffix goes between the host
    // and the path. Clients that derive the URL themselves look there; the challenge names
    // the plain one.
    let inserted = format!("{METADATA_PATH}{}", settings.resource.path().trim_end_matches('/'));
    let metadata_route = get(move || {
        let body = metadata.clone();
        async move {
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CACHE_CONTROL, "public, max-age=300")
                .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
                .body(Body::from(body))
                .unwrap_or_default()
        }
    });
    // DNS-rebinding protection: only the resource's own host may be named in `Host`.
    let host = settings.resource.host_str().unwrap_or("localhost").to_owned();
    let mcp = StreamableHttpService::new(
        move || Ok(AppointmentsServer::new(calendar.clone())),
        Arc::new(NeverSessionManager::default()),
        // Stateless: every POST stands alone with its own bearer token, so there is no
        // session that another token could ride on.
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_allowed_hosts([host]),
    );
    Ok(Router::new()
        .route_service(MCP_PATH, mcp)
        .route_layer(middleware::from_fn_with_state(Arc::new(Gate { verifier, resource_metadata }), require_token))
        .route(METADATA_PATH, metadata_route.clone())
        .route(&inserted, metadata_route))
}

/// Serves [`router`] on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: &McpSettings,
    calendar: Calendar,
) -> std::io::Result<()> {
    let app = router(settings, calendar).await.map_err(std::io::Error::other)?;
    axum::serve(listener, app).await
}

/// What the gate in front of `/mcp` checks tokens with.
struct Gate {
    verifier: Verifier,
    /// Named in every challenge (RFC 9728 §5.1).
    resource_metadata: String,
}

/// The gate in front of `/mcp`: a Lanyard access token for this resource on every request,
/// and the scopes of the tool a `tools/call` names. Refusals are RFC 6750 challenges with
/// RFC 9728's `resource_metadata`. The verified claims travel on to the tools.
async fn require_token(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let authorization = parts.headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
    // The token first: an anonymous caller's body is not even read.
    let claims = match gate.verifier.authorize_header(authorization, &[]).await {
        Ok(claims) => claims,
        Err(refusal) => return challenge(&refusal),
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return Response::builder().status(StatusCode::PAYLOAD_TOO_LARGE).body(Body::empty()).unwrap_or_default();
    };
    let required = required_scopes(&body);
    if required.iter().any(|s| !claims.has_scope(s)) {
        // MCP authorization, scope challenge: 403 naming every scope the operation needs.
        let resource_metadata = Some(gate.resource_metadata.clone());
        return challenge(&VerifyError::InsufficientScope { required: required.join(" "), resource_metadata });
    }
    parts.extensions.insert(claims);
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// The scopes the JSON-RPC message(s) in `body` need: those of each tool a `tools/call`
/// names. A body that is not JSON-RPC needs none here; the MCP service refuses it itself.
fn required_scopes(body: &Bytes) -> Vec<&'static str> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else { return Vec::new() };
    let messages = match value {
        serde_json::Value::Array(batch) => batch,
        single => vec![single],
    };
    let mut required = Vec::new();
    for message in &messages {
        if message["method"].as_str() != Some("tools/call") {
            continue;
        }
        let name = message["params"]["name"].as_str().unwrap_or_default();
        let scopes = TOOL_SCOPES.iter().filter(|(tool, _)| *tool == name).flat_map(|(_, scopes)| scopes.iter());
        for scope in scopes {
            if !required.contains(scope) {
                required.push(*scope);
            }
        }
    }
    required
}

/// A refusal as the wire shows it: status, `WWW-Authenticate`, JSON body (RFC 6750 §3).
fn challenge(refusal: &VerifyError) -> Response {
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    Response::builder()
        .status(status)
        .header(header::WWW_AUTHENTICATE, refusal.www_authenticate())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(refusal.body().to_string()))
        .unwrap_or_default()
}

/// The MCP server proper: what it offers once the gate let a request in.
#[derive(Clone)]
pub struct AppointmentsServer {
    calendar: Calendar,
    tool_router: ToolRouter<Self>,
}

impl AppointmentsServer {
    pub fn new(calendar: Calendar) -> Self {
        Self { calendar, tool_router: Self::tool_router() }
    }
}

/// The listing `list_appointments` returns (as structured content and as text).
#[derive(Serialize)]
struct Listing<'a> {
    owner: &'a str,
    client: &'a str,
    appointments: Vec<Appointment>,
}

#[tool_router]
impl AppointmentsServer {
    #[tool(description = "List the signed-in user's appointments (needs the read:appointments scope)")]
    async fn list_appointments(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        // Put there by the gate; without it the request never passed the gate, so refuse.
        let Some(token) = parts.extensions.get::<AccessTokenClaims>() else {
            return Err(ErrorData::internal_error("the request carries no verified access token", None));
        };
        if !token.has_scope(READ_APPOINTMENTS) {
            return Err(ErrorData::invalid_request(format!("the access token lacks {READ_APPOINTMENTS}"), None));
        }
        let listing =
            Listing { owner: &token.sub, client: &token.client_id, appointments: self.calendar.of(&token.sub) };
        let value = serde_json::to_value(&listing).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(CallToolResult::structured(value))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for AppointmentsServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("lanyard-appointments", env!("CARGO_PKG_VERSION")))
            .with_instructions("The signed-in user's appointments, protected by Lanyard.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_tools_call_of_list_appointments_needs_the_read_scope() {
        let call = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_appointments"}}"#;
        assert_eq!(required_scopes(&Bytes::from_static(call)), [READ_APPOINTMENTS]);
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"no_such_tool"}}"#,
            "not json",
        ] {
            assert!(required_scopes(&Bytes::from(body)).is_empty(), "{body}");
        }
    }
}
