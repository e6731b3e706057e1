//! Token exchange (RFC 8693), for one API calling another on its user's behalf.
//!
//! The exchanging party is an API registered in Lanyard, authenticated as its introspection
//! client (allowed this grant). It presents a user's access token for itself (the
//! `subject_token`) and names one downstream API it is allowed to call
//! (`token_exchange_audiences`); it gets an access token for that API about the same user,
//! with the same or fewer scopes, no longer-lived than the subject token, and with
//! `act: {"sub": <its client_id>}` saying who acts for the user. Nothing else is
//! supported: no id_tokens or refresh tokens as subjects, no `actor_token`, no other
//! issued token types.

use super::TokenResponse;
use crate::oauth::error::TokenError;
use crate::oauth::params::Params;
use crate::oauth::scope::ScopeSet;
use crate::registry::api::Api;
use crate::registry::client::{Client, ClientType, GrantType, TOKEN_EXCHANGE_GRANT};
use crate::state::AppState;
use crate::tokens::claims::{AccessTokenClaims, Actor};
use crate::tokens::issue::{self, AccessTokenGrant};
use crate::tokens::verify::{self, Validity};

/// The token type of a Lanyard access token (RFC 8693 §3): the only `subject_token_type`
/// accepted, and the only `issued_token_type`.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// How many actors an exchanged token may name (`act` nested in `act`): enough for a
/// chain of services, few enough that a loop between two APIs ends.
pub const MAX_ACTORS: usize = 5;

/// What the exchanging party asked for, checked (RFC 8693 §2.1).
#[derive(Debug)]
struct ExchangeRequest<'a> {
    subject_token: &'a str,
    /// The one downstream API (`resource` or `audience`).
    target: &'a str,
    /// The scopes asked for; `None`: every scope the subject token has that the target
    /// defines.
    scope: Option<ScopeSet>,
}

impl<'a> ExchangeRequest<'a> {
    fn parse(params: &'a Params) -> Result<Self, TokenError> {
        let single = |name| params.single(name).map_err(TokenError::invalid_request);
        // §2.1: the actor here is the authenticated client itself; a token standing for
        // some other actor is not something Lanyard can vouch for.
        for name in ["actor_token", "actor_token_type"] {
            if single(name)?.is_some() {
                return Err(TokenError::invalid_request(format!(
                    "{name} is not supported: the actor is the authenticated client, named in the issued token's act claim"
                )));
            }
        }
        let subject_token =
            single("subject_token")?.ok_or_else(|| TokenError::invalid_request("subject_token is required"))?;
        match single("subject_token_type")? {
            None => return Err(TokenError::invalid_request("subject_token_type is required")),
            Some(ACCESS_TOKEN_TYPE) => {}
            Some(other) => {
                return Err(TokenError::invalid_request(format!(
                    "subject_token_type {other:?} is not supported: the subject_token must be a Lanyard access token \
                     ({ACCESS_TOKEN_TYPE})"
                )));
            }
        }
        if let Some(other) = single("requested_token_type")?.filter(|t| *t != ACCESS_TOKEN_TYPE) {
            return Err(TokenError::invalid_request(format!(
                "requested_token_type {other:?} is not supported: token exchange issues access tokens only \
                 ({ACCESS_TOKEN_TYPE})"
            )));
        }
        // §2.1: `resource` and `audience` may both repeat; one API per exchange (a token
        // names one audience, RFC 8707 §2.2).
        let mut targets = params.all("resource").map_err(TokenError::invalid_request)?;
        targets.extend(params.all("audience").map_err(TokenError::invalid_request)?);
        targets.dedup();
        let target = match targets.as_slice() {
            [] => {
                return Err(TokenError::invalid_request(
                    "name the downstream API with resource (or audience): the exchanged token is for that API",
                ));
            }
            [one] => *one,
            _ => return Err(TokenError::new("invalid_target", "name one downstream API per token exchange")),
        };
        let scope =
            single("scope")?.map(ScopeSet::parse).transpose().map_err(|e| TokenError::new("invalid_scope", e))?;
        Ok(Self { subject_token, target, scope })
    }
}

/// The grant: checks the exchanging party, the subject token and the target, narrows the
/// scopes, signs the new token and records it under the subject token's grant.
pub async fn exchange(state: &AppState, client: &Client, params: &Params) -> Result<TokenResponse, TokenError> {
    if client.client_type == ClientType::Public || !client.allows_grant(GrantType::TokenExchange) {
        return Err(TokenError::new(
            "unauthorized_client",
            format!("this client may not use the {TOKEN_EXCHANGE_GRANT} grant"),
        ));
    }
    // The APIs this client speaks for: it is their introspection client.
    let apis = state.registry.apis().await?;
    let exchanging: Vec<&Api> =
        apis.iter().filter(|a| a.introspection_client_id.as_deref() == Some(client.client_id.as_str())).collect();
    if exchanging.is_empty() {
        return Err(TokenError::new(
            "unauthorized_client",
            "only an API may exchange tokens, authenticated as its introspection client; this client is no API's",
        ));
    }
    let request = ExchangeRequest::parse(params)?;
    let now = state.now();
    let (subject, api) = verify_subject(state, request.subject_token, &exchanging, now).await?;

    // The target: one the exchanging API is configured to call (RFC 8693 §2.2.2).
    if !api.may_exchange_for(request.target) {
        return Err(TokenError::new(
            "invalid_target",
            format!(
                "{} may not exchange tokens for {:?}: it is not among its token_exchange_audiences",
                api.identifier, request.target
            ),
        ));
    }
    let downstream =
        state.registry.api(request.target).await?.ok_or_else(|| {
            TokenError::new("invalid_target", format!("{:?} is not a registered API", request.target))
        })?;

    // Whose token it is: a user's, under a grant that still stands, through a client that
    // is still registered.
    let grant = state.store.grant_of_access_token(&subject.jti).await?.ok_or_else(|| {
        TokenError::invalid_grant(
            "the subject_token was issued to a client for itself (client_credentials): token exchange acts for a user",
        )
    })?;
    if grant.revoked {
        return Err(TokenError::invalid_grant("the subject_token has been revoked"));
    }
    if grant.client_id != subject.client_id {
        return Err(TokenError::invalid_grant("the subject_token does not match its grant"));
    }
    let user =
        state.store.user_by_id(&grant.user_id).await?.filter(|u| !u.disabled).ok_or_else(|| {
            TokenError::invalid_grant("the user of the subject_token no longer exists or is disabled")
        })?;
    let original = match state.find_client(&subject.client_id).await {
        Ok(Some(found)) => found,
        Ok(None) | Err(crate::state::FindClientError::Metadata(_)) => {
            return Err(TokenError::invalid_grant(format!(
                "{:?}, the client the subject_token was issued to, is no longer registered",
                subject.client_id
            )));
        }
        Err(crate::state::FindClientError::Store(e)) => return Err(e.into()),
    };

    let scope = narrow_scope(&subject, &original, &downstream, request.scope)?;
    let scope_text = scope.to_string();
    // Never beyond the subject token's own expiry: the exchange extends nobody's access.
    let ttl = downstream.access_token_ttl.min(subject.exp - now);
    // `client_id` stays the client the user signed in to (the issued token's `sub` is that
    // client's view of the user, pairwise or public, as for every access token, and the
    // user's consent was given to it); the exchanging client, which RFC 8693 §4.3 would
    // put there as "the client that requested the token", is named by `act` instead
    // (§4.1: the party acting on the subject's behalf), with earlier actors nested in it.
    let subject_id = state.subjects.for_client(&original, &user.id);
    let access = issue::exchanged_access_token(
        &state.keys.ring(),
        &AccessTokenGrant {
            issuer: state.config.issuer.as_str(),
            subject: &subject_id,
            audience: vec![downstream.identifier.clone()],
            client_id: &subject.client_id,
            scope: &scope_text,
            auth_time: subject.auth_time,
            sid: subject.sid.as_deref(),
            acr: subject.acr.as_deref(),
            ttl,
            alg: downstream.signing_alg,
            user_claims: user.access_token_claims(&downstream.access_token_claims),
            issued_at: now,
            // Bearer only: the grant refuses DPoP proofs (see `oauth::token`).
            dpop_jkt: None,
        },
        Actor::after(&client.client_id, subject.act.as_ref()),
    )?;
    if !state.store.record_exchanged_access_token(&grant.id, &access.jti, access.expires_at).await? {
        return Err(TokenError::invalid_grant("the subject_token has been revoked"));
    }
    tracing::info!(
        client = %client.client_id, from = %api.identifier, to = %downstream.identifier, jti = %access.jti,
        "token exchanged"
    );
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        id_token: None,
        refresh_token: None,
        scope: scope_text,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
    })
}

/// The subject token, verified as introspection verifies a token for one of the caller's
/// APIs (signature, `typ`, `iss`, `aud`, `exp`/`nbf`/`iat` with the leeway, revocation),
/// and the API among `exchanging` it is for.
async fn verify_subject<'a>(
    state: &AppState,
    token: &str,
    exchanging: &[&'a Api],
    now: i64,
) -> Result<(AccessTokenClaims, &'a Api), TokenError> {
    let refused = |r: verify::Rejection| TokenError::invalid_grant(format!("subject_token: {r}"));
    let claims = verify::decode(&state.keys.ring(), state.config.issuer.as_str(), token).map_err(refused)?;
    let api = exchanging.iter().copied().find(|a| claims.aud.contains(&a.identifier)).ok_or_else(|| {
        let ours: Vec<&str> = exchanging.iter().map(|a| a.identifier.as_str()).collect();
        TokenError::invalid_grant(format!(
            "subject_token: the token is not meant for {} (the API this client speaks for), so it may not exchange it",
            ours.join(" or ")
        ))
    })?;
    verify::check_audience_and_time(&claims, &api.identifier, Validity { now, leeway: state.config.clock_leeway })
        .map_err(refused)?;
    // The leeway forgives a clock difference in judging a token; it cannot give a token
    // issued now a lifetime its subject no longer has.
    if claims.exp <= now {
        return Err(refused(verify::Rejection::Expired));
    }
    if state.store.is_revoked(&claims.jti).await? {
        return Err(refused(verify::Rejection::Revoked));
    }
    if claims.act.as_ref().is_some_and(|act| act.chain().len() >= MAX_ACTORS) {
        return Err(TokenError::invalid_grant(format!(
            "subject_token: it was exchanged {MAX_ACTORS} times already; the delegation chain ends here"
        )));
    }
    Ok((claims, api))
}

/// The scopes of the exchanged token: only ever narrowed. Each must be in the subject
/// token (what the user granted the client, RFC 8693 §5 "the scope of the issued token
/// should be no broader"), defined by the downstream API, and still allowed to the
/// original client. Without `scope`, all the subject token's scopes that qualify.
fn narrow_scope(
    subject: &AccessTokenClaims,
    original: &Client,
    downstream: &Api,
    requested: Option<ScopeSet>,
) -> Result<ScopeSet, TokenError> {
    let granted = ScopeSet::parse(&subject.scope).unwrap_or_default();
    let why_not = |s: &str| {
        if !granted.contains(s) {
            Some(format!("{s:?} was not granted in the subject_token"))
        } else if !downstream.defines(s) {
            Some(format!("{s:?} is not a scope of {}", downstream.identifier))
        } else if !original.scope.contains(s) {
            Some(format!("{s:?} is no longer allowed to {}", original.client_id))
        } else {
            None
        }
    };
    match requested {
        Some(requested) if requested.is_empty() => Err(TokenError::new("invalid_scope", "scope names no scope")),
        Some(requested) => {
            let refused: Vec<String> = requested.iter().filter_map(why_not).collect();
            if !refused.is_empty() {
                return Err(TokenError::new(
                    "invalid_scope",
                    format!("a token exchange may narrow the scopes, never widen them: {}", refused.join("; ")),
                ));
            }
            Ok(requested)
        }
        None => {
            let kept = granted.filter(|s| why_not(s).is_none());
            if kept.is_empty() {
                return Err(TokenError::new(
                    "invalid_scope",
                    format!(
                        "none of the subject_token's scopes ({granted}) is a scope of {} the user granted",
                        downstream.identifier
                    ),
                ));
            }
            Ok(kept)
        }
    }
}
