//! Request and answer shapes of the calls the SDK makes (API.md "Disclosure", "Grants").
//! Answers keep unknown members in `extra` so a newer hub does not break an older SDK.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Parameters of a pull (`GET /v1/data/{category}`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PullRequest {
    /// The registered purpose the data is for.
    pub purpose: String,
    /// A case assigned to the department (needed for case-bound grants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// Only records in this grid subtree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
    /// Where to start: the `next_cursor` of an earlier page (resume a saved pull).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size, 1–500 (the hub's default is 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl PullRequest {
    /// A pull for `purpose` with the hub's defaults.
    pub fn new(purpose: impl Into<String>) -> PullRequest {
        PullRequest {
            purpose: purpose.into(),
            ..PullRequest::default()
        }
    }
}

/// One disclosed record: only the disclosed fields, each at its granted level.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Record {
    /// The record id.
    pub id: String,
    /// The record's grid code.
    pub grid: String,
    /// Disclosed fields by name.
    pub fields: Map<String, Value>,
}

/// The signed receipt of the ledger entry that recorded a disclosure.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Receipt {
    /// The entry's index in the ledger.
    pub index: u64,
    /// The entry's RFC 9162 leaf hash (base64).
    pub leaf_hash: String,
    /// When the entry was written (RFC 3339).
    pub integrated_time: String,
    /// Hex key hash of the ledger key that signed.
    pub key_id: String,
    /// Ed25519 signature (base64) over `tlog::note::receipt_message`.
    pub signature: String,
}

/// A verified page of a pull or a lookup: its receipt's signature and inclusion in a
/// checkpoint consistent with every checkpoint verified before were checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The records.
    pub records: Vec<Record>,
    /// Pass as `cursor` for the next page (save it to resume); `None` at the end.
    pub next_cursor: Option<String>,
    /// False when the hub's scan budget ran out before the page was full: more may follow.
    pub complete: bool,
    /// The receipt of the disclosure.
    pub receipt: Receipt,
    /// The size of the verified checkpoint the receipt was proved in.
    pub checkpoint_size: u64,
}

/// A page as the hub sends it, before verification.
#[derive(Deserialize)]
pub(crate) struct RawPage {
    pub(crate) records: Vec<Record>,
    #[serde(default)]
    pub(crate) next_cursor: Option<String>,
    #[serde(default = "yes")]
    pub(crate) complete: bool,
    pub(crate) receipt: Receipt,
}

fn yes() -> bool {
    true
}

/// `POST /v1/data/{category}/lookup` body.
#[derive(Serialize)]
pub(crate) struct LookupBody<'a> {
    pub(crate) purpose: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) case: Option<&'a str>,
    pub(crate) key: &'a Map<String, Value>,
}

/// `POST /v1/decisions/explain` body.
#[derive(Serialize)]
pub(crate) struct ExplainBody<'a> {
    pub(crate) category: &'a str,
    pub(crate) purpose: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) case: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) record: Option<&'a str>,
}

/// Why the department gets what it gets (`POST /v1/decisions/explain`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Explanation {
    /// Would at least one field be disclosed?
    pub allowed: bool,
    /// When nothing would be: `no_grant` or `record_not_reached`.
    #[serde(default)]
    pub reason: Option<String>,
    /// The candidate grants.
    #[serde(default)]
    pub grants: Vec<Value>,
    /// Per field: `{disclosure, grant}` or `{withheld: reason}`.
    #[serde(default)]
    pub fields: Map<String, Value>,
    /// Other members.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A grant request (`POST /v1/grants`); see API.md "Grants". Deserializes from the same JSON
/// (`gridhub-client grants request --file`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// The department asking (the caller's own).
    pub grantee: String,
    /// The registered purpose.
    pub purpose: String,
    /// The category.
    pub category: String,
    /// Field name → `clear` | `pseudonym` | `masked` | `generalized`.
    pub fields: Map<String, Value>,
    /// Grid codes.
    pub scope: Vec<String>,
    /// A row filter (`tags has "elderly_alone"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<String>,
    /// Only for assigned cases.
    #[serde(default)]
    pub case_bound: bool,
    /// RFC 3339.
    pub valid_from: String,
    /// RFC 3339.
    pub valid_until: String,
    /// Records a day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_quota: Option<u32>,
    /// Required for sensitive fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
}

/// A grant's id and status (`requested`, `approved`, `rejected`, `suspended`, `revoked`, …).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GrantStatus {
    /// The grant id.
    pub id: String,
    /// Its status.
    pub status: String,
    /// Other members (the full grant on `GET /v1/grants/{id}`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The token endpoint's answer.
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    pub(crate) access_token: String,
    pub(crate) expires_in: u64,
}
