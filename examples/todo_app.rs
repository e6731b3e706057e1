//! The to-do app: a web app that signs users in with Lanyard and keeps their appointments
//! in the calendar API (`examples/calendar_api.rs`), calling it with the user's access token.
//!
//! ```sh
//! cargo run -- --ephemeral --seed examples/support/todo-seed.toml --dev-login
//! cargo run --example calendar_api                                      # on 127.0.0.1:9001
//! TODO_CLIENT_SECRET=todo-secret-for-development cargo run --example todo_app   # http://127.0.0.1:3000
//! ```
//!
//! Settings (environment): `LANYARD_ISSUER` (default `http://localhost:8080`),
//! `TODO_CLIENT_ID` (`todo`), `TODO_CLIENT_SECRET` (required), `TODO_BIND` (`127.0.0.1:3000`),
//! `TODO_PUBLIC_URL` (`http://{TODO_BIND}`; the redirect URI is `{TODO_PUBLIC_URL}/callback`),
//! `CALENDAR_API` (`http://127.0.0.1:9001`), `CALENDAR_AUDIENCE`
//! (`https://api.example.test/appointments`).

#[path = "support/todo_app.rs"]
mod todo_app;

use actix_web::{App, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let bind = var("TODO_BIND", "127.0.0.1:3000");
    let client_secret = std::env::var("TODO_CLIENT_SECRET")
        .map_err(|_| std::io::Error::other("set TODO_CLIENT_SECRET to the todo client's secret"))?;
    let config = todo_app::TodoConfig {
        issuer: var("LANYARD_ISSUER", "http://localhost:8080"),
        client_id: var("TODO_CLIENT_ID", "todo"),
        client_secret,
        public_url: var("TODO_PUBLIC_URL", &format!("http://{bind}")),
        calendar_api: var("CALENDAR_API", "http://127.0.0.1:9001"),
        calendar_audience: var("CALENDAR_AUDIENCE", "https://api.example.test/appointments"),
    };
    let app = todo_app::TodoApp::discover(config).await.map_err(std::io::Error::other)?;
    println!("to-do app on http://{bind} (redirect URI {})", app.redirect_uri());
    let app = web::Data::new(app);
    HttpServer::new(move || App::new().app_data(app.clone()).configure(todo_app::configure)).bind(bind)?.run().await
}
