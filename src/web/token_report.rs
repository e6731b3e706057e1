//! What a token is, in plain words: decoded header and claims, whether this server's keys
//! verify it, whether it has expired, is not valid yet or was revoked, and what it is for.
//! Shared by the admin page's token inspector, the playground and the protocol recorder
//! (`crate::activity`). Anything, however broken, gets an explanation (never an error page).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::state::AppState;
use crate::store::{Store, StoreError};
use crate::tokens::claims::{ACCESS_TOKEN_TYP, AccessTokenClaims, Audience, LOGOUT_TOKEN_TYP};
use crate::tokens::keys::KeyManager;
use crate::web::admin::when;

/// A JSON object: a JWT's header or claims.
type Object = Map<String, Value>;

/// One check and how it came out.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: &'static str,
    /// "ok", "bad" or "info" (a CSS class too).
    pub outcome: &'static str,
    pub text: String,
}

impl Check {
    fn new(name: &'static str, ok: bool, text: String) -> Self {
        Self { name, outcome: if ok { "ok" } else { "bad" }, text }
    }

    /// A fact that is neither good nor bad (a client's own signature, say).
    fn info(name: &'static str, text: String) -> Self {
        Self { name, outcome: "info", text }
    }
}

/// What a report is made with: this server's keys, issuer, database and protocol clock.
/// Borrowed from the [`AppState`] for a page; the recorder holds its own copies.
pub struct Inspector<'a> {
    pub store: &'a Store,
    pub keys: &'a KeyManager,
    pub config: &'a Config,
}

impl<'a> Inspector<'a> {
    pub fn of(state: &'a AppState) -> Self {
        Self { store: &state.store, keys: &state.keys, config: &state.config }
    }
}

/// What was found out about a token.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// "access token", "id_token", "logout token", "request object", "client assertion" or "JWT".
    pub kind: &'static str,
    /// What the token is for, in one or two sentences.
    pub summary: String,
    /// "valid", "expired", "revoked", "not-yet-valid", "invalid" or, for a JWT a client
    /// signed, "client-signed" (a CSS class too).
    pub verdict: &'static str,
    pub checks: Vec<Check>,
    /// (claim, time) for the time claims.
    pub times: Vec<(String, String)>,
    pub header: String,
    pub claims: String,
}

/// The report on `raw`, or why it cannot be read as a JWT at all.
pub async fn examine(state: &AppState, raw: &str) -> Result<Result<Report, String>, StoreError> {
    examine_with(&Inspector::of(state), raw).await
}

/// [`examine`] with what it needs spelled out (for callers without an [`AppState`]).
pub async fn examine_with(inspector: &Inspector<'_>, raw: &str) -> Result<Result<Report, String>, StoreError> {
    let token = raw.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
    let (header, claims) = match decode(token) {
        Ok(parts) => parts,
        Err(problem) => return Ok(Err(problem)),
    };
    let now = inspector.store.now();
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    let issuer = inspector.config.issuer.as_str();
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    // Request objects and client assertions are the client's own JWTs: signed with its keys
    // (checked where they are used), issued by the client itself.
    let by_client = client_made(typ, &claims, issuer);
    let mut checks = Vec::new();
    if let Some(what) = by_client {
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("none");
        checks.push(Check::info(
            "Signature",
            format!("signed by the client ({alg}): checked against the client's registered keys where it is used"),
        ));
        checks.push(Check::info("Issuer", format!("{iss:?}: the client that made this {what}")));
    } else {
        checks.push(signature_check(inspector, token));
        let ours = iss == issuer;
        checks.push(Check::new(
            "Issuer",
            ours,
            if ours { format!("{iss} (this server)") } else { format!("{iss:?}, not this server ({issuer})") },
        ));
    }
    let signed = checks.iter().take(2).all(|c| c.outcome != "bad");
    let exp = claims.get("exp").and_then(Value::as_i64);
    // A request object need not expire (RFC 9101 makes exp optional); the others must.
    let expired = match exp {
        Some(exp) => exp < now,
        None => by_client != Some("request object"),
    };
    checks.push(Check::new(
        "Expiry",
        !expired,
        match exp {
            Some(exp) if expired => format!("expired {} ({})", when(exp), relative(exp - now)),
            Some(exp) => format!("expires {} ({})", when(exp), relative(exp - now)),
            None => "no exp claim".to_owned(),
        },
    ));
    // A token used before its nbf (or claiming to be issued in the future) is refused by
    // every verifier, beyond the configured clock leeway.
    let leeway = inspector.config.clock_leeway;
    let early = ["nbf", "iat"]
        .into_iter()
        .find_map(|name| Some((name, claims.get(name)?.as_i64()?)).filter(|(_, t)| t - leeway > now));
    checks.push(Check::new(
        "Not before",
        early.is_none(),
        match early {
            Some((name, t)) => format!("{name} is {} ({}): not valid yet", when(t), relative(t - now)),
            None => "valid now (no nbf or iat in the future)".to_owned(),
        },
    ));
    // RFC 9068 §4: "at+jwt" or "application/at+jwt", compared case-insensitively.
    let is_access_token = typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || typ.eq_ignore_ascii_case("application/at+jwt");
    let (kind, summary, revoked) = if let Some(what) = by_client {
        (what, describe_client_jwt(inspector, what, &claims).await?, false)
    } else if is_access_token {
        let (summary, revoked) = describe_access_token(inspector, &claims, &mut checks).await?;
        ("access token", summary, revoked)
    } else if typ.eq_ignore_ascii_case(LOGOUT_TOKEN_TYP) {
        ("logout token", describe_logout_token(inspector, &claims).await?, false)
    } else if claims.get("client_id").is_none() && claims.get("sub").is_some() {
        ("id_token", describe_id_token(inspector, &claims).await?, false)
    } else {
        let typ = if typ.is_empty() { "none".to_owned() } else { format!("{typ:?}") };
        let summary = format!(
            "A JWT with typ {typ} that is neither an access token (typ at+jwt) nor an id_token: not a token Lanyard issues."
        );
        ("JWT", summary, false)
    };
    let verdict = match () {
        _ if !signed => "invalid",
        _ if revoked => "revoked",
        _ if expired => "expired",
        _ if early.is_some() => "not-yet-valid",
        _ if by_client.is_some() => "client-signed",
        _ => "valid",
    };
    let times = ["iat", "nbf", "auth_time", "exp"]
        .into_iter()
        .filter_map(|claim| Some((claim.to_owned(), when(claims.get(claim)?.as_i64()?))))
        .collect();
    let pretty = |map: &Object| serde_json::to_string_pretty(map).unwrap_or_default();
    Ok(Ok(Report { kind, summary, verdict, checks, times, header: pretty(&header), claims: pretty(&claims) }))
}

/// "request object" or "client assertion" for a JWT a client made (and signed) itself.
fn client_made(typ: &str, claims: &Object, issuer: &str) -> Option<&'static str> {
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    if iss == issuer {
        return None;
    }
    // RFC 9101 §10.8: typ oauth-authz-req+jwt; older clients send authorization parameters.
    if typ.eq_ignore_ascii_case("oauth-authz-req+jwt")
        || typ.eq_ignore_ascii_case("application/oauth-authz-req+jwt")
        || claims.contains_key("response_type")
        || claims.contains_key("redirect_uri")
    {
        return Some("request object");
    }
    // RFC 7523 §3: a client assertion has iss = sub = client_id.
    let sub = claims.get("sub").and_then(Value::as_str);
    (sub == Some(iss) && !iss.is_empty()).then_some("client assertion")
}

/// Splits a compact JWS and decodes its header and claims, or says why it can't.
pub fn decode(token: &str) -> Result<(Object, Object), String> {
    if token.is_empty() {
        return Err("Paste a token to inspect.".into());
    }
    let parts: Vec<&str> = token.split('.').collect();
    match parts.len() {
        3 => {}
        5 => {
            return Err(
                "This is an encrypted JWT (JWE, five parts): Lanyard issues only signed tokens and cannot read it."
                    .into(),
            );
        }
        _ => {
            return Err("This is not a JWT: a JWT has three parts separated by dots (header.claims.signature). \
                 Refresh tokens and authorization codes are opaque random strings: there is nothing in them to read."
                .into());
        }
    }
    let part = |name: &str, encoded: &str| -> Result<Object, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .map_err(|_| format!("The {name} is not base64url: the token is damaged or incomplete."))?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(format!("The {name} is not a JSON object: this is not a JWT.")),
        }
    };
    Ok((part("header", parts[0])?, part("claims part", parts[1])?))
}

fn signature_check(inspector: &Inspector<'_>, token: &str) -> Check {
    match inspector.keys.ring().verify(token) {
        Ok((header, _)) => Check::new(
            "Signature",
            true,
            format!(
                "verified with this server's key {} ({})",
                header.key_id().unwrap_or_default(),
                header.algorithm().unwrap_or_default()
            ),
        ),
        Err(reason) => Check::new("Signature", false, format!("not verified by this server's keys: {reason}")),
    }
}

/// The access token in words (and whether it is revoked), adding the revocation check.
async fn describe_access_token(
    state: &Inspector<'_>,
    claims: &Object,
    checks: &mut Vec<Check>,
) -> Result<(String, bool), StoreError> {
    let parsed: AccessTokenClaims = match serde_json::from_value(Value::Object(claims.clone())) {
        Ok(parsed) => parsed,
        Err(e) => {
            checks.push(Check::new("Claims", false, format!("not those of an RFC 9068 access token: {e}")));
            return Ok((
                "An access token (typ at+jwt) whose claims are malformed: no API may accept it.".into(),
                false,
            ));
        }
    };
    let revoked = state.store.is_revoked(&parsed.jti).await?;
    checks.push(Check::new(
        "Revocation",
        !revoked,
        if revoked { format!("revoked (jti {})", parsed.jti) } else { format!("not revoked (jti {})", parsed.jti) },
    ));
    let mut apis = Vec::new();
    // Collected first: the iterator is not `Send`, and the recorder reports from a task.
    let audiences: Vec<String> = parsed.aud.iter().map(str::to_owned).collect();
    for aud in &audiences {
        if let Some(api) = state.store.api(aud).await? {
            apis.push(api.name);
        }
    }
    let audience = audience_list(&parsed.aud);
    let target = match apis.as_slice() {
        [] if parsed.aud.contains(&state.config.issuer.endpoint("/userinfo")) => {
            format!("the userinfo endpoint only (aud {audience})")
        }
        [] => format!("an audience this server does not know (aud {audience})"),
        [one] => format!("API {one} (aud {audience})"),
        many => format!("APIs {} (aud {audience})", many.join(", ")),
    };
    let scopes = if parsed.scope.is_empty() { "no scopes".to_owned() } else { format!("scopes {}", parsed.scope) };
    let client = client_name(state, &parsed.client_id).await?;
    let on_behalf = if parsed.sub == parsed.client_id {
        "on its own behalf (client credentials)".to_owned()
    } else {
        // Through the grant: a pairwise `sub` names no user by itself.
        let user_id =
            state.store.access_token_grant(&parsed.jti).await?.map_or_else(|| parsed.sub.clone(), |(id, _)| id);
        match state.store.user_by_id(&user_id).await? {
            Some(user) => format!("for user {}", user.username),
            None => format!("for subject {} (no such user now)", parsed.sub),
        }
    };
    Ok((format!("An access token for {target} with {scopes}, issued to client {client} {on_behalf}."), revoked))
}

async fn describe_id_token(state: &Inspector<'_>, claims: &Object) -> Result<String, StoreError> {
    let aud: Option<Audience> = claims.get("aud").cloned().and_then(|a| serde_json::from_value(a).ok());
    // OIDC Core §2: azp names the client when aud lists several.
    let client_id = claims.get("azp").and_then(Value::as_str).map(str::to_owned).or_else(|| match &aud {
        Some(Audience::One(one)) => Some(one.clone()),
        Some(Audience::Many(many)) => many.first().cloned(),
        None => None,
    });
    let client = match &client_id {
        Some(id) => client_name(state, id).await?,
        None => "(no aud claim)".to_owned(),
    };
    let who = match claims.get("sub").and_then(Value::as_str) {
        Some(sub) => match state.store.user_by_id(sub).await? {
            Some(user) => format!(" ({})", user.username),
            None => String::new(),
        },
        None => String::new(),
    };
    Ok(format!(
        "An id_token for client {client}: it tells the client who signed in{who}. An API must reject it: it is not an access token."
    ))
}

/// "Web app (web)" for a registered client, else the id alone.
async fn client_name(state: &Inspector<'_>, client_id: &str) -> Result<String, StoreError> {
    Ok(match state.store.client(client_id).await? {
        Some(client) if client.name != client.client_id => format!("{} ({client_id})", client.name),
        _ => client_id.to_owned(),
    })
}

/// A back-channel logout token (Back-Channel Logout 1.0 §2.4) in words.
async fn describe_logout_token(state: &Inspector<'_>, claims: &Object) -> Result<String, StoreError> {
    let client = match claims.get("aud").and_then(Value::as_str) {
        Some(id) => client_name(state, id).await?,
        None => "(no aud claim)".to_owned(),
    };
    let sid = claims.get("sid").and_then(Value::as_str).unwrap_or("(none)");
    Ok(format!(
        "A back-channel logout token for client {client}: it tells the client that session {sid} has ended, so the \
         client should end its own session for it. It is never a bearer token."
    ))
}

/// A request object or a client assertion in words.
async fn describe_client_jwt(state: &Inspector<'_>, what: &str, claims: &Object) -> Result<String, StoreError> {
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    let client = client_name(state, iss).await?;
    Ok(if what == "request object" {
        format!(
            "A request object made by client {client}: the authorization request's parameters, signed by the client \
             (RFC 9101); its members override the query's."
        )
    } else {
        format!(
            "A client assertion made by client {client}: the client authenticates itself with it at this server \
             (RFC 7523, private_key_jwt or client_secret_jwt); it is single use."
        )
    })
}

fn audience_list(aud: &Audience) -> String {
    aud.iter().collect::<Vec<_>>().join(", ")
}

/// "in 59 minutes", "3 hours ago".
fn relative(seconds: i64) -> String {
    let abs = seconds.unsigned_abs();
    let amount = match abs {
        0..60 => format!("{abs} seconds"),
        60..7200 => format!("{} minutes", abs / 60),
        7200..172_800 => format!("{} hours", abs / 3600),
        _ => format!("{} days", abs / 86_400),
    };
    if seconds >= 0 { format!("in {amount}") } else { format!("{amount} ago") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_jwt_is_explained() {
        for (input, expected) in [
            ("", "Paste a token"),
            ("opaque-refresh-token", "not a JWT"),
            ("a.b.c.d.e", "encrypted"),
            ("***.e30.sig", "not base64url"),
            ("WzFd.e30.sig", "not a JSON object"),
        ] {
            let problem = decode(input).expect_err(input);
            assert!(problem.contains(expected), "{input}: {problem}");
        }
        let (header, claims) = decode("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig").unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(claims["sub"], "x");
    }

    #[test]
    fn times_are_told_relative_to_now() {
        assert_eq!(relative(3540), "in 59 minutes");
        assert_eq!(relative(-3 * 3600), "3 hours ago");
        assert_eq!(relative(-5), "5 seconds ago");
    }
}
