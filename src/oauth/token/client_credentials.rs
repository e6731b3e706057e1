//! The client_credentials grant (RFC 6749 §4.4): a machine's own access token for one API.
//! Nothing is written: the token is revocable by its `jti` alone.

use super::{TokenResponse, token_type};
use crate::oauth::dpop::DpopProof;
use crate::oauth::error::TokenError;
use crate::oauth::params::Params;
use crate::oauth::scope::ScopeSet;
use crate::registry::client::{Client, ClientType, GrantType};
use crate::state::AppState;
use crate::tokens::issue::{self, AccessTokenGrant};

pub async fn issue(
    state: &AppState,
    client: &Client,
    params: &Params,
    dpop: Option<&DpopProof>,
) -> Result<TokenResponse, TokenError> {
    if client.client_type == ClientType::Public || !client.allows_grant(GrantType::ClientCredentials) {
        return Err(TokenError::new("unauthorized_client", "this client may not use the client_credentials grant"));
    }
    let mut named = params.all("resource").map_err(TokenError::invalid_request)?;
    named.extend(params.single("audience").map_err(TokenError::invalid_request)?);
    let identifier = match named.as_slice() {
        [one] => (*one).to_owned(),
        [] => client.default_api.clone().ok_or_else(|| {
            TokenError::new(
                "invalid_target",
                "name the API with resource (or audience); this client has no default API",
            )
        })?,
        _ => {
            return Err(TokenError::new("invalid_target", "name one resource per token request"));
        }
    };
    let api = state
        .registry
        .api(&identifier)
        .await?
        .ok_or_else(|| TokenError::new("invalid_target", format!("{identifier:?} is not a registered API")))?;
    let allowed = client.scope.filter(|s| api.defines(s));
    let scope = match params.single("scope").map_err(TokenError::invalid_request)? {
        Some(requested) => {
            let requested = ScopeSet::parse(requested).map_err(|e| TokenError::new("invalid_scope", e))?;
            if let Some(denied) = requested.iter().find(|s| !allowed.contains(s)) {
                return Err(TokenError::new(
                    "invalid_scope",
                    format!("{denied:?} is not a scope of {identifier} that this client is allowed"),
                ));
            }
            requested
        }
        None => allowed,
    };
    let scope = scope.to_string();
    let access = issue::access_token(
        &state.keys.ring(),
        &AccessTokenGrant {
            issuer: state.config.issuer.as_str(),
            subject: &client.client_id,
            audience: vec![api.identifier.clone()],
            client_id: &client.client_id,
            scope: &scope,
            auth_time: None,
            sid: None,
            acr: None,
            ttl: api.access_token_ttl,
            alg: api.signing_alg,
            // No user, so none of the user claims the API lists.
            user_claims: serde_json::Map::new(),
            issued_at: state.now(),
            dpop_jkt: dpop.map(DpopProof::jkt),
        },
    )?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: token_type(dpop),
        expires_in: access.expires_in,
        id_token: None,
        refresh_token: None,
        scope,
        issued_token_type: None,
    })
}
