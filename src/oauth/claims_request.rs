//! The `claims` request parameter (OIDC Core §5.5) and the authentication context Lanyard
//! reports (`acr`, `amr`).
//!
//! A client may ask for individual claims, for the id_token and/or for userinfo, beyond
//! what its scopes release: `{"userinfo": {"email": null}, "id_token": {"acr":
//! {"essential": true, "values": ["urn:lanyard:acr:password"]}}}`. The parsed request
//! travels with the pending request and the code, and is stored with the grant, so that
//! userinfo (which sees only the access token, whose `jti` names the grant) can honour it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::scope::{ScopeCatalog, ScopeSet};
use crate::registry::user::User;

/// `acr` of a sign-in with a password on Lanyard's login page.
pub const ACR_PASSWORD: &str = "urn:lanyard:acr:password";
/// `acr` of a `--dev-login` sign-in (no credential at all): OIDC Core §2's "0", which
/// "does not meet the requirements of ISO/IEC 29115 level 1".
pub const ACR_NONE: &str = "0";
/// The `acr` values Lanyard can satisfy (discovery `acr_values_supported`).
pub const ACR_VALUES_SUPPORTED: [&str; 2] = [ACR_PASSWORD, ACR_NONE];

/// How a session was authenticated (the `amr` values of RFC 8176, one method per sign-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Password on the login page: `amr: ["pwd"]`, `acr` [`ACR_PASSWORD`].
    Password,
    /// `--dev-login` headless sign-in: `amr: ["dev"]` (not an RFC 8176 value on purpose:
    /// no RP should mistake it for a real authentication), `acr` [`ACR_NONE`].
    Dev,
}

impl AuthMethod {
    /// The stored form (the `amr` value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::Dev => "dev",
        }
    }

    /// Reads the stored form; rows from before it was recorded are password sign-ins (the
    /// only kind outside dev mode).
    pub fn from_stored(value: Option<&str>) -> Self {
        match value {
            Some("dev") => Self::Dev,
            _ => Self::Password,
        }
    }

    pub fn acr(self) -> &'static str {
        match self {
            Self::Password => ACR_PASSWORD,
            Self::Dev => ACR_NONE,
        }
    }

    pub fn amr(self) -> Vec<String> {
        vec![self.as_str().to_owned()]
    }
}

/// One requested claim (OIDC Core §5.5.1): `null`, or an object with these members.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimSpec {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub essential: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
}

impl ClaimSpec {
    /// The acceptable string values, when the request names any.
    fn string_values(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.value.iter().filter_map(Value::as_str).collect();
        out.extend(self.values.iter().flatten().filter_map(Value::as_str));
        out
    }
}

/// A parsed `claims` request parameter: the claims asked for, per place.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub userinfo: BTreeMap<String, ClaimSpec>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub id_token: BTreeMap<String, ClaimSpec>,
}

impl ClaimsRequest {
    /// Parses the parameter: a JSON object whose `userinfo` and `id_token` members (both
    /// optional; other members are ignored, §5.5) map claim names to `null` or an object
    /// with `essential` (boolean), `value`, `values` (array).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(raw).map_err(|e| format!("the claims parameter is not valid JSON: {e}"))?;
        let Value::Object(top) = value else {
            return Err("the claims parameter must be a JSON object".into());
        };
        let mut out = Self::default();
        for (place, target) in [("userinfo", &mut out.userinfo), ("id_token", &mut out.id_token)] {
            match top.get(place) {
                None | Some(Value::Null) => {}
                Some(Value::Object(claims)) => {
                    for (name, spec) in claims {
                        target.insert(name.clone(), parse_spec(place, name, spec)?);
                    }
                }
                Some(_) => return Err(format!("claims.{place} must be a JSON object")),
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.userinfo.is_empty() && self.id_token.is_empty()
    }

    /// The `acr` values the client asked for as essential in the id_token, if it did.
    pub fn essential_acr(&self) -> Option<Vec<&str>> {
        self.id_token.get("acr").filter(|s| s.essential).map(ClaimSpec::string_values)
    }

    /// The `acr` values named for the id_token (essential or not).
    pub fn requested_acr(&self) -> Vec<&str> {
        self.id_token.get("acr").map(ClaimSpec::string_values).unwrap_or_default()
    }

    /// Keeps only the claims `keep` accepts, in both places.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.userinfo.retain(|name, _| keep(name));
        self.id_token.retain(|name, _| keep(name));
    }

    /// The user claims asked for (in either place) that the granted scopes do not release:
    /// what the user must be shown on the consent page.
    pub fn beyond_scopes(&self, scopes: &ScopeSet, catalog: &ScopeCatalog) -> Vec<String> {
        let released: Vec<&str> = scopes.iter().flat_map(|s| catalog.claims_for(s)).collect();
        let mut names: Vec<String> = self
            .userinfo
            .keys()
            .chain(self.id_token.keys())
            .filter(|name| catalog.is_releasable(name) && !released.contains(&name.as_str()))
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Adds to `out` the claims requested in `place` that the user has (claims the user
    /// lacks are simply absent, §5.5.1 — essential or not).
    pub fn add_user_claims(place: &BTreeMap<String, ClaimSpec>, user: &User, out: &mut Map<String, Value>) {
        for name in place.keys() {
            if let Some(value) = user.claim(name) {
                out.insert(name.clone(), value);
            }
        }
    }
}

fn parse_spec(place: &str, name: &str, spec: &Value) -> Result<ClaimSpec, String> {
    match spec {
        Value::Null => Ok(ClaimSpec::default()),
        Value::Object(members) => {
            let essential = match members.get("essential") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(format!("claims.{place}.{name}.essential must be true or false")),
            };
            let values = match members.get("values") {
                None | Some(Value::Null) => None,
                Some(Value::Array(values)) => Some(values.clone()),
                Some(_) => return Err(format!("claims.{place}.{name}.values must be an array")),
            };
            Ok(ClaimSpec { essential, value: members.get("value").filter(|v| !v.is_null()).cloned(), values })
        }
        _ => Err(format!("claims.{place}.{name} must be null or a JSON object")),
    }
}

/// The `acr` a sign-in gives, given what the request asked for: `Ok(acr)`, or `Err` with
/// the values asked for as essential when the sign-in satisfies none of them (OIDC Core
/// §5.5.1.1: the request must then fail). `acr_values` are voluntary (§3.1.2.1): the
/// actual `acr` is reported whatever they name.
pub fn acr_for(method: AuthMethod, claims: Option<&ClaimsRequest>) -> Result<&'static str, Vec<String>> {
    let acr = method.acr();
    match claims.and_then(ClaimsRequest::essential_acr) {
        Some(values) if !values.is_empty() && !values.contains(&acr) => {
            Err(values.into_iter().map(str::to_owned).collect())
        }
        _ => Ok(acr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_places_and_each_claim_shape() {
        let request = ClaimsRequest::parse(
            r#"{"userinfo":{"email":null,"name":{"essential":true}},"id_token":{"acr":{"values":["0"]}},"other":1}"#,
        )
        .expect("valid");
        assert_eq!(request.userinfo.len(), 2);
        assert!(request.userinfo["name"].essential);
        assert_eq!(request.requested_acr(), vec!["0"]);
        assert_eq!(request.essential_acr(), None);
    }

    #[test]
    fn refuses_malformed_requests_with_a_reason() {
        for (raw, why) in [
            ("not json", "not valid JSON"),
            ("[1]", "JSON object"),
            (r#"{"userinfo":[]}"#, "claims.userinfo must be"),
            (r#"{"id_token":{"acr":3}}"#, "null or a JSON object"),
            (r#"{"id_token":{"acr":{"essential":"yes"}}}"#, "true or false"),
            (r#"{"id_token":{"acr":{"values":"0"}}}"#, "must be an array"),
        ] {
            let err = ClaimsRequest::parse(raw).expect_err(raw);
            assert!(err.contains(why), "{raw}: {err}");
        }
    }

    #[test]
    fn an_essential_acr_that_the_sign_in_does_not_meet_fails() {
        let essential = ClaimsRequest::parse(r#"{"id_token":{"acr":{"essential":true,"value":"0"}}}"#).expect("valid");
        assert_eq!(acr_for(AuthMethod::Dev, Some(&essential)), Ok("0"));
        assert_eq!(acr_for(AuthMethod::Password, Some(&essential)), Err(vec!["0".to_owned()]));
        assert_eq!(acr_for(AuthMethod::Password, None), Ok(ACR_PASSWORD));
    }
}
