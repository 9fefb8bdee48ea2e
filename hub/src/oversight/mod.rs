//! Oversight: what data protection officers read back from the audit ledger — anomalies
//! (`anomalies`) and subject access reports (`subject_report`). Read-only apart from the ledger
//! entry that records each request; every method checks `audit:read` itself.

mod anomalies;
mod subject_report;

pub use anomalies::{Anomaly, AnomalyReport, BULK_RECORDS, DENIALS};
pub use subject_report::{DisclosureLine, SubjectReport};

use crate::auth::Access;
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
}
