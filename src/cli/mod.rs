//! The command line: `lanyard [serve]`, `lanyard migrate`, and the management subcommands
//! (`user`, `client`, `api`, `key`, …) that work on the configured database whether or not a server
//! runs. Management commands print their result on stdout (`--json`: one JSON document)
//! and everything else (logs, errors) on stderr, so that scripts can rely on stdout.

mod admin_token;
mod api;
mod check_api;
mod client;
mod clock;
pub mod healthcheck;
mod key;
mod output;
mod scope;
mod seed;
pub mod token;
mod user;

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
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// TOML configuration file (keys as in the README's configuration table).
    #[arg(long, global = true, env = "LANYARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Issuer URL [default: http://localhost:8080, or http://IP:PORT of --bind when only that
    /// is given] [env: LANYARD_ISSUER].
    #[arg(long, global = true, value_name = "URL")]
    pub issuer: Option<String>,
    /// Base URL of the back-channel endpoints (token, userinfo, JWKS, introspection, revocation)
    /// in discovery, for services in a container network, e.g. http://lanyard:8080; the issuer and
    /// the browser-facing endpoints keep the public URL [default: the issuer]
    /// [env: LANYARD_BACKCHANNEL_URL].
    #[arg(long, global = true, value_name = "URL")]
    pub backchannel_url: Option<String>,
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
    /// Seed file (TOML: users, apis, clients, admin_tokens, keys) applied idempotently at every
    /// start [env: LANYARD_SEED].
    #[arg(long, global = true, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Keep everything in memory (SQLite): nothing is written to disk; with a seed file the
    /// server starts ready-made [env: LANYARD_EPHEMERAL=true].
    #[arg(long, global = true)]
    pub ephemeral: bool,
    /// Don't create the demo API, client and user on an empty database [env: LANYARD_DEMO=false].
    #[arg(long, global = true)]
    pub no_demo: bool,
    /// Development only: /authorize?login_hint=USERNAME signs that user in without a password
    /// and without consent, for headless tests. Refused unless the issuer is loopback
    /// [env: LANYARD_DEV_LOGIN=true].
    #[arg(long, global = true)]
    pub dev_login: bool,
    /// Development features without --dev-login: the playground at /playground and the test
    /// lab (the clock, defective tokens, check-api); also on with --dev-login or --ephemeral
    /// [env: LANYARD_DEV=true].
    #[arg(long, global = true)]
    pub dev: bool,
    /// Allow --dev-login with a non-loopback issuer (a test network, never production)
    /// [env: LANYARD_DEV_LOGIN_ALLOW_NON_LOOPBACK=true].
    #[arg(long, global = true)]
    pub dev_login_allow_non_loopback: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Check that a running server is ready (GET /readyz on --bind, or --url): exit 0 on 200,
    /// else 1 saying why. For container health checks; opens no database.
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Test lab: call an API with a valid access token (must be accepted) and with every
    /// token it must refuse (expired, wrong audience, alg none, an id_token, …); prints a
    /// table and exits 1 if the API accepted one. Development features only.
    CheckApi(Box<check_api::CheckApiArgs>),
    #[command(flatten)]
    Manage(Box<Manage>),
}

/// The management subcommands: each opens (and migrates) the database, does one thing,
/// prints what it did and exits.
#[derive(Debug, Subcommand)]
pub enum Manage {
    /// Manage users: add, list, set-password, set-claims, remove.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage clients (relying parties): add, list, show, remove, rotate-secret.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Manage APIs (resource servers, the `aud` of access tokens): add, list, remove.
    #[command(subcommand)]
    Api(api::ApiCommand),
    /// Manage custom scopes (scopes that release user claims such as roles): add, list, remove.
    #[command(subcommand)]
    Scope(scope::ScopeCommand),
    /// Manage admin API tokens (Authorization: Bearer for /admin/api): create, list, remove.
    #[command(subcommand)]
    AdminToken(admin_token::AdminTokenCommand),
    /// Mint tokens for API tests: lanyard token mint --user alice --client web --scope "…".
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Seed files: lanyard seed export > seed.toml.
    #[command(subcommand)]
    Seed(seed::SeedCommand),
    /// Signing keys: list, rotate (a new key signs at once, the old one stays published).
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Test lab: the servers' clock (show, advance 1h, set --offset, freeze, unfreeze,
    /// reset). Development features only.
    #[command(subcommand)]
    Clock(clock::ClockCommand),
}

/// Parses the command line and runs it; the process exit code reflects the outcome.
pub fn run() -> ExitCode {
    crate::telemetry::tune_allocator();
    let cli = Cli::parse();
    // The health check only needs the listen address: it must not fail on a setting that
    // only the server uses (a seed file, dev-login's issuer check), nor open the database.
    if let Some(Command::Healthcheck(args)) = &cli.command {
        return match Settings::load(cli.global.config.as_ref(), &overrides(&cli.global)) {
            Ok(settings) => healthcheck::run(args, settings.bind.as_deref().unwrap_or(crate::config::DEFAULT_BIND)),
            Err(e) => {
                eprintln!("unhealthy: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match load_config(&cli.global) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("lanyard: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        // Management commands log warnings only: their output is the result.
        Some(Command::Manage(_) | Command::CheckApi(_)) => crate::telemetry::init(config.log_format, "warn"),
        _ => crate::telemetry::init(config.log_format, "info,sqlx=warn"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lanyard: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let done = |result: anyhow::Result<()>| result.map(|()| ExitCode::SUCCESS);
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => done(serve(config).await),
            Command::Migrate => done(migrate(config).await),
            // Handled before the configuration is validated, above.
            Command::Healthcheck(_) => Ok(ExitCode::SUCCESS),
            Command::CheckApi(args) => args.run(config).await,
            Command::Manage(command) => done(manage(config, *command).await),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lanyard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(global: &GlobalArgs) -> Result<Config, crate::config::ConfigError> {
    Settings::load(global.config.as_ref(), &overrides(global))?.validate()
}

/// The settings given as flags.
fn overrides(global: &GlobalArgs) -> Overrides {
    Overrides {
        issuer: global.issuer.clone(),
        backchannel_url: global.backchannel_url.clone(),
        bind: global.bind.clone(),
        database_url: global.database_url.clone(),
        log_format: global.log_format.clone(),
        seed: global.seed.clone(),
        ephemeral: global.ephemeral.then_some(true),
        demo: global.no_demo.then_some(false),
        dev_login: global.dev_login.then_some(true),
        dev: global.dev.then_some(true),
        dev_login_allow_non_loopback: global.dev_login_allow_non_loopback.then_some(true),
    }
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
    // Tokens minted here carry the servers' time (the test lab's clock, when it is set).
    if config.dev_features() {
        store.load_clock().await?;
    }
    let result = match command {
        Manage::User(command) => command.run(&config, &store).await,
        Manage::Client(command) => command.run(&config, &store).await,
        Manage::Api(command) => command.run(&store).await,
        Manage::Scope(command) => command.run(&store).await,
        Manage::AdminToken(command) => command.run(&store).await,
        Manage::Token(command) => command.run(&config, &store).await,
        Manage::Seed(command) => command.run(&store).await,
        Manage::Key(command) => command.run(&config, &store).await,
        Manage::Clock(command) => command.run(&config, &store).await,
    };
    store.close().await;
    result
}
