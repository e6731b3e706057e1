//! The admin API's one error type, rendered as RFC 7807 problem details
//! (`application/problem+json`): `type`, `title`, `status`, `detail`, and for a 422 an
//! `errors` array of `{field, message}`.

use std::fmt;

use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use crate::registry::{FieldErrors, RegistryError};
use crate::store::StoreError;

/// Why an admin API request failed.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    detail: String,
    errors: Option<FieldErrors>,
    /// RFC 6750 §3: the `WWW-Authenticate` challenge of a 401.
    challenge: Option<&'static str>,
}

/// The wire form (RFC 7807 §3.1).
#[derive(Serialize)]
struct Body<'a> {
    /// `about:blank`: each problem means what its status code means (RFC 7807 §4.2).
    r#type: &'static str,
    title: &'static str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a FieldErrors>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self { status, detail: detail.into(), errors: None, challenge: None }
    }

    /// No admin token was presented.
    pub fn token_missing() -> Self {
        Self {
            challenge: Some("Bearer realm=\"lanyard-admin-api\""),
            ..Self::new(StatusCode::UNAUTHORIZED, "an admin token is required: Authorization: Bearer <token>")
        }
    }

    /// An admin token was presented, but it is not (or no longer) valid.
    pub fn token_invalid() -> Self {
        Self {
            challenge: Some("Bearer realm=\"lanyard-admin-api\", error=\"invalid_token\""),
            ..Self::new(StatusCode::UNAUTHORIZED, "the admin token is not valid")
        }
    }

    pub fn not_found(what: impl fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// A 422 naming every invalid field.
    pub fn invalid(errors: FieldErrors) -> Self {
        Self {
            errors: Some(errors),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "the request has invalid fields: see `errors`")
        }
    }

    /// A body that is JSON but not of the expected shape (a missing or unknown member, a
    /// wrong type): the caller must fix the request, as for malformed JSON.
    pub fn wrong_shape(error: &serde_json::Error) -> Self {
        Self::bad_request(format!("the body does not have the expected members: {error}"))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.as_u16(), self.detail)
    }
}

impl From<FieldErrors> for Problem {
    fn from(errors: FieldErrors) -> Self {
        Self::invalid(errors)
    }
}

impl From<RegistryError> for Problem {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Invalid(errors) => Self::invalid(errors),
            RegistryError::Conflict(what) => Self::new(StatusCode::CONFLICT, format!("{what} already exists")),
            RegistryError::NotFound(what) => Self::not_found(what),
            RegistryError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure in the admin API");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "the server cannot reach its database; retry shortly")
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = Body {
            r#type: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            errors: self.errors.as_ref(),
        };
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(challenge) = self.challenge {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge)));
        }
        match serde_json::to_vec(&body) {
            Ok(json) => response.content_type("application/problem+json").body(json),
            Err(_) => response.finish(),
        }
    }
}

/// The `web::JsonConfig` error handler of the admin API: a body actix cannot read as the
/// handler's type becomes a problem rather than actix's plain-text answer.
pub fn json_error(error: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let problem = match &error {
        JsonPayloadError::ContentType => {
            Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the body must be JSON (Content-Type: application/json)")
        }
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large")
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => Problem::wrong_shape(e),
        JsonPayloadError::Deserialize(e) => Problem::bad_request(format!("the body is not valid JSON: {e}")),
        other => Problem::bad_request(format!("the body cannot be read: {other}")),
    };
    problem.into()
}

/// The `web::QueryConfig` error handler of the admin API (`?identifier=` missing, …).
pub fn query_error(error: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    Problem::bad_request(format!("the query string is not as expected: {error}")).into()
}
