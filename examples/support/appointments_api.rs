//! The appointments API: a tiny actix-web API that accepts only Lanyard access tokens for
//! its own audience, through `lanyard::verify`. Shared by `examples/api.rs` and the tests.

use std::sync::Mutex;

use actix_web::{HttpRequest, HttpResponse, web};
use lanyard::verify::{Verifier, VerifyError};
use serde::{Deserialize, Serialize};

/// One appointment, owned by the user (`sub`) whose token created it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Appointment {
    pub owner: String,
    pub title: String,
    pub at: String,
}

/// The in-memory calendar (an example: a real API has a database).
#[derive(Default)]
pub struct Calendar(pub Mutex<Vec<Appointment>>);

#[derive(Deserialize)]
pub struct NewAppointment {
    pub title: String,
    pub at: String,
}

/// The scopes this API defines.
pub const SCOPES: [&str; 2] = ["read:appointments", "write:appointments"];

/// Routes: `GET /appointments` needs `read:appointments`, `POST` needs `write:appointments`;
/// `GET /.well-known/oauth-protected-resource` is the API's RFC 9728 metadata.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/appointments").route(web::get().to(list)).route(web::post().to(create)))
        .route("/.well-known/oauth-protected-resource", web::get().to(metadata));
}

/// Names the API (its `aud`) and the authorization server that issues its tokens, so that a
/// client refused with a 401 can find out where to get a token.
async fn metadata(verifier: web::Data<Verifier>) -> HttpResponse {
    HttpResponse::Ok().json(verifier.resource_metadata(&SCOPES))
}

async fn list(
    req: HttpRequest,
    verifier: web::Data<Verifier>,
    calendar: web::Data<Calendar>,
) -> Result<HttpResponse, VerifyError> {
    let token = verifier.authorize(&req, &["read:appointments"]).await?;
    let mine: Vec<Appointment> = match calendar.0.lock() {
        Ok(all) => all.iter().filter(|a| a.owner == token.sub).cloned().collect(),
        Err(_) => Vec::new(),
    };
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "owner": token.sub, "client": token.client_id, "appointments": mine })))
}

async fn create(
    req: HttpRequest,
    verifier: web::Data<Verifier>,
    calendar: web::Data<Calendar>,
    body: web::Json<NewAppointment>,
) -> Result<HttpResponse, VerifyError> {
    let token = verifier.authorize(&req, &["write:appointments"]).await?;
    let appointment = Appointment { owner: token.sub, title: body.title.clone(), at: body.at.clone() };
    if let Ok(mut all) = calendar.0.lock() {
        all.push(appointment.clone());
    }
    Ok(HttpResponse::Created().json(appointment))
}
