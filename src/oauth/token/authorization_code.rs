//! The authorization_code grant (RFC 6749 §4.1.3, PKCE RFC 7636 §4.6).

use super::{Redeemed, TokenResponse, issue_for_redeemed};
use crate::crypto::sha256_hex;
use crate::oauth::dpop::DpopProof;
use crate::oauth::error::TokenError;
use crate::oauth::params::Params;
use crate::oauth::pkce::CodeChallenge;
use crate::registry::client::{Client, GrantType};
use crate::state::AppState;
use crate::store::authorization::Redemption;

pub async fn exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
    dpop: Option<&DpopProof>,
) -> Result<TokenResponse, TokenError> {
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(TokenError::new("unauthorized_client", "this client may not use the authorization_code grant"));
    }
    let single = |name| params.single(name).map_err(TokenError::invalid_request);
    let code = single("code")?.ok_or_else(|| TokenError::invalid_request("code is required"))?;
    let record = match state.store.redeem_code(&sha256_hex(code), &client.client_id).await? {
        Redemption::Redeemed(record) => record,
        Redemption::Replayed(record) => {
            // RFC 6749 §4.1.2: a code used twice revokes what it was first exchanged for.
            state.store.revoke_grant(&record.grant_id).await?;
            tracing::warn!(client = %client.client_id, "authorization code replayed: its grant is revoked");
            return Err(TokenError::invalid_grant(
                "the authorization code was already used; tokens issued for it are revoked",
            ));
        }
        Redemption::Unknown => {
            return Err(TokenError::invalid_grant(
                "the authorization code is invalid, or was issued to another client",
            ));
        }
    };
    if record.expires_at < state.now() {
        return Err(TokenError::invalid_grant("the authorization code has expired"));
    }
    if single("redirect_uri")? != Some(record.redirect_uri.as_str()) {
        return Err(TokenError::invalid_grant("redirect_uri must be the one sent to /authorize"));
    }
    let verifier = single("code_verifier")?;
    match (&record.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) if CodeChallenge::from_stored(challenge.clone()).verify(verifier) => {}
        (Some(_), Some(_)) => {
            return Err(TokenError::invalid_grant("code_verifier does not match the code_challenge"));
        }
        (Some(_), None) => {
            return Err(TokenError::invalid_grant("code_verifier is required (PKCE)"));
        }
        // RFC 9700 §2.1.1: a verifier for a code issued without a challenge is a downgrade.
        (None, Some(_)) => {
            return Err(TokenError::invalid_grant("no code_challenge was sent with this code"));
        }
        (None, None) => {}
    }
    // RFC 9449 §10: a code requested with dpop_jkt is redeemed only with a proof of that key.
    if let Some(jkt) = &record.dpop_jkt {
        match dpop {
            Some(proof) if proof.proves(jkt) => {}
            Some(_) => {
                return Err(TokenError::invalid_dpop_proof(
                    "the DPoP proof's key is not the one named by dpop_jkt in the authorization request",
                ));
            }
            None => {
                return Err(TokenError::invalid_dpop_proof(
                    "this code was requested with dpop_jkt: redeem it with a DPoP proof of that key",
                ));
            }
        }
    }
    let redeemed = Redeemed {
        grant_id: &record.grant_id,
        user_id: &record.user_id,
        sid: &record.sid,
        scope: &record.scope,
        resources: &record.resources,
        auth_time: record.auth_time,
        nonce: record.nonce.as_deref(),
        context: &record.context,
        what: "authorization code",
    };
    issue_for_redeemed(state, client, params, &redeemed, dpop).await
}
