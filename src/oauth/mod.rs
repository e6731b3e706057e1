//! The protocol: one module per endpoint, plus the domain types they share.

pub mod authorization_request;
pub mod authorize;
pub mod backchannel;
pub mod claims_request;
pub mod client_assertion;
pub mod client_auth;
pub mod client_jwks;
pub mod client_metadata;
pub mod client_signature;
pub mod discovery;
pub mod dpop;
pub mod dpop_nonce;
pub mod error;
pub mod introspect;
pub mod issuer;
pub mod logout;
pub mod params;
pub mod pkce;
pub mod redirect_uri;
pub mod register;
pub mod request_object;
pub mod revoke;
pub mod scope;
pub mod session_end;
pub mod token;
pub mod userinfo;
