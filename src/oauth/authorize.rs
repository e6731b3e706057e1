//! `/authorize` (GET and POST) and `/authorize/continue`, where the flow resumes after the
//! login and consent pages.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::authorization_request::AuthorizationRequest;
use super::claims_request::{ACR_VALUES_SUPPORTED, AuthMethod, acr_for};
use super::error::AuthorizeError;
use super::par;
use super::params::Params;
use super::request_object;
use super::requested_access::RequestedAccess;
use crate::crypto::{random_token, sha256_hex};
use crate::registry::client::Client;
use crate::registry::user::User;
use crate::state::AppState;
use crate::store::authorization::CodeRecord;
use crate::store::grants::GrantContext;
use crate::store::sessions::Session;
use crate::web::login::LoginTarget;
use crate::web::{csrf, pages, session};

/// How long a code lives (the contract's ≤ 60 s).
pub const CODE_TTL: i64 = 60;
/// How long a user may take on the login and consent pages.
const PENDING_TTL: i64 = 600;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/authorize").route(web::get().to(authorize_get)).route(web::post().to(authorize_post)))
        .route("/authorize/continue", web::get().to(resume));
}

async fn authorize_get(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AuthorizeError> {
    let params = Params::parse(req.query_string().as_bytes());
    start(&req, &state, &params).await
}

/// OIDC Core §3.1.2.1: the same request, form-encoded in a POST body.
async fn authorize_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AuthorizeError> {
    start(&req, &state, &Params::parse(&body)).await
}

async fn start(req: &HttpRequest, state: &AppState, params: &Params) -> Result<HttpResponse, AuthorizeError> {
    let client_id = params
        .single("client_id")
        .map_err(|e| AuthorizeError::page("Invalid request", e))?
        .ok_or_else(|| AuthorizeError::page("Invalid request", "The request has no client_id."))?;
    let client = state.find_client(client_id).await?.ok_or_else(|| {
        AuthorizeError::page("Unknown application", format!("There is no client with the id {client_id:?}."))
    })?;
    let iss = state.config.issuer.as_str();
    // RFC 9126 §4: a pushed request's reference brings every parameter; the query's
    // others (client_id aside) are ignored.
    let params = match par::reference(params) {
        Some(request_uri) => par::take(state, &client, request_uri).await?,
        None => {
            if let Some(refusal) = par::refuse_unpushed(params, &client, state) {
                return Err(refusal);
            }
            request_object::resolve(params, &client, &par::checks(state))
                .await
                .map_err(|r| AuthorizationRequest::refuse_unparsed(params, &client, iss, r.error, r.description))?
        }
    };
    let apis = state.registry.apis().await?;
    let catalog = state.registry.scopes().await?;
    let ring = state.keys.ring();
    let request =
        AuthorizationRequest::parse(&params, &client, &apis, &catalog, iss, &ring, state.config.scope_narrowing)?;
    decide(req, state, &client, &request, None).await
}

/// A pending request saved while the user is on the login or consent page, with what has
/// happened during it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    /// The session the user signed in with during this request.
    pub authenticated_sid: Option<String>,
    /// Whether the user consented during this request.
    pub consented: bool,
}

#[derive(Deserialize)]
struct ResumeQuery {
    request_id: String,
}

async fn resume(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ResumeQuery>,
) -> Result<HttpResponse, AuthorizeError> {
    let (request, client, pending) = load_pending(&state, &query.request_id).await?;
    decide(&req, &state, &client, &request, Some(pending)).await
}

/// Loads a pending request and its client, or explains that it is gone.
pub async fn load_pending(
    state: &AppState,
    id: &str,
) -> Result<(AuthorizationRequest, Client, Pending), AuthorizeError> {
    let gone = || {
        AuthorizeError::page(
            "Sign-in expired",
            "This sign-in request has expired or was already completed. Go back to the application and start again.",
        )
    };
    let record = state.store.authorization_request(id).await?.ok_or_else(gone)?;
    let request: AuthorizationRequest = serde_json::from_str(&record.params).map_err(|_| gone())?;
    let client = state.find_client(&request.client_id).await?.ok_or_else(gone)?;
    let pending =
        Pending { id: id.to_owned(), authenticated_sid: record.authenticated_sid, consented: record.consented };
    Ok((request, client, pending))
}

/// Where the flow stands: sign in, consent, or issue a code.
pub async fn decide(
    req: &HttpRequest,
    state: &AppState,
    client: &Client,
    request: &AuthorizationRequest,
    pending: Option<Pending>,
) -> Result<HttpResponse, AuthorizeError> {
    let iss = state.config.issuer.as_str();
    let now = state.now();
    crate::activity::note_client(req, &client.client_id);
    let mut user = None;
    if let Some(s) = session::current(req, &state.store).await? {
        // A sign-in during this request satisfies prompt=login and max_age.
        let fresh = pending.as_ref().and_then(|p| p.authenticated_sid.as_deref()) == Some(s.sid.as_str());
        // max_age=0 is prompt=login (OIDC Core §3.1.2.1).
        let too_old = request.max_age.is_some_and(|max| max == 0 || now - s.auth_time > max);
        // An essential acr the session does not meet asks for a new sign-in (§5.5.1.1).
        let acr_met = acr_for(AuthMethod::from_stored(Some(&s.amr)), request.claims.as_ref()).is_ok();
        if fresh && !acr_met {
            return Err(unmet_acr(request, iss));
        }
        if acr_met && (fresh || !(request.prompt_login || too_old)) {
            let u = state.store.user_by_id(&s.user_id).await?;
            // login_hint and id_token_hint name who the client expects: another signed-in
            // user must sign in again (with prompt=none, that is login_required). The hint's
            // `sub` is the client's view of the user (pairwise for a pairwise client).
            let hint_differs = u.as_ref().is_some_and(|u| {
                request.login_hint.as_deref().is_some_and(|h| u.username != h)
                    || request.hinted_sub.as_deref().is_some_and(|sub| state.subjects.for_client(client, &u.id) != sub)
            });
            if !hint_differs || fresh {
                user = u.map(|u| (u, s));
            }
        }
    }
    let mut dev_cookie = None;
    // --dev-login with a login_hint naming nobody: say so rather than show a password form.
    let mut unknown_hint = None;
    if user.is_none()
        && state.config.dev_login
        && acr_for(AuthMethod::Dev, request.claims.as_ref()).is_ok()
        && let Some(hint) = request.login_hint.as_deref()
    {
        match state.store.user_by_username(hint).await?.filter(|u| !u.disabled) {
            Some(u) => {
                // --dev-login: headless sign-in for test suites (refused at start-up unless loopback).
                let config = &state.config;
                let (s, cookie) =
                    session::start(&state.store, &u.id, AuthMethod::Dev, config.session_ttl, config.issuer.is_https())
                        .await?;
                tracing::warn!(user = %u.username, client = %client.client_id, "dev-login: signed in without a password");
                dev_cookie = Some(cookie);
                user = Some((u, s));
            }
            None => {
                tracing::warn!(
                    login_hint = hint,
                    client = %client.client_id,
                    "dev-login: login_hint names no enabled user, so nobody was signed in; \
                     create the user (lanyard user add) or fix the hint"
                );
                unknown_hint = Some(format!(
                    "dev-login: login_hint names no enabled user \"{hint}\". Create that user, fix the hint, \
                     or sign in below."
                ));
            }
        }
    }
    let Some((user, session)) = user else {
        if request.prompt_none {
            return Err(request.error(iss, "login_required", "the user is not signed in"));
        }
        let pending = persist(state, request, pending).await?;
        let personas = crate::web::login::personas(state).await?;
        return Ok(login_page(
            req,
            state,
            client,
            &pending.id,
            request.login_hint.as_deref().unwrap_or(""),
            unknown_hint,
            &personas,
        ));
    };
    crate::activity::note_user(req, &user);
    // Dev-login sign-ins are headless: no consent page in between.
    // (Except for clients known only by a metadata document: their consent is always asked.)
    let dev_user = state.config.dev_login
        && !client.from_metadata_document
        && request.login_hint.as_deref() == Some(user.username.as_str());
    if !dev_user && needs_consent(state, client, request, &user, pending.as_ref()).await? {
        if request.prompt_none {
            return Err(request.error(iss, "consent_required", "the user has not consented to this client"));
        }
        let pending = persist(state, request, pending).await?;
        let mut page = consent_page(req, state, client, request, &user, &pending.id).await?;
        if let Some(cookie) = &dev_cookie {
            let _ = page.add_cookie(cookie);
        }
        return Ok(page);
    }
    let mut response = issue_code(state, request, &user, &session).await?;
    if let Some(cookie) = dev_cookie {
        let _ = response.add_cookie(&cookie);
    }
    if let Some(p) = pending {
        state.store.delete_authorization_request(&p.id).await?;
    }
    Ok(response)
}

async fn persist(
    state: &AppState,
    request: &AuthorizationRequest,
    pending: Option<Pending>,
) -> Result<Pending, AuthorizeError> {
    if let Some(p) = pending {
        return Ok(p);
    }
    let id = random_token(24);
    let params = serde_json::to_string(request).map_err(|_| AuthorizeError::Unavailable)?;
    state.store.insert_authorization_request(&id, &request.client_id, &params, PENDING_TTL).await?;
    Ok(Pending { id, authenticated_sid: None, consented: false })
}

async fn needs_consent(
    state: &AppState,
    client: &Client,
    request: &AuthorizationRequest,
    user: &User,
    pending: Option<&Pending>,
) -> Result<bool, AuthorizeError> {
    if client.first_party {
        return Ok(false);
    }
    // A client known only by its metadata document is never trusted without asking.
    if client.from_metadata_document {
        return Ok(!pending.is_some_and(|p| p.consented));
    }
    // Claims asked for beyond the scopes (OIDC Core §5.5) are not part of a remembered
    // consent: the user sees them each time.
    let catalog = state.registry.scopes().await?;
    let extra_claims = request.claims.as_ref().is_some_and(|c| !c.beyond_scopes(&request.scope, &catalog).is_empty());
    if extra_claims && !pending.is_some_and(|p| p.consented) {
        return Ok(true);
    }
    let Some((scope, resources, _)) = state.store.consent(&user.id, &client.client_id).await? else {
        return Ok(true);
    };
    if request.prompt_consent && !pending.is_some_and(|p| p.consented) {
        return Ok(true);
    }
    let granted = super::scope::ScopeSet::parse(&scope).unwrap_or_default();
    let granted_resources: Vec<String> = serde_json::from_str(&resources).unwrap_or_default();
    Ok(!request.scope.is_subset(&granted) || !request.resources.iter().all(|r| granted_resources.contains(r)))
}

/// The login page for a pending request.
pub fn login_page(
    req: &HttpRequest,
    state: &AppState,
    client: &Client,
    request_id: &str,
    username: &str,
    error: Option<String>,
    personas: &[crate::web::pages::Persona],
) -> HttpResponse {
    let target = LoginTarget::Authorization {
        client: Box::new(client.display(state.config.dev_login)),
        request_id: request_id.to_owned(),
    };
    crate::web::login::render(req, state, &target, username, error, personas, StatusCode::OK)
}

async fn consent_page(
    req: &HttpRequest,
    state: &AppState,
    client: &Client,
    request: &AuthorizationRequest,
    user: &User,
    request_id: &str,
) -> Result<HttpResponse, AuthorizeError> {
    let apis = state.registry.apis().await?;
    let catalog = state.registry.scopes().await?;
    let access = RequestedAccess { scope: request.scope.clone(), resources: request.resources.clone() };
    let described = access.describe(&apis, &catalog);
    let (csrf_token, cookie) = csrf::token(req, state.config.issuer.is_https());
    let display = client.display(state.config.dev_login);
    let page = pages::ConsentPage {
        client: &display,
        username: &user.username,
        request_id,
        csrf_token: &csrf_token,
        scopes: described.scopes,
        apis: described.apis,
        claims: request.claims.as_ref().map(|c| c.beyond_scopes(&request.scope, &catalog)).unwrap_or_default(),
    };
    let mut response = pages::html(StatusCode::OK, &page);
    pages::allow_logo(&mut response, &display);
    if let Some(cookie) = cookie {
        let _ = response.add_cookie(&cookie);
    }
    Ok(response)
}

/// Stores a single-use code bound to everything the token request must repeat, and sends
/// the browser back with it (RFC 6749 §4.1.2, RFC 9207 `iss`).
async fn issue_code(
    state: &AppState,
    request: &AuthorizationRequest,
    user: &User,
    session: &Session,
) -> Result<HttpResponse, AuthorizeError> {
    let code = random_token(32);
    let method = AuthMethod::from_stored(Some(&session.amr));
    let acr = acr_for(method, request.claims.as_ref()).map_err(|_| unmet_acr(request, state.config.issuer.as_str()))?;
    let claims = match &request.claims {
        Some(c) => Some(serde_json::to_string(c).map_err(|_| AuthorizeError::Unavailable)?),
        None => None,
    };
    let record = CodeRecord {
        code_hash: sha256_hex(&code),
        grant_id: uuid::Uuid::new_v4().to_string(),
        client_id: request.client_id.clone(),
        user_id: user.id.clone(),
        sid: session.sid.clone(),
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.as_ref().map(|c| c.as_str().to_owned()),
        nonce: request.nonce.clone(),
        scope: request.scope.to_string(),
        resources: serde_json::to_string(&request.resources).unwrap_or_else(|_| "[]".into()),
        auth_time: session.auth_time,
        expires_at: state.now() + CODE_TTL,
        context: GrantContext { claims, acr: Some(acr.to_owned()), amr: Some(method.as_str().to_owned()) },
        dpop_jkt: request.dpop_jkt.clone(),
    };
    state.store.insert_code(&record).await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    params.push(("iss", state.config.issuer.as_str()));
    Ok(request.response_mode.respond(&request.redirect_uri, &params))
}

/// OIDC Core §5.5.1.1: an essential `acr` that no sign-in here can meet fails the request.
fn unmet_acr(request: &AuthorizationRequest, iss: &str) -> AuthorizeError {
    let wanted = request.claims.as_ref().and_then(|c| c.essential_acr()).unwrap_or_default().join(" ");
    request.error(
        iss,
        "unmet_authentication_requirements",
        format!("the essential acr ({wanted}) cannot be met; this server offers {}", ACR_VALUES_SUPPORTED.join(", ")),
    )
}
