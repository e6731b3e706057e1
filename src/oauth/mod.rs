//! The protocol: one module per endpoint, plus the domain types they share.

pub mod discovery;
pub mod issuer;
pub mod pkce;
pub mod redirect_uri;
pub mod scope;
