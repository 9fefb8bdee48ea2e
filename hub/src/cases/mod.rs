//! Cases (事件), API.md "Cases": the closed loop reported → assigned → replied → closed, with
//! reassignment (a new round replaces the current assignees), joint dispatch to several
//! departments, deadlines and an overdue flag, and a satisfaction rating at close.
//!
//! This module owns the case lifecycle; the API (`routes/cases.rs`) and the demo call the same
//! `Cases` methods, and nothing else writes a case. It guarantees:
//! - an open assignment is a responsibility: it is what lets a case-bound grant reach the case's
//!   records; reporting, assigning and closing reach the decision index on the very next
//!   request;
//! - every step is audited before it is stored, and every refusal is audited;
//! - case texts (summary, replies, resolution) may name people: they are sealed under a
//!   per-case key in `texts`, the only code where their plaintext meets the vault, and opened
//!   only for a reader the role permissions or a current assignment admit.

pub(crate) mod input;
mod service;
mod texts;

pub use input::{AssignmentDraft, ClosingDraft, ReportDraft};
pub use service::{AssignmentView, CaseState, CaseView, Cases};
pub use texts::OpenText;
