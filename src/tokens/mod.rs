//! Tokens: signing keys and the JWTs Lanyard issues.

pub mod keys;
