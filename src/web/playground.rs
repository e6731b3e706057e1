//! The playground (`/playground`, with development features only): a relying party in the
//! browser, as oidcdebugger or Google's OAuth playground are, so a developer can watch a
//! flow without writing an app. Pick a client, scopes, an API, `prompt`, `login_hint` and
//! `response_mode`; the playground starts the code flow with PKCE, shows what came back,
//! exchanges the code at `/token` over HTTP as any client would, shows each token decoded
//! with the inspector's explanation, and calls userinfo, refresh, revocation and logout.
//!
//! Server-rendered, no JavaScript. The flow's secrets (state, nonce, PKCE verifier, a
//! confidential client's secret) are kept in a cookie of this browser, scoped to
//! `/playground`; the tokens travel in the page's hidden fields, so nothing is kept on the
//! server and any replica can serve any step.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::oauth::error::AuthorizeError;
use crate::oauth::scope::OIDC_SCOPES;
use crate::registry::client::{Client, ClientSpec};
use crate::registry::{self, RegistryError};
use crate::state::AppState;
use crate::web::token_report::{Check, Report, examine};
use crate::web::{csrf, pages};

/// The built-in public client the playground uses unless another is picked.
pub const CLIENT_ID: &str = "playground";
const COOKIE: &str = "lanyard_playground";
/// How long a started flow may take before its cookie is gone.
const FLOW_TTL_MINUTES: i64 = 30;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/playground", web::get().to(start_page))
        .route("/playground/start", web::post().to(start))
        .service(web::resource("/playground/callback").get(callback_query).post(callback_form))
        // After the fixed paths above, which it would otherwise shadow.
        .route("/playground/{step}", web::post().to(step));
}

/// What a client does next with what it holds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Step {
    Exchange,
    Refresh,
    Revoke,
    Userinfo,
}

/// One step of a started flow: checked (development features, CSRF, a flow in the
/// cookie), then done as a client would.
async fn step(
    req: HttpRequest,
    state: web::Data<AppState>,
    step: web::Path<Step>,
    form: web::Form<StepFields>,
) -> Result<HttpResponse, AuthorizeError> {
    let fields = form.into_inner();
    let flow = match step_guard(&req, &state, &fields) {
        Ok(flow) => flow,
        Err(response) => return Ok(*response),
    };
    match step.into_inner() {
        Step::Exchange => exchange(&req, &state, &flow, &fields).await,
        Step::Refresh => refresh(&req, &state, &flow, &fields).await,
        Step::Revoke => revoke(&req, &state, &flow, &fields).await,
        Step::Userinfo => userinfo(&req, &state, &flow, &fields).await,
    }
}

/// Where the playground receives authorization responses.
pub fn callback_uri(state: &AppState) -> String {
    state.config.issuer.endpoint("/playground/callback")
}

/// Creates the built-in `playground` client, or brings its scopes and URIs up to date
/// (every OIDC scope and every API's scopes, the issuer's callback). A failure is logged:
/// the rest of the server does not depend on the playground.
pub async fn ensure_client(state: &AppState) -> Result<(), AuthorizeError> {
    let wanted = wanted_client(state).await?;
    let outcome = match state.store.client(CLIENT_ID).await? {
        None => registry::create_client(&state.store, wanted).await.map(|_| ()),
        Some(existing) => {
            let scope = wanted.scope.clone().unwrap_or_default();
            let callback = callback_uri(state);
            if existing.scope.to_string() == scope && existing.redirect_uri(&callback).is_some() {
                return Ok(());
            }
            match wanted.validate() {
                Ok(new) => {
                    let client = Client { created_at: existing.created_at, ..new.client };
                    registry::update_client(&state.store, &client).await
                }
                Err(errors) => Err(RegistryError::Invalid(errors)),
            }
        }
    };
    match outcome {
        Ok(()) | Err(RegistryError::Conflict(_)) => Ok(()),
        Err(RegistryError::Store(e)) => Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %e, "the playground client cannot be registered for this issuer");
            Ok(())
        }
    }
}

async fn wanted_client(state: &AppState) -> Result<ClientSpec, AuthorizeError> {
    let mut scopes: Vec<String> = OIDC_SCOPES.iter().map(|(s, _)| (*s).to_owned()).collect();
    for api in state.registry.apis().await?.iter() {
        scopes.extend(api.scopes.iter().map(|s| s.name.clone()));
    }
    let scope = crate::oauth::scope::ScopeSet::parse(&scopes.join(" ")).unwrap_or_default().to_string();
    Ok(ClientSpec {
        client_id: Some(CLIENT_ID.into()),
        client_name: Some("Lanyard playground".into()),
        redirect_uris: vec![callback_uri(state)],
        post_logout_redirect_uris: vec![state.config.issuer.endpoint("/playground")],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scope: Some(scope),
        token_endpoint_auth_method: Some("none".into()),
        ..Default::default()
    })
}

/// A flow in progress, kept in this browser's cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flow {
    client_id: String,
    /// A confidential client's secret, as typed on the start page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    state: String,
    nonce: String,
    verifier: String,
    authorize_url: String,
}

impl Flow {
    fn from_request(req: &HttpRequest) -> Option<Flow> {
        let raw = req.cookie(COOKIE)?;
        let bytes = URL_SAFE_NO_PAD.decode(raw.value()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn cookie(&self, secure: bool) -> Cookie<'static> {
        let value = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        Cookie::build(COOKIE, value)
            .path("/playground")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .max_age(CookieDuration::minutes(FLOW_TTL_MINUTES))
            .finish()
    }
}

/// A client the start page offers.
struct ClientChoice {
    client_id: String,
    label: String,
    confidential: bool,
}

/// The start page's choices and defaults.
struct StartForm {
    clients: Vec<ClientChoice>,
    apis: Vec<(String, String)>,
    callback: String,
}

/// An HTTP exchange the playground made, as shown.
struct Exchange {
    request: String,
    status: u16,
    body: String,
}

/// A token from a response, decoded where it is a JWT.
struct TokenView {
    name: &'static str,
    value: String,
    report: Option<Report>,
    /// Why there is nothing to decode (opaque tokens).
    note: String,
}

/// What the next steps need: the current tokens, in hidden fields.
struct Actions {
    access_token: String,
    refresh_token: String,
    id_token: String,
    logout_url: Option<String>,
}

#[derive(Template)]
#[template(path = "playground.html")]
struct PlaygroundPage {
    title: String,
    csrf_token: String,
    form: Option<StartForm>,
    /// The authorization request that started this flow.
    authorize_url: Option<String>,
    received: Vec<(String, String)>,
    checks: Vec<Check>,
    /// The code to exchange, when the callback brought one.
    code: Option<String>,
    exchange: Option<Exchange>,
    tokens: Vec<TokenView>,
    actions: Option<Actions>,
}

impl PlaygroundPage {
    fn new(title: impl Into<String>, csrf_token: String) -> Self {
        Self {
            title: title.into(),
            csrf_token,
            form: None,
            authorize_url: None,
            received: Vec::new(),
            checks: Vec::new(),
            code: None,
            exchange: None,
            tokens: Vec::new(),
            actions: None,
        }
    }
}

fn not_served() -> HttpResponse {
    pages::message(
        StatusCode::NOT_FOUND,
        "Not found",
        "The playground is a development feature: start Lanyard with --dev, --dev-login or --ephemeral to use it.",
    )
}

/// Renders `page` with the CSRF cookie (and any other cookie) attached.
fn render(page: &PlaygroundPage, status: StatusCode, cookies: Vec<Cookie<'static>>) -> HttpResponse {
    let mut response = pages::html(status, page);
    for cookie in cookies {
        let _ = response.add_cookie(&cookie);
    }
    response
}

fn csrf_token(req: &HttpRequest, state: &AppState) -> (String, Vec<Cookie<'static>>) {
    let (token, cookie) = csrf::token(req, state.config.issuer.is_https());
    (token, cookie.into_iter().collect())
}

async fn start_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AuthorizeError> {
    if !state.config.dev_features() {
        return Ok(not_served());
    }
    ensure_client(&state).await?;
    let callback = callback_uri(&state);
    let mut clients: Vec<ClientChoice> = state
        .store
        .list_clients()
        .await?
        .into_iter()
        .filter(|c| c.redirect_uri(&callback).is_some())
        .map(|c| ClientChoice {
            label: if c.name == c.client_id { c.client_id.clone() } else { format!("{} ({})", c.name, c.client_id) },
            confidential: c.auth_method.uses_secret(),
            client_id: c.client_id,
        })
        .collect();
    // The built-in client first.
    clients.sort_by_key(|c| c.client_id != CLIENT_ID);
    let apis = state.registry.apis().await?.iter().map(|a| (a.identifier.clone(), a.name.clone())).collect();
    let (token, cookies) = csrf_token(&req, &state);
    let mut page = PlaygroundPage::new("Playground", token);
    page.form = Some(StartForm { clients, apis, callback });
    Ok(render(&page, StatusCode::OK, cookies))
}

#[derive(Deserialize)]
struct StartFields {
    csrf_token: Option<String>,
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    login_hint: String,
    #[serde(default)]
    response_mode: String,
}

/// Starts the code flow: a fresh state, nonce and PKCE verifier in the cookie, then off to
/// `/authorize`.
async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<StartFields>,
) -> Result<HttpResponse, AuthorizeError> {
    if !state.config.dev_features() {
        return Ok(not_served());
    }
    let form = form.into_inner();
    if !csrf::verify(&req, form.csrf_token.as_deref()) {
        return Ok(crate::web::login::csrf_failure());
    }
    let verifier = crate::crypto::random_token(32);
    let challenge = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()));
    let flow_state = crate::crypto::random_token(16);
    let nonce = crate::crypto::random_token(16);
    let mut url = url::Url::parse(&state.config.issuer.endpoint("/authorize"))
        .map_err(|e| AuthorizeError::page("Playground", format!("the issuer is not a URL: {e}")))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", form.client_id.trim())
            .append_pair("redirect_uri", &callback_uri(&state))
            .append_pair("scope", form.scope.trim())
            .append_pair("state", &flow_state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        for (name, value) in [
            ("resource", &form.resource),
            ("prompt", &form.prompt),
            ("login_hint", &form.login_hint),
            ("response_mode", &form.response_mode),
        ] {
            let value = value.trim();
            // `query` is the default mode: left out, as most clients do.
            let default_mode = name == "response_mode" && value == "query";
            if !value.is_empty() && !default_mode {
                query.append_pair(name, value);
            }
        }
    }
    let flow = Flow {
        client_id: form.client_id.trim().to_owned(),
        secret: Some(form.client_secret.trim().to_owned()).filter(|s| !s.is_empty()),
        state: flow_state,
        nonce,
        verifier,
        authorize_url: url.to_string(),
    };
    Ok(HttpResponse::SeeOther()
        .cookie(flow.cookie(state.config.issuer.is_https()))
        .insert_header((LOCATION, url.to_string()))
        .finish())
}

async fn callback_query(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, AuthorizeError> {
    callback(&req, &state, query.into_inner())
}

/// `response_mode=form_post` arrives here.
async fn callback_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AuthorizeError> {
    callback(&req, &state, form.into_inner())
}

/// The authorization response: what came back and whether it checks out (state, iss).
fn callback(
    req: &HttpRequest,
    state: &AppState,
    params: Vec<(String, String)>,
) -> Result<HttpResponse, AuthorizeError> {
    if !state.config.dev_features() {
        return Ok(not_served());
    }
    let (token, cookies) = csrf_token(req, state);
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut page = PlaygroundPage::new("Authorization response", token);
    page.received = params.clone();
    let Some(flow) = Flow::from_request(req) else {
        page.checks.push(Check {
            name: "Flow",
            outcome: "bad",
            text: "No flow was started in this browser (or it is older than 30 minutes): start one at /playground."
                .into(),
        });
        return Ok(render(&page, StatusCode::BAD_REQUEST, cookies));
    };
    page.authorize_url = Some(flow.authorize_url.clone());
    let state_ok = get("state") == Some(flow.state.as_str());
    page.checks.push(Check {
        name: "state",
        outcome: if state_ok { "ok" } else { "bad" },
        text: if state_ok {
            "matches the one this browser sent (no cross-site request forgery)".into()
        } else {
            "does not match the one this browser sent: a client must reject this response".into()
        },
    });
    let issuer = state.config.issuer.as_str();
    let iss_ok = get("iss") == Some(issuer);
    page.checks.push(Check {
        name: "iss",
        outcome: if iss_ok { "ok" } else { "bad" },
        text: if iss_ok {
            format!("{issuer}: the response comes from the server the request went to (RFC 9207)")
        } else {
            format!("expected {issuer} (RFC 9207): a client must reject this response")
        },
    });
    if let Some(error) = get("error") {
        page.checks.push(Check {
            name: "error",
            outcome: "bad",
            text: format!("{error}: {}", get("error_description").unwrap_or("(no description)")),
        });
    }
    if state_ok && iss_ok {
        page.code = get("code").map(str::to_owned);
    }
    Ok(render(&page, StatusCode::OK, cookies))
}

#[derive(Deserialize)]
struct StepFields {
    csrf_token: Option<String>,
    #[serde(default)]
    code: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    refresh_token: String,
    #[serde(default)]
    id_token: String,
    /// For revocation: which of the tokens.
    #[serde(default)]
    which: String,
}

/// Checks a step's form: development features on, the CSRF token, a flow in the cookie.
fn step_guard(req: &HttpRequest, state: &AppState, fields: &StepFields) -> Result<Flow, Box<HttpResponse>> {
    if !state.config.dev_features() {
        return Err(Box::new(not_served()));
    }
    if !csrf::verify(req, fields.csrf_token.as_deref()) {
        return Err(Box::new(crate::web::login::csrf_failure()));
    }
    Flow::from_request(req).ok_or_else(|| {
        Box::new(pages::message(
            StatusCode::BAD_REQUEST,
            "No flow",
            "No flow was started in this browser (or it is older than 30 minutes): start one at /playground.",
        ))
    })
}

/// The server's own address for the calls a client makes (the token endpoint and the
/// others), so that they work whatever the issuer's host resolves to in here.
fn local_endpoint(state: &AppState, path: &str) -> String {
    format!("{}{path}", crate::cli::healthcheck::local_base(state.config.bind))
}

/// A form POST to one of the server's endpoints, authenticating as the flow's client.
async fn post_as_client(state: &AppState, flow: &Flow, path: &str, mut form: Vec<(&str, String)>) -> Exchange {
    let http = reqwest::Client::new();
    let mut request = http.post(local_endpoint(state, path));
    match &flow.secret {
        Some(secret) => request = request.basic_auth(&flow.client_id, Some(secret)),
        None => form.push(("client_id", flow.client_id.clone())),
    }
    let shown: Vec<String> = form
        .iter()
        .map(|(k, v)| {
            if *k == "refresh_token" || *k == "token" || *k == "code" {
                format!("{k}={}…", prefix(v))
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    let auth = if flow.secret.is_some() { "Authorization: Basic (client_id:client_secret)\n" } else { "" };
    let described = format!("POST {}\n{auth}\n{}", state.config.issuer.endpoint(path), shown.join("&"));
    send(request.form(&form), described).await
}

fn prefix(value: &str) -> &str {
    value.get(..8).unwrap_or(value)
}

async fn send(request: reqwest::RequestBuilder, described: String) -> Exchange {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let body = match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(json) => serde_json::to_string_pretty(&json).unwrap_or(text),
                Err(_) => text,
            };
            Exchange { request: described, status, body }
        }
        Err(e) => Exchange { request: described, status: 0, body: format!("the request failed: {e}") },
    }
}

/// The tokens of a token response (or the ones carried over), decoded.
async fn token_views(state: &AppState, tokens: &Actions) -> Result<Vec<TokenView>, AuthorizeError> {
    let mut views = Vec::new();
    for (name, value) in [("id_token", &tokens.id_token), ("access_token", &tokens.access_token)] {
        if value.is_empty() {
            continue;
        }
        let report = examine(state, value).await?.ok();
        views.push(TokenView { name, value: value.clone(), report, note: String::new() });
    }
    if !tokens.refresh_token.is_empty() {
        views.push(TokenView {
            name: "refresh_token",
            value: tokens.refresh_token.clone(),
            report: None,
            note: "Opaque: a random string only this server can look up, kept by the client and sent back to /token \
                   for new tokens (rotated on each use)."
                .into(),
        });
    }
    Ok(views)
}

/// The tokens a response carries, over those already held (a refresh may leave some out).
fn tokens_after(exchange: &Exchange, held: &StepFields, state: &AppState, flow: &Flow) -> Actions {
    let json: serde_json::Value = serde_json::from_str(&exchange.body).unwrap_or_default();
    let pick = |name: &str, held: &str| json[name].as_str().map(str::to_owned).unwrap_or_else(|| held.to_owned());
    let id_token = pick("id_token", &held.id_token);
    Actions {
        access_token: pick("access_token", &held.access_token),
        refresh_token: pick("refresh_token", &held.refresh_token),
        logout_url: logout_url(state, flow, &id_token),
        id_token,
    }
}

/// RP-initiated logout with the id_token as hint, back to the playground when the client
/// registered that address.
fn logout_url(state: &AppState, flow: &Flow, id_token: &str) -> Option<String> {
    let mut url = url::Url::parse(&state.config.issuer.endpoint("/logout")).ok()?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("client_id", &flow.client_id);
        if !id_token.is_empty() {
            query.append_pair("id_token_hint", id_token);
        }
        if flow.client_id == CLIENT_ID {
            query.append_pair("post_logout_redirect_uri", &state.config.issuer.endpoint("/playground"));
        }
    }
    Some(url.to_string())
}

/// Renders a step's outcome: the HTTP exchange, then the tokens now held.
async fn step_page(
    req: &HttpRequest,
    state: &AppState,
    title: &str,
    exchange: Exchange,
    actions: Actions,
    checks: Vec<Check>,
) -> Result<HttpResponse, AuthorizeError> {
    let (token, cookies) = csrf_token(req, state);
    let mut page = PlaygroundPage::new(title, token);
    page.checks = checks;
    page.tokens = token_views(state, &actions).await?;
    page.exchange = Some(exchange);
    page.actions = Some(actions);
    Ok(render(&page, StatusCode::OK, cookies))
}

/// Redeems the code at `/token` with the PKCE verifier.
async fn exchange(
    req: &HttpRequest,
    state: &AppState,
    flow: &Flow,
    fields: &StepFields,
) -> Result<HttpResponse, AuthorizeError> {
    let exchange = post_as_client(
        state,
        flow,
        "/token",
        vec![
            ("grant_type", "authorization_code".into()),
            ("code", fields.code.clone()),
            ("redirect_uri", callback_uri(state)),
            ("code_verifier", flow.verifier.clone()),
        ],
    )
    .await;
    let actions = tokens_after(&exchange, fields, state, flow);
    let mut checks = Vec::new();
    if !actions.id_token.is_empty() {
        let nonce = crate::web::token_report::decode(&actions.id_token)
            .ok()
            .and_then(|(_, claims)| claims.get("nonce").and_then(|n| n.as_str()).map(str::to_owned));
        let ok = nonce.as_deref() == Some(flow.nonce.as_str());
        checks.push(Check {
            name: "nonce",
            outcome: if ok { "ok" } else { "bad" },
            text: if ok {
                "the id_token's nonce is the one this flow sent (no replayed id_token)".into()
            } else {
                "the id_token's nonce is not the one this flow sent: a client must reject it".into()
            },
        });
    }
    step_page(req, state, "Token response", exchange, actions, checks).await
}

/// Uses the refresh token.
async fn refresh(
    req: &HttpRequest,
    state: &AppState,
    flow: &Flow,
    fields: &StepFields,
) -> Result<HttpResponse, AuthorizeError> {
    let exchange = post_as_client(
        state,
        flow,
        "/token",
        vec![("grant_type", "refresh_token".into()), ("refresh_token", fields.refresh_token.clone())],
    )
    .await;
    let actions = tokens_after(&exchange, fields, state, flow);
    step_page(req, state, "Refresh", exchange, actions, Vec::new()).await
}

/// Revokes the access or the refresh token (RFC 7009).
async fn revoke(
    req: &HttpRequest,
    state: &AppState,
    flow: &Flow,
    fields: &StepFields,
) -> Result<HttpResponse, AuthorizeError> {
    let (token, hint) = if fields.which == "refresh_token" {
        (fields.refresh_token.clone(), "refresh_token")
    } else {
        (fields.access_token.clone(), "access_token")
    };
    let exchange =
        post_as_client(state, flow, "/revoke", vec![("token", token), ("token_type_hint", hint.into())]).await;
    let actions = tokens_after(&exchange, fields, state, flow);
    step_page(req, state, "Revocation", exchange, actions, Vec::new()).await
}

/// Calls userinfo with the access token.
async fn userinfo(
    req: &HttpRequest,
    state: &AppState,
    flow: &Flow,
    fields: &StepFields,
) -> Result<HttpResponse, AuthorizeError> {
    let request = reqwest::Client::new().get(local_endpoint(state, "/userinfo")).bearer_auth(&fields.access_token);
    let described = format!(
        "GET {}\nAuthorization: Bearer {}…",
        state.config.issuer.endpoint("/userinfo"),
        prefix(&fields.access_token)
    );
    let exchange = send(request, described).await;
    let actions = Actions {
        access_token: fields.access_token.clone(),
        refresh_token: fields.refresh_token.clone(),
        logout_url: logout_url(state, flow, &fields.id_token),
        id_token: fields.id_token.clone(),
    };
    step_page(req, state, "Userinfo", exchange, actions, Vec::new()).await
}
