//! `lanyard key …`: list the signing keys and rotate them in one step, for automation
//! (scheduled rotations, certification's OP key rotation test). A running server (every
//! replica) picks the change up at once: activation is an immediate registry change.

use clap::Subcommand;

use super::output::{print_json, print_table};
use crate::config::Config;
use crate::store::Store;
use crate::tokens::keys::{KeyManager, SigningAlg};

/// Who the audit log names for changes made here.
const ACTOR: &str = "cli";

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the signing keys: kid, algorithm, state (active, next, retired), dates.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Generate a new key and make it sign at once; the key it replaces is retired but
    /// stays in the JWKS until the tokens it signed have expired.
    Rotate {
        /// The algorithm whose key is rotated: RS256 or ES256.
        #[arg(long, value_name = "ALG", default_value = "RS256")]
        alg: SigningAlg,
        /// Print {"alg", "kid", "retired"} instead of text.
        #[arg(long)]
        json: bool,
    },
}

impl KeyCommand {
    pub async fn run(self, config: &Config, store: &Store) -> anyhow::Result<()> {
        let keys = KeyManager::start(store.clone(), config.key_encryption_key).await?;
        match self {
            Self::List { json } => {
                let ring = keys.ring();
                if json {
                    return print_json(&ring.summaries());
                }
                let rows: Vec<[String; 4]> = ring
                    .summaries()
                    .iter()
                    .map(|k| {
                        [
                            k.kid.clone(),
                            k.alg.to_string(),
                            k.state.to_owned(),
                            k.retired_at.map(|r| format!("retired at {r}")).unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(["kid", "alg", "state", "retired"], &rows, "no signing keys");
                Ok(())
            }
            Self::Rotate { alg, json } => {
                let rotation = keys.rotate(alg).await?;
                let detail = match &rotation.retired {
                    Some(old) => format!("{alg} rotated; {old} retired"),
                    None => format!("{alg} rotated"),
                };
                if let Err(e) = store.audit(ACTOR, "key.rotate", &rotation.kid, &detail).await {
                    tracing::warn!(error = %e, "could not write the audit log");
                }
                if json {
                    return print_json(&rotation);
                }
                println!("rotated {alg}: {} signs now", rotation.kid);
                if let Some(old) = &rotation.retired {
                    println!("  retired (still published until its tokens expire): {old}");
                }
                Ok(())
            }
        }
    }
}
