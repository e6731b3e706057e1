//! The request deadline: no request waits on the database (or anything else) for longer
//! than `database_timeout`. Past it the handler is dropped, which rolls its transaction
//! back, and the caller gets a 503 in the form it reads: the HTML error page on browser
//! pages, RFC 6749-style JSON elsewhere. Every 503, whoever made it, carries `Retry-After`.

use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::state::AppState;
use crate::web::pages;

/// Seconds a client is asked to wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// Slack over the database deadline, so that a query cancelled by the database itself
/// reports its own (more precise) error before this deadline cuts in.
const MARGIN: Duration = Duration::from_secs(1);

/// What a caller is told when its request ran out of time.
pub fn unavailable(page: bool) -> HttpResponse {
    let mut response = if page {
        pages::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "Lanyard could not reach its database in time. Please try again in a moment.",
        )
    } else {
        HttpResponse::ServiceUnavailable().insert_header((header::CACHE_CONTROL, "no-store")).json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "the server could not reach its database in time; retry shortly",
        }))
    };
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

/// Bounds the request by `database_timeout` and adds `Retry-After` to every 503.
pub async fn deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limit = req.app_data::<web::Data<AppState>>().map(|s| s.config.database_timeout + MARGIN);
    let page = pages::is_browser_page(req.path());
    // No clone of the request itself: routing needs to own it alone.
    let (method, path) = (req.method().clone(), req.path().to_owned());
    let call = next.call(req);
    let outcome = match limit {
        Some(limit) => tokio::time::timeout(limit, call).await,
        None => Ok(call.await),
    };
    let mut response = match outcome {
        Ok(result) => result?.map_into_boxed_body(),
        Err(_) => {
            tracing::warn!(%method, %path, "request abandoned at its deadline (database_timeout); answered 503");
            // The request went down with the handler, so the answer travels as an error
            // that actix renders with this response.
            let error = actix_web::error::InternalError::from_response("request deadline", unavailable(page));
            return Err(error.into());
        }
    };
    if response.status() == StatusCode::SERVICE_UNAVAILABLE && !response.headers().contains_key(header::RETRY_AFTER) {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    Ok(response)
}
