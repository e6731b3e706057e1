//! `/token` (RFC 6749 §3.2): authenticate the client, then dispatch on `grant_type`.

mod authorization_code;
mod client_credentials;
mod device_code;
mod refresh_token;
pub mod token_exchange;

use actix_web::http::header::{self, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::client_auth;
use super::dpop::{self, DpopProof};
use super::error::TokenError;
use super::params::Params;
use super::scope::{ScopeCatalog, ScopeSet};
use crate::crypto::{random_token, sha256_hex};
use crate::oauth::claims_request::{AuthMethod, ClaimsRequest};
use crate::registry::api::{Api, DEFAULT_ACCESS_TOKEN_TTL};
use crate::registry::client::{Client, ClientType, GrantType, IdTokenClaimsPolicy, TOKEN_EXCHANGE_GRANT};
use crate::registry::user::User;
use crate::state::AppState;
use crate::store::grants::{GrantContext, GrantRecord};
use crate::store::refresh::RefreshRecord;
use crate::tokens::issue::{self, AccessTokenGrant, IdTokenGrant, IssuedAccessToken};
use crate::tokens::keys::SigningAlg;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/token", web::post().to(token));
}

/// RFC 8628 §3.4's `grant_type`.
const DEVICE_CODE: &str = GrantType::DeviceCode.as_str();

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// `Bearer`, or `DPoP` for an access token bound to the request's DPoP key (RFC 9449 §5).
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
    /// RFC 8693 §2.2.1: what a token exchange issued (always an access token here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

impl TokenResponse {
    fn into_response(self, dpop_nonce: Option<String>) -> HttpResponse {
        let mut response = HttpResponse::Ok();
        response.insert_header((header::CACHE_CONTROL, "no-store")).insert_header((header::PRAGMA, "no-cache"));
        if let Some(nonce) = dpop_nonce {
            response.insert_header((dpop::NONCE_HEADER, nonce));
        }
        response.json(self)
    }
}

/// `token_type` for an access token issued with (or without) a DPoP proof.
pub fn token_type(dpop: Option<&DpopProof>) -> &'static str {
    if dpop.is_some() { "DPoP" } else { "Bearer" }
}

/// Parses a form body, refusing other content types (RFC 6749 §3.2).
pub fn form_params(req: &HttpRequest, body: &[u8]) -> Result<Params, TokenError> {
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(TokenError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    Ok(Params::parse(body))
}

async fn token(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, TokenError> {
    // RFC 9449 §8: with nonces required, every answer carries the current one, so that a
    // client learns it from whatever it asked first.
    let nonce = dpop::current_nonce(&state).await;
    match grant(&req, &state, &body).await {
        Ok(response) => Ok(response.into_response(nonce)),
        Err(e) => Err(e.with_dpop_nonce(nonce)),
    }
}

async fn grant(req: &HttpRequest, state: &AppState, body: &[u8]) -> Result<TokenResponse, TokenError> {
    let params = form_params(req, body)?;
    let client = client_auth::authenticate(req, &params, state).await?;
    crate::activity::note_client(req, &client.client_id);
    let grant_type = params.single("grant_type").map_err(TokenError::invalid_request)?;
    // The proof is checked (and its jti consumed) once the client is known, for every grant.
    let dpop = DpopProof::from_request(req, state, "/token", None).await?;
    if dpop.is_none() && client.dpop_bound_access_tokens {
        // RFC 9449 §5.2: this client registered that it always uses DPoP.
        return Err(TokenError::invalid_dpop_proof(
            "this client is registered with dpop_bound_access_tokens: send a DPoP proof with every token request",
        ));
    }
    let dpop = dpop.as_ref();
    match grant_type {
        Some("authorization_code") => authorization_code::exchange(state, &client, &params, dpop).await,
        Some("refresh_token") => refresh_token::refresh(state, &client, &params, dpop).await,
        Some("client_credentials") => client_credentials::issue(state, &client, &params, dpop).await,
        Some(DEVICE_CODE) => device_code::exchange(state, &client, &params, dpop).await,
        // An exchanged token is a bearer token for the downstream API: binding it to the
        // exchanging service's key is not offered (yet), and silently ignoring a proof
        // would hand out a weaker token than the client asked for.
        Some(TOKEN_EXCHANGE_GRANT) if dpop.is_some() => Err(TokenError::invalid_request(
            "token exchange issues bearer tokens only: send the request without a DPoP proof",
        )),
        Some(TOKEN_EXCHANGE_GRANT) => token_exchange::exchange(state, &client, &params).await,
        Some(other) => Err(TokenError::new("unsupported_grant_type", format!("grant_type {other:?} is not supported"))),
        None => Err(TokenError::invalid_request("grant_type is required")),
    }
}

/// A code consumed at `/token` (an authorization code, or an approved device code): the
/// user grant its tokens are issued for.
pub struct Redeemed<'a> {
    pub grant_id: &'a str,
    pub user_id: &'a str,
    pub sid: &'a str,
    /// The granted scopes, as stored.
    pub scope: &'a str,
    /// The granted APIs, a JSON array as stored.
    pub resources: &'a str,
    pub auth_time: i64,
    pub nonce: Option<&'a str>,
    pub context: &'a GrantContext,
    /// What was redeemed, for the error when its grant was recorded meanwhile (a replay):
    /// "authorization code", "device code".
    pub what: &'static str,
}

/// Issues the tokens of a redeemed code and records its grant (with the refresh token,
/// when `offline_access` was granted to a client allowed the refresh grant), atomically.
pub async fn issue_for_redeemed(
    state: &AppState,
    client: &Client,
    params: &Params,
    redeemed: &Redeemed<'_>,
    dpop: Option<&DpopProof>,
) -> Result<TokenResponse, TokenError> {
    let what = redeemed.what;
    let user =
        state.store.user_by_id(redeemed.user_id).await?.filter(|u| !u.disabled).ok_or_else(|| {
            TokenError::invalid_grant(format!("the user of this {what} no longer exists or is disabled"))
        })?;
    let granted = ScopeSet::parse(redeemed.scope).unwrap_or_default();
    let resources: Vec<String> = serde_json::from_str(redeemed.resources).unwrap_or_default();
    let grant = UserGrant {
        client,
        user: &user,
        scope: &granted,
        resources: &resources,
        auth_time: redeemed.auth_time,
        sid: redeemed.sid,
        nonce: redeemed.nonce,
        context: redeemed.context,
        dpop,
    };
    let minted = mint_user_tokens(state, params, &grant).await?;
    let binding = refresh_binding(client, dpop);
    let refresh = new_refresh_token(state, client, &grant, redeemed.grant_id, &granted, None, binding);
    let stored = GrantRecord {
        id: redeemed.grant_id,
        client_id: &client.client_id,
        user_id: &user.id,
        sid: redeemed.sid,
        context: redeemed.context,
    };
    if !state
        .store
        .record_grant(&stored, &minted.access.jti, minted.access.expires_at, refresh.as_ref().map(|(_, r)| r))
        .await?
    {
        return Err(TokenError::invalid_grant(format!(
            "the {what} was already used; tokens issued for it are revoked"
        )));
    }
    Ok(TokenResponse {
        access_token: minted.access.token,
        token_type: token_type(dpop),
        expires_in: minted.access.expires_in,
        id_token: minted.id_token,
        refresh_token: refresh.map(|(token, _)| token),
        scope: granted.to_string(),
        issued_token_type: None,
    })
}

/// The API one access token is for: the `resource` (or `audience`) named in the token
/// request, which must be among those granted; otherwise the first granted one
/// (RFC 8707 §2.2: one audience per token, so no token carries audiences it doesn't need).
pub fn select_resource(params: &Params, granted: &[String]) -> Result<Option<String>, TokenError> {
    let mut requested = params.all("resource").map_err(TokenError::invalid_request)?;
    requested.extend(params.single("audience").map_err(TokenError::invalid_request)?);
    match requested.as_slice() {
        [] => Ok(granted.first().cloned()),
        [one] if granted.iter().any(|g| g == one) => Ok(Some((*one).to_owned())),
        [one] => Err(TokenError::new("invalid_target", format!("{one:?} was not granted to this client by the user"))),
        _ => Err(TokenError::new("invalid_target", "name one resource per token request")),
    }
}

/// How the access token for a user grant is shaped: its audiences, its scope (OIDC scopes
/// for userinfo plus the chosen API's own), lifetime and algorithm.
pub struct AccessTokenShape {
    pub audience: Vec<String>,
    pub scope: ScopeSet,
    pub ttl: i64,
    pub alg: SigningAlg,
}

pub fn shape_user_token(
    state: &AppState,
    granted: &ScopeSet,
    api: Option<&Api>,
    catalog: &ScopeCatalog,
) -> AccessTokenShape {
    let openid = granted.contains("openid");
    let mut audience = Vec::new();
    if let Some(api) = api {
        audience.push(api.identifier.clone());
    }
    if openid {
        audience.push(state.config.issuer.endpoint("/userinfo"));
    }
    let scope = granted
        .filter(|s| (openid && catalog.is_user_scope(s) && s != "offline_access") || api.is_some_and(|a| a.defines(s)));
    AccessTokenShape {
        audience,
        scope,
        ttl: api.map_or(DEFAULT_ACCESS_TOKEN_TTL, |a| a.access_token_ttl),
        alg: api.map_or(SigningAlg::RS256, |a| a.signing_alg),
    }
}

/// What a user grant is issuing tokens for: the code's or the refresh token's facts.
pub struct UserGrant<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    /// The scopes for these tokens (a refresh may narrow the grant's).
    pub scope: &'a ScopeSet,
    pub resources: &'a [String],
    pub auth_time: i64,
    pub sid: &'a str,
    pub nonce: Option<&'a str>,
    /// The claims request, `acr` and `amr` recorded with the code or grant.
    pub context: &'a GrantContext,
    /// The request's accepted DPoP proof: the access token is bound to its key.
    pub dpop: Option<&'a DpopProof>,
}

/// The tokens minted for a user grant, not yet recorded.
pub struct Minted {
    pub access: IssuedAccessToken,
    pub id_token: Option<String>,
}

/// Signs the access token (for the one selected API, plus userinfo with openid) and, when
/// `openid` is granted, the id_token for the client.
pub async fn mint_user_tokens(state: &AppState, params: &Params, grant: &UserGrant<'_>) -> Result<Minted, TokenError> {
    let resource = select_resource(params, grant.resources)?;
    let api = match &resource {
        Some(identifier) => Some(state.registry.api(identifier).await?.ok_or_else(|| {
            TokenError::new("invalid_target", format!("{identifier:?} is no longer a registered API"))
        })?),
        None => None,
    };
    let catalog = state.registry.scopes().await?;
    let shape = shape_user_token(state, grant.scope, api.as_ref(), &catalog);
    if shape.audience.is_empty() {
        return Err(TokenError::new("invalid_scope", "the remaining scopes give the access token no audience"));
    }
    let issuer = state.config.issuer.as_str();
    let ring = state.keys.ring();
    let scope = shape.scope.to_string();
    // The client's view of the user (pairwise or public), in both tokens: the access token
    // reaches the client too (see `tokens::subject` and the README's "Pairwise subjects").
    let subject = state.subjects.for_client(grant.client, &grant.user.id);
    let access = issue::access_token(
        &ring,
        &AccessTokenGrant {
            issuer,
            subject: &subject,
            audience: shape.audience,
            client_id: &grant.client.client_id,
            scope: &scope,
            auth_time: Some(grant.auth_time),
            sid: Some(grant.sid),
            acr: grant.context.acr.as_deref(),
            ttl: shape.ttl,
            alg: shape.alg,
            user_claims: api
                .as_ref()
                .map(|a| grant.user.access_token_claims(&a.access_token_claims))
                .unwrap_or_default(),
            issued_at: state.now(),
            dpop_jkt: grant.dpop.map(DpopProof::jkt),
        },
    )?;
    let id_token = if grant.scope.contains("openid") {
        let amr = AuthMethod::from_stored(grant.context.amr.as_deref());
        Some(issue::id_token(
            &ring,
            IdTokenGrant {
                issuer,
                subject: &subject,
                client_id: &grant.client.client_id,
                auth_time: grant.auth_time,
                nonce: grant.nonce,
                sid: grant.sid,
                access_token: Some(&access.token),
                profile: id_token_profile(grant, &catalog),
                acr: grant.context.acr.as_deref(),
                amr: Some(amr.amr()),
                ttl: state.config.id_token_ttl,
                alg: grant.client.id_token_alg,
                issued_at: state.now(),
            },
        )?)
    } else {
        None
    };
    Ok(Minted { access, id_token })
}

/// The user claims an id_token carries: those the scopes release (unless the client asked
/// for minimal id_tokens, OIDC Core §5.4, as an access token is always issued alongside),
/// plus those the `claims` request names for the id_token (§5.5).
fn id_token_profile(grant: &UserGrant<'_>, catalog: &ScopeCatalog) -> serde_json::Map<String, serde_json::Value> {
    let mut profile = match grant.client.id_token_claims {
        IdTokenClaimsPolicy::All => grant.user.claims_for(grant.scope, catalog),
        IdTokenClaimsPolicy::Minimal => serde_json::Map::new(),
    };
    if let Some(request) = claims_request(grant.context) {
        ClaimsRequest::add_user_claims(&request.id_token, grant.user, &mut profile);
    }
    profile
}

/// The stored claims request of a grant (written by Lanyard itself; unreadable = none).
pub fn claims_request(context: &GrantContext) -> Option<ClaimsRequest> {
    context.claims.as_deref().and_then(|c| serde_json::from_str(c).ok())
}

/// A new refresh token for a grant when `offline_access` was granted to a client allowed
/// the refresh grant: the token (shown once) and its record (stored hashed). `dpop_jkt`:
/// the key it is bound to (see [`refresh_binding`]).
pub fn new_refresh_token(
    state: &AppState,
    client: &Client,
    grant: &UserGrant<'_>,
    family_id: &str,
    full_scope: &ScopeSet,
    family_expires_at: Option<i64>,
    dpop_jkt: Option<&str>,
) -> Option<(String, RefreshRecord)> {
    if !full_scope.contains("offline_access") || !client.allows_grant(GrantType::RefreshToken) {
        return None;
    }
    let token = random_token(32);
    let now = state.now();
    let family_expires_at = family_expires_at.unwrap_or(now + client.refresh_token_ttl);
    let record = RefreshRecord {
        token_hash: sha256_hex(&token),
        family_id: family_id.to_owned(),
        client_id: client.client_id.clone(),
        user_id: grant.user.id.clone(),
        sid: grant.sid.to_owned(),
        scope: full_scope.to_string(),
        resources: serde_json::to_string(grant.resources).unwrap_or_else(|_| "[]".into()),
        auth_time: grant.auth_time,
        issued_at: now,
        expires_at: (now + client.refresh_token_idle_ttl).min(family_expires_at),
        family_expires_at,
        dpop_jkt: dpop_jkt.map(str::to_owned),
    };
    Some((token, record))
}

/// The key a new grant's refresh token is bound to (RFC 9449 §5): a public client's is
/// bound to the key of the proof it was issued with, since a public client has no other
/// credential to stop a thief; a confidential client's is not (its authentication does).
pub fn refresh_binding<'p>(client: &Client, dpop: Option<&'p DpopProof>) -> Option<&'p str> {
    match client.client_type {
        ClientType::Public => dpop.map(DpopProof::jkt),
        ClientType::Confidential => None,
    }
}
