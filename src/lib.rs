//! Lanyard: a minimal, correct OpenID Connect / OAuth 2.0 authorization server.
//!
//! The tree is the architecture: `oauth` speaks the protocol, `tokens` signs and verifies,
//! `store` owns the database, `registry` the clients, APIs and users above it (with their
//! caches), `web` renders pages, `state` is what handlers share, `app` wires them into one
//! server.

pub mod activity;
pub mod admin_api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod lab;
pub mod oauth;
pub mod registry;
pub mod seed;
pub mod state;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
pub mod verify;
pub mod web;
