//! Gridhub client SDK for department systems: mTLS, access tokens (single flight, refreshed
//! ahead of expiry, safe against a lost refresh), typed pulls, lookups, explanations and
//! grants, unsealing of `application/age` answers, and verification of every disclosure's
//! receipt against the hub's transparency log — its signature, its inclusion in a signed
//! checkpoint, and that checkpoint's consistency with every checkpoint verified before (kept
//! in a state file that several processes may share) — under the pinned ledger key or a key it
//! endorsed through the hub's key transitions. See `docs/SDK.md`.
//!
//! ```no_run
//! use connectors::{Client, Config, PullRequest};
//! use futures::TryStreamExt;
//!
//! # async fn run() -> Result<(), connectors::Error> {
//! let read = |p: &str| std::fs::read_to_string(p).map_err(|e| connectors::Error::Config(e.to_string()));
//! let config = Config::new(
//!     "https://hub.example:8443",
//!     read("ca.pem")?,
//!     read("client.pem")?,
//!     read("client-key.pem")?,
//! )
//! .age_identity(read("age-identity.txt")?)
//! .state_file("gridhub-state.json");
//! let client = Client::new(config)?;
//! let mut pages = std::pin::pin!(client.pull_all("person", PullRequest::new("elderly-care")));
//! while let Some(page) = pages.try_next().await? {
//!     for record in &page.records {
//!         println!("{} in {}", record.id, record.grid);
//!     }
//!     // Save `page.next_cursor` to resume here after a restart.
//! }
//! # Ok(())
//! # }
//! ```

mod client;
mod config;
mod error;
mod keys;
mod model;
pub mod state;
mod token;
mod transport;
mod trust;
mod unseal;
pub mod verify;

pub use client::{Client, Witnessed};
pub use config::{Clock, Config, SystemClock};
pub use error::{ApiCode, Error, FieldProblem, Result};
pub use keys::LedgerKeys;
pub use model::{Explanation, GrantRequest, GrantStatus, Page, PullRequest, Receipt, Record};
/// The transparency-log primitives (a witness builds its `tlog::cosignature::Cosigner` here).
pub use tlog;
pub use verify::SignedCheckpoint;

/// The HTTP API version this SDK speaks.
pub const API_VERSION: &str = "v1";
