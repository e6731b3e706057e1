//! Black-box tests: the real server over HTTP, on SQLite and PostgreSQL.

mod flow;
mod helpers;

mod admin_api;
mod admin_pages;
mod browser;
mod cli;
mod client_metadata;
mod example_api;
mod examples_e2e;
mod foundation;
mod register;
mod sign_in;
mod sign_in_errors;
mod token_lifecycle;
