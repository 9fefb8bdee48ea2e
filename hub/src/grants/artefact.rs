//! The signed grant artefact: a compact JWS (`typ: gridhub-grant+jwt`, EdDSA, `kid` of the token
//! key) over the approved terms, requester and approver. Signed once, at approval, and stored
//! with the grant, so it does not change when keys rotate.

use std::collections::BTreeMap;

use policy::{Disclosure, GridCode};
use serde::Serialize;

use crate::auth::tokens::TokenIssuer;
use crate::error::Error;
use crate::storage::GrantRow;

/// The `typ` header of a grant artefact.
pub const ARTEFACT_TYPE: &str = "gridhub-grant+jwt";

/// The claims of a grant artefact.
#[derive(Serialize)]
struct ArtefactClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    jti: &'a str,
    /// The grantee department.
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    grantee: &'a str,
    purpose: &'a str,
    category: &'a str,
    fields: &'a BTreeMap<String, Disclosure>,
    scope: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    row_filter: Option<&'a str>,
    case_bound: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    daily_quota: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    legal_basis: Option<&'a str>,
    requested_by: &'a str,
    approved_by: &'a str,
}

/// The signed artefact of `row` approved by `approver` (a subject, `user:<id>`) at `now`.
pub(super) fn sign(
    tokens: &TokenIssuer,
    row: &GrantRow,
    approver: &str,
    now: i64,
) -> Result<String, Error> {
    let claims = ArtefactClaims {
        iss: tokens.issuer(),
        sub: &row.id,
        jti: &row.id,
        aud: &row.terms.grantee,
        iat: now / 1000,
        nbf: row.terms.valid_from / 1000,
        exp: row.terms.valid_until / 1000,
        grantee: &row.terms.grantee,
        purpose: &row.terms.purpose,
        category: &row.terms.category,
        fields: &row.terms.fields,
        scope: row.terms.scope.iter().map(GridCode::as_str).collect(),
        row_filter: row.terms.row_filter.as_deref(),
        case_bound: row.terms.case_bound,
        daily_quota: row.terms.daily_quota,
        legal_basis: row.terms.legal_basis.as_deref(),
        requested_by: &row.requested_by,
        approved_by: approver,
    };
    tokens
        .sign_document(ARTEFACT_TYPE, &claims)
        .map_err(|e| Error::Internal(format!("cannot sign the grant artefact: {e}")))
}
