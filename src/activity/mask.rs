//! What the recorder may keep of a parameter: secrets masked, JWTs set aside to be decoded.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::Param;

/// Parameters (and JSON members) whose values are secrets or bearer credentials.
const SECRETS: [&str; 20] = [
    "client_secret",
    "password",
    "code",
    "refresh_token",
    "code_verifier",
    "client_assertion",
    "device_code",
    "user_code",
    "subject_token",
    "actor_token",
    "token",
    "access_token",
    "id_token",
    "id_token_hint",
    "logout_token",
    "request",
    "csrf_token",
    "registration_access_token",
    "initial_access_token",
    "new_password",
];

/// Of those, the ones that may hold a JWT worth decoding.
const JWTS: [&str; 9] = [
    "client_assertion",
    "subject_token",
    "actor_token",
    "token",
    "access_token",
    "id_token",
    "id_token_hint",
    "logout_token",
    "request",
];

/// Whether `name` names a secret.
pub fn is_secret(name: &str) -> bool {
    SECRETS.contains(&name)
}

/// `abcd…(masked, 43 chars)`: enough to tell two values apart, not enough to use one. A
/// short value (a password) shows none of its characters.
pub fn mask(value: &str) -> String {
    let length = value.chars().count();
    if length >= 16 {
        let head: String = value.chars().take(4).collect();
        format!("{head}…(masked, {length} chars)")
    } else {
        format!("…(masked, {length} chars)")
    }
}

/// Whether `value` has the shape of a compact JWS (three base64url parts).
pub fn looks_like_jwt(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts.iter().take(2).all(|p| !p.is_empty())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

/// What the recorder keeps of one parameter, and the JWT it holds (to be decoded), if any.
pub fn param(name: &str, value: &str, source: &str) -> (Param, Option<String>) {
    let secret = is_secret(name);
    let jwt = (JWTS.contains(&name) && looks_like_jwt(value)).then(|| value.to_owned());
    let shown = if secret { mask(value) } else { value.to_owned() };
    (Param { name: name.to_owned(), value: shown, source: source.to_owned(), masked: secret }, jwt)
}

/// The `Authorization` header as recorded: the scheme, Basic's client id, the rest masked;
/// also the client id (Basic) and the bearer JWT (to be decoded), if any.
pub fn authorization(header: &str) -> (Param, Option<String>, Option<String>) {
    let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
    let credentials = credentials.trim();
    let mut client_id = None;
    let mut jwt = None;
    let shown = if scheme.eq_ignore_ascii_case("basic") {
        // RFC 6749 §2.3.1: id and secret are form-encoded, then joined by a colon.
        let decoded = STANDARD.decode(credentials).ok().and_then(|b| String::from_utf8(b).ok());
        match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((id, secret)) => {
                let id = url_decoded(id);
                let shown = format!("Basic {id}:{}", mask(&url_decoded(secret)));
                client_id = Some(id);
                shown
            }
            None => format!("Basic {}", mask(credentials)),
        }
    } else {
        if scheme.eq_ignore_ascii_case("bearer") && looks_like_jwt(credentials) {
            jwt = Some(credentials.to_owned());
        }
        format!("{scheme} {}", mask(credentials))
    };
    let param = Param { name: "Authorization".into(), value: shown, source: "header".into(), masked: true };
    (param, client_id, jwt)
}

fn url_decoded(raw: &str) -> String {
    url::form_urlencoded::parse(format!("v={}", raw.replace('&', "%26")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A JSON value with every secret member masked (at any depth); the JWTs found are pushed
/// onto `jwts` as (member name, token).
pub fn json(value: &Value, jwts: &mut Vec<(String, String)>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, member)| {
                    let shown = match member {
                        Value::String(s) if is_secret(name) => {
                            if JWTS.contains(&name.as_str()) && looks_like_jwt(s) {
                                jwts.push((name.clone(), s.clone()));
                            }
                            Value::String(mask(s))
                        }
                        other => json(other, jwts),
                    };
                    (name.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|item| json(item, jwts)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_jwts_set_aside() {
        let code = "SplxlOBeZQQYbYS6WxSbIA-0123456789abcdefghij";
        let (p, jwt) = param("code", code, "form");
        assert_eq!(p.value, format!("Splx…(masked, {} chars)", code.len()));
        assert!(p.masked && jwt.is_none());
        let (p, _) = param("password", "hunter2", "form");
        assert_eq!(p.value, "…(masked, 7 chars)");
        let (p, _) = param("state", "xyz", "query");
        assert_eq!(p.value, "xyz");
        let (p, jwt) = param("id_token_hint", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "query");
        assert!(p.masked && !p.value.contains("eyJzdWIi"));
        assert_eq!(jwt.as_deref(), Some("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
    }

    #[test]
    fn basic_credentials_keep_the_client_id_only() {
        let header = format!("Basic {}", STANDARD.encode("my%20app:s3cret-s3cret-s3cret"));
        let (p, client_id, _) = authorization(&header);
        assert_eq!(client_id.as_deref(), Some("my app"));
        assert_eq!(p.value, "Basic my app:s3cr…(masked, 20 chars)");
        let (p, _, jwt) = authorization("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln");
        assert!(!p.value.contains("eyJzdWIi") && jwt.is_some());
    }

    #[test]
    fn json_secrets_are_masked_at_any_depth() {
        let mut jwts = Vec::new();
        let body =
            serde_json::json!({"client_secret": "0123456789abcdefXYZ", "nested": [{"refresh_token": "r"}], "ok": 1});
        let shown = json(&body, &mut jwts);
        let text = shown.to_string();
        assert!(!text.contains("0123456789abcdefXYZ") && text.contains("masked, 19 chars"), "{text}");
        assert_eq!(shown["nested"][0]["refresh_token"], "…(masked, 1 chars)");
    }
}
