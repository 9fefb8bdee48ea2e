//! Oversight: what data protection officers read back from the audit ledger — anomalies
//! (`anomalies`) and subject access reports (`subject_report`). Read-only apart from the ledger
//! entry that records each request; every method checks `audit:read` itself.

mod anomalies;
mod subject_report;

pub use anomalies::{Anomaly, AnomalyReport, BULK_RECORDS, DENIALS};
pub use subject_report::{DisclosureLine, SubjectReport};

use crate::auth::{Access, Principal};
use crate::error::Error;
use crate::storage::Store;

/// The oversight service.
pub struct Oversight {
    access: Access,
    store: Store,
}

impl Oversight {
    pub fn new(access: Access, store: Store) -> Oversight {
        Oversight { access, store }
    }

    /// Does the caller's role permit `audit:read`? Refused: 403, audited as `audit_action`.
    /// Handlers call it before reading their parameters, so a caller without the role is
    /// refused (and recorded) whatever it sent; each method checks it again.
    pub async fn admit(&self, who: &Principal, audit_action: &str) -> Result<(), Error> {
        self.access
            .authorize(who, "audit", "read", None, audit_action)
            .await
    }
}
