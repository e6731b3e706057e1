//! Black-box tests: the real server over HTTP, on SQLite and PostgreSQL.

mod helpers;

mod cli;
mod foundation;
