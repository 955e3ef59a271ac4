//! wardend: tracks failed logins and decides whether the next attempt may go ahead.
// The workspace [lints] table denies these too; said here as well, where a
// reader of the crate looks first.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod accounts;
pub mod bus;
pub mod config;
pub mod describe;
pub mod dirs;
pub mod engine;
pub mod firewall;
pub mod fleet;
pub mod hex;
pub mod hooks;
pub mod log;
pub mod logline;
pub mod notify;
pub mod server;
pub mod service;
pub mod store;
pub mod time;
pub mod totp;
pub mod views;
pub mod words;
