//! What a token is, in plain words: decoded header and claims, whether this server's keys
//! verify it, whether it has expired, is not valid yet or was revoked, and what it is for.
//! Shared by the admin page's token inspector and the playground. Anything, however
//! broken, gets an explanation (never an error page).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::state::AppState;
use crate::store::StoreError;
use crate::tokens::claims::{ACCESS_TOKEN_TYP, AccessTokenClaims, Audience};
use crate::web::admin::when;

/// A JSON object: a JWT's header or claims.
type Object = Map<String, Value>;

/// One check and how it came out.
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
}

/// What was found out about a token.
pub struct Report {
    /// "access token", "id_token" or "JWT".
    pub kind: &'static str,
    /// What the token is for, in one or two sentences.
    pub summary: String,
    /// "valid", "expired", "revoked" or "invalid" (a CSS class too).
    pub verdict: &'static str,
    pub checks: Vec<Check>,
    /// (claim, time) for the time claims.
    pub times: Vec<(String, String)>,
    pub header: String,
    pub claims: String,
}

/// The report on `raw`, or why it cannot be read as a JWT at all.
pub async fn examine(state: &AppState, raw: &str) -> Result<Result<Report, String>, StoreError> {
    let token = raw.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
    let (header, claims) = match decode(token) {
        Ok(parts) => parts,
        Err(problem) => return Ok(Err(problem)),
    };
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    // The server's time (the test lab's clock, if moved): the verdict is the server's.
    let now = state.now();
    let issuer = state.config.issuer.as_str();
    let mut checks = vec![signature_check(state, token)];
    let signed = checks[0].outcome == "ok";
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    let ours = iss == issuer;
    checks.push(Check::new(
        "Issuer",
        ours,
        if ours { format!("{iss} (this server)") } else { format!("{iss:?}, not this server ({issuer})") },
    ));
    let exp = claims.get("exp").and_then(Value::as_i64);
    let expired = exp.is_none_or(|exp| exp < now);
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
    let leeway = state.config.clock_leeway;
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
    let (kind, summary, revoked) = if is_access_token {
        let (summary, revoked) = describe_access_token(state, &claims, &mut checks).await?;
        ("access token", summary, revoked)
    } else if claims.get("client_id").is_none() && claims.get("sub").is_some() {
        ("id_token", describe_id_token(state, &claims).await?, false)
    } else {
        let typ = if typ.is_empty() { "none".to_owned() } else { format!("{typ:?}") };
        let summary = format!(
            "A JWT with typ {typ} that is neither an access token (typ at+jwt) nor an id_token: not a token Lanyard issues."
        );
        ("JWT", summary, false)
    };
    let verdict = match () {
        _ if !signed || !ours => "invalid",
        _ if revoked => "revoked",
        _ if expired => "expired",
        _ if early.is_some() => "not-yet-valid",
        _ => "valid",
    };
    let times = ["iat", "nbf", "auth_time", "exp"]
        .into_iter()
        .filter_map(|claim| Some((claim.to_owned(), when(claims.get(claim)?.as_i64()?))))
        .collect();
    let pretty = |map: &Object| serde_json::to_string_pretty(map).unwrap_or_default();
    Ok(Ok(Report { kind, summary, verdict, checks, times, header: pretty(&header), claims: pretty(&claims) }))
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

fn signature_check(state: &AppState, token: &str) -> Check {
    match state.keys.ring().verify(token) {
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
    state: &AppState,
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
    for aud in parsed.aud.iter() {
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

async fn describe_id_token(state: &AppState, claims: &Object) -> Result<String, StoreError> {
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
async fn client_name(state: &AppState, client_id: &str) -> Result<String, StoreError> {
    Ok(match state.store.client(client_id).await? {
        Some(client) if client.name != client.client_id => format!("{} ({client_id})", client.name),
        _ => client_id.to_owned(),
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
