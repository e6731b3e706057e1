//! `lanyard token mint`: a real, signed token from the configured database and keys.

use clap::{Args, Subcommand};

use crate::config::Config;
use crate::store::Store;
use crate::tokens::defects::Defect;
use crate::tokens::keys::KeyManager;
use crate::tokens::mint::{MintRequest, mint};

fn parse_defect(raw: &str) -> Result<Defect, String> {
    Defect::parse(raw).ok_or_else(|| {
        let names: Vec<&str> = Defect::ALL.iter().map(|d| d.as_str()).collect();
        format!("unknown defect {raw:?}; one of: {}", names.join(", "))
    })
}

/// Why a defective token is refused without development features.
pub const DEV_ONLY: &str = "defective tokens are a test-lab feature, on only with development features: \
     start with --dev (or --dev-login, --ephemeral, LANYARD_DEV=true)";

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint an access token (and optionally an id_token) as a flow would have issued it;
    /// prints the access token alone (for `TOKEN=$(lanyard token mint …)`) unless --json.
    Mint(MintArgs),
}

#[derive(Debug, Args)]
pub struct MintArgs {
    /// The user the token is about (username); omit with --client-credentials.
    #[arg(long, value_name = "USERNAME", required_unless_present = "client_credentials")]
    user: Option<String>,
    /// The client the token is issued to.
    #[arg(long, value_name = "CLIENT_ID")]
    client: String,
    /// The API (identifier) the token is for [default: the client's default API].
    #[arg(long, value_name = "URI")]
    api: Option<String>,
    /// Space-separated scopes (each allowed for the client and defined by the API or OIDC).
    #[arg(long, default_value = "")]
    scope: String,
    /// A client_credentials token: the client is the subject (no --user).
    #[arg(long, conflicts_with_all = ["user", "id_token"])]
    client_credentials: bool,
    /// Also mint an id_token for the client (printed after the access token).
    #[arg(long)]
    id_token: bool,
    /// Test lab (development features only: --dev, --dev-login or --ephemeral): make the
    /// access token one an API must refuse: id_token, wrong_audience, typ_jwt, alg_none,
    /// hs256_public_key, unknown_kid, foreign_key, bad_signature, expired, not_yet_valid,
    /// issued_in_future, wrong_issuer, missing_scope or revoked.
    #[arg(long, value_name = "DEFECT", value_parser = parse_defect)]
    defect: Option<Defect>,
    /// Print {"access_token", "token_type", "expires_in", "id_token", "scope"} as JSON.
    #[arg(long)]
    json: bool,
}

impl TokenCommand {
    pub async fn run(self, config: &Config, store: &Store) -> anyhow::Result<()> {
        let Self::Mint(args) = self;
        if args.defect.is_some() && !config.dev_features() {
            anyhow::bail!(DEV_ONLY);
        }
        let keys = KeyManager::start(store.clone(), config.key_encryption_key).await?;
        let request = MintRequest {
            user: if args.client_credentials { None } else { args.user },
            client: args.client,
            api: args.api,
            scope: args.scope,
            id_token: args.id_token,
            defect: args.defect,
        };
        let subjects = crate::tokens::subject::Subjects::load(store, config.key_encryption_key.as_ref()).await?;
        let minted = mint(store, &keys.ring(), &config.issuer, &subjects, config.id_token_ttl, &request).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&minted)?);
        } else {
            println!("{}", minted.access_token);
            if let Some(id_token) = minted.id_token {
                println!("{id_token}");
            }
        }
        Ok(())
    }
}
