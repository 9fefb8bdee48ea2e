//! Oversight: what data protection officers read back from the audit ledger — anomalies
//! (`anomalies`), activity figures (`activity`), subject access reports (`subject_report`) and
//! the search of entries behind the audit explorer (`audit_search`) — and the one thing they
//! write: reviews of anomalies (`anomaly_reviews`). Read-only apart from those reviews and the
//! ledger entry that records a request; every method checks `audit:read` itself.

mod activity;
mod anomalies;
mod anomaly_reviews;
pub mod audit_search;
// Ledger status, verification in ranges, key versions (issue 20).
pub mod ledger_keys;
mod subject_report;

pub use activity::{Activity, Consumer, DepartmentCases, DepartmentDays, MAX_DAYS};
pub use anomalies::{Anomaly, AnomalyReport, BULK_RECORDS, DENIALS, Review, ReviewStep};
pub use anomaly_reviews::ReviewAction;
pub use audit_search::{AuditExport, AuditPage, AuditParams, AuditQuery, FoundEntry};
pub use subject_report::{DisclosureLine, RelatedRecord, SubjectReport};

use crate::auth::{Access, Principal};
use crate::error::Error;
use crate::storage::Store;

/// The oversight service.
pub struct Oversight {
    access: Access,
    store: Store,
    /// Opens a subject's identity number to find the same person's records in other
    /// categories (`subject_report`).
    vault: std::sync::Arc<crate::vault::Vault>,
    decisions: std::sync::Arc<crate::decisions::Decisions>,
    /// Wraps after which the hub rotates a KEK by itself (shown with the key versions).
    rotate_after_wraps: i64,
}

impl Oversight {
    /// With the rotation threshold the key report shows (`crate::keys::RotationPolicy`).
    pub fn with_rotate_after_wraps(mut self, wraps: i64) -> Oversight {
        self.rotate_after_wraps = wraps;
        self
    }

    pub fn new(
        access: Access,
        store: Store,
        vault: std::sync::Arc<crate::vault::Vault>,
        decisions: std::sync::Arc<crate::decisions::Decisions>,
    ) -> Oversight {
        Oversight {
            access,
            store,
            vault,
            decisions,
            rotate_after_wraps: crate::keys::DEFAULT_ROTATE_AFTER_WRAPS,
        }
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
