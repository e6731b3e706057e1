//! Black-box tests: the real server over HTTP, on SQLite and PostgreSQL.

mod flow;
mod helpers;

mod cli;
mod example_api;
mod foundation;
mod sign_in;
mod sign_in_errors;
mod token_lifecycle;
