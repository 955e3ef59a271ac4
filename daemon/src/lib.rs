//! wardend: tracks failed logins and decides whether the next attempt may go ahead.

pub mod accounts;
pub mod bus;
pub mod config;
pub mod describe;
pub mod dirs;
pub mod engine;
pub mod log;
pub mod logline;
pub mod notify;
pub mod server;
pub mod service;
pub mod store;
pub mod time;
pub mod totp;
pub mod views;
