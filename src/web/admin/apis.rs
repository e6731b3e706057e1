//! APIs (resource servers): list, register, edit, delete. An API's identifier is a URL, so
//! pages name it in a query parameter (`?identifier=…`), never in a path segment.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::form::{self, Done, Fields};
use super::{Admin, AdminError, Chrome, require_admin, require_admin_form, when};
use crate::registry::api::{Api, ApiScope, ApiSpec, DEFAULT_ACCESS_TOKEN_TTL, ScopeSpec};
use crate::registry::client::ClientType;
use crate::registry::{self, FieldErrors, RegistryError};
use crate::state::AppState;
use crate::tokens::keys::SigningAlg;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/apis", web::get().to(list))
        .service(web::resource("/admin/apis/new").route(web::get().to(new_form)).route(web::post().to(create)))
        .service(web::resource("/admin/apis/edit").route(web::get().to(edit_form)).route(web::post().to(update)))
        .route("/admin/apis/delete", web::post().to(delete));
}

const NOTICES: [(&str, &str); 3] =
    [("created", "API registered."), ("saved", "Changes saved."), ("deleted", "API deleted.")];

/// Separates a scope's name from its description on a line of the scopes box.
const DESCRIPTION_SEPARATOR: &str = " - ";

struct Row {
    identifier: String,
    href: String,
    name: String,
    scopes: Vec<String>,
    ttl: i64,
    alg: &'static str,
}

#[derive(Template)]
#[template(path = "admin/apis.html")]
struct ListPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    apis: Vec<Row>,
}

fn edit_href(identifier: &str) -> String {
    form::with_query("/admin/apis/edit", "identifier", identifier)
}

async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    done: web::Query<Done>,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    let apis = state
        .store
        .list_apis()
        .await?
        .into_iter()
        .map(|a| Row {
            href: edit_href(&a.identifier),
            scopes: a.scopes.into_iter().map(|s| s.name).collect(),
            ttl: a.access_token_ttl,
            alg: a.signing_alg.as_str(),
            name: a.name,
            identifier: a.identifier,
        })
        .collect();
    let page = ListPage { chrome: admin.chrome(&state, "apis"), notice: done.notice(&NOTICES), apis };
    Ok(admin.page(StatusCode::OK, &page))
}

/// The form's fields as typed.
struct Values {
    identifier: String,
    name: String,
    /// One scope a line: `name` or `name - description`.
    scopes: String,
    access_token_ttl: String,
    signing_alg: String,
    introspection_client_id: String,
    // Per-API access token claims:
    /// Claim names, separated by spaces or commas.
    access_token_claims: String,
    /// The ticked downstream APIs (RFC 8693 token exchange).
    token_exchange_audiences: Vec<String>,
}

impl Values {
    fn defaults() -> Self {
        Self {
            identifier: String::new(),
            name: String::new(),
            scopes: String::new(),
            access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL.to_string(),
            signing_alg: SigningAlg::RS256.as_str().into(),
            introspection_client_id: String::new(),
            access_token_claims: String::new(),
            token_exchange_audiences: Vec::new(),
        }
    }

    fn of(api: &Api) -> Self {
        let scopes = api
            .scopes
            .iter()
            .map(|s| {
                if s.description.is_empty() {
                    s.name.clone()
                } else {
                    format!("{}{DESCRIPTION_SEPARATOR}{}", s.name, s.description)
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        Self {
            identifier: api.identifier.clone(),
            name: api.name.clone(),
            scopes,
            access_token_ttl: api.access_token_ttl.to_string(),
            signing_alg: api.signing_alg.as_str().into(),
            introspection_client_id: api.introspection_client_id.clone().unwrap_or_default(),
            access_token_claims: api.access_token_claims.join(" "),
            token_exchange_audiences: api.token_exchange_audiences.clone(),
        }
    }

    fn submitted(fields: &Fields) -> Self {
        Self {
            identifier: fields.text("identifier"),
            name: fields.text("name"),
            scopes: fields.text("scopes"),
            access_token_ttl: fields.text("access_token_ttl"),
            signing_alg: fields.text("signing_alg"),
            introspection_client_id: fields.text("introspection_client_id"),
            access_token_claims: fields.text("access_token_claims"),
            token_exchange_audiences: fields.all("token_exchange_audiences"),
        }
    }

    /// The spec these values ask for; numbers that are not numbers go to `errors`.
    fn spec(&self, errors: &mut FieldErrors) -> ApiSpec {
        let scopes = form::lines(&self.scopes)
            .into_iter()
            .map(|line| match line.split_once(DESCRIPTION_SEPARATOR) {
                Some((name, description)) => ScopeSpec::Full(ApiScope {
                    name: name.trim().to_owned(),
                    description: description.trim().to_owned(),
                }),
                None => ScopeSpec::Name(line),
            })
            .collect();
        ApiSpec {
            identifier: self.identifier.clone(),
            name: self.name.clone(),
            scopes,
            access_token_ttl: form::seconds(&self.access_token_ttl, "access_token_ttl", errors),
            signing_alg: form::non_blank(&self.signing_alg),
            introspection_client_id: form::non_blank(&self.introspection_client_id),
            access_token_claims: self
                .access_token_claims
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            token_exchange_audiences: self.token_exchange_audiences.clone(),
        }
    }

    fn exchanges_for(&self, identifier: &str) -> bool {
        self.token_exchange_audiences.iter().any(|a| a == identifier)
    }
}

#[derive(Template)]
#[template(path = "admin/api_form.html")]
struct FormPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    values: Values,
    errors: FieldErrors,
    /// (client_id, name) of the confidential clients, for the introspection client.
    clients: Vec<(String, String)>,
    /// (identifier, name) of the other APIs, the possible token exchange audiences.
    apis: Vec<(String, String)>,
    /// Created and updated times, when editing.
    editing: Option<(String, String)>,
}

impl FormPage {
    fn algs(&self) -> [&'static str; 2] {
        SigningAlg::ALL.map(SigningAlg::as_str)
    }
}

async fn form_page(
    admin: &Admin,
    state: &AppState,
    values: Values,
    errors: FieldErrors,
    existing: Option<&Api>,
) -> Result<FormPage, AdminError> {
    let clients = state
        .store
        .list_clients()
        .await?
        .into_iter()
        .filter(|c| c.client_type == ClientType::Confidential)
        .map(|c| (c.client_id, c.name))
        .collect();
    let apis = state
        .store
        .list_apis()
        .await?
        .into_iter()
        .filter(|a| existing.is_none_or(|e| e.identifier != a.identifier))
        .map(|a| (a.identifier, a.name))
        .collect();
    let editing = existing.map(|a| (when(a.created_at), when(a.updated_at)));
    Ok(FormPage { chrome: admin.chrome(state, "apis"), notice: None, values, errors, clients, apis, editing })
}

async fn new_form(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    let page = form_page(&admin, &state, Values::defaults(), FieldErrors::default(), None).await?;
    Ok(admin.page(StatusCode::OK, &page))
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, fields) = require_admin_form(&req, &state, submitted).await?;
    let values = Values::submitted(&fields);
    let mut errors = FieldErrors::default();
    let spec = values.spec(&mut errors);
    let outcome = if errors.is_empty() {
        registry::create_api(&state.store, spec).await
    } else {
        errors.0.extend(spec.validate().err().map(|e| e.0).unwrap_or_default());
        Err(errors.into())
    };
    match outcome {
        Ok(api) => {
            let detail = format!("{} (scopes: {})", api.name, scope_names(&api));
            state.store.audit(admin.actor(), "api.create", &api.identifier, &detail).await?;
            Ok(form::see_other(&format!("{}&done=created", edit_href(&api.identifier))))
        }
        Err(e) => {
            let errors = form::field_errors(e, "identifier")?;
            let page = form_page(&admin, &state, values, errors, None).await?;
            Ok(admin.page(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

fn scope_names(api: &Api) -> String {
    api.scopes.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" ")
}

#[derive(serde::Deserialize)]
struct Which {
    #[serde(default)]
    identifier: String,
    done: Option<String>,
}

async fn load(state: &AppState, identifier: &str) -> Result<Api, AdminError> {
    state.store.api(identifier).await?.ok_or_else(|| AdminError::NotFound(format!("API {identifier:?}")))
}

async fn edit_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    which: web::Query<Which>,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    let api = load(&state, &which.identifier).await?;
    let mut page = form_page(&admin, &state, Values::of(&api), FieldErrors::default(), Some(&api)).await?;
    page.notice = Done { done: which.done.clone() }.notice(&NOTICES);
    Ok(admin.page(StatusCode::OK, &page))
}

async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, fields) = require_admin_form(&req, &state, submitted).await?;
    let existing = load(&state, &fields.text("identifier")).await?;
    let mut values = Values::submitted(&fields);
    values.identifier.clone_from(&existing.identifier);
    let mut errors = FieldErrors::default();
    let spec = values.spec(&mut errors);
    let outcome = if errors.is_empty() { registry::update_api(&state.store, spec).await } else { Err(errors.into()) };
    let api = match outcome {
        Ok(api) => api,
        Err(RegistryError::Invalid(errors)) => {
            let page = form_page(&admin, &state, values, errors, Some(&existing)).await?;
            return Ok(admin.page(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
        Err(RegistryError::NotFound(what)) => return Err(AdminError::NotFound(what)),
        Err(RegistryError::Conflict(_) | RegistryError::Store(_)) => return Err(AdminError::Unavailable),
    };
    let detail = format!("{} (scopes: {})", api.name, scope_names(&api));
    state.store.audit(admin.actor(), "api.update", &api.identifier, &detail).await?;
    Ok(form::see_other(&format!("{}&done=saved", edit_href(&api.identifier))))
}

async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, fields) = require_admin_form(&req, &state, submitted).await?;
    let api = load(&state, &fields.text("identifier")).await?;
    if !state.store.delete_api(&api.identifier).await? {
        return Err(AdminError::NotFound(format!("API {:?}", api.identifier)));
    }
    state.store.audit(admin.actor(), "api.delete", &api.identifier, &api.name).await?;
    Ok(form::see_other("/admin/apis?done=deleted"))
}
