//! `lanyard check-api`: the test lab's hardness check of an API. A valid access token for the
//! API must be accepted; every token of [`Defect::ALL`] must be refused (401, or 403 for a
//! token without the scope). The tokens come from a running server's admin API
//! (`--server`, `--admin-token`) or, without `--server`, from the configured database.

use std::process::ExitCode;

use clap::Args;
use serde_json::{Value, json};

use crate::config::Config;
use crate::tokens::defects::Defect;
use crate::tokens::mint::{MintRequest, MintedTokens};

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

/// Where the tokens come from.
enum Minter {
    Remote { http: reqwest::Client, server: String, token: String },
    Local { config: Box<Config>, store: crate::store::Store },
}

impl Minter {
    async fn mint(&self, request: &MintRequest) -> anyhow::Result<MintedTokens> {
        match self {
            Self::Remote { http, server, token } => {
                let response = http
                    .post(format!("{}/admin/api/tokens/mint", server.trim_end_matches('/')))
                    .bearer_auth(token)
                    .json(request)
                    .send()
                    .await?;
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if !status.is_success() {
                    anyhow::bail!("minting at {server} failed ({status}): {}", body["detail"].as_str().unwrap_or(""));
                }
                Ok(MintedTokens {
                    access_token: body["access_token"].as_str().unwrap_or_default().to_owned(),
                    token_type: "Bearer",
                    expires_in: body["expires_in"].as_i64().unwrap_or_default(),
                    id_token: None,
                    scope: body["scope"].as_str().unwrap_or_default().to_owned(),
                    defect: request.defect,
                    expected_status: request.defect.map(Defect::expected_status),
                })
            }
            Self::Local { config, store } => {
                if request.defect.is_some() && !config.dev_features() {
                    anyhow::bail!(super::token::DEV_ONLY);
                }
                let keys = crate::tokens::keys::KeyManager::start(store.clone(), config.key_encryption_key).await?;
                let subjects =
                    crate::tokens::subject::Subjects::load(store, config.key_encryption_key.as_ref()).await?;
                let minted = crate::tokens::mint::mint(
                    store,
                    &keys.ring(),
                    &config.issuer,
                    &subjects,
                    config.id_token_ttl,
                    request,
                )
                .await?;
                Ok(minted)
            }
        }
    }

    /// The first client allowed every scope, and the first enabled user who is not an admin.
    async fn defaults(&self, scopes: &[&str]) -> anyhow::Result<(Option<String>, Option<String>)> {
        let (clients, users): (Vec<Value>, Vec<Value>) = match self {
            Self::Remote { http, server, token } => {
                let get = |path: &str| {
                    http.get(format!("{}/admin/api/{path}", server.trim_end_matches('/'))).bearer_auth(token).send()
                };
                (get("clients").await?.json().await?, get("users").await?.json().await?)
            }
            Self::Local { store, .. } => {
                let clients = store.list_clients().await?;
                let clients = clients.iter().map(|c| json!({"client_id": c.client_id, "scope": c.scope}));
                let users = store.list_users("", i64::MAX).await?;
                let users = users
                    .iter()
                    .map(|u| json!({"username": u.username, "is_admin": u.is_admin, "disabled": u.disabled}));
                (clients.collect(), users.collect())
            }
        };
        let client = clients
            .iter()
            .filter(|c| {
                let allowed: Vec<&str> = c["scope"].as_str().unwrap_or_default().split(' ').collect();
                scopes.iter().all(|s| allowed.contains(s))
            })
            .filter_map(|c| c["client_id"].as_str().map(str::to_owned))
            .min();
        let user = users
            .iter()
            .filter(|u| u["is_admin"] != true && u["disabled"] != true)
            .filter_map(|u| u["username"].as_str().map(str::to_owned))
            .min();
        Ok((client, user))
    }
}

/// One row of the report.
struct Row {
    name: &'static str,
    expected: u16,
    got: Option<u16>,
    challenge: String,
    verdict: &'static str,
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
                let store = crate::app::open_store(&config).await?;
                Minter::Local { config: Box::new(config), store }
            }
        };
        let scope = self.scopes.join(" ");
        let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
        let (default_client, default_user) = minter.defaults(&scopes).await?;
        let client = self.client.clone().or(default_client).ok_or_else(|| {
            anyhow::anyhow!("no client is allowed the scopes {scope:?}: pass --client (or register one)")
        })?;
        let user = self.user.clone().or(default_user);
        let request = |defect| MintRequest {
            user: user.clone(),
            client: client.clone(),
            api: Some(self.audience.clone()),
            scope: scope.clone(),
            id_token: false,
            defect,
        };
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let method = reqwest::Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| anyhow::anyhow!("--method {:?} is not an HTTP method", self.method))?;
        let call = |token: String| {
            let http = http.clone();
            let method = method.clone();
            let url = self.url.clone();
            async move {
                match http.request(method, url).bearer_auth(token).send().await {
                    Ok(response) => {
                        let challenge = response
                            .headers()
                            .get(reqwest::header::WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        (Some(response.status().as_u16()), challenge)
                    }
                    Err(e) => (None, format!("request failed: {e}")),
                }
            }
        };

        let mut rows = Vec::new();
        let perfect = minter.mint(&request(None)).await?;
        let (got, challenge) = call(perfect.access_token).await;
        let accepted = got.is_some_and(|s| (200..300).contains(&s));
        rows.push(Row {
            name: "valid token",
            expected: 200,
            got,
            challenge,
            verdict: if accepted { "accepted" } else { "REFUSED" },
        });
        for defect in Defect::ALL {
            let minted = minter.mint(&request(Some(defect))).await?;
            let (got, challenge) = call(minted.access_token).await;
            let expected = defect.expected_status();
            let verdict = match got {
                Some(s) if (200..300).contains(&s) && defect == Defect::Revoked && !self.require_introspection => {
                    "accepted (no introspection)"
                }
                Some(s) if (200..300).contains(&s) => "ACCEPTED",
                Some(s) if s == expected => "refused",
                Some(_) => "refused (other status)",
                None => "no answer",
            };
            rows.push(Row { name: defect.as_str(), expected, got, challenge, verdict });
        }

        println!("{:<20} {:>8} {:>5}  {:<28} WWW-Authenticate", "token", "expected", "got", "verdict");
        for row in &rows {
            let got = row.got.map_or("-".to_owned(), |s| s.to_string());
            println!("{:<20} {:>8} {:>5}  {:<28} {}", row.name, row.expected, got, row.verdict, row.challenge);
        }
        let accepted: Vec<&str> = rows.iter().filter(|r| r.verdict == "ACCEPTED").map(|r| r.name).collect();
        let valid_refused = rows.first().is_some_and(|r| r.verdict != "accepted");
        if valid_refused {
            eprintln!("FAIL: the API refused a valid token (check --url, --audience and --scope)");
        }
        if !accepted.is_empty() {
            eprintln!("FAIL: the API accepted tokens it must refuse: {}", accepted.join(", "));
        }
        if valid_refused || !accepted.is_empty() {
            return Ok(ExitCode::FAILURE);
        }
        println!("PASS: every defective token was refused");
        Ok(ExitCode::SUCCESS)
    }
}
