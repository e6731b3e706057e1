//! The consent form's submission: Allow records the consent, Deny tells the client.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::oauth::authorize::load_pending;
use crate::oauth::error::AuthorizeError;
use crate::state::AppState;
use crate::web::{csrf, session};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/consent", web::post().to(submit));
}

#[derive(Deserialize)]
struct ConsentForm {
    csrf_token: Option<String>,
    request_id: String,
    decision: String,
}

async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<ConsentForm>,
) -> Result<HttpResponse, AuthorizeError> {
    if !csrf::verify(&req, form.csrf_token.as_deref()) {
        return Ok(super::login::csrf_failure());
    }
    let (request, client, pending) = load_pending(&state, &form.request_id).await?;
    crate::activity::note_client(&req, &client.client_id);
    let continue_url = format!("/authorize/continue?request_id={}", pending.id);
    // Without a session the flow goes back to the login page.
    let Some(session) = session::current(&req, &state.store).await? else {
        return Ok(HttpResponse::SeeOther().insert_header((LOCATION, continue_url)).finish());
    };
    crate::activity::note_user_id(&req, &session.user_id);
    match form.decision.as_str() {
        "allow" => {
            // Consent to a client known only by its metadata document is not remembered.
            if !client.from_metadata_document {
                let resources = serde_json::to_string(&request.resources).unwrap_or_else(|_| "[]".into());
                state
                    .store
                    .save_consent(&session.user_id, &request.client_id, &request.scope.to_string(), &resources)
                    .await?;
            }
            state.store.mark_request_consented(&pending.id).await?;
            Ok(HttpResponse::SeeOther().insert_header((LOCATION, continue_url)).finish())
        }
        _ => {
            state.store.delete_authorization_request(&pending.id).await?;
            Err(request.error(state.config.issuer.as_str(), "access_denied", "the user denied access"))
        }
    }
}
