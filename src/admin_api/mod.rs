//! The admin API (`/admin/api/…`): JSON endpoints that create, list, read, replace and
//! delete clients, users, APIs and custom scopes, rotate signing keys and read the protocol recorder, for scripts and infrastructure tools. A caller
//! authenticates with an admin token (`Authorization: Bearer …`, created with
//! `lanyard admin-token create`); every change is written to the audit log under the
//! token's name. Errors are RFC 7807 problems ([`problem::Problem`]).

mod activity;
mod apis;
mod clients;
mod keys;
mod lab;
mod mint;
pub mod problem;
mod scopes;
mod users;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use self::problem::Problem;
use crate::crypto::{random_token, sha256_hex};
use crate::oauth::register::bearer_token;
use crate::registry::{FieldErrors, RegistryError};
use crate::state::AppState;
use crate::store::Store;
use crate::store::admin::AdminToken;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin/api")
            .app_data(web::JsonConfig::default().error_handler(problem::json_error))
            .app_data(web::QueryConfig::default().error_handler(problem::query_error))
            .configure(clients::configure)
            .configure(users::configure)
            .configure(apis::configure)
            .configure(scopes::configure)
            .configure(mint::configure)
            .configure(keys::configure)
            .configure(lab::configure)
            .configure(activity::configure)
            .default_service(web::to(unknown_path)),
    );
}

async fn unknown_path(req: HttpRequest) -> Result<HttpResponse, Problem> {
    Err(Problem::not_found(format!("{} {}", req.method(), req.path())))
}

/// The admin token a request authenticated with (an extractor: a handler that takes a
/// `Caller` cannot run without a valid token).
pub struct Caller {
    token: AdminToken,
}

impl Caller {
    /// The audit log's name for this caller.
    fn actor(&self) -> String {
        format!("token:{}", self.token.name)
    }

    /// Records a change. The change is made already: a failure to record it is logged
    /// loudly but does not turn the caller's success into an error they would retry.
    async fn audit(&self, store: &Store, action: &str, target: &str, detail: &str) {
        if let Err(e) = store.audit(&self.actor(), action, target, detail).await {
            tracing::error!(error = %e, actor = %self.actor(), action, target, "could not write the audit log");
        }
    }
}

impl FromRequest for Caller {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let presented = bearer_token(req).map(str::to_owned);
        Box::pin(async move {
            let presented = presented.ok_or_else(Problem::token_missing)?;
            let state = state.ok_or_else(|| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "no application state"))?;
            // The token is 256-bit random: looking its hash up leaks nothing a timing
            // attack could use (as for client secrets).
            match state.store.admin_token_by_hash(&sha256_hex(&presented)).await? {
                Some(token) => Ok(Caller { token }),
                None => Err(Problem::token_invalid()),
            }
        })
    }
}

/// A newly created admin token: the token itself exists only here, to be shown once.
pub struct IssuedToken {
    pub token: String,
    pub record: AdminToken,
}

/// Creates an admin token named `name` (1–64 visible characters, unique): 256 random bits,
/// stored as their SHA-256 only.
pub async fn issue_token(store: &Store, name: &str) -> Result<IssuedToken, RegistryError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldErrors::single("name", "must be 1–64 characters without spaces").into());
    }
    let token = random_token(32);
    let record = store.insert_admin_token(name, &sha256_hex(&token)).await?;
    Ok(IssuedToken { token, record })
}

/// A 200 with a JSON body; never cached (the admin API speaks about secrets' owners).
fn ok(body: &impl Serialize) -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(body)
}

/// A 201 pointing at the new resource.
fn created(location: &str, body: &impl Serialize) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// The path of an item of `collection` (e.g. `/admin/api/clients/{id}`), with the id
/// percent-encoded as a path segment.
fn item_path(collection: &str, id: &str) -> String {
    let mut url = url::Url::parse("http://lanyard.invalid/admin/api").expect("a constant URL");
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.push(collection).push(id);
    }
    url.path().to_owned()
}

/// Applies a JSON Merge Patch (RFC 7396) to `target`: members of `patch` replace those of
/// `target`, objects merge recursively, `null` removes a member. A PATCH is then the GET
/// representation with the patch applied, checked like a PUT: only what it names changes.
fn merge_patch(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (name, value) in patch {
        match value {
            Value::Null => {
                target.remove(&name);
            }
            Value::Object(inner) => {
                let slot = target.entry(name).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(existing) = slot {
                    merge_patch(existing, inner);
                }
            }
            other => {
                target.insert(name, other);
            }
        }
    }
}

/// The GET representation of an item as a JSON object, for [`merge_patch`].
fn representation(item: &impl serde::Serialize) -> Result<Map<String, Value>, Problem> {
    match serde_json::to_value(item) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Problem::new(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "the item cannot be represented as JSON",
        )),
    }
}

/// A replacement body (PUT) as `T`, without the read-only members a GET returns, so that
/// a client may GET an item, change it and PUT it back.
fn replacement<T: DeserializeOwned>(mut body: Map<String, Value>, read_only: &[&str]) -> Result<T, Problem> {
    for member in read_only {
        body.remove(*member);
    }
    serde_json::from_value(Value::Object(body)).map_err(|e| Problem::wrong_shape(&e))
}

#[cfg(test)]
mod merge_patch_tests {
    use serde_json::json;

    #[test]
    fn a_merge_patch_changes_only_what_it_names() {
        let mut target =
            json!({"name": "Alice", "email": "a@example.test", "address": {"country": "NL", "locality": "Delft"}})
                .as_object()
                .unwrap()
                .clone();
        let patch =
            json!({"email": null, "address": {"locality": "Leiden"}, "disabled": true}).as_object().unwrap().clone();
        super::merge_patch(&mut target, patch);
        assert_eq!(
            serde_json::Value::Object(target),
            json!({"name": "Alice", "address": {"country": "NL", "locality": "Leiden"}, "disabled": true})
        );
    }
}
