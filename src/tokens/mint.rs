//! Minting tokens outside a flow, for API tests (`lanyard token mint`, the admin API,
//! `TestIdp`). A minted token is what a flow would have issued: same claims, same keys,
//! recorded under a grant so that it can be revoked like any other.

use serde::{Deserialize, Serialize};

use super::defects::{self, Defect};
use super::issue::{self, AccessTokenGrant, IdTokenGrant};
use super::keys::{KeyError, KeyRing, SigningAlg};
use super::subject::Subjects;
use crate::oauth::issuer::Issuer;
use crate::oauth::scope::{ScopeCatalog, ScopeSet};
use crate::registry::api::DEFAULT_ACCESS_TOKEN_TTL;
use crate::registry::client::GrantType;
use crate::store::grants::GrantRecord;
use crate::store::{Store, StoreError};

/// What to mint.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// The user (username) the token is about; absent for `client_credentials`.
    #[serde(default)]
    pub user: Option<String>,
    /// The client the token is issued to.
    pub client: String,
    /// The API (its identifier), or the client's default API.
    #[serde(default)]
    pub api: Option<String>,
    /// Space-separated scopes; each must be allowed for the client and defined by the API
    /// (or OpenID Connect).
    #[serde(default)]
    pub scope: String,
    /// Also mint an id_token for the client (user tokens only).
    #[serde(default)]
    pub id_token: bool,
    /// Test lab: make the access token one an API must refuse (development features only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defect: Option<Defect>,
}

/// Minted tokens.
#[derive(Debug, Clone, Serialize)]
pub struct MintedTokens {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
    /// What is wrong with `access_token`, when a defect was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defect: Option<Defect>,
    /// The status a correct API answers to it (401, or 403 for `missing_scope`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_status: Option<u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// Mints an access token (and optionally an id_token) as a flow would have; with a
/// `defect`, the access token is one an API must refuse (see [`Defect`]).
pub async fn mint(
    store: &Store,
    ring: &KeyRing,
    issuer: &Issuer,
    subjects: &Subjects,
    id_token_ttl: i64,
    request: &MintRequest,
) -> Result<MintedTokens, MintError> {
    let Some(defect) = request.defect else {
        return mint_perfect(store, ring, issuer, subjects, id_token_ttl, request).await;
    };
    let mut perfect = MintRequest { defect: None, ..request.clone() };
    match defect {
        Defect::IdToken if request.user.is_none() => {
            return Err(MintError::Invalid("the id_token defect needs a user: an id_token is about a user".into()));
        }
        Defect::IdToken => perfect.id_token = true,
        Defect::MissingScope => {
            let scope = ScopeSet::parse(&request.scope).map_err(MintError::Invalid)?;
            if scope.iter().all(crate::oauth::scope::is_oidc_scope) {
                return Err(MintError::Invalid(
                    "the missing_scope defect needs the API scope the token must lack in scope".into(),
                ));
            }
            perfect.scope = scope.filter(crate::oauth::scope::is_oidc_scope).to_string();
        }
        _ => {}
    }
    let mut minted = mint_perfect(store, ring, issuer, subjects, id_token_ttl, &perfect).await?;
    minted.access_token = match defect {
        Defect::IdToken => minted.id_token.clone().unwrap_or_default(),
        Defect::Revoked => {
            let claims = crate::web::token_report::decode(&minted.access_token).map(|(_, c)| c).unwrap_or_default();
            let jti = claims.get("jti").and_then(serde_json::Value::as_str).unwrap_or_default();
            let exp = claims.get("exp").and_then(serde_json::Value::as_i64).unwrap_or_else(|| store.now() + 3600);
            store.revoke_access_token(jti, exp).await?;
            minted.access_token
        }
        other => defects::rewrite(&minted.access_token, other, ring, store.now())?,
    };
    if !request.id_token {
        minted.id_token = None;
    }
    minted.defect = Some(defect);
    minted.expected_status = Some(defect.expected_status());
    Ok(minted)
}

/// The perfect token a flow would have issued.
async fn mint_perfect(
    store: &Store,
    ring: &KeyRing,
    issuer: &Issuer,
    subjects: &Subjects,
    id_token_ttl: i64,
    request: &MintRequest,
) -> Result<MintedTokens, MintError> {
    let invalid = |m: String| MintError::Invalid(m);
    let client =
        store.client(&request.client).await?.ok_or_else(|| invalid(format!("no client {:?}", request.client)))?;
    let api_id = request.api.clone().or_else(|| client.default_api.clone());
    let api = match &api_id {
        Some(id) => Some(store.api(id).await?.ok_or_else(|| invalid(format!("{id:?} is not a registered API")))?),
        None => None,
    };
    let scope = ScopeSet::parse(&request.scope).map_err(invalid)?;
    let catalog = ScopeCatalog::new(store.list_claim_scopes().await?);
    for s in scope.iter() {
        if !client.scope.contains(s) {
            return Err(invalid(format!("client {:?} is not allowed the scope {s:?}", client.client_id)));
        }
        let defined =
            if catalog.is_user_scope(s) { request.user.is_some() } else { api.as_ref().is_some_and(|a| a.defines(s)) };
        if !defined {
            return Err(invalid(format!("{s:?} is not a scope of {}", api_id.as_deref().unwrap_or("OpenID Connect"))));
        }
    }
    let (ttl, alg) =
        api.as_ref().map_or((DEFAULT_ACCESS_TOKEN_TTL, SigningAlg::RS256), |a| (a.access_token_ttl, a.signing_alg));
    let mut audience: Vec<String> = api.iter().map(|a| a.identifier.clone()).collect();
    let Some(username) = &request.user else {
        // client_credentials: the client is the subject; nothing to record.
        if !client.allows_grant(GrantType::ClientCredentials) {
            return Err(invalid(format!("client {:?} is not allowed client_credentials", client.client_id)));
        }
        if audience.is_empty() {
            return Err(invalid(
                "client_credentials tokens need an API: pass one or give the client a default API".into(),
            ));
        }
        let scope_text = scope.to_string();
        let access = issue::access_token(
            ring,
            &AccessTokenGrant {
                issuer: issuer.as_str(),
                subject: &client.client_id,
                audience,
                client_id: &client.client_id,
                scope: &scope_text,
                auth_time: None,
                sid: None,
                acr: None,
                ttl,
                alg,
                // No user, so none of the user claims the API lists.
                user_claims: serde_json::Map::new(),
                issued_at: store.now(),
                dpop_jkt: None,
            },
        )?;
        return Ok(MintedTokens {
            access_token: access.token,
            token_type: "Bearer",
            expires_in: access.expires_in,
            id_token: None,
            scope: scope_text,
            defect: None,
            expected_status: None,
        });
    };
    let user = store
        .user_by_username(username)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| invalid(format!("no enabled user {username:?}")))?;
    if scope.contains("openid") {
        audience.push(issuer.endpoint("/userinfo"));
    }
    if audience.is_empty() {
        return Err(invalid("the token needs an audience: name an API or include the openid scope".into()));
    }
    let scope_text = scope.to_string();
    let auth_time = store.now();
    // As a flow would: the client's view of the user (pairwise for a pairwise client).
    let subject = subjects.for_client(&client, &user.id);
    let sid = format!("minted-{}", uuid::Uuid::new_v4());
    let access = issue::access_token(
        ring,
        &AccessTokenGrant {
            issuer: issuer.as_str(),
            subject: &subject,
            audience,
            client_id: &client.client_id,
            scope: &scope_text,
            auth_time: Some(auth_time),
            sid: Some(&sid),
            // A minted token records no sign-in: no acr.
            acr: None,
            ttl,
            alg,
            user_claims: api.as_ref().map(|a| user.access_token_claims(&a.access_token_claims)).unwrap_or_default(),
            issued_at: auth_time,
            dpop_jkt: None,
        },
    )?;
    let grant_id = uuid::Uuid::new_v4().to_string();
    let context = crate::store::grants::GrantContext::default();
    let grant =
        GrantRecord { id: &grant_id, client_id: &client.client_id, user_id: &user.id, sid: &sid, context: &context };
    store.record_grant(&grant, &access.jti, access.expires_at, None).await?;
    let id_token = if request.id_token {
        Some(issue::id_token(
            ring,
            IdTokenGrant {
                issuer: issuer.as_str(),
                subject: &subject,
                client_id: &client.client_id,
                auth_time,
                nonce: None,
                sid: &sid,
                access_token: Some(&access.token),
                profile: user.claims_for(&scope, &catalog),
                acr: None,
                amr: None,
                ttl: id_token_ttl,
                alg: client.id_token_alg,
                issued_at: auth_time,
            },
        )?)
    } else {
        None
    };
    Ok(MintedTokens {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        id_token,
        scope: scope_text,
        defect: None,
        expected_status: None,
    })
}
