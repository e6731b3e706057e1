//! The edge filter for characters no identifier, name or parameter may hold: control
//! characters in a path or a query, and NUL (which PostgreSQL cannot store, while SQLite
//! can: left alone, the same request would be a 4xx on one backend and a store failure on
//! the other) in a body. Each is refused here, in the form its caller reads, before any
//! handler or query sees it.
//!
//! The protocol endpoints that parse their own parameters (`oauth::params::Params`:
//! `/authorize`, `/par`, `/logout`, `/token`, `/introspect`, `/revoke`, `/userinfo`,
//! `/device_authorization`) are left to
//! do so, so that their refusals keep the protocol's own shape (an error redirect to a
//! registered redirect_uri, RFC 6749 JSON).

use actix_web::HttpResponse;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, CONTENT_TYPE};
use actix_web::middleware::Next;
use actix_web::web::Bytes;

use crate::web::pages;

/// Endpoints whose parameters `Params` checks (see the module doc).
// `/par` stores what it was pushed form-encoded, so a NUL never reaches the database raw.
const PROTOCOL_PATHS: [&str; 8] =
    ["/authorize", "/par", "/logout", "/token", "/introspect", "/revoke", "/userinfo", "/device_authorization"];

/// A control character: never part of an identifier or a parameter (RFC 6749 Appendix A
/// allows only visible characters and spaces in its parameters).
pub fn is_forbidden_in_identifier(c: char) -> bool {
    c.is_control()
}

/// Whether `s` holds a control character.
pub fn has_control(s: &str) -> bool {
    s.chars().any(is_forbidden_in_identifier)
}

fn percent_decoded_has(raw: &str, forbidden: impl Fn(char) -> bool) -> bool {
    url::form_urlencoded::parse(raw.as_bytes()).any(|(k, v)| k.chars().any(&forbidden) || v.chars().any(&forbidden))
}

/// Multi-line form fields (claims, redirect URIs) may hold line breaks and tabs.
fn forbidden_in_body(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\r' | '\n')
}

enum Refusal {
    /// A path naming something that cannot exist.
    NotFound,
    /// A query or body that cannot be valid.
    BadRequest,
}

fn respond(path: &str, refusal: Refusal) -> HttpResponse {
    let (status, what) = match refusal {
        Refusal::NotFound => (StatusCode::NOT_FOUND, "Not found: the address holds a control character."),
        Refusal::BadRequest => {
            (StatusCode::BAD_REQUEST, "The request holds a control character (such as NUL) where none is allowed.")
        }
    };
    if pages::is_browser_page(path) {
        return pages::message(status, "Invalid request", what);
    }
    if path.starts_with("/admin/api") {
        // RFC 7807, as the rest of the admin API answers.
        return HttpResponse::build(status).content_type("application/problem+json").json(serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": what,
        }));
    }
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "error": "invalid_request", "error_description": what }))
}

/// Refuses control characters in the path and query, and NUL in form and JSON bodies.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let path = req.path().to_owned();
    if crate::web::pages::is_browser_page(&path)
        && let Some(state) = req.app_data::<actix_web::web::Data<crate::state::AppState>>()
        && let Some(host) = req.headers().get(actix_web::http::header::HOST).and_then(|h| h.to_str().ok())
    {
        state.note_host(host);
    }
    let refusal = if percent_encoding_decoded(&path).chars().any(is_forbidden_in_identifier) {
        Some(Refusal::NotFound)
    } else if PROTOCOL_PATHS.contains(&path.as_str()) {
        None
    } else if percent_decoded_has(req.query_string(), is_forbidden_in_identifier) {
        // A lookup by an identifier no item can have finds nothing; anything else is malformed.
        let lookup = url::form_urlencoded::parse(req.query_string().as_bytes())
            .any(|(k, v)| k == "identifier" && v.chars().any(is_forbidden_in_identifier));
        Some(if lookup { Refusal::NotFound } else { Refusal::BadRequest })
    } else {
        let content_type =
            req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let form = content_type.starts_with("application/x-www-form-urlencoded");
        let json = content_type.starts_with("application/json") || content_type.contains("+json");
        if form || json {
            let body = req.extract::<Bytes>().await?;
            let bad = if form {
                std::str::from_utf8(&body).is_ok_and(|text| percent_decoded_has(text, forbidden_in_body))
            } else {
                // An escaped NUL; a raw one is not valid JSON and fails at parsing.
                body.windows(6).any(|w| w == b"\\u0000")
            };
            req.set_payload(actix_web::dev::Payload::from(body));
            bad.then_some(Refusal::BadRequest)
        } else {
            None
        }
    };
    match refusal {
        Some(refusal) => {
            tracing::info!(%path, "refused a request holding control characters");
            Ok(req.into_response(respond(&path, refusal)))
        }
        None => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

/// The path with `%XX` escapes decoded (as the router's path parameters will be).
fn percent_encoding_decoded(path: &str) -> String {
    url::form_urlencoded::parse(format!("p={}", path.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_found_after_decoding() {
        assert!(super::percent_encoding_decoded("/admin/api/clients/a%00b").contains('\0'));
        assert!(!super::percent_encoding_decoded("/admin/api/clients/a+b").chars().any(char::is_control));
        assert!(super::percent_decoded_has("q=al%01ice", char::is_control));
        assert!(!super::percent_decoded_has("claims=%7B%0A%7D", super::forbidden_in_body));
        assert!(super::percent_decoded_has("username=a%00", super::forbidden_in_body));
    }
}
