//! The black-box test binary: the real hub over real TLS, on SQLite and on PostgreSQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod anomalies;
mod audit_cli;
mod audit_search;
mod body_limit;
mod calendar;
mod cli;
mod client_cli;
mod clients;
mod connector;
mod console;
mod console_admin;
mod console_ledger;
mod console_oversight;
mod console_systems;
mod crypto;
mod decisions;
mod deploy;
mod disclosure;
mod errors;
mod exchange;
mod failover;
mod faults;
mod grants;
mod identity;
mod identity_cli;
mod import;
mod key_rotation;
mod ledger;
mod ledger_key;
mod metrics;
mod migrations;
mod paging;
mod plaintext;
mod records;
mod recover_cli;
mod refusals;
mod replicas;
mod retention;
mod retries;
mod roles;
mod roles_lock_out;
mod sdk;
mod statistics;
mod upgrade;
mod webhooks;
mod witnesses;
