//! The recording middleware: around the recorded endpoints it copies the request body as
//! the handler reads it and buffers the (small) response, then hands what it saw, masked,
//! to the [`Recorder`](super::Recorder). Wired only with development features on.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use futures_util::Stream;
use futures_util::StreamExt;
use serde_json::Value;

use super::{ActivityContext, Draft, FormPosted, PageMessage, mask};
use crate::state::AppState;

/// The recorded endpoints, by path: one line records another one.
pub const RECORDED: [(&str, &str); 14] = [
    ("/authorize", "authorize"),
    ("/authorize/continue", "authorize"),
    ("/login", "login"),
    ("/login/persona", "login"),
    ("/consent", "consent"),
    ("/token", "token"),
    ("/userinfo", "userinfo"),
    ("/introspect", "introspect"),
    ("/revoke", "revoke"),
    ("/logout", "logout"),
    ("/register", "register"),
    ("/par", "par"),
    ("/device_authorization", "device_authorization"),
    ("/device", "device"),
];

/// The most of a request body kept (protocol bodies are far smaller; the rest is cut).
const MAX_REQUEST_BODY: usize = 64 * 1024;
/// Responses larger than this (none of the protocol's) are passed on unread.
const MAX_RESPONSE_BODY: u64 = 256 * 1024;

/// The recorder's name for a path, if it is recorded.
pub fn endpoint_of(path: &str) -> Option<&'static str> {
    if let Some((_, name)) = RECORDED.iter().find(|(p, _)| *p == path) {
        return Some(name);
    }
    // RFC 7592: reading or deleting a registration.
    path.starts_with("/register/").then_some("register")
}

/// Records the exchanges of the endpoints in [`RECORDED`]; passes everything else on.
pub async fn record(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let (Some(endpoint), Some(state)) = (endpoint_of(req.path()), state) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if !state.activity.is_on() || req.method() == actix_web::http::Method::OPTIONS {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let started = Instant::now();
    let at = state.now();
    let method = req.method().to_string();
    let path = req.path().to_owned();
    let query = req.query_string().to_owned();
    let request_headers = req.headers().clone();
    // The body, copied as the handler reads it: nothing changes for the handler.
    let copied = Rc::new(RefCell::new(BytesMut::new()));
    let sink = copied.clone();
    let original = std::mem::replace(req.parts_mut().1, Payload::None);
    let tee = original.inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            let mut sink = sink.borrow_mut();
            let room = MAX_REQUEST_BODY.saturating_sub(sink.len());
            sink.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    });
    let tee: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(tee);
    req.set_payload(Payload::from(tee));

    let mut draft = Draft { at, endpoint: endpoint.to_owned(), method, ..Draft::default() };
    draft.detail.path = path;
    let outcome = next.call(req).await;
    let response = match outcome {
        Ok(response) => response.map_into_boxed_body(),
        Err(error) => {
            // The deadline gave up on the request: its answer is all there is to record.
            draft.status = error.as_response_error().status_code().as_u16();
            draft.error = Some("temporarily_unavailable".into());
            draft.error_description = Some(error.to_string());
            draft.duration_ms = elapsed_ms(started);
            read_request(&mut draft, &query, &request_headers, &copied.borrow());
            state.activity.submit(draft);
            return Err(error);
        }
    };
    let (http_request, response) = response.into_parts();
    let (response, body) = response.into_parts();
    let (response, bytes) = match body.size() {
        BodySize::Sized(size) if size <= MAX_RESPONSE_BODY => {
            let bytes = actix_web::body::to_bytes(body).await.map_err(actix_web::error::ErrorInternalServerError)?;
            (response.set_body(BoxBody::new(bytes.clone())), Some(bytes))
        }
        _ => (response.set_body(body), None),
    };
    draft.duration_ms = elapsed_ms(started);
    draft.status = response.status().as_u16();
    if let Some(context) = http_request.extensions().get::<ActivityContext>() {
        draft.context = context.clone();
    }
    read_request(&mut draft, &query, &request_headers, &copied.borrow());
    // An administrator's sign-in is not a protocol exchange.
    let protocol_login = draft.endpoint != "login" || draft.detail.params.iter().any(|p| p.name == "request_id");
    if protocol_login {
        read_response(&mut draft, response.headers(), bytes.as_deref());
        if let Some(posted) = response.extensions().get::<FormPosted>() {
            let fields: Vec<(&str, &str)> = posted.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            read_redirect(&mut draft, &posted.action, &fields);
        }
        if draft.status >= 400
            && draft.error.is_none()
            && let Some(page) = response.extensions().get::<PageMessage>()
        {
            draft.error = Some(page.title.clone());
            draft.error_description = Some(page.message.clone());
        }
        state.activity.submit(draft);
    }
    Ok(ServiceResponse::new(http_request, response))
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// The query, the body (form or JSON) and the Authorization header, masked.
fn read_request(draft: &mut Draft, query: &str, headers: &HeaderMap, body: &[u8]) {
    let add = |draft: &mut Draft, name: &str, value: &str, source: &str| {
        let (param, jwt) = mask::param(name, value, source);
        if let Some(jwt) = jwt {
            draft.jwts.push((format!("request {name}"), jwt));
        }
        draft.detail.params.push(param);
    };
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        add(draft, &name, &value, "query");
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let content_type = content_type.to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        for (name, value) in url::form_urlencoded::parse(body) {
            add(draft, &name, &value, "form");
        }
    } else if content_type.contains("json")
        && let Ok(json) = serde_json::from_slice::<Value>(body)
    {
        let mut jwts = Vec::new();
        draft.detail.body = Some(mask::json(&json, &mut jwts));
        draft.jwts.extend(jwts.into_iter().map(|(name, jwt)| (format!("request {name}"), jwt)));
    }
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (param, client_id, jwt) = mask::authorization(value);
        draft.detail.params.push(param);
        if let Some(jwt) = jwt {
            draft.jwts.push(("request bearer token".into(), jwt));
        }
        draft.client_hint = draft.client_hint.take().or(client_id);
    }
    let named = |name: &str| draft.detail.params.iter().find(|p| p.name == name && !p.masked).map(|p| p.value.clone());
    draft.client_hint = draft.client_hint.take().or_else(|| named("client_id"));
    if draft.endpoint == "login" {
        draft.username_hint = named("username");
    }
}

/// The response: a JSON body's error and tokens, a redirect's target and parameters, a
/// bearer challenge, a signed userinfo response.
fn read_response(draft: &mut Draft, headers: &HeaderMap, body: Option<&[u8]>) {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let content_type = content_type.to_ascii_lowercase();
    if let Some(body) = body {
        if content_type.contains("json")
            && let Ok(json) = serde_json::from_slice::<Value>(body)
        {
            let text = |name: &str| json.get(name).and_then(Value::as_str).map(str::to_owned);
            draft.error = text("error");
            draft.error_description = text("error_description");
            if draft.endpoint == "register" && draft.client_hint.is_none() {
                draft.client_hint = text("client_id");
            }
            let mut jwts = Vec::new();
            draft.detail.response = Some(mask::json(&json, &mut jwts));
            draft.jwts.extend(jwts.into_iter().map(|(name, jwt)| (format!("response {name}"), jwt)));
        } else if content_type.starts_with("application/jwt")
            && let Ok(text) = std::str::from_utf8(body)
            && mask::looks_like_jwt(text.trim())
        {
            // A signed userinfo response (OIDC Core §5.3.2).
            draft.jwts.push(("response signed userinfo".into(), text.trim().to_owned()));
        } else if content_type.starts_with("text/html") && draft.status == 200 {
            draft.detail.note = Some(page_note(body));
        }
    }
    if let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
        let (target, query) = location.split_once('?').unwrap_or((location, ""));
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let fields: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        read_redirect(draft, target, &fields);
    }
    if draft.error.is_none()
        && let Some(challenge) = headers.get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok())
    {
        draft.error = challenge_param(challenge, "error");
        draft.error_description = challenge_param(challenge, "error_description");
    }
}

/// A redirect (or form_post) to `target` with `fields`: its error, its parameters (the code
/// masked) and the target without the secrets.
fn read_redirect(draft: &mut Draft, target: &str, fields: &[(&str, &str)]) {
    let mut kept = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (name, value) in fields {
        match *name {
            "error" => draft.error = Some((*value).to_owned()),
            "error_description" => draft.error_description = Some((*value).to_owned()),
            _ => {}
        }
        let (param, _) = mask::param(name, value, "redirect");
        if !param.masked {
            kept.append_pair(name, value);
            any = true;
        }
        draft.detail.params.push(param);
    }
    let kept = kept.finish();
    draft.detail.redirect = Some(if any { format!("{target}?{kept}") } else { target.to_owned() });
}

/// `error="invalid_token"` out of a `WWW-Authenticate` challenge (RFC 6750 §3).
fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    let marker = format!("{name}=\"");
    let mut rest = challenge;
    // `error=` must not match inside `error_description=`.
    while let Some(start) = rest.find(&marker) {
        let before = rest[..start].chars().last();
        let value = &rest[start + marker.len()..];
        if before.is_none_or(|c| c == ' ' || c == ',') {
            return value.find('"').map(|end| value[..end].to_owned());
        }
        rest = value;
    }
    None
}

/// What a page shown instead of a redirect was, in a few words.
fn page_note(html: &[u8]) -> String {
    let html = String::from_utf8_lossy(html);
    let title = html
        .find("<title>")
        .and_then(|start| html[start + 7..].find("</title>").map(|end| html[start + 7..start + 7 + end].trim()))
        .unwrap_or("a page");
    // Askama's escapes, undone for reading (the note is escaped again where it is shown).
    let title = [("&#39;", "'"), ("&quot;", "\""), ("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&")]
        .iter()
        .fold(title.to_owned(), |text, (escaped, plain)| text.replace(escaped, plain));
    format!("Page shown: {title}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn challenge_parameters_are_read() {
        let challenge = r#"Bearer realm="x", error="invalid_token", error_description="the token expired""#;
        assert_eq!(super::challenge_param(challenge, "error").as_deref(), Some("invalid_token"));
        assert_eq!(super::challenge_param(challenge, "error_description").as_deref(), Some("the token expired"));
        assert_eq!(super::challenge_param("Bearer realm=\"x\"", "error"), None);
    }

    #[test]
    fn recorded_paths_have_names() {
        assert_eq!(super::endpoint_of("/token"), Some("token"));
        assert_eq!(super::endpoint_of("/register/abc"), Some("register"));
        assert_eq!(super::endpoint_of("/admin"), None);
    }
}
