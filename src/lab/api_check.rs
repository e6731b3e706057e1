//! The API hardness check (`lanyard check-api`, the admin page's "API check",
//! `POST /admin/api/check-api`): a valid access token for the API must be accepted; every
//! token of [`Defect::ALL`] must be refused (401, or 403 for a token without the scope).

use std::time::Duration;

use actix_web::web;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::state::AppState;
use crate::tokens::defects::Defect;
use crate::tokens::mint::{MintError, MintRequest, MintedTokens, mint};

/// How long the API may take to answer one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What to check.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiCheckRequest {
    /// The API endpoint to call, e.g. `http://127.0.0.1:9001/appointments`.
    pub url: String,
    /// The API's identifier (the `aud` of its tokens).
    pub audience: String,
    /// The scopes the endpoint needs (space-separated).
    #[serde(default)]
    pub scope: String,
    /// The HTTP method [default: GET].
    #[serde(default)]
    pub method: Option<String>,
    /// The user the tokens are about [default: the first enabled user who is not an admin].
    #[serde(default)]
    pub user: Option<String>,
    /// The client the tokens are issued to [default: the first client allowed every scope].
    #[serde(default)]
    pub client: Option<String>,
    /// Count an accepted revoked token as a failure (only an API that introspects can tell).
    #[serde(default)]
    pub require_introspection: bool,
}

/// What one call showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The valid token was accepted (as it must be).
    Accepted,
    /// The valid token was refused: the check's parameters or the API are wrong.
    ValidRefused,
    /// A defective token was refused with the expected status.
    Refused,
    /// A defective token was refused, with another status than the expected one.
    RefusedOtherStatus,
    /// A defective token was accepted: the API is vulnerable.
    DefectAccepted,
    /// A revoked token was accepted by an API that does not introspect (reported apart).
    AcceptedWithoutIntrospection,
    /// The API did not answer.
    NoAnswer,
}

impl Verdict {
    /// Whether this outcome fails the check.
    pub fn fails(self) -> bool {
        matches!(self, Self::ValidRefused | Self::DefectAccepted | Self::NoAnswer)
    }

    /// The table's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::ValidRefused => "REFUSED",
            Self::Refused => "refused",
            Self::RefusedOtherStatus => "refused (other status)",
            Self::DefectAccepted => "ACCEPTED",
            Self::AcceptedWithoutIntrospection => "accepted (no introspection)",
            Self::NoAnswer => "NO ANSWER",
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiCheckRow {
    /// `valid` or the defect's name.
    pub token: String,
    pub expected: u16,
    pub got: Option<u16>,
    pub verdict: Verdict,
    /// The API's `WWW-Authenticate` (or why the call failed).
    pub www_authenticate: String,
}

/// The whole check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiCheckReport {
    pub passed: bool,
    pub url: String,
    pub audience: String,
    pub client: String,
    pub user: Option<String>,
    pub rows: Vec<ApiCheckRow>,
    /// In words: what failed, or that every defective token was refused.
    pub summary: String,
}

/// Why the check could not be run (not: why the API failed it).
#[derive(Debug, thiserror::Error)]
pub enum ApiCheckError {
    /// The request cannot work as given (unknown client or API, bad method, …).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<MintError> for ApiCheckError {
    fn from(e: MintError) -> Self {
        match e {
            MintError::Invalid(message) => Self::Invalid(message),
            other => Self::Failed(other.into()),
        }
    }
}

/// Where the tokens come from.
pub enum Minter {
    /// A running server's admin API (the CLI's `--server`).
    Remote { http: reqwest::Client, server: String, token: String },
    /// This process's server state (the admin page and API, or the CLI on the database).
    State(web::Data<AppState>),
}

impl Minter {
    async fn mint(&self, request: &MintRequest) -> Result<MintedTokens, ApiCheckError> {
        match self {
            Self::Remote { http, server, token } => {
                let response = http
                    .post(format!("{}/admin/api/tokens/mint", server.trim_end_matches('/')))
                    .bearer_auth(token)
                    .json(request)
                    .send()
                    .await
                    .map_err(anyhow::Error::from)?;
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if !status.is_success() {
                    let detail = body["detail"].as_str().unwrap_or("");
                    return Err(ApiCheckError::Invalid(format!("minting at {server} failed ({status}): {detail}")));
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
            Self::State(state) => {
                if request.defect.is_some() && !state.config.dev_features() {
                    return Err(ApiCheckError::Invalid(crate::cli::token::DEV_ONLY.into()));
                }
                let config = &state.config;
                let ring = state.keys.ring();
                Ok(mint(&state.store, &ring, &config.issuer, &state.subjects, config.id_token_ttl, request).await?)
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
            Self::State(state) => {
                let clients = state.store.list_clients().await?;
                let clients = clients.iter().map(|c| json!({"client_id": c.client_id, "scope": c.scope}));
                let users = state.store.list_users("", i64::MAX).await?;
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

/// Runs the check: one call with a valid token, one per defect.
pub async fn run(minter: &Minter, check: &ApiCheckRequest) -> Result<ApiCheckReport, ApiCheckError> {
    let url = url::Url::parse(&check.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| ApiCheckError::Invalid(format!("url {:?} is not an http(s) URL", check.url)))?;
    let method_name = check.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method_name.as_bytes())
        .map_err(|_| ApiCheckError::Invalid(format!("method {method_name:?} is not an HTTP method")))?;
    let scopes: Vec<&str> = check.scope.split(' ').filter(|s| !s.is_empty()).collect();
    let scope = scopes.join(" ");
    let (default_client, default_user) = minter.defaults(&scopes).await?;
    let client = check.client.clone().or(default_client).ok_or_else(|| {
        ApiCheckError::Invalid(format!("no client is allowed the scopes {scope:?}: name one (or register one)"))
    })?;
    let user = check.user.clone().or(default_user);
    let request = |defect| MintRequest {
        user: user.clone(),
        client: client.clone(),
        api: Some(check.audience.clone()),
        scope: scope.clone(),
        id_token: false,
        defect,
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(CALL_TIMEOUT)
        .build()
        .map_err(anyhow::Error::from)?;
    let call = |token: String| {
        let request = http.request(method.clone(), url.clone()).bearer_auth(token);
        async move {
            match request.send().await {
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
    let verdict = match got {
        Some(s) if (200..300).contains(&s) => Verdict::Accepted,
        Some(_) => Verdict::ValidRefused,
        None => Verdict::NoAnswer,
    };
    rows.push(ApiCheckRow { token: "valid".into(), expected: 200, got, verdict, www_authenticate: challenge });
    for defect in Defect::ALL {
        let minted = minter.mint(&request(Some(defect))).await?;
        let (got, challenge) = call(minted.access_token).await;
        let expected = defect.expected_status();
        let verdict = match got {
            Some(s) if (200..300).contains(&s) && defect == Defect::Revoked && !check.require_introspection => {
                Verdict::AcceptedWithoutIntrospection
            }
            Some(s) if (200..300).contains(&s) => Verdict::DefectAccepted,
            Some(s) if s == expected => Verdict::Refused,
            Some(_) => Verdict::RefusedOtherStatus,
            None => Verdict::NoAnswer,
        };
        rows.push(ApiCheckRow { token: defect.as_str().into(), expected, got, verdict, www_authenticate: challenge });
    }
    let accepted: Vec<&str> =
        rows.iter().filter(|r| r.verdict == Verdict::DefectAccepted).map(|r| r.token.as_str()).collect();
    let mut problems = Vec::new();
    if rows.iter().any(|r| r.verdict == Verdict::ValidRefused) {
        problems.push("the API refused a valid token (check the URL, audience and scope)".to_owned());
    }
    if rows.iter().any(|r| r.verdict == Verdict::NoAnswer) {
        problems.push("the API did not answer every call".to_owned());
    }
    if !accepted.is_empty() {
        problems.push(format!("the API accepted tokens it must refuse: {}", accepted.join(", ")));
    }
    let passed = problems.is_empty();
    let summary = if passed { "every defective token was refused".to_owned() } else { problems.join("; ") };
    Ok(ApiCheckReport { passed, url: check.url.clone(), audience: check.audience.clone(), client, user, rows, summary })
}
