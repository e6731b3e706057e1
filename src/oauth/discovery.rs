//! OpenID Provider metadata (OIDC Discovery 1.0) and OAuth AS metadata (RFC 8414).
//! Built once at start-up; only what is implemented is advertised.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use serde_json::{Value, json};

use crate::config::Config;
use crate::oauth::claims_request::ACR_VALUES_SUPPORTED;
use crate::oauth::scope::STANDARD_CLAIMS;
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
pub fn metadata(config: &Config) -> Value {
    let issuer = &config.issuer;
    let backchannel = config.backchannel_url.as_ref().unwrap_or(issuer);
    let mut claims: Vec<&str> =
        vec!["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "azp", "acr", "amr"];
    claims.extend(STANDARD_CLAIMS);
    // private_key_jwt (RFC 7523): asymmetric algorithms; client_secret_jwt: HMACs.
    let mut assertion_algs: Vec<&str> = AssertionAlg::ALL.iter().map(|a| a.as_str()).collect();
    assertion_algs.extend(MacAlg::ALL.iter().map(|a| a.as_str()));
    let mut doc = json!({
        "issuer": issuer.as_str(),
        "authorization_endpoint": issuer.endpoint("/authorize"),
        "token_endpoint": backchannel.endpoint("/token"),
        "userinfo_endpoint": backchannel.endpoint("/userinfo"),
        "jwks_uri": backchannel.endpoint("/jwks"),
        "introspection_endpoint": backchannel.endpoint("/introspect"),
        "revocation_endpoint": backchannel.endpoint("/revoke"),
        "end_session_endpoint": issuer.endpoint("/logout"),
        "scopes_supported": ["openid", "profile", "email", "address", "phone", "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
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
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        // Back-Channel Logout 1.0 §2.1 and Front-Channel Logout 1.0 §3: logout tokens and
        // front-channel URIs always carry sid (and iss), so the session variants hold too.
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
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

#[get("/.well-known/openid-configuration")]
async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    cacheable_json(state.metadata.clone())
}

#[get("/.well-known/oauth-authorization-server")]
async fn oauth_authorization_server(state: web::Data<AppState>) -> HttpResponse {
    cacheable_json(state.metadata.clone())
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
