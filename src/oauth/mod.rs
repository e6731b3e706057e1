//! The protocol: one module per endpoint, plus the domain types they share.

pub mod discovery;
pub mod issuer;
pub mod scope;
