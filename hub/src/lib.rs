//! Gridhub: a privacy-preserving data exchange hub for grid-based community governance.
//! This library is the whole server and CLI; `main.rs` only parses the command line.

pub mod auth;
pub mod cases;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod config;
pub mod connector;
pub mod console;
pub mod decisions;
pub mod demo;
pub mod disclosure;
pub mod error;
pub mod extract;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod grants;
pub use tlog::hex;
pub mod idempotency;
pub mod identity;
pub mod import;
pub mod init;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod oversight;
pub mod records;
pub mod recover;
pub mod retention;
pub mod routes;
pub mod server;
pub mod startup;
pub mod state;
pub mod statistics;
pub mod storage;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod vault;
// Webhooks and the NATS publisher from one transactional outbox (issue 21).
pub mod webhooks;
pub mod whole_number;
