//! Signing keys: the key ring's states and the two-step rotation. A new key is added as
//! `next` (published in JWKS, so verifiers can fetch it before it signs anything), then
//! activated; the key it replaces is `retired`: still published until the tokens it signed
//! have expired, never signing again.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::form::{self, Done};
use super::{AdminError, Chrome, require_admin, require_admin_form, when};
use crate::state::AppState;
use crate::tokens::keys::{KeyError, SigningAlg};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/keys", web::get().to(list))
        .route("/admin/keys/rotate", web::post().to(rotate))
        .route("/admin/keys/{kid}/activate", web::post().to(activate))
        .route("/admin/keys/{kid}/retire", web::post().to(retire));
}

const NOTICES: [(&str, &str); 3] = [
    ("added", "New key added as next: it is in the JWKS now. Activate it once verifiers have had time to fetch it."),
    ("activated", "Key activated: it signs new tokens now; the key it replaced is retired."),
    ("retired", "Key retired without ever signing."),
];

struct Row {
    kid: String,
    href: String,
    alg: &'static str,
    state: &'static str,
    created: String,
    retired: String,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    error: Option<String>,
    keys: Vec<Row>,
    algs: [&'static str; 2],
}

fn keys_page(chrome: Chrome, state: &AppState, notice: Option<&'static str>, error: Option<String>) -> KeysPage {
    let keys = state
        .keys
        .ring()
        .summaries()
        .iter()
        .map(|k| Row {
            href: format!("/admin/keys/{}", form::segment(&k.kid)),
            kid: k.kid.clone(),
            alg: k.alg.as_str(),
            state: k.state,
            created: when(k.created_at),
            retired: k.retired_at.map(when).unwrap_or_default(),
        })
        .collect();
    KeysPage { chrome, notice, error, keys, algs: SigningAlg::ALL.map(SigningAlg::as_str) }
}

async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    done: web::Query<Done>,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state).await?;
    // The ring is refreshed in the background; an admin looking at keys wants them now.
    state.keys.reload().await.map_err(key_failure)?;
    let page = keys_page(admin.chrome(&state, "keys"), &state, done.notice(&NOTICES), None);
    Ok(admin.page(StatusCode::OK, &page))
}

/// A key operation that failed for a reason no form field explains.
fn key_failure(error: KeyError) -> AdminError {
    match error {
        KeyError::Store(e) => e.into(),
        other => {
            tracing::error!(error = %other, "signing key operation failed");
            AdminError::Unavailable
        }
    }
}

async fn rotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, fields) = require_admin_form(&req, &state, submitted).await?;
    let alg = match fields.text("alg").parse::<SigningAlg>() {
        Ok(alg) => alg,
        Err(e) => {
            let page = keys_page(admin.chrome(&state, "keys"), &state, None, Some(e));
            return Ok(admin.page(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let kid = state.keys.add_next_key(alg).await.map_err(key_failure)?;
    state.store.audit(admin.actor(), "key.add", &kid, &format!("{alg} next key")).await?;
    Ok(form::see_other("/admin/keys?done=added"))
}

async fn activate(
    req: HttpRequest,
    state: web::Data<AppState>,
    kid: web::Path<String>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, _) = require_admin_form(&req, &state, submitted).await?;
    let replaced = {
        let ring = state.keys.ring();
        ring.summaries().iter().find(|k| k.kid == *kid).and_then(|k| ring.active_kid(k.alg)).map(str::to_owned)
    };
    if !state.keys.activate(&kid).await.map_err(key_failure)? {
        return Err(AdminError::NotFound(format!("next key {:?}", kid.as_str())));
    }
    let detail = match replaced {
        Some(old) => format!("now signs; {old} retired"),
        None => "now signs".to_owned(),
    };
    state.store.audit(admin.actor(), "key.activate", &kid, &detail).await?;
    Ok(form::see_other("/admin/keys?done=activated"))
}

async fn retire(
    req: HttpRequest,
    state: web::Data<AppState>,
    kid: web::Path<String>,
    submitted: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let (admin, _) = require_admin_form(&req, &state, submitted).await?;
    if !state.keys.retire(&kid).await.map_err(key_failure)? {
        return Err(AdminError::NotFound(format!("next key {:?}", kid.as_str())));
    }
    state.store.audit(admin.actor(), "key.retire", &kid, "retired before signing").await?;
    Ok(form::see_other("/admin/keys?done=retired"))
}
