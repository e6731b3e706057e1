//! OpenID Provider metadata (OIDC Discovery 1.0) and OAuth AS metadata (RFC 8414).
//! Built once at start-up, and again while custom scopes exist (they change at run time);
//! only what is implemented is advertised.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use serde_json::{Value, json};

use crate::config::Config;
use crate::oauth::claims_request::ACR_VALUES_SUPPORTED;
use crate::oauth::scope::ScopeCatalog;
use crate::registry::client::GrantType;
use crate::registry::client_keys::{AssertionAlg, MacAlg};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(openid_configuration).service(oauth_authorization_server).service(jwks);
}

/// The metadata document, shared by both well-known paths.
///
/// The endpoints a browser visits (authorization, end_session) are on the issuer; those that
/// other services call (token, userinfo, JWKS, introspection, revocation, registration) are on
/// `backchannel_url` when one is set, so a relying party in a container network reaches them
/// at `http://lanyard:8080` while its users' browsers use the public URL. `issuer` itself, and
/// every token's `iss`, stay the issuer (OIDC Discovery §4.3: they must match byte for byte).
///
/// `scopes_supported` and `claims_supported` include the custom scopes of `catalog` and
/// the claims they release.
pub fn metadata(config: &Config, catalog: &ScopeCatalog) -> Value {
    let issuer = &config.issuer;
    let backchannel = config.backchannel_url.as_ref().unwrap_or(issuer);
    let mut claims: Vec<&str> =
        vec!["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "azp", "acr", "amr"];
    claims.extend(catalog.claim_names());
    // private_key_jwt (RFC 7523): asymmetric algorithms; client_secret_jwt: HMACs.
    let key_algs: Vec<&str> = AssertionAlg::ALL.iter().map(|a| a.as_str()).collect();
    let mut assertion_algs = key_algs.clone();
    assertion_algs.extend(MacAlg::ALL.iter().map(|a| a.as_str()));
    let mut doc = json!({
        "issuer": issuer.as_str(),
        "authorization_endpoint": issuer.endpoint("/authorize"),
        "token_endpoint": backchannel.endpoint("/token"),
        "userinfo_endpoint": backchannel.endpoint("/userinfo"),
        "jwks_uri": backchannel.endpoint("/jwks"),
        "introspection_endpoint": backchannel.endpoint("/introspect"),
        "revocation_endpoint": backchannel.endpoint("/revoke"),
        // RFC 8628 §4: called by devices, like the token endpoint.
        "device_authorization_endpoint": backchannel.endpoint("/device_authorization"),
        "end_session_endpoint": issuer.endpoint("/logout"),
        "scopes_supported": catalog.scope_names(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": GrantType::ALL.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        // OIDC Core §5.3.2: a client may ask for signed userinfo (userinfo_signed_response_alg).
        "userinfo_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": claims,
        "claims_parameter_supported": true,
        "acr_values_supported": ACR_VALUES_SUPPORTED,
        // Request objects (OIDC Core §6), signed only: `none` is not listed, so a client
        // (and the conformance suite) knows unsigned ones are refused.
        "request_parameter_supported": true,
        "request_uri_parameter_supported": true,
        "require_request_uri_registration": true,
        // Request objects are signed with the client's keys only (never an HMAC, never none).
        "request_object_signing_alg_values_supported": key_algs,
        // Pushed authorization requests (RFC 9126 §5): a direct call, so on the back channel.
        "pushed_authorization_request_endpoint": backchannel.endpoint("/par"),
        "require_pushed_authorization_requests": config.require_pushed_authorization_requests,
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        // Back-Channel Logout 1.0 §2.1 and Front-Channel Logout 1.0 §3: logout tokens and
        // front-channel URIs always carry sid (and iss), so the session variants hold too.
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
        // DPoP (RFC 9449 §5.1): the algorithms proofs may be signed with (asymmetric only),
        // accepted at the token endpoint and at userinfo.
        "dpop_signing_alg_values_supported": crate::oauth::dpop::algs_supported(),
    });
    if config.registration.enabled() {
        doc["registration_endpoint"] = json!(backchannel.endpoint("/register"));
    }
    doc
}

fn cacheable_json(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(body)
}

/// The document as it stands: the one built at start-up unless custom scopes exist. Should
/// the database be away, the start-up document (the OpenID Connect scopes only) is better
/// than no discovery at all.
async fn current(state: &AppState) -> web::Bytes {
    match state.registry.scopes().await {
        Ok(catalog) if !catalog.custom().is_empty() => web::Bytes::from(metadata(&state.config, &catalog).to_string()),
        Ok(_) => state.metadata.clone(),
        Err(e) => {
            tracing::debug!(error = %e, "custom scopes unavailable; discovery shows the OpenID Connect scopes only");
            state.metadata.clone()
        }
    }
}

#[get("/.well-known/openid-configuration")]
async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    cacheable_json(current(&state).await)
}

#[get("/.well-known/oauth-authorization-server")]
async fn oauth_authorization_server(state: web::Data<AppState>) -> HttpResponse {
    cacheable_json(current(&state).await)
}

/// Public keys only: active, next (published before they sign) and retired ones.
#[get("/jwks")]
async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(state.keys.ring().jwks())
}
