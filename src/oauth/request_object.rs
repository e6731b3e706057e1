//! Request objects (OIDC Core §6, RFC 9101): authorization parameters sent as a JWT signed
//! by the client, by value (`request`) or by reference (`request_uri`, a URL the client
//! registered, fetched SSRF-safely).
//!
//! A request object is only accepted signed, with one of the client's registered keys
//! ([`client_signature`]): an unsigned one (`alg: none`) proves nothing a query string does
//! not, and Lanyard never accepts `alg: none` anywhere. Once verified, its members take
//! precedence over the query's (OIDC Core §6.3.3), and the merged parameters are read by
//! the one parser every authorization request goes through, `AuthorizationRequest::parse`.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::client_jwks::JwksCache;
use super::client_metadata::fetch_bounded_as;
use super::client_signature::{self, AlgRule};
use super::par::PAR_URN_PREFIX;
use super::params::Params;
use crate::registry::client::Client;
use crate::registry::client_keys::parse_fetchable_url;
use crate::tokens::verify::Validity;

/// The largest request object read, by value or fetched (a full authorization request
/// with a `claims` member is a few KiB).
pub const MAX_REQUEST_OBJECT_BYTES: usize = 16 * 1024;
/// RFC 9101 §5.2 / OIDC Core §6.2: a request_uri is at most 512 characters.
const MAX_REQUEST_URI_CHARS: usize = 512;
/// JWT claims of the object itself, not authorization parameters.
const JWT_CLAIMS: [&str; 7] = ["iss", "aud", "exp", "nbf", "iat", "jti", "sub"];

/// A URL a client registered to pass as `request_uri` (`request_uris`, OIDC Dynamic
/// Client Registration §2): `https` (or `http` on loopback, fetched only in dev mode), no
/// credentials. A fragment is allowed (OIDC Core §6.2: a hash of the contents) and is not
/// part of what is matched or fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUri(url::Url);

impl RequestUri {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() > MAX_REQUEST_URI_CHARS {
            return Err(format!("must be at most {MAX_REQUEST_URI_CHARS} characters"));
        }
        let url = parse_fetchable_url(raw)?;
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether `requested` names this URL, the fragments aside (OIDC Core §6.2).
    pub fn matches(&self, requested: &url::Url) -> bool {
        without_fragment(&self.0) == without_fragment(requested)
    }
}

fn without_fragment(url: &url::Url) -> url::Url {
    let mut url = url.clone();
    url.set_fragment(None);
    url
}

impl fmt::Display for RequestUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RequestUri {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Why a request object was refused: an OAuth error code (OIDC Core §3.1.2.6, RFC 9101
/// §6.2) and a description for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: &'static str,
    pub description: String,
}

fn refuse(error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal { error, description: description.into() }
}

/// What a request object is checked against.
pub struct Checks<'a> {
    /// The issuer identifier: an `aud` must name it.
    pub issuer: &'a str,
    pub at: Validity,
    /// Clients' `jwks_uri` key sets.
    pub jwks: &'a JwksCache,
    /// Dev mode: a request_uri on loopback is fetched.
    pub allow_loopback: bool,
}

/// An authorization request's parameters with its request object, if it had one, verified
/// and merged in: what `AuthorizationRequest::parse` reads, so that no request object is
/// ever ignored on the way.
#[derive(Debug, Clone)]
pub struct AuthorizationParams(Params);

impl AuthorizationParams {
    pub fn as_params(&self) -> &Params {
        &self.0
    }

    /// The parameters of a pushed request (RFC 9126), resolved by [`resolve`] when they
    /// were pushed: a request object among them was verified and merged in at `/par`.
    pub(crate) fn pushed(params: Params) -> Self {
        Self(params)
    }
}

/// The authorization parameters of `query`: with its request object, if it has one,
/// verified and merged in.
pub async fn resolve(query: &Params, client: &Client, checks: &Checks<'_>) -> Result<AuthorizationParams, Refusal> {
    let invalid = |e: super::params::ParamError| refuse("invalid_request", e.to_string());
    let by_value = query.single("request").map_err(invalid)?;
    let by_reference = query.single("request_uri").map_err(invalid)?;
    let has_keys = client.jwks.is_some() || client.jwks_uri.is_some();
    let object = match (by_value, by_reference) {
        (None, None) => return Ok(AuthorizationParams(query.clone())),
        (Some(_), Some(_)) => {
            return Err(refuse(
                "invalid_request",
                "send the request object by value (request) or by reference (request_uri), not both",
            ));
        }
        (Some(_), None) | (None, Some(_)) if !has_keys => {
            let error = if by_value.is_some() { "request_not_supported" } else { "request_uri_not_supported" };
            return Err(refuse(
                error,
                "this client has no registered keys: register jwks or jwks_uri to sign request objects",
            ));
        }
        (Some(value), None) => {
            if value.len() > MAX_REQUEST_OBJECT_BYTES {
                return Err(refuse(
                    "invalid_request_object",
                    format!("the request object is larger than {MAX_REQUEST_OBJECT_BYTES} bytes"),
                ));
            }
            value.to_owned()
        }
        (None, Some(uri)) => fetch(uri, client, checks).await?,
    };
    let members = verify(&object, client, checks).await?;
    merge(query, members).map(AuthorizationParams)
}

/// The request object a registered `request_uri` serves. Nothing is fetched for a URL the
/// client did not register: a request_uri is not a way to make the server fetch a URL.
async fn fetch(requested: &str, client: &Client, checks: &Checks<'_>) -> Result<String, Refusal> {
    let bad_uri = |description: String| refuse("invalid_request_uri", description);
    // A pushed request's reference is taken by `/authorize` before request objects are
    // looked at (`par::take`); one reaching here was pushed inside another request.
    if requested.starts_with(PAR_URN_PREFIX) {
        return Err(bad_uri(
            "a pushed request's request_uri (RFC 9126) is used alone at /authorize, never inside a request".into(),
        ));
    }
    let url = url::Url::parse(requested).map_err(|_| bad_uri("the request_uri is not an absolute URL".into()))?;
    if !client.request_uris.iter().any(|r| r.matches(&url)) {
        return Err(bad_uri(format!(
            "the request_uri {requested:?} is not registered for this client (register it in request_uris)"
        )));
    }
    let target = without_fragment(&url);
    let accept = "application/oauth-authz-req+jwt, application/jwt";
    let (body, _) =
        fetch_bounded_as(target.as_str(), "the request_uri", accept, checks.allow_loopback, MAX_REQUEST_OBJECT_BYTES)
            .await
            .map_err(|why| bad_uri(format!("the request_uri could not be used: {why}")))?;
    let text = std::str::from_utf8(&body).map(str::trim).unwrap_or_default();
    if text.split('.').count() != 3 || text.chars().any(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(c))) {
        return Err(bad_uri("the request_uri does not serve a signed JWT (a compact JWS)".into()));
    }
    Ok(text.to_owned())
}

/// The members of a request object signed by `client`, checked (OIDC Core §6.3.2,
/// RFC 9101 §6.3).
async fn verify(object: &str, client: &Client, checks: &Checks<'_>) -> Result<Map<String, Value>, Refusal> {
    let bad = |description: String| refuse("invalid_request_object", description);
    if object.split('.').count() != 3 {
        return Err(bad(
            "the request object is not a signed JWT (a compact JWS; encrypted ones are not supported)".into()
        ));
    }
    let header = client_signature::header_of(object).map_err(&bad)?;
    if header.algorithm().is_none_or(|alg| alg == "none") {
        return Err(bad(
            "request objects must be signed with one of the client's registered keys (alg none is not accepted)".into(),
        ));
    }
    let rule = AlgRule { registered: client.request_object_alg, setting: "request_object_signing_alg" };
    let payload = client_signature::verify(object, client, checks.jwks, rule)
        .await
        .map_err(|why| bad(format!("the request object is not accepted: {why}")))?;
    let members: Map<String, Value> = serde_json::from_slice(&payload)
        .map_err(|_| bad("the request object's payload is not a JSON object".into()))?;
    check_claims(&members, &client.client_id, checks).map_err(bad)?;
    Ok(members)
}

/// The claims about the object itself, each checked only when present (OIDC Core §6.1
/// makes them optional; RFC 9101 §4 recommends them).
fn check_claims(members: &Map<String, Value>, client_id: &str, checks: &Checks<'_>) -> Result<(), String> {
    for name in ["iss", "client_id"] {
        if let Some(value) = members.get(name)
            && value.as_str() != Some(client_id)
        {
            return Err(format!("its {name} is not the client_id {client_id:?}"));
        }
    }
    match members.get("aud") {
        None => {}
        Some(Value::String(aud)) if aud == checks.issuer => {}
        Some(Value::Array(auds)) if auds.iter().any(|a| a.as_str() == Some(checks.issuer)) => {}
        Some(_) => return Err(format!("its aud does not name this server ({:?})", checks.issuer)),
    }
    let time = |name: &str| match members.get(name) {
        None => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| format!("its {name} is not a number")),
    };
    checks
        .at
        .check_if_present(time("exp")?, time("nbf")?, time("iat")?)
        .map_err(|why| format!("it is not valid now: {why}"))?;
    for name in ["request", "request_uri"] {
        if members.contains_key(name) {
            return Err(format!("a request object must not contain {name}"));
        }
    }
    Ok(())
}

/// The query's parameters with the object's members in their place (OIDC Core §6.3.3).
fn merge(query: &Params, members: Map<String, Value>) -> Result<Params, Refusal> {
    let mut merged = query.clone();
    merged.remove("request");
    merged.remove("request_uri");
    // OIDC Core §6.1: response_type and client_id in the query must match the object's.
    if let (Ok(Some(sent)), Some(inside)) = (query.single("response_type"), members.get("response_type"))
        && inside.as_str() != Some(sent)
    {
        return Err(refuse("invalid_request", "response_type differs between the query and the request object"));
    }
    for (name, value) in members {
        if JWT_CLAIMS.contains(&name.as_str()) {
            continue;
        }
        let values = match value {
            Value::Null => continue,
            Value::String(s) => vec![s],
            // RFC 8707: several resources are a list.
            Value::Array(list) if name == "resource" => {
                let mut values = Vec::with_capacity(list.len());
                for item in list {
                    match item {
                        Value::String(s) => values.push(s),
                        _ => return Err(refuse("invalid_request_object", "its resource list must hold strings")),
                    }
                }
                values
            }
            Value::Number(n) => vec![n.to_string()],
            Value::Bool(b) => vec![b.to_string()],
            // `claims` is a JSON object inside a request object (OIDC Core §5.5): the
            // parser reads it as the JSON text the query would carry.
            other @ (Value::Object(_) | Value::Array(_)) => vec![other.to_string()],
        };
        merged.set(&name, values);
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_uri_matches_without_its_fragment_and_nothing_else() {
        let registered = RequestUri::parse("https://rp.example/ro/abc#hash1").unwrap();
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert!(registered.matches(&url("https://rp.example/ro/abc")));
        assert!(registered.matches(&url("https://rp.example/ro/abc#other")));
        assert!(!registered.matches(&url("https://rp.example/ro/abcd")));
        assert!(!registered.matches(&url("https://rp.example/ro/abc?x=1")));
        assert!(!registered.matches(&url("http://rp.example/ro/abc")));
    }

    #[test]
    fn request_uris_must_be_https_unless_loopback_and_short() {
        assert!(RequestUri::parse("http://127.0.0.1:9000/ro#f").is_ok());
        assert!(RequestUri::parse("http://rp.example/ro").is_err());
        assert!(RequestUri::parse("https://user:pw@rp.example/ro").is_err());
        assert!(RequestUri::parse(&format!("https://rp.example/{}", "a".repeat(600))).is_err());
        assert!(RequestUri::parse("/relative").is_err());
    }

    fn checks(jwks: &JwksCache) -> Checks<'_> {
        Checks { issuer: "https://idp.test", at: Validity { now: 1_000_000, leeway: 30 }, jwks, allow_loopback: false }
    }

    #[test]
    fn claims_are_checked_only_when_present() {
        let cache = JwksCache::new(false);
        let checks = checks(&cache);
        let ok = |v: Value| check_claims(v.as_object().unwrap(), "c", &checks);
        assert!(ok(serde_json::json!({})).is_ok());
        assert!(ok(serde_json::json!({"iss": "c", "aud": ["x", "https://idp.test"], "exp": 1_000_010})).is_ok());
        let cases = [
            (serde_json::json!({"iss": "other"}), "iss"),
            (serde_json::json!({"client_id": "other"}), "client_id"),
            (serde_json::json!({"aud": "https://elsewhere.test"}), "aud"),
            (serde_json::json!({"exp": 999_000}), "expired"),
            (serde_json::json!({"nbf": 1_001_000}), "nbf"),
            (serde_json::json!({"exp": "soon"}), "number"),
            (serde_json::json!({"request_uri": "https://x"}), "request_uri"),
        ];
        for (claims, reason) in cases {
            let error = ok(claims).unwrap_err();
            assert!(error.contains(reason), "{reason}: {error}");
        }
    }

    #[test]
    fn the_object_takes_precedence_and_its_claims_object_becomes_json_text() {
        let query =
            Params::parse(b"client_id=c&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fbad&request=x");
        let members = serde_json::json!({
            "redirect_uri": "https://good", "max_age": 60, "claims": {"userinfo": {"email": null}},
            "resource": ["https://api.a", "https://api.b"], "iss": "c", "exp": 5,
        });
        let merged = merge(&query, members.as_object().unwrap().clone()).unwrap();
        assert_eq!(merged.single("redirect_uri").unwrap(), Some("https://good"));
        assert_eq!(merged.single("max_age").unwrap(), Some("60"));
        assert_eq!(merged.single("claims").unwrap(), Some(r#"{"userinfo":{"email":null}}"#));
        assert_eq!(merged.all("resource").unwrap(), vec!["https://api.a", "https://api.b"]);
        assert_eq!(merged.single("request").unwrap(), None);
        assert_eq!(merged.single("iss").unwrap(), None);
        assert_eq!(merged.single("scope").unwrap(), Some("openid"));
        let other_type = serde_json::json!({"response_type": "token"});
        assert_eq!(merge(&query, other_type.as_object().unwrap().clone()).unwrap_err().error, "invalid_request");
    }
}
