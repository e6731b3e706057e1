//! CORS for the endpoints a browser-based client calls directly (SPAs, browser MCP
//! clients): token, pushed authorization requests, userinfo, revocation, introspection and
//! registration. They use no cookies, so any origin may call them (`*`, never with
//! credentials). Pages and the admin area get no CORS headers.

use actix_web::HttpResponse;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;

const PATHS: [&str; 6] = ["/token", "/par", "/userinfo", "/revoke", "/introspect", "/register"];

fn applies(path: &str) -> bool {
    PATHS.iter().any(|p| path == *p || (*p == "/register" && path.starts_with("/register/")))
}

/// Answers preflights and adds `Access-Control-Allow-Origin: *` for [`PATHS`].
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !applies(req.path()) || !req.headers().contains_key(header::ORIGIN) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    if req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        let response = HttpResponse::build(StatusCode::NO_CONTENT)
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, DELETE, OPTIONS"))
            // DPoP: browser clients send proofs (RFC 9449 §4.1).
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Authorization, Content-Type, DPoP"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
            .finish();
        return Ok(req.into_response(response).map_into_boxed_body());
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    // Lets scripts read the challenge of a 401 and a DPoP nonce (RFC 9449 §8).
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("WWW-Authenticate, DPoP-Nonce"));
    Ok(response)
}
