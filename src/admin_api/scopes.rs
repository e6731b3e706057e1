//! `/admin/api/scopes[/{name}]`: custom scopes, which release user claims (`roles`) to the
//! id_token and userinfo as `profile` does.

use actix_web::{HttpResponse, web};
use serde_json::{Map, Value};

use super::problem::Problem;
use super::{Caller, created, item_path, no_content, ok, replacement};
use crate::registry::scope::ClaimScopeSpec;
use crate::registry::{self, FieldErrors};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/scopes").get(list).post(create))
        .service(web::resource("/scopes/{name}").get(read).put(update).delete(delete));
}

async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    spec: web::Json<ClaimScopeSpec>,
) -> Result<HttpResponse, Problem> {
    let scope = registry::create_claim_scope(&state.store, spec.into_inner()).await?;
    caller.audit(&state.store, "scope.create", &scope.name, &scope.claims.join(" ")).await;
    Ok(created(&item_path("scopes", &scope.name), &scope))
}

async fn list(_: Caller, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    Ok(ok(&state.store.list_claim_scopes().await?))
}

async fn read(_: Caller, state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse, Problem> {
    let scope =
        state.store.list_claim_scopes().await?.into_iter().find(|s| s.name == *name).ok_or_else(|| not_found(&name))?;
    Ok(ok(&scope))
}

/// Replaces the description and claims (the name is the resource's: it cannot change).
async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, Problem> {
    let mut body = body.into_inner();
    match body.get("name") {
        None => {
            body.insert("name".into(), Value::String(name.to_string()));
        }
        Some(Value::String(given)) if given.trim() == name.as_str() => {}
        Some(_) => return Err(FieldErrors::single("name", "cannot be changed").into()),
    }
    let spec: ClaimScopeSpec = replacement(body, &[])?;
    let scope = registry::update_claim_scope(&state.store, spec).await?;
    caller.audit(&state.store, "scope.update", &scope.name, &scope.claims.join(" ")).await;
    Ok(ok(&scope))
}

async fn delete(caller: Caller, state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse, Problem> {
    if !state.store.delete_claim_scope(&name).await? {
        return Err(not_found(&name));
    }
    caller.audit(&state.store, "scope.delete", &name, "").await;
    Ok(no_content())
}

fn not_found(name: &str) -> Problem {
    Problem::not_found(format_args!("scope {name:?}"))
}
