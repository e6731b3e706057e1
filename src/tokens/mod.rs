//! Tokens: signing keys, the two token types, issuing and verifying them.

pub mod alg;
pub mod claims;
pub mod defects;
pub mod issue;
pub mod keys;
pub mod mint;
pub mod subject;
pub mod verify;
