//! The device_code grant (RFC 8628 §3.4–3.5): the device polls with its device code until
//! the user has decided. Each poll is recorded in the database (so that `slow_down` holds
//! across replicas), and an approved code is consumed once; its tokens are issued as the
//! code flow issues them.

use super::{Redeemed, TokenResponse, issue_for_redeemed};
use crate::crypto::sha256_hex;
use crate::oauth::dpop::DpopProof;
use crate::oauth::error::TokenError;
use crate::oauth::params::Params;
use crate::registry::client::{Client, GrantType};
use crate::state::AppState;
use crate::store::device_codes::Poll;

/// With a DPoP proof, the access token (and a public client's refresh token) is bound to
/// its key, as at the code exchange.
pub async fn exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
    dpop: Option<&DpopProof>,
) -> Result<TokenResponse, TokenError> {
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(TokenError::new("unauthorized_client", "this client may not use the device authorization grant"));
    }
    let device_code = params
        .single("device_code")
        .map_err(TokenError::invalid_request)?
        .ok_or_else(|| TokenError::invalid_request("device_code is required"))?;
    let grant = match state.store.poll_device_code(&sha256_hex(device_code), &client.client_id).await? {
        Poll::Approved(grant) => grant,
        Poll::Pending { too_fast: false, .. } => {
            return Err(TokenError::new(
                "authorization_pending",
                "the user has not approved or denied the request yet",
            ));
        }
        // §3.5: the interval grows by 5 s for this and every later poll.
        Poll::Pending { too_fast: true, interval } => {
            return Err(TokenError::new(
                "slow_down",
                format!("polling too fast: wait at least {interval} seconds between requests from now on"),
            ));
        }
        Poll::Denied => return Err(TokenError::new("access_denied", "the user denied the request")),
        Poll::Expired => {
            return Err(TokenError::new(
                "expired_token",
                "the device code has expired: start again at the device authorization endpoint",
            ));
        }
        Poll::Unknown => {
            return Err(TokenError::invalid_grant("the device code is invalid, or was issued to another client"));
        }
        Poll::Redeemed { grant_id } => {
            // As for an authorization code used twice: what it was exchanged for is revoked.
            state.store.revoke_grant(&grant_id).await?;
            tracing::warn!(client = %client.client_id, "device code replayed: its grant is revoked");
            return Err(TokenError::invalid_grant(
                "the device code was already used; tokens issued for it are revoked",
            ));
        }
    };
    let redeemed = Redeemed {
        grant_id: &grant.grant_id,
        user_id: &grant.user_id,
        sid: &grant.sid,
        scope: &grant.scope,
        resources: &grant.resources,
        auth_time: grant.auth_time,
        nonce: None,
        context: &grant.context,
        what: "device code",
    };
    issue_for_redeemed(state, client, params, &redeemed, dpop).await
}
