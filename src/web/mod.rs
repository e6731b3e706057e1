//! HTML pages and the HTTP plumbing around them.

pub mod admin;
pub mod assets;
pub mod consent;
pub mod cors;
pub mod csrf;
pub mod deadline;
pub mod dev_banner;
pub mod device;
pub mod health;
pub mod input_guard;
pub mod login;
pub mod pages;
pub mod playground;
pub mod session;
pub mod token_report;
