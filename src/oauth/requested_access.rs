//! What a client asks a user to grant: the `scope` and the APIs (`resource`, RFC 8707, with
//! Auth0's `audience` as an alias), validated for the client once, by the same rules at
//! `/authorize` and at `/device_authorization` (each turns a refusal into its own wire
//! shape: an error redirect there, RFC 6749 JSON here).

use super::params::Params;
use super::scope::{ScopeCatalog, ScopeSet};
use crate::registry::api::Api;
use crate::registry::client::{Client, GrantType};

/// Scopes and APIs a client may ask the user for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedAccess {
    /// Requested, known, and allowed for the client.
    pub scope: ScopeSet,
    /// The APIs named (or the client's default API), each registered.
    pub resources: Vec<String>,
}

/// Why a request was refused: an RFC 6749 / RFC 8707 error code and words for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: &'static str,
    pub description: String,
}

impl Refusal {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self { error, description: description.into() }
    }
}

impl RequestedAccess {
    /// Validates `scope`, `resource` and `audience` of `params` for `client`. A scope the
    /// client may not ask for is refused by name (a silently smaller grant is the harder
    /// bug to find) unless `narrow_scopes` asks for production servers' leniency.
    pub fn parse(
        params: &Params,
        client: &Client,
        apis: &[Api],
        catalog: &ScopeCatalog,
        narrow_scopes: bool,
    ) -> Result<Self, Refusal> {
        let invalid = |e: super::params::ParamError| Refusal::new("invalid_request", e.to_string());
        let mut resources: Vec<String> = Vec::new();
        let audience = params.single("audience").map_err(invalid)?;
        for resource in params.all("resource").map_err(invalid)?.into_iter().chain(audience) {
            if !apis.iter().any(|a| a.identifier == resource) {
                return Err(Refusal::new("invalid_target", format!("{resource:?} is not a registered API")));
            }
            if !resources.iter().any(|r| r == resource) {
                resources.push(resource.to_owned());
            }
        }
        if resources.is_empty()
            && let Some(default) = &client.default_api
        {
            resources.push(default.clone());
        }

        let requested = ScopeSet::parse(params.single("scope").map_err(invalid)?.unwrap_or(""))
            .map_err(|e| Refusal::new("invalid_scope", e))?;
        for scope in requested.iter() {
            if !catalog.is_user_scope(scope) && !apis.iter().any(|a| a.defines(scope)) {
                return Err(Refusal::new("invalid_scope", format!("{scope:?} is not a known scope")));
            }
        }
        // offline_access is only a wish for a refresh token, which OIDC Core §11 lets the
        // server ignore: it is dropped, never refused, for a client not allowed it or the
        // refresh grant (RP libraries often ask for it by default).
        let offline_ignored = |s: &str| {
            s == "offline_access"
                && !(client.scope.contains("offline_access") && client.allows_grant(GrantType::RefreshToken))
        };
        let refused: Vec<&str> =
            requested.iter().filter(|s| !client.scope.contains(s) && !offline_ignored(s)).collect();
        if !refused.is_empty() && !narrow_scopes {
            return Err(Refusal::new(
                "invalid_scope",
                format!(
                    "client {:?} may not request {}; it is allowed \"{}\" (register the scope for the client, or set scope_narrowing to drop such scopes silently)",
                    client.client_id,
                    refused.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", "),
                    client.scope
                ),
            ));
        }
        let scope = requested.filter(|s| client.scope.contains(s) && !offline_ignored(s));
        for s in scope.iter().filter(|s| !catalog.is_user_scope(s)) {
            if !resources.iter().any(|r| apis.iter().any(|a| &a.identifier == r && a.defines(s))) {
                let owners: Vec<&str> = apis.iter().filter(|a| a.defines(s)).map(|a| a.identifier.as_str()).collect();
                return Err(Refusal::new(
                    "invalid_scope",
                    format!("scope {s:?} belongs to {}: name that API with the resource parameter", owners.join(", ")),
                ));
            }
        }
        // An access token needs an audience: the userinfo endpoint (openid) or an API.
        if !scope.contains("openid") && resources.is_empty() {
            return Err(Refusal::new(
                "invalid_scope",
                "nothing to grant: request openid (if this client is allowed it), or name an API with resource",
            ));
        }
        Ok(Self { scope, resources })
    }
}

/// Requested access in words, for the consent and device pages.
#[derive(Debug, Clone, Default)]
pub struct AccessDescription {
    /// (scope, what it allows)
    pub scopes: Vec<(String, String)>,
    /// "Name (identifier)" of each API.
    pub apis: Vec<String>,
}

impl RequestedAccess {
    /// What the user is asked to allow: each scope with its description (OpenID Connect's,
    /// a custom scope's or the API's), each API by name.
    pub fn describe(&self, apis: &[Api], catalog: &ScopeCatalog) -> AccessDescription {
        let scopes = self
            .scope
            .iter()
            .map(|s| {
                let description = catalog
                    .description(s)
                    .or_else(|| apis.iter().find_map(|a| a.scope_description(s)))
                    .unwrap_or_default();
                (s.to_owned(), description.to_owned())
            })
            .collect();
        let apis = self
            .resources
            .iter()
            .map(|r| match apis.iter().find(|a| &a.identifier == r) {
                Some(api) => format!("{} ({})", api.name, api.identifier),
                None => r.clone(),
            })
            .collect();
        AccessDescription { scopes, apis }
    }
}
