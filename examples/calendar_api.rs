//! The calendar API: `GET /appointments` needs an access token for
//! `https://api.example.test/appointments` with `read:appointments`, `POST /appointments`
//! one with `write:appointments`. It accepts nothing else: an id_token, or an access token
//! for another API, is refused with a Bearer challenge that says why.
//!
//! ```sh
//! cargo run --example calendar_api   # LANYARD_ISSUER, CALENDAR_AUDIENCE, CALENDAR_BIND (127.0.0.1:9001)
//! ```
//!
//! The routes are in `support/appointments_api.rs`; `lanyard::verify::Verifier` does the
//! checking.

#[path = "support/appointments_api.rs"]
mod appointments_api;
#[path = "support/calendar_server.rs"]
mod calendar_server;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    calendar_server::run_from_env().await
}
