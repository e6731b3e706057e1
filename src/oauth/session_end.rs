//! Ending sessions, and telling the clients that took part in them (OpenID Connect
//! Back-Channel and Front-Channel Logout 1.0). Every way a session ends goes through here:
//! RP-initiated logout, the admin ending a session or a user's sessions, disabling and
//! deleting a user.
//!
//! Back-channel: a logout token is POSTed to each such client that registered a
//! `backchannel_logout_uri`, off the request path. Front-channel: the clients that
//! registered a `frontchannel_logout_uri` are returned, for the page the browser sees next
//! to load in iframes.

use crate::registry::client::Client;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::logout::Participant;

/// A client told (or to be told) that one of its sessions ended.
#[derive(Debug, Clone)]
pub struct LoggedOut {
    pub client: Client,
    pub sid: String,
}

/// Ends session `sid`. Returns the clients that took part in it, when it ended now
/// (a session that had ended already was told about then).
pub async fn end_session(state: &AppState, sid: &str) -> Result<Vec<LoggedOut>, StoreError> {
    let participants = state.store.session_participants(sid).await?;
    if !state.store.end_session(sid).await? {
        return Ok(Vec::new());
    }
    Ok(notify(state, participants).await)
}

/// Ends every live session of a user; returns how many there were.
pub async fn end_user_sessions(state: &AppState, user_id: &str) -> Result<u64, StoreError> {
    let participants = state.store.user_participants(user_id).await?;
    let ended = state.store.end_user_sessions(user_id).await?;
    notify(state, participants).await;
    Ok(ended)
}

/// Deletes a user (ending their sessions); `false` when there was no such user.
pub async fn delete_user(state: &AppState, user_id: &str) -> Result<bool, StoreError> {
    let participants = state.store.user_participants(user_id).await?;
    let deleted = state.store.delete_user(user_id).await?;
    if deleted {
        notify(state, participants).await;
    }
    Ok(deleted)
}

/// Starts the back-channel deliveries and returns the clients, for the front channel.
/// A client deleted since it took part is skipped: there is no one left to tell.
async fn notify(state: &AppState, participants: Vec<Participant>) -> Vec<LoggedOut> {
    let mut told = Vec::new();
    for p in participants {
        let client = match state.registry.client(&p.client_id).await {
            Ok(Some(client)) => client,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(client_id = %p.client_id, error = %e, "logout: client not readable, not told");
                continue;
            }
        };
        if client.backchannel_logout_uri.is_some() {
            super::backchannel::dispatch(state, &client, &p.user_id, &p.sid);
        }
        told.push(LoggedOut { client, sid: p.sid });
    }
    told
}
