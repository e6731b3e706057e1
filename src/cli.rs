//! The command line: `lanyard [serve]`, `lanyard migrate`, and the management subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::app::{Application, open_store};
use crate::config::{Config, Overrides, Settings, redact_database_url};

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
    crate::telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
    println!(
        "migrations applied to {}",
        redact_database_url(&config.database_url)
    );
    Ok(())
}
