//! `lanyard check-api`: the test lab's hardness check of an API. A valid access token for the
//! API must be accepted; every defective token must be refused (401, or 403 for a
//! token without the scope). The tokens come from a running server's admin API
//! (`--server`, `--admin-token`) or, without `--server`, from the configured database.

use std::process::ExitCode;

use actix_web::web;
use clap::Args;

use crate::config::Config;
use crate::lab::api_check::{self, ApiCheckRequest, Minter};
use crate::state::AppState;

#[derive(Debug, Args)]
pub struct CheckApiArgs {
    /// The API endpoint to call, e.g. http://127.0.0.1:9001/appointments.
    #[arg(long, value_name = "URL")]
    url: String,
    /// The API's identifier (the `aud` of its tokens).
    #[arg(long, value_name = "URI")]
    audience: String,
    /// The scope(s) the endpoint needs (space-separated, or repeated).
    #[arg(long = "scope", value_name = "SCOPES")]
    scopes: Vec<String>,
    /// The HTTP method to call the endpoint with.
    #[arg(long, default_value = "GET")]
    method: String,
    /// The user the tokens are about [default: the first enabled user who is not an admin;
    /// none: client_credentials tokens].
    #[arg(long, value_name = "USERNAME")]
    user: Option<String>,
    /// The client the tokens are issued to [default: the first client allowed every scope].
    #[arg(long, value_name = "CLIENT_ID")]
    client: Option<String>,
    /// A running Lanyard to mint the tokens (its admin API), instead of the database.
    #[arg(long, value_name = "URL", requires = "admin_token")]
    server: Option<String>,
    /// The admin API token for --server.
    #[arg(long, value_name = "TOKEN", env = "LANYARD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Count an accepted revoked token as a failure (only an API that introspects can tell).
    #[arg(long)]
    require_introspection: bool,
}

impl CheckApiArgs {
    /// Runs the check; the exit code is 0 only when the API passed.
    pub async fn run(self, config: Config) -> anyhow::Result<ExitCode> {
        let minter = match (&self.server, &self.admin_token) {
            (Some(server), Some(token)) => {
                Minter::Remote { http: reqwest::Client::new(), server: server.clone(), token: token.clone() }
            }
            (Some(_), None) => anyhow::bail!("--server needs --admin-token (or LANYARD_ADMIN_TOKEN)"),
            (None, _) => {
                if !config.dev_features() {
                    anyhow::bail!(super::token::DEV_ONLY);
                }
                let store = crate::app::open_store(&config).await?;
                Minter::State(web::Data::new(AppState::for_command(&config, &store).await?))
            }
        };
        let check = ApiCheckRequest {
            url: self.url,
            audience: self.audience,
            scope: self.scopes.join(" "),
            method: Some(self.method),
            user: self.user,
            client: self.client,
            require_introspection: self.require_introspection,
        };
        let report = api_check::run(&minter, &check).await?;
        println!("{:<20} {:>8} {:>5}  {:<28} WWW-Authenticate", "token", "expected", "got", "verdict");
        for row in &report.rows {
            let got = row.got.map_or("-".to_owned(), |s| s.to_string());
            println!(
                "{:<20} {:>8} {:>5}  {:<28} {}",
                row.token,
                row.expected,
                got,
                row.verdict.as_str(),
                row.www_authenticate
            );
        }
        if report.passed {
            println!("PASS: {}", report.summary);
            Ok(ExitCode::SUCCESS)
        } else {
            eprintln!("FAIL: {}", report.summary);
            Ok(ExitCode::FAILURE)
        }
    }
}
