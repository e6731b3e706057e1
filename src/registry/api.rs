//! APIs (resource servers): their identifier is the `aud` of the access tokens they accept.

use serde::{Deserialize, Serialize};

use super::field_errors::FieldErrors;
use crate::oauth::scope::{ScopeSet, is_oidc_scope};
use crate::tokens::alg::SigningAlg;
use crate::tokens::claims::check_claim_name;

/// Default access token lifetime, seconds.
pub const DEFAULT_ACCESS_TOKEN_TTL: i64 = 3600;

/// A scope an API defines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiScope {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// A registered API.
#[derive(Debug, Clone, Serialize)]
pub struct Api {
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<ApiScope>,
    pub access_token_ttl: i64,
    pub signing_alg: SigningAlg,
    /// The confidential client this API authenticates with at `/introspect`.
    pub introspection_client_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    // Per-API access token claims:
    /// The user claims copied into this API's access tokens (`roles`, `tenant`, …), as
    /// the user has them; never into client_credentials tokens (no user).
    pub access_token_claims: Vec<String>,
    /// Token exchange (RFC 8693): the downstream APIs (identifiers) this API may exchange
    /// its users' access tokens for, authenticated as its `introspection_client_id`.
    pub token_exchange_audiences: Vec<String>,
}

impl Api {
    pub fn defines(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s.name == scope)
    }

    pub fn scope_description(&self, scope: &str) -> Option<&str> {
        self.scopes.iter().find(|s| s.name == scope).map(|s| s.description.as_str())
    }

    /// Whether this API may exchange its users' tokens for tokens for `audience`.
    pub fn may_exchange_for(&self, audience: &str) -> bool {
        self.token_exchange_audiences.iter().any(|a| a == audience)
    }
}

/// What a caller asks to register.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    pub identifier: String,
    pub name: String,
    /// Scope names, or name + description objects.
    #[serde(default)]
    pub scopes: Vec<ScopeSpec>,
    #[serde(default)]
    pub access_token_ttl: Option<i64>,
    #[serde(default)]
    pub signing_alg: Option<String>,
    /// A confidential client the API uses to call `/introspect` for its own tokens.
    #[serde(default)]
    pub introspection_client_id: Option<String>,
    // Per-API access token claims:
    /// User claims to copy into this API's access tokens, e.g. `["roles"]`.
    #[serde(default)]
    pub access_token_claims: Vec<String>,
    /// Token exchange (RFC 8693): identifiers of the registered APIs this API may exchange
    /// its users' tokens for, e.g. `["https://api.example.test/calendar"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_exchange_audiences: Vec<String>,
}

/// A scope as written in a spec: `"read:x"` or `{ name = "read:x", description = "…" }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ScopeSpec {
    Name(String),
    Full(ApiScope),
}

impl ApiSpec {
    /// Checks every field; the result can be stored as is.
    pub fn validate(self) -> Result<Api, FieldErrors> {
        let mut errors = FieldErrors::default();
        let identifier = self.identifier.trim().to_owned();
        if let Err(e) = check_identifier(&identifier) {
            errors.add("identifier", e);
        }
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            errors.add("name", "must not be empty");
        }
        let mut scopes: Vec<ApiScope> = Vec::new();
        for spec in self.scopes {
            let scope = match spec {
                ScopeSpec::Name(name) => ApiScope { name, description: String::new() },
                ScopeSpec::Full(scope) => scope,
            };
            let name = scope.name.trim().to_owned();
            match ScopeSet::parse(&name) {
                _ if name.is_empty() => errors.add("scopes", "a scope name must not be empty"),
                Ok(set) if set.iter().count() != 1 => errors.add("scopes", format!("{name:?} must be a single scope")),
                Err(e) => errors.add("scopes", e),
                Ok(_) if is_oidc_scope(&name) => {
                    errors.add("scopes", format!("{name:?} is an OpenID Connect scope, not an API scope"))
                }
                Ok(_) if scopes.iter().any(|s| s.name == name) => {
                    errors.add("scopes", format!("{name:?} is listed twice"))
                }
                Ok(_) => scopes.push(ApiScope { name, description: scope.description.trim().to_owned() }),
            }
        }
        let access_token_ttl = self.access_token_ttl.unwrap_or(DEFAULT_ACCESS_TOKEN_TTL);
        if !(60..=86_400).contains(&access_token_ttl) {
            errors.add("access_token_ttl", "must be between 60 and 86400 seconds");
        }
        let signing_alg = match self.signing_alg.as_deref().unwrap_or("RS256").parse::<SigningAlg>() {
            Ok(alg) => alg,
            Err(e) => {
                errors.add("signing_alg", e);
                SigningAlg::RS256
            }
        };
        let mut access_token_claims: Vec<String> = Vec::new();
        for claim in self.access_token_claims {
            let claim = claim.trim().to_owned();
            if let Err(e) = check_claim_name(&claim) {
                errors.add("access_token_claims", e);
            } else if access_token_claims.contains(&claim) {
                errors.add("access_token_claims", format!("{claim:?} is listed twice"));
            } else {
                access_token_claims.push(claim);
            }
        }
        let mut token_exchange_audiences: Vec<String> = Vec::new();
        for audience in self.token_exchange_audiences {
            let audience = audience.trim().to_owned();
            match check_identifier(&audience) {
                Err(e) => errors.add("token_exchange_audiences", format!("{audience:?} {e}")),
                Ok(()) if audience == identifier => {
                    errors.add("token_exchange_audiences", "an API cannot exchange tokens for itself")
                }
                Ok(()) if token_exchange_audiences.contains(&audience) => {
                    errors.add("token_exchange_audiences", format!("{audience:?} is listed twice"))
                }
                Ok(()) => token_exchange_audiences.push(audience),
            }
        }
        // Record-keeping (when it was created), not protocol time: the wall clock.
        let now = crate::clock::real_now();
        let introspection_client_id =
            self.introspection_client_id.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
        errors.into_result(Api {
            identifier,
            name,
            scopes,
            access_token_ttl,
            signing_alg,
            introspection_client_id,
            created_at: now,
            updated_at: now,
            access_token_claims,
            token_exchange_audiences,
        })
    }
}

/// An API identifier: an absolute URI without a fragment (RFC 8707 §2).
fn check_identifier(identifier: &str) -> Result<(), &'static str> {
    match url::Url::parse(identifier) {
        Ok(url) if url.fragment().is_some() => Err("must not contain a fragment"),
        Ok(_) => Ok(()),
        Err(_) => Err("must be an absolute URI, such as https://api.example.test/orders"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_specs_are_validated_field_by_field() {
        let spec = ApiSpec {
            identifier: "not a uri".into(),
            name: " ".into(),
            scopes: vec![ScopeSpec::Name("openid".into()), ScopeSpec::Name("bad scope".into())],
            access_token_ttl: Some(5),
            signing_alg: Some("HS256".into()),
            introspection_client_id: None,
            access_token_claims: vec!["roles".into(), "aud".into()],
            token_exchange_audiences: vec!["not a uri".into()],
        };
        let errors = spec.validate().unwrap_err();
        assert!(errors.to_string().contains("\"aud\" is a reserved claim"), "{errors}");
        for field in [
            "identifier",
            "name",
            "scopes",
            "access_token_ttl",
            "signing_alg",
            "access_token_claims",
            "token_exchange_audiences",
        ] {
            assert!(errors.get(field).is_some(), "{field} not reported: {errors}");
        }
    }

    #[test]
    fn a_valid_api_keeps_its_scopes() {
        let api = ApiSpec {
            identifier: "https://api.example.test/appointments".into(),
            name: "Appointments".into(),
            scopes: vec![ScopeSpec::Name("read:appointments".into())],
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert!(api.defines("read:appointments"));
        assert_eq!(api.access_token_ttl, 3600);
    }

    #[test]
    fn token_exchange_audiences_are_absolute_uris_other_than_the_api_itself_and_listed_once() {
        let spec = |audiences: &[&str]| ApiSpec {
            identifier: "https://api.example.test/appointments".into(),
            name: "Appointments".into(),
            token_exchange_audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            ..Default::default()
        };
        let api = spec(&[" https://api.example.test/calendar "]).validate().unwrap();
        assert_eq!(api.token_exchange_audiences, ["https://api.example.test/calendar"]);
        assert!(api.may_exchange_for("https://api.example.test/calendar"));
        assert!(!api.may_exchange_for("https://api.example.test/other"));
        for (audiences, why) in [
            (&["https://api.example.test/appointments"][..], "for itself"),
            (&["https://api.example.test/calendar", "https://api.example.test/calendar"][..], "listed twice"),
            (&["calendar"][..], "absolute URI"),
            (&["https://api.example.test/calendar#x"][..], "fragment"),
        ] {
            let errors = spec(audiences).validate().unwrap_err();
            let message = errors.get("token_exchange_audiences").map(ToString::to_string).unwrap_or_default();
            assert!(message.contains(why), "{audiences:?}: {errors}");
        }
    }
}
