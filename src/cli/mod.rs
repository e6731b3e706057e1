//! The command line: `lanyard [serve]`, `lanyard migrate`, and the management subcommands
//! (`user`, `client`, `api`) that work on the configured database whether or not a server
//! runs. Management commands print their result on stdout (`--json`: one JSON document)
//! and everything else (logs, errors) on stderr, so that scripts can rely on stdout.

mod api;
mod client;
mod output;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::app::{Application, open_store};
use crate::config::{Config, LogFormat, Overrides, Settings, redact_database_url};

/// Lanyard: a minimal, correct OpenID Connect / OAuth 2.0 authorization server.
///
/// Settings come from defaults, then the TOML file given with --config, then LANYARD_*
/// environment variables, then flags (each overriding the one before).
#[derive(Debug, Parser)]
#[command(name = "lanyard", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings shared by every subcommand.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// TOML configuration file (keys as in the README's configuration table).
    #[arg(long, global = true, env = "LANYARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Issuer URL [default: http://localhost:8080] [env: LANYARD_ISSUER].
    #[arg(long, global = true, value_name = "URL")]
    pub issuer: Option<String>,
    /// Listen address [default: 127.0.0.1:8080] [env: LANYARD_BIND].
    #[arg(long, global = true, value_name = "IP:PORT")]
    pub bind: Option<String>,
    /// Database: sqlite://FILE, sqlite::memory: or postgres://USER:PASS@HOST/DB
    /// [default: sqlite://lanyard.db] [env: LANYARD_DATABASE_URL].
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Log format: text or json [default: text] [env: LANYARD_LOG_FORMAT].
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    #[command(flatten)]
    Manage(Box<Manage>),
}

/// The management subcommands: each opens (and migrates) the database, does one thing,
/// prints what it did and exits.
#[derive(Debug, Subcommand)]
pub enum Manage {
    /// Manage users: add, list, set-password, remove.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage clients (relying parties): add, list, show, remove, rotate-secret.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Manage APIs (resource servers, the `aud` of access tokens): add, list, remove.
    #[command(subcommand)]
    Api(api::ApiCommand),
}

/// Parses the command line and runs it; the process exit code reflects the outcome.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(&cli.global) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("lanyard: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::Manage(_)) => init_quiet_logging(config.log_format),
        _ => crate::telemetry::init(config.log_format),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lanyard: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Migrate => migrate(config).await,
            Command::Manage(command) => manage(config, *command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lanyard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(global: &GlobalArgs) -> Result<Config, crate::config::ConfigError> {
    let overrides = Overrides {
        issuer: global.issuer.clone(),
        bind: global.bind.clone(),
        database_url: global.database_url.clone(),
        log_format: global.log_format.clone(),
    };
    Settings::load(global.config.as_ref(), &overrides)?.validate()
}

/// Management commands log warnings and errors only (to stderr, unless `RUST_LOG` says
/// otherwise): their output is the result, and the server's `info` chatter would bury it.
fn init_quiet_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let issuer = config.issuer.clone();
    let database = redact_database_url(&config.database_url);
    let app = Application::build(config).await?;
    tracing::info!(
        issuer = issuer.as_str(),
        database = %database,
        port = app.port(),
        "Lanyard is listening; discovery at {}, admin page at {}",
        issuer.endpoint("/.well-known/openid-configuration"),
        issuer.endpoint("/admin"),
    );
    app.run_until_stopped().await?;
    tracing::info!("Lanyard stopped");
    Ok(())
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    store.close().await;
    println!("migrations applied to {}", redact_database_url(&config.database_url));
    Ok(())
}

async fn manage(config: Config, command: Manage) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let result = match command {
        Manage::User(command) => command.run(&store).await,
        Manage::Client(command) => command.run(&store).await,
        Manage::Api(command) => command.run(&store).await,
    };
    store.close().await;
    result
}
