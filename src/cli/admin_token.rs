//! `lanyard admin-token …`: create, list, remove the tokens that authenticate callers of
//! the admin API (`/admin/api/…`). A token is printed once, when it is created: Lanyard
//! keeps only its SHA-256.

use clap::Subcommand;
use serde::Serialize;

use super::output::{print_json, print_table};
use crate::registry::RegistryError;
use crate::store::Store;
use crate::store::admin::AdminToken;

const SHOWN_ONCE: &str = "Store the token now: Lanyard keeps only its hash and cannot show it again.";

/// Who the audit log names for changes made here.
const ACTOR: &str = "cli";

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create an admin API token (256 random bits), printed once.
    Create {
        /// A name for the token, unique (e.g. the system that uses it): the audit log
        /// names changes made with it `token:NAME`.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Print {"token": …, "name": …} instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List admin API tokens by name (never the tokens themselves).
    List {
        /// Print a JSON array of {"name", "created_at"} instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete an admin API token: requests that use it are refused from now on.
    Remove {
        /// The name of the token to delete.
        name: String,
    },
}

/// A token as `list --json` prints it.
#[derive(Serialize)]
struct TokenView<'a> {
    name: &'a str,
    created_at: i64,
}

impl<'a> From<&'a AdminToken> for TokenView<'a> {
    fn from(token: &'a AdminToken) -> Self {
        Self { name: &token.name, created_at: token.created_at }
    }
}

impl AdminTokenCommand {
    pub async fn run(self, store: &Store) -> anyhow::Result<()> {
        match self {
            Self::Create { name, json } => {
                let issued = crate::admin_api::issue_token(store, &name).await?;
                let name = &issued.record.name;
                audit(store, "admin_token.create", name).await;
                if json {
                    return print_json(&serde_json::json!({ "token": issued.token, "name": name }));
                }
                println!("created admin token {name}");
                println!("  token: {}", issued.token);
                println!("{SHOWN_ONCE}");
                println!("Use it as: Authorization: Bearer <token>");
                Ok(())
            }
            Self::List { json } => {
                let tokens = store.list_admin_tokens().await?;
                if json {
                    return print_json(&tokens.iter().map(TokenView::from).collect::<Vec<_>>());
                }
                let rows: Vec<[String; 2]> = tokens.iter().map(|t| [t.name.clone(), timestamp(t.created_at)]).collect();
                print_table(["name", "created"], &rows, "no admin tokens");
                Ok(())
            }
            Self::Remove { name } => {
                if !store.delete_admin_token(&name).await? {
                    return Err(RegistryError::NotFound(format!("admin token {name:?}")).into());
                }
                audit(store, "admin_token.remove", &name).await;
                println!("removed admin token {name}");
                Ok(())
            }
        }
    }
}

/// Records a change already made: a failure is reported but does not hide the outcome
/// (a created token must still be printed, or it is lost).
async fn audit(store: &Store, action: &str, name: &str) {
    if let Err(e) = store.audit(ACTOR, action, name, "").await {
        tracing::warn!(error = %e, action, "could not write the audit log");
    }
}

/// Seconds since the epoch as RFC 3339 (UTC), for people.
fn timestamp(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| at.to_string())
}
