//! The calendar API under its first name: `cargo run --example api` is
//! `cargo run --example calendar_api` (see `examples/calendar_api.rs`).
//!
//! ```sh
//! cargo run --example api    # LANYARD_ISSUER (default http://localhost:8080), API_BIND (127.0.0.1:9001)
//! ```

#[path = "support/appointments_api.rs"]
mod appointments_api;
#[path = "support/calendar_server.rs"]
mod calendar_server;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    calendar_server::run_from_env().await
}
