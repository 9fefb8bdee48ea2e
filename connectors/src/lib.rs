//! Gridhub client SDK for department systems (token, pull, lookup, unseal, receipt and checkpoint
//! verification) and import/export adapters. Skeleton: the SDK arrives with the disclosure issue.

/// The HTTP API version this SDK speaks.
pub const API_VERSION: &str = "v1";
