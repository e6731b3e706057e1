//! A protected API: `GET /appointments` needs an access token for
//! `https://api.example.test/appointments` with `read:appointments`.
//!
//! ```sh
//! cargo run --example api    # LANYARD_ISSUER (default http://localhost:8080), API_BIND (127.0.0.1:9001)
//! ```

#[path = "support/appointments_api.rs"]
mod appointments_api;

use actix_web::{App, HttpServer, web};
use lanyard::verify::Verifier;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let issuer = std::env::var("LANYARD_ISSUER").unwrap_or_else(|_| "http://localhost:8080".into());
    let audience = std::env::var("API_AUDIENCE").unwrap_or_else(|_| "https://api.example.test/appointments".into());
    let bind = std::env::var("API_BIND").unwrap_or_else(|_| "127.0.0.1:9001".into());
    let verifier = Verifier::discover(&issuer, &audience).await.map_err(std::io::Error::other)?;
    println!("appointments API on http://{bind}, accepting access tokens from {issuer} for {audience}");
    let verifier = web::Data::new(verifier);
    let calendar = web::Data::new(appointments_api::Calendar::default());
    HttpServer::new(move || {
        App::new().app_data(verifier.clone()).app_data(calendar.clone()).configure(appointments_api::configure)
    })
    .bind(bind)?
    .run()
    .await
}
