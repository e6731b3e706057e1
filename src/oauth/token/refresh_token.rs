//! The refresh_token grant (RFC 6749 §6), rotated on every use (RFC 9700 §4.14.2): a
//! rotated token presented again revokes its whole family.
//!
//! Unless the client has a `refresh_token_reuse_interval` (parallel tabs refreshing with
//! the same token at once): then the token *just* rotated away, presented again by the
//! same client within that many seconds of its rotation while its successor is still
//! unused, is answered with that same successor and a fresh access token. Anything
//! else rotated is reuse as before: an older ancestor, a later presentation, another
//! client's. The successor is not stored in the clear: it is sealed under a key derived
//! from the presented token itself, which only its holder has (the database keeps a
//! different hash of it), with the key-encryption key mixed in when one is set.

use super::{TokenResponse, UserGrant, mint_user_tokens, new_refresh_token, token_type};
use crate::crypto::{open, seal, sha256_hex};
use crate::oauth::dpop::DpopProof;
use crate::oauth::error::TokenError;
use crate::oauth::params::Params;
use crate::oauth::scope::ScopeSet;
use crate::registry::client::{Client, GrantType};
use crate::state::AppState;
use crate::store::refresh::{Rotate, Rotation};

pub async fn refresh(
    state: &AppState,
    client: &Client,
    params: &Params,
    dpop: Option<&DpopProof>,
) -> Result<TokenResponse, TokenError> {
    if !client.allows_grant(GrantType::RefreshToken) {
        return Err(TokenError::new("unauthorized_client", "this client may not use the refresh_token grant"));
    }
    let single = |name| params.single(name).map_err(TokenError::invalid_request);
    let token = single("refresh_token")?.ok_or_else(|| TokenError::invalid_request("refresh_token is required"))?;
    let token_hash = sha256_hex(token);
    // Nothing is consumed until every check has passed: a refused refresh (a bad scope or
    // resource) leaves the token usable.
    let record = match state.store.find_refresh_token(&token_hash, &client.client_id).await? {
        Some((record, false)) => record,
        // With a reuse interval the store decides, atomically, whether this is the
        // immediate predecessor of the live token within it.
        Some((record, true)) if client.refresh_token_reuse_interval > 0 => record,
        Some((record, true)) => return Err(reuse(state, client, &record.family_id).await),
        None => return Err(TokenError::invalid_grant("the refresh token is invalid, revoked or not this client's")),
    };
    let now = state.now();
    if record.expires_at < now || record.family_expires_at < now {
        return Err(TokenError::invalid_grant("the refresh token has expired"));
    }
    // RFC 9449 §5: a bound refresh token (a public client's) is used only with a proof of
    // its key. Refused, it stays usable: the holder of the key may still present it.
    if let Some(jkt) = &record.dpop_jkt {
        match dpop {
            Some(proof) if proof.proves(jkt) => {}
            Some(_) => {
                return Err(TokenError::invalid_grant(
                    "the refresh token is bound to another DPoP key than this proof's",
                ));
            }
            None => {
                return Err(TokenError::invalid_dpop_proof(
                    "the refresh token is bound to a DPoP key: send a DPoP proof of that key",
                ));
            }
        }
    }
    let granted = ScopeSet::parse(&record.scope).unwrap_or_default();
    // §6: the new access token may have fewer scopes, never more.
    let scope = match single("scope")? {
        Some(requested) => {
            let requested = ScopeSet::parse(requested).map_err(|e| TokenError::new("invalid_scope", e))?;
            if !requested.is_subset(&granted) {
                return Err(TokenError::new(
                    "invalid_scope",
                    "a refresh may narrow the granted scopes, never widen them",
                ));
            }
            requested
        }
        None => granted.clone(),
    };
    let user = state
        .store
        .user_by_id(&record.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| TokenError::invalid_grant("the user of this grant no longer exists or is disabled"))?;
    let resources: Vec<String> = serde_json::from_str(&record.resources).unwrap_or_default();
    // The id_token keeps auth_time, acr and amr and carries no nonce (OIDC Core §12.2).
    let context = state.store.grant_context(&record.family_id).await?;
    let grant = UserGrant {
        client,
        user: &user,
        scope: &scope,
        resources: &resources,
        auth_time: record.auth_time,
        sid: &record.sid,
        nonce: None,
        context: &context,
        dpop,
    };
    let minted = mint_user_tokens(state, params, &grant).await?;
    // The successor keeps the original scope (§6), the family's absolute expiry and its
    // DPoP binding.
    let (refresh_token, successor) = new_refresh_token(
        state,
        client,
        &grant,
        &record.family_id,
        &granted,
        Some(record.family_expires_at),
        record.dpop_jkt.as_deref(),
    )
    .ok_or_else(|| TokenError::invalid_grant("this grant no longer allows refresh"))?;
    let kek = state.config.key_encryption_key.as_ref();
    let sealed = match client.refresh_token_reuse_interval > 0 {
        true => Some(seal(&successor_key(token, kek), &token_hash, refresh_token.as_bytes()).map_err(|e| {
            tracing::error!(error = %e, "cannot seal a refresh token's successor");
            TokenError::new("server_error", "the refresh token could not be rotated")
        })?),
        false => None,
    };
    let rotation = Rotate {
        old_hash: &token_hash,
        successor: &successor,
        successor_sealed: sealed.as_deref(),
        jti: &minted.access.jti,
        access_expires_at: minted.access.expires_at,
        reuse_interval: client.refresh_token_reuse_interval,
    };
    let refresh_token = match state.store.rotate_refresh_token(&rotation).await? {
        Rotation::Rotated => refresh_token,
        Rotation::Replayed { successor_sealed } => replayed(token, &token_hash, kek, &successor_sealed)?,
        // Rotated before and not replayable (reuse), or the grant was revoked meanwhile.
        Rotation::Refused => return Err(reuse(state, client, &record.family_id).await),
    };
    Ok(TokenResponse {
        access_token: minted.access.token,
        token_type: token_type(dpop),
        expires_in: minted.access.expires_in,
        id_token: minted.id_token,
        refresh_token: Some(refresh_token),
        scope: scope.to_string(),
        issued_token_type: None,
    })
}

/// The key a successor is sealed under for the holder of `presented`: SHA-256 over a
/// label, the key-encryption key (when set) and the token. The store knows the token only
/// by its plain SHA-256, from which this cannot be computed; a 256-bit random token makes
/// one hash a sound key derivation.
fn successor_key(presented: &str, kek: Option<&[u8; 32]>) -> [u8; 32] {
    let mut input = b"lanyard/refresh-token-successor/v1\0".to_vec();
    if let Some(kek) = kek {
        input.extend_from_slice(kek);
    }
    input.extend_from_slice(presented.as_bytes());
    openssl::sha::sha256(&input)
}

/// The successor a replayed token was rotated to, opened with the presented token. Not
/// opening (the key-encryption key changed within the interval) is the server's trouble,
/// not reuse: nothing is revoked.
fn replayed(presented: &str, token_hash: &str, kek: Option<&[u8; 32]>, sealed: &str) -> Result<String, TokenError> {
    let opened = open(Some(&successor_key(presented, kek)), token_hash, sealed).and_then(Result::ok);
    opened.and_then(|bytes| String::from_utf8(bytes).ok()).ok_or_else(|| {
        tracing::error!("cannot open a refresh token's sealed successor (was the key-encryption key changed?)");
        TokenError::invalid_grant("the refresh token was already used; sign in again")
    })
}

/// A rotated refresh token presented again: the whole family is revoked (RFC 9700 §4.14.2).
async fn reuse(state: &AppState, client: &Client, family_id: &str) -> TokenError {
    if let Err(e) = state.store.revoke_grant(family_id).await {
        return e.into();
    }
    tracing::warn!(client = %client.client_id, "refresh token reused: its family is revoked");
    TokenError::invalid_grant("the refresh token was already used; all tokens of this grant are revoked")
}
