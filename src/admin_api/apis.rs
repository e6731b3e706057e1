//! `/admin/api/apis` and `/admin/api/apis/item?identifier=…`: APIs (resource servers).
//! Their identifiers are URLs, so an item is named in the query rather than the path.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::problem::Problem;
use super::{Caller, created, merge_patch, no_content, ok, replacement, representation};
use crate::registry::api::ApiSpec;
use crate::registry::{self, FieldErrors};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/apis").get(list).post(create))
        .service(web::resource("/apis/item").get(read).put(update).patch(patch).delete(delete));
}

/// What a GET shows that a PUT cannot set.
const READ_ONLY: [&str; 2] = ["created_at", "updated_at"];

/// `?identifier=…` (URL-encoded).
#[derive(Deserialize)]
struct Item {
    identifier: String,
}

fn item_path(identifier: &str) -> String {
    let query: String =
        url::form_urlencoded::Serializer::new(String::new()).append_pair("identifier", identifier).finish();
    format!("/admin/api/apis/item?{query}")
}

async fn create(caller: Caller, state: web::Data<AppState>, spec: web::Json<ApiSpec>) -> Result<HttpResponse, Problem> {
    let api = registry::create_api(&state.store, spec.into_inner()).await?;
    caller.audit(&state.store, "api.create", &api.identifier, &api.name).await;
    Ok(created(&item_path(&api.identifier), &api))
}

async fn list(_: Caller, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    Ok(ok(&state.store.list_apis().await?))
}

async fn read(_: Caller, state: web::Data<AppState>, item: web::Query<Item>) -> Result<HttpResponse, Problem> {
    let api = state.store.api(&item.identifier).await?.ok_or_else(|| not_found(&item.identifier))?;
    Ok(ok(&api))
}

async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    item: web::Query<Item>,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, Problem> {
    apply(caller, &state, &item.identifier, body.into_inner()).await
}

/// A JSON Merge Patch (RFC 7396): only the members sent change (`{"token_exchange_audiences":
/// […]}` keeps the scopes); `null` puts a member back to its default.
async fn patch(
    caller: Caller,
    state: web::Data<AppState>,
    item: web::Query<Item>,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, Problem> {
    let existing = state.store.api(&item.identifier).await?.ok_or_else(|| not_found(&item.identifier))?;
    let mut merged = representation(&existing)?;
    merge_patch(&mut merged, body.into_inner());
    apply(caller, &state, &item.identifier, merged).await
}

/// Replaces the API `identifier` with the one `body` describes (a PUT, or a merged PATCH).
async fn apply(
    caller: Caller,
    state: &AppState,
    identifier: &str,
    body: Map<String, Value>,
) -> Result<HttpResponse, Problem> {
    let spec: ApiSpec = replacement(body, &READ_ONLY)?;
    if spec.identifier.trim() != identifier {
        return Err(FieldErrors::single("identifier", "cannot be changed").into());
    }
    let api = registry::update_api(&state.store, spec).await?;
    caller.audit(&state.store, "api.update", &api.identifier, &api.name).await;
    let updated = state.store.api(identifier).await?.ok_or_else(|| not_found(identifier))?;
    Ok(ok(&updated))
}

async fn delete(caller: Caller, state: web::Data<AppState>, item: web::Query<Item>) -> Result<HttpResponse, Problem> {
    if !state.store.delete_api(&item.identifier).await? {
        return Err(not_found(&item.identifier));
    }
    caller.audit(&state.store, "api.delete", &item.identifier, "").await;
    Ok(no_content())
}

fn not_found(identifier: &str) -> Problem {
    Problem::not_found(format_args!("API {identifier:?}"))
}
