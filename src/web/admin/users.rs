//! Users: search, register, edit claims and role, reset the password, end sessions, delete.
//! The rules are the registry's (`UserSpec`, `validate_claims`, `set_password`); an admin
//! may not lock themselves out (disable, demote or delete their own account).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::{Map, Value};

use super::form::{self, Done, Fields};
use super::{Admin, AdminError, Chrome, require_admin, require_admin_form, when};
use crate::registry::user::{User, UserSpec, validate_claims, validate_username};
use crate::registry::{self, FieldErrors, password};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `/new` before `/{id}`: the first matching resource wins.
    cfg.route("/admin/users", web::get().to(list))
        .service(web::resource("/admin/users/new").route(web::get().to(new_form)).route(web::post().to(create)))
        .service(web::resource("/admin/users/{id}").route(web::get().to(edit_form)).route(web::post().to(update)))
        .route("/admin/users/{id}/password", web::post().to(reset_password))
        .route("/admin/users/{id}/revoke-sessions", web::post().to(revoke_sessions))
        .route("/admin/users/{id}/delete", web::post().to(delete));
}

const NOTICES: [(&str, &str); 5] = [
    ("created", "User created."),
    ("saved", "Changes saved."),
    ("password", "Password changed."),
    ("sessions", "Every session of this user has ended and the tokens issued in them are revoked."),
    ("deleted", "User deleted; their sessions ended and their tokens are revoked."),
];

/// The most users one list shows (search narrows it).
const PAGE_SIZE: i64 = 100;

/// The standard claims the form edits as text: (claim, label, hint). Others (address, …)
/// are kept as they are.
const TEXT_CLAIMS: [(&str, &str, &str); 6] = [
    ("name", "Full name", ""),
    ("given_name", "Given name", ""),
    ("family_name", "Family name", ""),
    ("email", "Email", ""),
    ("phone_number", "Phone number", "E.164 recommended, e.g. +15551234567"),
    ("picture", "Picture URL", "URL of a profile picture"),
];

struct Row {
    username: String,
    href: String,
    name: String,
    email: String,
    is_admin: bool,
    disabled: bool,
    created: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    q: String,
    users: Vec<Row>,
    truncated: bool,
}

#[derive(serde::Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    done: Option<String>,
}

fn claim_text(user: &User, claim: &str) -> String {
    user.claims.get(claim).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).unwrap_or_default()
}

fn href(user: &User) -> String {
    format!("/admin/users/{}", form::segment(&user.id))
}

async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    let q = query.q.trim().to_owned();
    let found = state.store.list_users(&q, PAGE_SIZE + 1).await?;
    let truncated = found.len() as i64 > PAGE_SIZE;
    let users = found
        .iter()
        .take(PAGE_SIZE as usize)
        .map(|u| Row {
            href: href(u),
            name: claim_text(u, "name"),
            email: claim_text(u, "email"),
            is_admin: u.is_admin,
            disabled: u.disabled,
            created: when(u.created_at),
            username: u.username.clone(),
        })
        .collect();
    let notice = Done { done: query.done.clone() }.notice(&NOTICES);
    let page = ListPage { chrome: admin.chrome(&state, "users"), notice, q, users, truncated };
    Ok(admin.page(StatusCode::OK, &page))
}

/// One text claim on the form.
struct Claim {
    name: &'static str,
    label: &'static str,
    hint: &'static str,
    value: String,
}

/// The text claims' fields, each with its value.
fn claim_fields(value: impl Fn(&str) -> String) -> Vec<Claim> {
    TEXT_CLAIMS.iter().map(|(name, label, hint)| Claim { name, label, hint, value: value(name) }).collect()
}

/// The form's fields as typed (never the password).
struct Values {
    username: String,
    claims: Vec<Claim>,
    email_verified: bool,
    /// Every other claim (`roles`, `groups`, `address`, …) as one JSON object.
    other_claims: String,
    is_admin: bool,
    disabled: bool,
}

/// Whether the form has a field of its own for `claim`.
fn has_own_field(claim: &str) -> bool {
    claim == "email_verified" || TEXT_CLAIMS.iter().any(|(name, _, _)| *name == claim)
}

/// The claims without a field of their own, as the JSON editor shows them (`{}` for none).
fn other_claims_json(user: &User) -> String {
    let others: Map<String, Value> =
        user.claims.iter().filter(|(name, _)| !has_own_field(name)).map(|(k, v)| (k.clone(), v.clone())).collect();
    serde_json::to_string_pretty(&Value::Object(others)).unwrap_or_else(|_| "{}".into())
}

impl Values {
    fn blank() -> Self {
        Self {
            username: String::new(),
            claims: claim_fields(|_| String::new()),
            email_verified: false,
            other_claims: "{}".into(),
            is_admin: false,
            disabled: false,
        }
    }

    fn of(user: &User) -> Self {
        Self {
            username: user.username.clone(),
            claims: claim_fields(|claim| claim_text(user, claim)),
            email_verified: user.claims.get("email_verified") == Some(&Value::Bool(true)),
            other_claims: other_claims_json(user),
            is_admin: user.is_admin,
            disabled: user.disabled,
        }
    }

    fn submitted(fields: &Fields) -> Self {
        Self {
            username: fields.text("username"),
            claims: claim_fields(|claim| fields.text(claim)),
            email_verified: fields.checked("email_verified"),
            other_claims: fields.text("other_claims"),
            is_admin: fields.checked("is_admin"),
            disabled: fields.checked("disabled"),
        }
    }

    /// The claims the form asks for: the JSON editor's, then each text field's (a blank
    /// field removes its claim). Each text claim is checked on its own by `validate_claims`,
    /// so that its error shows beside it; the editor's errors show below the editor.
    fn claims(&self) -> (Map<String, Value>, FieldErrors) {
        let mut errors = FieldErrors::default();
        let mut base = self.other_claims(&mut errors);
        for claim in &self.claims {
            let value = claim.value.trim();
            if value.is_empty() {
                continue;
            }
            match validate_claims(Map::from_iter([(claim.name.to_owned(), Value::from(value))])) {
                Ok(valid) => base.extend(valid),
                Err(e) => e.0.into_iter().for_each(|e| errors.add(claim.name, e.message)),
            }
        }
        // Verified only means something with an address; without one the claim goes.
        if base.contains_key("email") {
            base.insert("email_verified".into(), Value::Bool(self.email_verified));
        } else {
            base.remove("email_verified");
        }
        (base, errors)
    }

    /// The JSON editor's claims, validated (errors under `other_claims`).
    fn other_claims(&self, errors: &mut FieldErrors) -> Map<String, Value> {
        let raw = self.other_claims.trim();
        if raw.is_empty() {
            return Map::new();
        }
        let object = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(object)) => object,
            Ok(_) => {
                errors.add("other_claims", "must be a JSON object, such as {\"roles\": [\"admin\"]}");
                return Map::new();
            }
            Err(e) => {
                errors.add("other_claims", format!("is not valid JSON: {e}"));
                return Map::new();
            }
        };
        let mut own: Vec<&str> = object.keys().map(String::as_str).filter(|name| has_own_field(name)).collect();
        own.sort_unstable();
        for name in own {
            errors.add("other_claims", format!("{name:?} has its own field above"));
        }
        match validate_claims(object) {
            Ok(valid) => valid.into_iter().filter(|(name, _)| !has_own_field(name)).collect(),
            Err(e) => {
                e.0.into_iter().for_each(|e| errors.add("other_claims", e.message));
                Map::new()
            }
        }
    }
}

#[derive(Template)]
#[template(path = "admin/user_new.html")]
struct NewPage {
    chrome: Chrome,
    values: Values,
    errors: FieldErrors,
}

async fn new_form(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    let page =
        NewPage { chrome: admin.chrome(&state, "users"), values: Values::blank(), errors: FieldErrors::default() };
    Ok(admin.page(StatusCode::OK, &page))
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, fields) = require_admin_form(&req, &state, submitted).await?;
    let values = Values::submitted(&fields);
    let password = fields.text("password");
    let (claims, mut errors) = values.claims();
    let outcome = if errors.is_empty() {
        let spec = UserSpec { username: values.username.clone(), password, is_admin: values.is_admin, claims };
        registry::create_user(&state.store, spec).await
    } else {
        // The account fields' own complaints too, so that one submission shows them all.
        if let Err(e) = validate_username(&values.username) {
            errors.add("username", e);
        }
        if let Err(e) = password::check_strength(&password) {
            errors.add("password", e);
        }
        Err(errors.into())
    };
    match outcome {
        Ok(user) => {
            let role = if user.is_admin { "admin" } else { "user" };
            state.store.audit(admin.actor(), "user.create", &user.username, role).await?;
            Ok(form::see_other(&format!("{}?done=created", href(&user))))
        }
        Err(e) => {
            let errors = form::field_errors(e, "username")?;
            let page = NewPage { chrome: admin.chrome(&state, "users"), values, errors };
            Ok(admin.page(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

/// What the user page says about the account itself.
struct Account {
    id: String,
    username: String,
    href: String,
    created: String,
    updated: String,
    /// The signed-in admin's own account (which they may not disable, demote or delete).
    is_self: bool,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    account: Account,
    values: Values,
    errors: FieldErrors,
}

fn user_page(admin: &Admin, state: &AppState, user: &User, values: Values, errors: FieldErrors) -> UserPage {
    UserPage {
        chrome: admin.chrome(state, "users"),
        notice: None,
        account: Account {
            id: user.id.clone(),
            username: user.username.clone(),
            href: href(user),
            created: when(user.created_at),
            updated: when(user.updated_at),
            is_self: user.id == admin.user.id,
        },
        values,
        errors,
    }
}

async fn load(state: &AppState, id: &str) -> Result<User, AdminError> {
    state.store.user_by_id(id).await?.ok_or_else(|| AdminError::NotFound(format!("user with id {id:?}")))
}

async fn edit_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    done: web::Query<Done>,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    let user = load(&state, &path).await?;
    let mut page = user_page(&admin, &state, &user, Values::of(&user), FieldErrors::default());
    page.notice = done.notice(&NOTICES);
    Ok(admin.page(StatusCode::OK, &page))
}

async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, fields) = require_admin_form(&req, &state, submitted).await?;
    let mut user = load(&state, &path).await?;
    let mut values = Values::submitted(&fields);
    values.username.clone_from(&user.username);
    if fields.get("other_claims").is_none() {
        // A form without the JSON editor (a script's) leaves those claims as they are.
        values.other_claims = other_claims_json(&user);
    }
    let (claims, mut errors) = values.claims();
    if user.id == admin.user.id {
        if !values.is_admin {
            errors.add("is_admin", "you cannot remove your own admin role (another admin can)");
        }
        if values.disabled {
            errors.add("disabled", "you cannot disable your own account");
        }
    }
    if !errors.is_empty() {
        let page = user_page(&admin, &state, &user, values, errors);
        return Ok(admin.page(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let newly_disabled = values.disabled && !user.disabled;
    let mut changes = Vec::new();
    if claims != user.claims {
        changes.push("claims".to_owned());
    }
    if values.is_admin != user.is_admin {
        changes.push(if values.is_admin { "admin role granted" } else { "admin role removed" }.to_owned());
    }
    if values.disabled != user.disabled {
        changes.push(if values.disabled { "disabled, sessions ended" } else { "enabled" }.to_owned());
    }
    user.claims = claims;
    user.is_admin = values.is_admin;
    user.disabled = values.disabled;
    if !state.store.update_user(&user).await? {
        return Err(AdminError::NotFound(format!("user with id {:?}", user.id)));
    }
    if newly_disabled {
        // A disabled user's live sessions and tokens must not outlast the decision.
        crate::oauth::session_end::end_user_sessions(&state, &user.id).await?;
    }
    let detail = if changes.is_empty() { "no change".to_owned() } else { changes.join(", ") };
    state.store.audit(admin.actor(), "user.update", &user.username, &detail).await?;
    Ok(form::see_other(&format!("{}?done=saved", href(&user))))
}

async fn reset_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, fields) = require_admin_form(&req, &state, submitted).await?;
    let user = load(&state, &path).await?;
    if let Err(e) = registry::set_password(&state.store, &user.username, fields.text("password")).await {
        let errors = form::field_errors(e, "password")?;
        let page = user_page(&admin, &state, &user, Values::of(&user), errors);
        return Ok(admin.page(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    state.store.audit(admin.actor(), "user.password", &user.username, "password reset").await?;
    Ok(form::see_other(&format!("{}?done=password", href(&user))))
}

async fn revoke_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, _) = require_admin_form(&req, &state, submitted).await?;
    let user = load(&state, &path).await?;
    let ended = crate::oauth::session_end::end_user_sessions(&state, &user.id).await?;
    let detail = format!("{ended} session(s) ended, tokens revoked");
    state.store.audit(admin.actor(), "user.revoke_sessions", &user.username, &detail).await?;
    if user.id == admin.user.id {
        // That included this very session: back to the login form.
        return Ok(form::see_other("/admin/login"));
    }
    Ok(form::see_other(&format!("{}?done=sessions", href(&user))))
}

async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, _) = require_admin_form(&req, &state, submitted).await?;
    let user = load(&state, &path).await?;
    if user.id == admin.user.id {
        let errors = FieldErrors::single("delete", "you cannot delete your own account (another admin can)");
        let page = user_page(&admin, &state, &user, Values::of(&user), errors);
        return Ok(admin.page(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    if !crate::oauth::session_end::delete_user(&state, &user.id).await? {
        return Err(AdminError::NotFound(format!("user with id {:?}", user.id)));
    }
    state.store.audit(admin.actor(), "user.delete", &user.username, "sessions ended, tokens revoked").await?;
    Ok(form::see_other("/admin/users?done=deleted"))
}
