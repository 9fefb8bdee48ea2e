//! The events the outbox carries (written by `crate::storage::outbox` inside the transactions of
//! the changes), listed for the documentation and the API. Payloads hold ids, statuses, times
//! and kinds only.

/// Every event type, as `type` in the body.
pub const EVENT_TYPES: &[&str] = &[
    "case.assigned",
    "case.reassigned",
    "case.due_soon",
    "case.overdue",
    "grant.requested",
    "grant.approved",
    "grant.rejected",
    "grant.suspended",
    "grant.resumed",
    "grant.revoked",
    "grant.expired",
    "grant.expiring",
    "grant.consented",
    "grant.declined",
    "ledger.checkpoint",
    "anomaly.flagged",
];

/// The states of an outbox row.
pub const DELIVERY_STATES: &[&str] = &["pending", "delivered", "dead"];
