//! Serves the appointments API (`appointments_api.rs`) on the address the environment names:
//! the `main` of `examples/calendar_api.rs` and of its older name, `examples/api.rs`.

use actix_web::{App, HttpServer, web};
use lanyard::verify::Verifier;

use crate::appointments_api;

/// `LANYARD_ISSUER` (default `http://localhost:8080`), `CALENDAR_AUDIENCE` (or `API_AUDIENCE`;
/// default `https://api.example.test/appointments`), `CALENDAR_BIND` (or `API_BIND`; default
/// `127.0.0.1:9001`).
pub async fn run_from_env() -> std::io::Result<()> {
    let var = |names: &[&str], default: &str| {
        names.iter().find_map(|n| std::env::var(n).ok()).unwrap_or_else(|| default.to_owned())
    };
    let issuer = var(&["LANYARD_ISSUER"], "http://localhost:8080");
    let audience = var(&["CALENDAR_AUDIENCE", "API_AUDIENCE"], "https://api.example.test/appointments");
    let bind = var(&["CALENDAR_BIND", "API_BIND"], "127.0.0.1:9001");
    // 401s point clients to the API's RFC 9728 metadata.
    let verifier = Verifier::discover(&issuer, &audience)
        .await
        .map_err(std::io::Error::other)?
        .with_resource_metadata(format!("http://{bind}/.well-known/oauth-protected-resource"));
    println!("calendar API on http://{bind}, accepting access tokens from {issuer} for {audience}");
    let verifier = web::Data::new(verifier);
    let calendar = web::Data::new(appointments_api::Calendar::default());
    HttpServer::new(move || {
        App::new().app_data(verifier.clone()).app_data(calendar.clone()).configure(appointments_api::configure)
    })
    .bind(bind)?
    .run()
    .await
}
