//! With `--dev-login`, every HTML page carries a warning banner.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::middleware::Next;

const BANNER: &str = "<div class=\"dev-banner\" role=\"alert\">Development sign-in is on (--dev-login): \
    anyone can sign in as any user without a password. Never run this in production.</div>";

/// Inserts the banner after `<body…>` of HTML responses (only installed with `--dev-login`).
pub async fn inject(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = next.call(req).await?;
    let is_html =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if !is_html {
        return Ok(response.map_into_boxed_body());
    }
    let (request, response) = response.into_parts();
    let (mut head, body) = response.into_parts();
    let bytes =
        actix_web::body::to_bytes(body).await.map_err(|_| actix_web::error::ErrorInternalServerError("body"))?;
    let mut html = String::from_utf8_lossy(&bytes).into_owned();
    if let Some(start) = html.find("<body")
        && let Some(end) = html[start..].find('>')
    {
        html.insert_str(start + end + 1, BANNER);
    }
    head.headers_mut().remove(CONTENT_LENGTH);
    Ok(ServiceResponse::new(request, head.set_body(html).map_into_boxed_body()))
}
