//! Custom scopes: scopes of the administrator's own (`roles`) that release user claims to
//! the id_token and userinfo, as `profile` does.

use serde::{Deserialize, Serialize};

use super::field_errors::FieldErrors;
use crate::oauth::scope::{ClaimScope, ScopeSet, is_oidc_scope};
use crate::tokens::claims::check_claim_name;

/// A custom scope as a caller writes it (seed `[[scopes]]`, admin API, CLI, admin page).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimScopeSpec {
    pub name: String,
    /// Shown on the consent page, e.g. "Your roles in the apps you use".
    #[serde(default)]
    pub description: String,
    /// The user claims it releases, e.g. `["roles"]`.
    #[serde(default)]
    pub claims: Vec<String>,
}

impl ClaimScopeSpec {
    /// Checks every field: a single scope token that is not an OpenID Connect scope, and
    /// at least one claim, each a sane name that Lanyard does not reserve.
    pub fn validate(self) -> Result<ClaimScope, FieldErrors> {
        let mut errors = FieldErrors::default();
        let name = self.name.trim().to_owned();
        match ScopeSet::parse(&name) {
            _ if name.is_empty() => errors.add("name", "must not be empty"),
            Ok(set) if set.iter().count() != 1 => errors.add("name", format!("{name:?} must be a single scope")),
            Err(e) => errors.add("name", e),
            Ok(_) if is_oidc_scope(&name) => {
                errors.add("name", format!("{name:?} is an OpenID Connect scope: its claims are fixed"))
            }
            Ok(_) => {}
        }
        let mut claims: Vec<String> = Vec::new();
        for claim in self.claims {
            let claim = claim.trim().to_owned();
            if let Err(e) = check_claim_name(&claim) {
                errors.add("claims", e);
            } else if !claims.contains(&claim) {
                claims.push(claim);
            }
        }
        if claims.is_empty() && errors.get("claims").is_none() {
            errors.add("claims", "name at least one claim the scope releases");
        }
        let description = self.description.trim().to_owned();
        if description.chars().count() > 200 {
            errors.add("description", "must be at most 200 characters");
        }
        errors.into_result(ClaimScope { name, description, claims })
    }
}

impl From<ClaimScope> for ClaimScopeSpec {
    fn from(scope: ClaimScope) -> Self {
        Self { name: scope.name, description: scope.description, claims: scope.claims }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_scopes_may_not_shadow_oidc_scopes_nor_release_reserved_claims() {
        let spec = ClaimScopeSpec { name: "profile".into(), description: String::new(), claims: vec!["sub".into()] };
        let errors = spec.validate().unwrap_err().to_string();
        assert!(errors.contains("\"profile\" is an OpenID Connect scope"), "{errors}");
        assert!(errors.contains("\"sub\" is a reserved claim"), "{errors}");
        let ok = ClaimScopeSpec { name: "roles".into(), description: " Roles ".into(), claims: vec!["roles".into()] };
        assert_eq!(ok.validate().unwrap().description, "Roles");
    }
}
