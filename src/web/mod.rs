//! HTML pages and the HTTP plumbing around them.

pub mod health;
