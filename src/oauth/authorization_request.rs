//! `AuthorizationRequest`: an `/authorize` query turned, once, into a value that is valid
//! for its client. Nothing downstream re-checks it.

use serde::{Deserialize, Serialize};

use super::claims_request::ClaimsRequest;
use super::error::{AuthorizeError, ErrorRedirect, ResponseMode};
use super::params::Params;
use super::pkce::CodeChallenge;
use super::request_object::AuthorizationParams;
use super::requested_access::RequestedAccess;
use super::scope::{ScopeCatalog, ScopeSet};
use crate::registry::api::Api;
use crate::registry::client::{Client, GrantType};
use crate::tokens::claims::is_reserved_claim;
use crate::tokens::keys::KeyRing;

/// A validated authorization request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    /// The redirect_uri exactly as sent (it matched a registered one).
    pub redirect_uri: String,
    /// Granted scopes: requested, known, and allowed for the client.
    pub scope: ScopeSet,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<CodeChallenge>,
    /// The APIs the grant is for (RFC 8707), or the client's default API.
    pub resources: Vec<String>,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub prompt_none: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// How the response reaches the client: query (default) or form_post.
    #[serde(default)]
    pub response_mode: ResponseMode,
    /// The `claims` request parameter (OIDC Core §5.5), when sent.
    #[serde(default)]
    pub claims: Option<ClaimsRequest>,
    /// `acr_values` (OIDC Core §3.1.2.1), in order of preference; voluntary.
    #[serde(default)]
    pub acr_values: Vec<String>,
    /// The `sub` of a valid `id_token_hint`: the user the client expects (OIDC Core §3.1.2.1).
    #[serde(default)]
    pub hinted_sub: Option<String>,
    /// `dpop_jkt` (RFC 9449 §10): the thumbprint of the DPoP key the code will be
    /// redeemed with; a redemption without a proof of that key is refused.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
}

impl AuthorizationRequest {
    pub fn is_openid(&self) -> bool {
        self.scope.contains("openid")
    }

    /// An error for this request's client, at its redirect_uri.
    pub fn error(&self, iss: &str, error: &'static str, description: impl Into<String>) -> AuthorizeError {
        AuthorizeError::Redirect(ErrorRedirect {
            redirect_uri: self.redirect_uri.clone(),
            error,
            description: description.into(),
            state: self.state.clone(),
            iss: iss.to_owned(),
            response_mode: self.response_mode,
        })
    }

    /// An error about a request that could not be read as far as [`Self::parse`] (its
    /// request object was refused): sent to the query's redirect_uri when that is
    /// registered for the client, with the query's state; else shown on a page.
    pub fn refuse_unparsed(
        query: &Params,
        client: &Client,
        iss: &str,
        error: &'static str,
        description: String,
    ) -> AuthorizeError {
        match ErrorTarget::of(query, client, iss) {
            Ok(target) => target.error(error, description),
            Err(AuthorizeError::Page { message, .. }) => AuthorizeError::page(
                "Invalid request",
                format!("{description} ({error}). This cannot be sent back to the application: {message}"),
            ),
            Err(other) => other,
        }
    }

    /// Validates `params` for `client` (already looked up by client_id), in the order of
    /// RFC 6749 §4.1.2.1: the redirect_uri first (a page if it is wrong), then everything
    /// else (errors redirected to it). The parameters are the query's with its request
    /// object, if any, merged in (see [`request_object`](super::request_object)).
    /// `ring` checks an `id_token_hint`; `catalog` knows the custom scopes; `narrow_scopes`
    /// drops scopes the client may not ask for instead of refusing them.
    pub fn parse(
        params: &AuthorizationParams,
        client: &Client,
        apis: &[Api],
        catalog: &ScopeCatalog,
        iss: &str,
        ring: &KeyRing,
        narrow_scopes: bool,
    ) -> Result<Self, AuthorizeError> {
        let params = params.as_params();
        let target = ErrorTarget::of(params, client, iss)?;
        // From here on, errors go back to the client.
        let ErrorTarget { redirect_uri, state, response_mode, .. } = &target;
        let fail = |error: &'static str, description: String| target.error(error, description);
        let invalid = |d: String| fail("invalid_request", d);
        let single = |name: &str| params.single(name).map_err(|e| invalid(e.into()));
        // A state that can't be echoed (sent twice, control characters) is refused, not dropped.
        single("state")?;

        match single("response_type")? {
            Some("code") => {}
            Some(other) => {
                return Err(fail(
                    "unsupported_response_type",
                    format!("response_type {other:?} is not supported: use code"),
                ));
            }
            None => return Err(invalid("response_type is required (use code)".into())),
        }
        if !client.allows_grant(GrantType::AuthorizationCode) {
            return Err(fail("unauthorized_client", "this client may not use the authorization code grant".into()));
        }
        if let Some(other) = single("response_mode")?.filter(|m| ResponseMode::parse(m).is_none()) {
            return Err(invalid(format!("response_mode {other:?} is not supported: use query or form_post")));
        }

        // Scopes and APIs, by the rules `/device_authorization` shares.
        let RequestedAccess { scope, resources } = RequestedAccess::parse(params, client, apis, catalog, narrow_scopes)
            .map_err(|r| fail(r.error, r.description))?;

        let code_challenge = match single("code_challenge")? {
            Some(challenge) => {
                Some(CodeChallenge::parse(challenge, single("code_challenge_method")?).map_err(invalid)?)
            }
            None if client.require_pkce => {
                return Err(invalid("code_challenge is required (PKCE with S256) for this client".into()));
            }
            None => None,
        };

        let mut prompt = (false, false, false);
        for value in single("prompt")?.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => prompt.0 = true,
                "login" => prompt.1 = true,
                "consent" => prompt.2 = true,
                "select_account" => {}
                other => return Err(invalid(format!("prompt value {other:?} is not supported"))),
            }
        }
        if prompt.0 && (prompt.1 || prompt.2) {
            return Err(invalid("prompt=none cannot be combined with other values".into()));
        }
        let max_age = match single("max_age")? {
            Some(raw) => Some(
                raw.parse::<i64>()
                    .ok()
                    .filter(|v| *v >= 0)
                    .ok_or_else(|| invalid("max_age must be a non-negative number of seconds".into()))?,
            ),
            None => None,
        };
        // Custom claims only as far as the client's allowed custom scopes reach (any other
        // name is dropped, as an unknown claim would be: §5.5 lets the OP ignore it).
        let claims = match single("claims")? {
            Some(raw) => {
                let mut claims = ClaimsRequest::parse(raw).map_err(invalid)?;
                claims.retain(|name| is_reserved_claim(name) || catalog.may_request(name, &client.scope));
                Some(claims).filter(|c| !c.is_empty())
            }
            None => None,
        };
        // A SHA-256 thumbprint, base64url: 43 characters of the base64url alphabet.
        let dpop_jkt = match single("dpop_jkt")? {
            Some(jkt)
                if jkt.len() == 43 && jkt.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                Some(jkt.to_owned())
            }
            Some(_) => {
                return Err(invalid(
                    "dpop_jkt must be the base64url SHA-256 JWK thumbprint of a key (RFC 9449 §10)".into(),
                ));
            }
            None => None,
        };
        let acr_values =
            single("acr_values")?.unwrap_or("").split(' ').filter(|v| !v.is_empty()).map(str::to_owned).collect();
        // OIDC Core §3.1.2.1: an id_token this server issued to this client (an expired one
        // is fine: it is a hint about who, not a credential).
        let hinted_sub = match single("id_token_hint")? {
            Some(token) => Some(
                crate::tokens::verify::id_token_hint(ring, iss, &client.client_id, token)
                    .map_err(|why| invalid(format!("the id_token_hint {why}")))?,
            ),
            None => None,
        };
        Ok(Self {
            response_mode: *response_mode,
            claims,
            acr_values,
            hinted_sub,
            dpop_jkt,
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            scope,
            nonce: single("nonce")?.map(str::to_owned),
            state: state.clone(),
            code_challenge,
            resources,
            prompt_none: prompt.0,
            prompt_login: prompt.1,
            prompt_consent: prompt.2,
            max_age,
            login_hint: single("login_hint")?.map(str::to_owned),
        })
    }
}

/// Where errors about a request go once its redirect_uri is known to be registered for the
/// client: there, with the request's `state`, the way its `response_mode` asks.
struct ErrorTarget {
    redirect_uri: String,
    state: Option<String>,
    response_mode: ResponseMode,
    iss: String,
}

impl ErrorTarget {
    /// The target `params` name, or the page that says why there is none (RFC 6749
    /// §4.1.2.1: never redirect to an unverified URI).
    fn of(params: &Params, client: &Client, iss: &str) -> Result<Self, AuthorizeError> {
        let bad_page = |message: String| AuthorizeError::page("Invalid request", message);
        let redirect_uri = match params.single("redirect_uri").map_err(|e| bad_page(e.into()))? {
            Some(uri) if client.redirect_uri(uri).is_some() => uri.to_owned(),
            Some(uri) => {
                return Err(bad_page(format!(
                    "The redirect_uri {uri:?} is not registered for client {:?}. Register it exactly (no wildcards) and try again.",
                    client.client_id
                )));
            }
            None => {
                return Err(bad_page("The request has no redirect_uri; it is required.".into()));
            }
        };
        let state = params.single("state").ok().flatten().map(str::to_owned);
        // The response mode first, so that every later error travels the way the client
        // asked (an unsupported mode is answered the default way, query).
        let mode = params.single("response_mode").ok().flatten();
        let response_mode = mode.and_then(ResponseMode::parse).unwrap_or_default();
        Ok(Self { redirect_uri, state, response_mode, iss: iss.to_owned() })
    }

    fn error(&self, error: &'static str, description: String) -> AuthorizeError {
        AuthorizeError::Redirect(ErrorRedirect {
            redirect_uri: self.redirect_uri.clone(),
            error,
            description,
            state: self.state.clone(),
            iss: self.iss.clone(),
            response_mode: self.response_mode,
        })
    }
}
