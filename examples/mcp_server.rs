//! An MCP server protected by Lanyard: the `list_appointments` tool over streamable HTTP at
//! `/mcp`, for access tokens whose `aud` is the server's URL and that carry
//! `read:appointments`. MCP clients discover Lanyard from its protected resource metadata.
//!
//! ```sh
//! cargo run --example mcp_server
//! # LANYARD_ISSUER (default http://localhost:8080), MCP_BIND (127.0.0.1:9002),
//! # MCP_RESOURCE (http://127.0.0.1:9002/mcp: register it in Lanyard as an API)
//! ```

#[path = "support/mcp_server.rs"]
mod mcp_server;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let issuer = std::env::var("LANYARD_ISSUER").unwrap_or_else(|_| "http://localhost:8080".into());
    let bind = std::env::var("MCP_BIND").unwrap_or_else(|_| "127.0.0.1:9002".into());
    let resource = std::env::var("MCP_RESOURCE").unwrap_or_else(|_| format!("http://{bind}/mcp"));
    let resource = url::Url::parse(&resource)
        .map_err(|e| std::io::Error::other(format!("MCP_RESOURCE {resource:?} is not a URL: {e}")))?;
    let settings = mcp_server::McpSettings { issuer, resource };
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!(
        "MCP server at {}, accepting access tokens from {} for that resource; metadata at {}",
        settings.resource,
        settings.issuer,
        settings.resource_metadata_url()
    );
    mcp_server::serve(listener, &settings, mcp_server::Calendar::default()).await
}
