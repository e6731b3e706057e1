//! `/admin/api/users[/{username}]`: users with their claims (standard and custom, such as
//! `roles`) beside the account fields (as in a seed file), never a password or its hash.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::problem::Problem;
use super::{Caller, created, item_path, merge_patch, no_content, ok, replacement, representation};
use crate::registry::user::{User, UserSpec, validate_claims};
use crate::registry::{self, FieldErrors, password};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/users").get(list).post(create))
        .service(web::resource("/users/{username}").get(read).put(update).patch(patch).delete(delete));
}

/// What a GET shows that a PUT cannot set (`username` is checked, not ignored).
const READ_ONLY: [&str; 3] = ["id", "created_at", "updated_at"];

/// A replacement (PUT): the claims, the admin role and the disabled flag are replaced
/// (absent flags are `false`); the password changes only when one is given.
#[derive(Deserialize)]
struct UserUpdate {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    is_admin: bool,
    #[serde(default)]
    disabled: bool,
    #[serde(flatten)]
    claims: Map<String, Value>,
}

#[derive(Deserialize)]
struct ListQuery {
    /// Only users whose username or claims contain this text.
    #[serde(default)]
    search: String,
}

async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    spec: web::Json<UserSpec>,
) -> Result<HttpResponse, Problem> {
    let user = registry::create_user(&state.store, spec.into_inner()).await?;
    let detail = if user.is_admin { "admin" } else { "" };
    caller.audit(&state.store, "user.create", &user.username, detail).await;
    Ok(created(&item_path("users", &user.username), &user))
}

async fn list(_: Caller, state: web::Data<AppState>, query: web::Query<ListQuery>) -> Result<HttpResponse, Problem> {
    let users = state.store.list_users(query.search.trim(), i64::MAX).await?;
    Ok(ok(&users))
}

async fn read(_: Caller, state: web::Data<AppState>, username: web::Path<String>) -> Result<HttpResponse, Problem> {
    let user = state.store.user_by_username(&username).await?.ok_or_else(|| not_found(&username))?;
    Ok(ok(&user))
}

async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    username: web::Path<String>,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, Problem> {
    let user = state.store.user_by_username(&username).await?.ok_or_else(|| not_found(&username))?;
    apply(caller, &state, user, body.into_inner()).await
}

/// A JSON Merge Patch (RFC 7396): only the members sent change (`{"disabled": true}` keeps
/// the claims); `null` removes a claim.
async fn patch(
    caller: Caller,
    state: web::Data<AppState>,
    username: web::Path<String>,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, Problem> {
    let user = state.store.user_by_username(&username).await?.ok_or_else(|| not_found(&username))?;
    let mut merged = representation(&user)?;
    merge_patch(&mut merged, body.into_inner());
    apply(caller, &state, user, merged).await
}

/// Replaces `user`'s settings with those `body` describes (a PUT, or a merged PATCH).
async fn apply(
    caller: Caller,
    state: &AppState,
    mut user: User,
    body: Map<String, Value>,
) -> Result<HttpResponse, Problem> {
    let username = user.username.clone();
    let update: UserUpdate = replacement(body, &READ_ONLY)?;
    let before = user.clone();
    let password = update.apply(&mut user)?;
    if !state.store.update_user(&user).await? {
        return Err(not_found(&username));
    }
    if user.disabled && !before.disabled {
        // A disabled user's live sessions and tokens must not outlast the decision.
        crate::oauth::session_end::end_user_sessions(state, &user.id).await?;
    }
    let detail = changes(&before, &user, password.is_some());
    if let Some(password) = password {
        registry::set_password(&state.store, &user.username, password).await?;
    }
    caller.audit(&state.store, "user.update", &user.username, &detail).await;
    let updated = state.store.user_by_username(&username).await?.ok_or_else(|| not_found(&username))?;
    Ok(ok(&updated))
}

async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    username: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let user = state.store.user_by_username(&username).await?.ok_or_else(|| not_found(&username))?;
    if !crate::oauth::session_end::delete_user(&state, &user.id).await? {
        return Err(not_found(&username));
    }
    caller.audit(&state.store, "user.delete", &user.username, "").await;
    Ok(no_content())
}

/// What an update changed, for the audit log (never the password itself).
fn changes(before: &User, after: &User, password: bool) -> String {
    let mut changes = Vec::new();
    if before.claims != after.claims {
        changes.push("claims");
    }
    if before.is_admin != after.is_admin {
        changes.push(if after.is_admin { "admin role granted" } else { "admin role removed" });
    }
    if before.disabled != after.disabled {
        changes.push(if after.disabled { "disabled, sessions ended" } else { "enabled" });
    }
    if password {
        changes.push("password set");
    }
    if changes.is_empty() { "no change".to_owned() } else { changes.join(", ") }
}

fn not_found(username: &str) -> Problem {
    Problem::not_found(format_args!("user {username:?}"))
}

impl UserUpdate {
    /// Checks everything before anything is written, applies the settings to `user` and
    /// returns the new password, if any (set separately: it is hashed).
    fn apply(self, user: &mut User) -> Result<Option<String>, FieldErrors> {
        let mut errors = FieldErrors::default();
        if self.username.as_deref().is_some_and(|name| name.trim() != user.username) {
            errors.add("username", "cannot be changed");
        }
        let password = self.password.filter(|p| !p.is_empty());
        if let Some(Err(e)) = password.as_deref().map(password::check_strength) {
            errors.add("password", e);
        }
        match validate_claims(self.claims) {
            Ok(claims) => user.claims = claims,
            Err(invalid) => errors.0.extend(invalid.0),
        }
        user.is_admin = self.is_admin;
        user.disabled = self.disabled;
        errors.into_result(password)
    }
}
