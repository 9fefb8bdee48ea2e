//! The SDK's one error type. API errors keep the hub's stable code (`ApiCode`), status, message
//! and request id; verification failures carry what was checked (indexes, sizes, the signed
//! notes), never a record's field values.

use serde::Deserialize;

/// Everything an SDK call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The hub answered with an error body (`{"error": {code, message, request_id, details?}}`).
    #[error("the hub answered {status} `{}`: {message}", code.as_str())]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code.
        code: ApiCode,
        /// The hub's human text (it holds no personal data).
        message: String,
        /// The request id (`x-request-id`), to quote to the hub's operators.
        request_id: Option<String>,
        /// Per-field problems of a `validation_failed` answer.
        details: Vec<FieldProblem>,
    },
    /// The request did not get an answer: connection, TLS handshake, timeout.
    #[error("transport error: {0}")]
    Transport(String),
    /// The configuration is unusable (certificates, keys, URLs, age identity).
    #[error("configuration error: {0}")]
    Config(String),
    /// An answer could not be read as the documented shape.
    #[error("malformed answer from the hub: {0}")]
    Malformed(String),
    /// A sealed (`application/age`) answer could not be opened.
    #[error("cannot unseal the answer: {0}")]
    Unseal(String),
    /// A receipt's signature does not verify with the ledger key its `key_id` names.
    #[error("the receipt of ledger entry {index} does not verify with the ledger key")]
    BadReceiptSignature {
        /// The receipt's ledger index.
        index: u64,
    },
    /// A receipt's `key_id` names no key of the chain followed from the pinned ledger key, even
    /// after following the hub's key transitions again.
    #[error(
        "the receipt of ledger entry {index} names key `{key_id}`, which is not in the chain of ledger keys"
    )]
    UnknownReceiptKey {
        /// The receipt's ledger index.
        index: u64,
        /// The receipt's `key_id`, as the hub sent it.
        key_id: String,
    },
    /// The hub signs with a ledger key that no key transition from the pinned key leads to: its
    /// key changed without a transition the pinned key endorsed (or its transitions are broken,
    /// or fork from those followed before). Nothing that key signed is accepted.
    #[error(
        "the hub's ledger key changed without a transition endorsed by the pinned key: {reason} (pinned `{pinned}`, the hub's `{hub_key}`)"
    )]
    UnendorsedKey {
        /// The pinned verifier key.
        pinned: String,
        /// The verifier key the hub names as its current one.
        hub_key: String,
        /// Why the hub's transitions do not lead from the pinned key to it.
        reason: String,
    },
    /// A checkpoint's signature (or a required witness cosignature) does not verify.
    #[error("the checkpoint does not verify: {0}")]
    BadCheckpoint(String),
    /// An inclusion proof does not verify, or proves another leaf or tree.
    #[error("proof failed: {0}")]
    ProofFailed(String),
    /// The hub presented a checkpoint that is not an extension of one already verified (a
    /// forked or rewritten log). Both signed notes are the evidence.
    #[error("the hub's log is inconsistent with a checkpoint verified earlier")]
    Inconsistent {
        /// The signed note trusted before.
        trusted: String,
        /// The signed note the hub presented.
        presented: String,
    },
    /// The hub presented a checkpoint smaller than one already verified.
    #[error("the hub's log went back from size {trusted_size} to {presented_size}")]
    Rollback {
        /// Size of the trusted checkpoint.
        trusted_size: u64,
        /// Size of the presented checkpoint.
        presented_size: u64,
        /// The signed note trusted before.
        trusted: String,
        /// The signed note the hub presented.
        presented: String,
    },
    /// The state file could not be read, locked, parsed or written.
    #[error("state file: {0}")]
    StateFile(String),
}

/// Result with the SDK's `Error`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A problem with one field of a request (`validation_failed` details).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldProblem {
    /// The field (or position) concerned.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The hub's stable error codes (API.md "Conventions" and additions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiCode {
    /// `bad_request` (400).
    BadRequest,
    /// `validation_failed` (422), with details.
    ValidationFailed,
    /// `unauthenticated` (401).
    Unauthenticated,
    /// `forbidden` (403).
    Forbidden,
    /// `no_grant` (403).
    NoGrant,
    /// `not_found` (404).
    NotFound,
    /// `method_not_allowed` (405).
    MethodNotAllowed,
    /// `not_acceptable` (406): a sealed answer asked for without a registered recipient.
    NotAcceptable,
    /// `conflict` (409).
    Conflict,
    /// `payload_too_large` (413).
    PayloadTooLarge,
    /// `unsupported_media_type` (415).
    UnsupportedMediaType,
    /// `quota_exceeded` (429).
    QuotaExceeded,
    /// `rate_limited` (429).
    RateLimited,
    /// `privacy_budget_exhausted` (429).
    PrivacyBudgetExhausted,
    /// `internal` (500).
    Internal,
    /// `integrity_failed` (500).
    IntegrityFailed,
    /// `storage_unavailable` (503).
    StorageUnavailable,
    /// `audit_unavailable` (503).
    AuditUnavailable,
    /// `timeout` (503).
    Timeout,
    /// A code this SDK does not know (newer hub), kept verbatim.
    Other(String),
}

/// Code table: one row per known code.
const CODES: &[(&str, ApiCode)] = &[
    ("bad_request", ApiCode::BadRequest),
    ("validation_failed", ApiCode::ValidationFailed),
    ("unauthenticated", ApiCode::Unauthenticated),
    ("forbidden", ApiCode::Forbidden),
    ("no_grant", ApiCode::NoGrant),
    ("not_found", ApiCode::NotFound),
    ("method_not_allowed", ApiCode::MethodNotAllowed),
    ("not_acceptable", ApiCode::NotAcceptable),
    ("conflict", ApiCode::Conflict),
    ("payload_too_large", ApiCode::PayloadTooLarge),
    ("unsupported_media_type", ApiCode::UnsupportedMediaType),
    ("quota_exceeded", ApiCode::QuotaExceeded),
    ("rate_limited", ApiCode::RateLimited),
    ("privacy_budget_exhausted", ApiCode::PrivacyBudgetExhausted),
    ("internal", ApiCode::Internal),
    ("integrity_failed", ApiCode::IntegrityFailed),
    ("storage_unavailable", ApiCode::StorageUnavailable),
    ("audit_unavailable", ApiCode::AuditUnavailable),
    ("timeout", ApiCode::Timeout),
];

impl ApiCode {
    /// The code for its wire text; unknown codes become `Other`.
    pub fn parse(code: &str) -> ApiCode {
        CODES
            .iter()
            .find(|(text, _)| *text == code)
            .map_or_else(|| ApiCode::Other(code.to_owned()), |(_, c)| c.clone())
    }

    /// The wire text of the code.
    pub fn as_str(&self) -> &str {
        match self {
            ApiCode::Other(code) => code,
            known => CODES
                .iter()
                .find(|(_, c)| c == known)
                .map_or("other", |(text, _)| text),
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    details: Vec<FieldProblem>,
}

impl Error {
    /// The error of a non-success answer: its status, body and `x-request-id` header. A body
    /// that is not the documented error shape keeps the status with code `Other("http_<n>")`.
    pub(crate) fn from_answer(
        status: u16,
        body: &[u8],
        header_request_id: Option<String>,
    ) -> Error {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody { error }) => Error::Api {
                status,
                code: ApiCode::parse(&error.code),
                message: error.message,
                request_id: error.request_id.or(header_request_id),
                details: error.details,
            },
            Err(_) => Error::Api {
                status,
                code: ApiCode::Other(format!("http_{status}")),
                message: "the answer is not a gridhub error body".to_owned(),
                request_id: header_request_id,
                details: Vec::new(),
            },
        }
    }

    /// Is this the hub refusing the access token (`401 unauthenticated`)?
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            Error::Api {
                status: 401,
                code: ApiCode::Unauthenticated,
                ..
            }
        )
    }

    /// The stable code, if the hub answered with an error body.
    pub fn code(&self) -> Option<&ApiCode> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Error {
        // Without the URL: a query string names purposes and cases, never values, but the
        // message need not carry it at all.
        Error::Transport(e.without_url().to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use super::*;

    #[test]
    fn every_known_code_round_trips_through_its_text() {
        for (text, code) in CODES {
            assert_eq!(ApiCode::parse(text), *code);
            assert_eq!(code.as_str(), *text);
        }
        assert_eq!(
            ApiCode::parse("brand_new"),
            ApiCode::Other("brand_new".into())
        );
        assert_eq!(ApiCode::Other("brand_new".into()).as_str(), "brand_new");
    }

    #[test]
    fn an_error_body_maps_to_an_api_error_with_details() {
        let body =
            br#"{"error":{"code":"validation_failed","message":"bad field","request_id":"r-1",
            "details":[{"field":"phone","problem":"not a mainland mobile number"}]}}"#;
        let Error::Api {
            status,
            code,
            message,
            request_id,
            details,
        } = Error::from_answer(422, body, Some("r-header".into()))
        else {
            panic!("not an api error");
        };
        assert_eq!((status, code), (422, ApiCode::ValidationFailed));
        assert_eq!(message, "bad field");
        assert_eq!(request_id.as_deref(), Some("r-1"));
        assert_eq!(
            details,
            vec![FieldProblem {
                field: "phone".into(),
                problem: "not a mainland mobile number".into()
            }]
        );
    }

    #[test]
    fn a_401_unauthenticated_is_recognised_and_other_bodies_keep_their_status() {
        let body = br#"{"error":{"code":"unauthenticated","message":"m","request_id":"r"}}"#;
        assert!(Error::from_answer(401, body, None).is_unauthenticated());
        let body = br#"{"error":{"code":"no_grant","message":"m","request_id":"r"}}"#;
        let e = Error::from_answer(403, body, None);
        assert!(!e.is_unauthenticated());
        assert_eq!(e.code(), Some(&ApiCode::NoGrant));
        let e = Error::from_answer(502, b"<html>bad gateway</html>", Some("h".into()));
        assert!(
            matches!(e, Error::Api { status: 502, code: ApiCode::Other(ref c), request_id: Some(ref r), .. } if c == "http_502" && r == "h")
        );
    }
}
