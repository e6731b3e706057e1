//! Black-box tests: the real server over HTTP, on SQLite and PostgreSQL.

mod flow;

/// The example appointments API, shared by the tests that serve it.
#[path = "../../examples/support/appointments_api.rs"]
mod appointments_api;
mod helpers;

mod activity;
mod admin_api;
mod admin_pages;
mod browser;
mod cli;
mod client_metadata;
mod conformance_basic;
mod conformance_client_auth;
mod conformance_client_secret_jwt;
mod conformance_dynamic;
mod conformance_logout;
mod conformance_pairwise;
mod conformance_request_objects;
mod custom_claims;
mod dev_and_test;
mod dev_loop;
mod device_flow;
mod dpop;
mod example_api;
mod examples_e2e;
mod faults;
mod foundation;
mod hostile_input;
mod oversize_head;
mod par;
mod pg_cluster;
mod playground;
mod refresh_grace;
mod register;
mod replicas;
mod shutdown;
mod sign_in;
mod sign_in_errors;
mod test_clock;
mod test_lab;
mod token_exchange;
mod token_lifecycle;
mod token_validity;
