//! The hub's one error type and the only `IntoResponse` for errors. Every variant maps to one
//! HTTP status and one stable `code` (API.md); messages never carry personal data, and 5xx bodies
//! say "internal error" while the cause goes to the log.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use policy::FieldProblem;
use serde::Serialize;

tokio::task_local! {
    /// The id of the request being served; set by the request-id middleware so that error bodies
    /// can quote it without every handler threading it through.
    pub static REQUEST_ID: String;
}

/// The current request id, or `-` outside a request (CLI, background tasks).
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed request (bad JSON syntax, bad query string). The message names no value.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed request whose content fails validation; `details` name fields, never values.
    #[error("validation failed")]
    Validation(Vec<FieldProblem>),
    #[error("authentication required")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    /// DESIGN.md §3 rule 3: no approved, valid grant for this department, purpose and category.
    #[error("{0}")]
    NoGrant(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// The change would leave no active user who may write roles (`auth::role_administrators`);
    /// nothing was changed.
    #[error(
        "refused: after this change no active user could write roles; keep `roles` `write` on a \
         role an active user holds, or give such a role to another active user first \
         (if already locked out: `gridhub admin recover`)"
    )]
    LastRoleAdministrator,
    /// An admin asked to disable its own account (it would lock itself out mid-session);
    /// nothing was changed.
    #[error("refused: you cannot disable your own account; ask another admin")]
    CannotDisableSelf,
    #[error("request body is larger than the configured limit")]
    PayloadTooLarge,
    #[error("unsupported media type: send `application/json`")]
    UnsupportedMediaType,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The response cannot be given in the form the `accept` header asks for.
    #[error("{0}")]
    NotAcceptable(String),
    /// Stored ciphertext failed authentication: tampered, moved between records or fields, or
    /// sealed under a key we do not hold. Never returns data.
    #[error("stored data failed its integrity check")]
    Integrity(String),
    /// The database is unreachable or failed; the details are logged, not returned.
    #[error("storage error")]
    Storage(#[source] sqlx::Error),
    /// Writes to storage are failing (`ledger::Health::Degraded`): the hub refuses writes and
    /// disclosures until a probe write commits. Carries the kind of fault, never a value.
    #[error(
        "storage writes are failing ({0}); writes and disclosures are refused until they succeed"
    )]
    StorageDegraded(&'static str),
    #[error("the request took too long and was abandoned")]
    Timeout,
    /// Too many failed attempts (login throttling); retry after the given seconds.
    #[error("too many failed attempts; try again later")]
    RateLimited { retry_after_secs: u64 },
    /// A grant's daily record quota would be exceeded; retry after the given seconds (the
    /// quota renews at midnight, China Standard Time).
    #[error("{message}")]
    QuotaExceeded {
        message: String,
        retry_after_secs: u64,
    },
    /// A statistics grant's daily privacy budget (ε) cannot pay for this query; retry after
    /// the given seconds (it renews at midnight, China Standard Time).
    #[error("{message}")]
    PrivacyBudgetExhausted {
        message: String,
        retry_after_secs: u64,
    },
    /// The audit ledger could not record the operation, so it did not happen (fail closed).
    #[error("the audit ledger is unavailable; nothing was done")]
    AuditUnavailable,
    #[error("internal error")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn validation(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Validation(vec![FieldProblem {
            field: field.into(),
            problem: problem.into(),
        }])
    }

    pub(crate) fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Error::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::NoGrant(_) => (StatusCode::FORBIDDEN, "no_grant"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::LastRoleAdministrator => (StatusCode::CONFLICT, "last_role_admin"),
            Error::CannotDisableSelf => (StatusCode::CONFLICT, "cannot_disable_self"),
            Error::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Error::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Error::NotAcceptable(_) => (StatusCode::NOT_ACCEPTABLE, "not_acceptable"),
            Error::Integrity(_) => (StatusCode::INTERNAL_SERVER_ERROR, "integrity_failed"),
            Error::Storage(_) | Error::StorageDegraded(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
            }
            Error::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Error::QuotaExceeded { .. } => (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded"),
            Error::PrivacyBudgetExhausted { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "privacy_budget_exhausted")
            }
            Error::AuditUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Storage(e)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
    request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a [FieldProblem]>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let request_id = current_request_id();
        let message = match &self {
            Error::Integrity(why) => {
                tracing::error!(request_id, why, "integrity check failed on stored data");
                self.to_string()
            }
            Error::Storage(e) => {
                tracing::error!(request_id, error = %e, "storage error");
                "storage is unavailable; try again later".to_owned()
            }
            Error::Internal(why) => {
                tracing::error!(request_id, why, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let details = match &self {
            Error::Validation(d) => Some(d.as_slice()),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                request_id,
                details,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Error::RateLimited { retry_after_secs }
        | Error::QuotaExceeded {
            retry_after_secs, ..
        }
        | Error::PrivacyBudgetExhausted {
            retry_after_secs, ..
        } = self
        {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_secs),
            );
        }
        response
    }
}

/// Map axum's JSON extractor rejections to our codes without ever quoting the body: serde's
/// messages can contain the offending value, so only the position or the field path is kept.
impl From<JsonRejection> for Error {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Error::UnsupportedMediaType,
            JsonRejection::JsonSyntaxError(_) => {
                Error::BadRequest("request body is not valid JSON".to_owned())
            }
            JsonRejection::JsonDataError(_) => {
                Error::BadRequest("request body does not match the expected shape".to_owned())
            }
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Error::PayloadTooLarge
            }
            _ => Error::BadRequest("could not read the request body".to_owned()),
        }
    }
}

impl From<QueryRejection> for Error {
    fn from(_: QueryRejection) -> Self {
        Error::BadRequest("invalid query string".to_owned())
    }
}

impl From<PathRejection> for Error {
    fn from(_: PathRejection) -> Self {
        Error::BadRequest("invalid path parameter".to_owned())
    }
}

/// Key and ciphertext failures: stored data that does not authenticate is `integrity_failed`;
/// anything else (a missing key version, a failed random draw) is internal.
impl From<crate::vault::VaultError> for Error {
    fn from(e: crate::vault::VaultError) -> Self {
        use crate::vault::VaultError;
        match e {
            VaultError::FieldIntegrity { .. } | VaultError::DekIntegrity(_) => {
                Error::Integrity(e.to_string())
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<crate::ledger::LedgerError> for Error {
    fn from(e: crate::ledger::LedgerError) -> Self {
        use crate::ledger::LedgerError;
        match e {
            LedgerError::Unavailable => Error::AuditUnavailable,
            LedgerError::BadRequest(m) => Error::BadRequest(m),
            LedgerError::Storage(e) => Error::Storage(e),
            LedgerError::Integrity(m) => Error::Integrity(m),
            // Handled where a charge is made (`append_charged`), with the retry time; a caller
            // that lets it through is a bug, answered without detail.
            LedgerError::OverQuota { .. } => {
                Error::Internal("a quota refusal was not handled".to_owned())
            }
        }
    }
}
