//! Custom scopes: list, add or replace, delete. Each releases user claims (`roles`) to the
//! id_token and userinfo, as `profile` does; the rules are `ClaimScopeSpec::validate`'s.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::form::{self, Done, Fields};
use super::{Admin, AdminError, Chrome, require_admin, require_admin_form};
use crate::oauth::scope::ClaimScope;
use crate::registry::scope::ClaimScopeSpec;
use crate::registry::{self, FieldErrors, RegistryError};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/scopes").route(web::get().to(list)).route(web::post().to(save)))
        .route("/admin/scopes/delete", web::post().to(delete));
}

const NOTICES: [(&str, &str); 2] = [("saved", "Scope saved."), ("deleted", "Scope deleted.")];

/// The add form's fields as typed.
#[derive(Default)]
struct Values {
    name: String,
    /// Claim names, separated by spaces or commas.
    claims: String,
    description: String,
}

#[derive(Template)]
#[template(path = "admin/scopes.html")]
struct ListPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    scopes: Vec<ClaimScope>,
    values: Values,
    errors: FieldErrors,
}

async fn page(admin: &Admin, state: &AppState, values: Values, errors: FieldErrors) -> Result<ListPage, AdminError> {
    let scopes = state.store.list_claim_scopes().await?;
    Ok(ListPage { chrome: admin.chrome(state, "scopes"), notice: None, scopes, values, errors })
}

async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    done: web::Query<Done>,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    let mut list = page(&admin, &state, Values::default(), FieldErrors::default()).await?;
    list.notice = done.notice(&NOTICES);
    Ok(admin.page(StatusCode::OK, &list))
}

/// Adds a scope, or replaces the one of that name.
async fn save(
    req: HttpRequest,
    state: web::Data<AppState>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, fields) = require_admin_form(&req, &state, submitted).await?;
    let values = submitted_values(&fields);
    let spec = ClaimScopeSpec {
        name: values.name.clone(),
        description: values.description.clone(),
        claims: values.claims.split(|c: char| c == ',' || c.is_whitespace()).map(str::to_owned).collect(),
    };
    let name = spec.name.trim().to_owned();
    match registry::upsert_claim_scope(&state.store, spec).await {
        Ok(()) => {
            state.store.audit(admin.actor(), "scope.save", &name, &values.claims).await?;
            Ok(form::see_other("/admin/scopes?done=saved"))
        }
        Err(e) => {
            let errors = form::field_errors(e, "name")?;
            let list = page(&admin, &state, values, errors).await?;
            Ok(admin.page(StatusCode::UNPROCESSABLE_ENTITY, &list))
        }
    }
}

fn submitted_values(fields: &Fields) -> Values {
    Values { name: fields.text("name"), claims: fields.text("claims"), description: fields.text("description") }
}

async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, fields) = require_admin_form(&req, &state, submitted).await?;
    let name = fields.text("name");
    if !state.store.delete_claim_scope(&name).await? {
        return Err(form::failure(RegistryError::NotFound(format!("scope {name:?}"))));
    }
    state.store.audit(admin.actor(), "scope.delete", &name, "").await?;
    Ok(form::see_other("/admin/scopes?done=deleted"))
}
