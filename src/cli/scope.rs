//! `lanyard scope …`: add, list, remove custom scopes (scopes that release user claims).

use clap::{Args, Subcommand};

use super::output::{print_details, print_json, print_table};
use crate::registry::{self, RegistryError, scope::ClaimScopeSpec};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum ScopeCommand {
    /// Add a custom scope, or replace the one of that name: it releases the given user
    /// claims to the id_token and userinfo, as `profile` does.
    Add(AddScope),
    /// List the custom scopes.
    List {
        /// Print a JSON array of scopes instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a custom scope (clients allowed it lose it).
    Remove {
        /// The scope to delete.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct AddScope {
    /// The scope, e.g. roles (not an OpenID Connect scope, nor an API's).
    name: String,
    /// A user claim it releases, e.g. roles (repeat for several).
    #[arg(long = "claim", value_name = "CLAIM", required = true)]
    claims: Vec<String>,
    /// Shown to users on the consent page.
    #[arg(long, value_name = "TEXT", default_value = "")]
    description: String,
    /// Print the scope as one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

impl ScopeCommand {
    pub async fn run(self, store: &Store) -> anyhow::Result<()> {
        match self {
            Self::Add(add) => {
                let spec = ClaimScopeSpec { name: add.name, description: add.description, claims: add.claims };
                let scope = spec.clone().validate().map_err(RegistryError::from)?;
                registry::upsert_claim_scope(store, spec).await?;
                if add.json {
                    return print_json(&scope);
                }
                print_details(
                    &format!("saved scope {}", scope.name),
                    &[("claims", scope.claims.join(" ")), ("description", scope.description.clone())],
                );
                Ok(())
            }
            Self::List { json } => {
                let scopes = store.list_claim_scopes().await?;
                if json {
                    return print_json(&scopes);
                }
                let rows: Vec<[String; 3]> =
                    scopes.iter().map(|s| [s.name.clone(), s.claims.join(" "), s.description.clone()]).collect();
                print_table(["scope", "claims", "description"], &rows, "no custom scopes");
                Ok(())
            }
            Self::Remove { name } => {
                if !store.delete_claim_scope(&name).await? {
                    return Err(RegistryError::NotFound(format!("scope {name:?}")).into());
                }
                println!("removed scope {name}");
                Ok(())
            }
        }
    }
}
