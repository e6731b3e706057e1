//! `lanyard api …`: add, list, remove.

use clap::{Args, Subcommand};

use super::output::{print_details, print_json, print_table};
use crate::registry::{
    self, RegistryError,
    api::{Api, ApiSpec, ScopeSpec},
};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Register an API: access tokens for it carry its identifier as `aud`.
    Add(AddApi),
    /// List every API with its scopes.
    List {
        /// Print a JSON array of APIs instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete an API and its scopes (clients that used it as default_api lose that setting).
    Remove {
        /// The identifier of the API to delete.
        identifier: String,
    },
}

#[derive(Debug, Args)]
pub struct AddApi {
    /// Absolute URI naming the API, e.g. https://api.example.test/orders (the `aud`).
    identifier: String,
    /// Display name (shown on the consent page).
    #[arg(long)]
    name: String,
    /// A scope the API defines, e.g. read:orders (repeat for several).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Lifetime of its access tokens, 60–86400 seconds [default: 3600].
    #[arg(long, value_name = "SECS")]
    access_token_ttl: Option<i64>,
    /// Algorithm of its access tokens' signatures: RS256 or ES256 [default: RS256].
    #[arg(long, value_name = "ALG")]
    signing_alg: Option<String>,
    /// The confidential client this API authenticates with at /introspect (must exist).
    #[arg(long, value_name = "CLIENT_ID")]
    introspection_client_id: Option<String>,
    /// A user claim copied into this API's access tokens, e.g. roles (repeat for several).
    #[arg(long = "access-token-claim", value_name = "CLAIM")]
    access_token_claims: Vec<String>,
    /// A registered API this API may exchange its users' tokens for (RFC 8693 token
    /// exchange, by its introspection client; repeat for several).
    #[arg(long = "token-exchange-audience", value_name = "URI")]
    token_exchange_audiences: Vec<String>,
    /// Print the created API as one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

impl ApiCommand {
    pub async fn run(self, store: &Store) -> anyhow::Result<()> {
        match self {
            Self::Add(add) => add.run(store).await,
            Self::List { json } => list(store, json).await,
            Self::Remove { identifier } => {
                if !store.delete_api(&identifier).await? {
                    return Err(RegistryError::NotFound(format!("API {identifier:?}")).into());
                }
                println!("removed API {identifier}");
                Ok(())
            }
        }
    }
}

impl AddApi {
    async fn run(self, store: &Store) -> anyhow::Result<()> {
        let spec = ApiSpec {
            identifier: self.identifier,
            name: self.name,
            scopes: self.scopes.into_iter().map(ScopeSpec::Name).collect(),
            access_token_ttl: self.access_token_ttl,
            signing_alg: self.signing_alg,
            introspection_client_id: self.introspection_client_id,
            access_token_claims: self.access_token_claims,
            token_exchange_audiences: self.token_exchange_audiences,
        };
        let api = registry::create_api(store, spec).await?;
        if self.json {
            return print_json(&api);
        }
        print_details(
            &format!("created API {} ({})", api.identifier, api.name),
            &[
                ("scopes", scope_names(&api)),
                ("access_token_ttl", format!("{}s", api.access_token_ttl)),
                ("signing_alg", api.signing_alg.to_string()),
                ("introspection_client_id", api.introspection_client_id.clone().unwrap_or_default()),
                ("access_token_claims", api.access_token_claims.join(" ")),
                ("token_exchange_audiences", api.token_exchange_audiences.join(" ")),
            ],
        );
        Ok(())
    }
}

fn scope_names(api: &Api) -> String {
    api.scopes.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" ")
}

async fn list(store: &Store, json: bool) -> anyhow::Result<()> {
    let apis = store.list_apis().await?;
    if json {
        return print_json(&apis);
    }
    let rows: Vec<[String; 5]> = apis
        .iter()
        .map(|a| {
            [
                a.identifier.clone(),
                a.name.clone(),
                scope_names(a),
                format!("{}s", a.access_token_ttl),
                a.signing_alg.to_string(),
            ]
        })
        .collect();
    print_table(["identifier", "name", "scopes", "token ttl", "alg"], &rows, "no APIs");
    Ok(())
}
