//! `/admin/api/clients[/{client_id}]`: clients with RFC 7591 metadata names. A confidential
//! client's secret is in one response only (its creation, a public client's change to
//! confidential, a change to client_secret_jwt, a rotation); Lanyard keeps its SHA-256 and,
//! for client_secret_jwt, a copy sealed under the key-encryption key.

use actix_web::{HttpResponse, web};
use serde_json::{Map, Value};

use super::problem::Problem;
use super::{Caller, created, item_path, merge_patch, no_content, ok, replacement, representation};
use crate::oauth::register::ClientMetadata;
use crate::registry::client::{Client, ClientSpec, ClientType};
use crate::registry::{self, FieldErrors};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/clients").get(list).post(create))
        .service(web::resource("/clients/{client_id}").get(read).put(update).patch(patch).delete(delete))
        .service(web::resource("/clients/{client_id}/rotate-secret").post(rotate_secret));
}

/// What a GET shows that a PUT cannot set.
const READ_ONLY: [&str; 2] = ["client_id_issued_at", "client_secret_expires_at"];

async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    spec: web::Json<ClientSpec>,
) -> Result<HttpResponse, Problem> {
    let fetch = registry::FetchPolicy::for_dev_mode(state.config.dev_login);
    let new = registry::create_client_with(&state.store, spec.into_inner(), fetch).await?;
    let client = &new.client;
    caller.audit(&state.store, "client.create", &client.client_id, client.client_type.as_str()).await;
    Ok(created(&item_path("clients", &client.client_id), &ClientMetadata::new(client, new.secret.as_deref())))
}

async fn list(_: Caller, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let clients = state.store.list_clients().await?;
    Ok(ok(&clients.iter().map(|c| ClientMetadata::new(c, None)).collect::<Vec<_>>()))
}

async fn read(_: Caller, state: web::Data<AppState>, client_id: web::Path<String>) -> Result<HttpResponse, Problem> {
    let client = state.store.client(&client_id).await?.ok_or_else(|| not_found(&client_id))?;
    Ok(ok(&ClientMetadata::new(&client, None)))
}

async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, Problem> {
    let existing = state.store.client(&client_id).await?.ok_or_else(|| not_found(&client_id))?;
    apply(caller, &state, existing, body.into_inner()).await
}

/// A JSON Merge Patch (RFC 7396): only the members sent change; `null` clears one.
async fn patch(
    caller: Caller,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, Problem> {
    let existing = state.store.client(&client_id).await?.ok_or_else(|| not_found(&client_id))?;
    let mut merged = representation(&ClientMetadata::new(&existing, None))?;
    merge_patch(&mut merged, body.into_inner());
    apply(caller, &state, existing, merged).await
}

/// Replaces `existing` with the registration `body` describes (a PUT, or a merged PATCH).
async fn apply(
    caller: Caller,
    state: &AppState,
    existing: Client,
    body: Map<String, Value>,
) -> Result<HttpResponse, Problem> {
    let client_id = existing.client_id.clone();
    let spec: ClientSpec = replacement(body, &READ_ONLY)?;
    let client = replace(&existing, spec)?;
    let fetch = registry::FetchPolicy::for_dev_mode(state.config.dev_login);
    registry::update_client_with(&state.store, &client, fetch).await?;
    caller.audit(&state.store, "client.update", &client.client_id, "").await;
    // A public client made confidential needs a secret, and so does one switched to
    // client_secret_jwt (its old secret was kept as a hash only, which cannot key a MAC):
    // a new one, in this response only, as on creation.
    let secret = if client.needs_new_secret(&existing) {
        let secret = registry::rotate_client_secret(&state.store, &client.client_id).await?;
        let detail = match existing.client_type {
            ClientType::Public => "now confidential",
            ClientType::Confidential => "now client_secret_jwt: the old secret was kept as a hash only",
        };
        caller.audit(&state.store, "client.rotate_secret", &client.client_id, detail).await;
        Some(secret)
    } else {
        None
    };
    let updated = state.store.client(&client_id).await?.ok_or_else(|| not_found(&client_id))?;
    Ok(ok(&ClientMetadata::new(&updated, secret.as_deref())))
}

async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    if !state.store.delete_client(&client_id).await? {
        return Err(not_found(&client_id));
    }
    caller.audit(&state.store, "client.delete", &client_id, "").await;
    Ok(no_content())
}

/// A new generated secret for a confidential client; the old one stops working at once.
async fn rotate_secret(
    caller: Caller,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let secret = registry::rotate_client_secret(&state.store, &client_id).await?;
    caller.audit(&state.store, "client.rotate_secret", &client_id, "old secret stops working").await;
    Ok(ok(&serde_json::json!({
        "client_id": client_id.as_str(),
        "client_secret": secret,
        "client_secret_expires_at": 0,
    })))
}

fn not_found(client_id: &str) -> Problem {
    Problem::not_found(format_args!("client {client_id:?}"))
}

/// The settings of `existing` replaced by `spec`, which may not change the id, set a
/// secret, or make a confidential client public (as on the admin page).
fn replace(existing: &Client, mut spec: ClientSpec) -> Result<Client, FieldErrors> {
    let mut errors = FieldErrors::default();
    if spec.client_id.as_deref().is_some_and(|id| id.trim() != existing.client_id) {
        errors.add("client_id", "cannot be changed");
    }
    if spec.client_secret.take().is_some_and(|s| !s.is_empty()) {
        errors.add("client_secret", "cannot be set by an update");
    }
    spec.client_id = Some(existing.client_id.clone());
    let client = match spec.validate() {
        Ok(new) => new.client,
        Err(invalid) => {
            errors.0.extend(invalid.0);
            return Err(errors);
        }
    };
    if existing.client_type == ClientType::Confidential && client.client_type == ClientType::Public {
        // Its secret would stay valid (and unused): a public client is a new registration.
        errors.add(
            "token_endpoint_auth_method",
            "a confidential client cannot become public: register a new public client instead",
        );
    }
    let mut client = errors.into_result(client)?;
    client.secret_hash.clone_from(&existing.secret_hash);
    client.created_at = existing.created_at;
    Ok(client)
}
