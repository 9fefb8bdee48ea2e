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
    /// Grants on a department-owned category: the owner's consent.
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_consent: Option<OwnerConsent<'a>>,
    /// Statistics grants: what may be counted (`group_by`, `min_cell`, `privacy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    statistics: Option<&'a policy::StatisticsTerms>,
}

#[derive(Serialize)]
struct OwnerConsent<'a> {
    department: &'a str,
    consented_by: &'a str,
    consented_at: i64,
}

/// The signed artefact of `row` approved by `approver` (a subject, `user:<id>`) at `now`, on a
/// category without an owner.
pub(super) fn sign(
    tokens: &TokenIssuer,
    row: &GrantRow,
    approver: &str,
    now: i64,
) -> Result<String, Error> {
    sign_claims(tokens, row, approver, None, now)
}

/// As `sign`, for a grant on a category published by `owner`, whose consent `row` holds.
pub(super) fn sign_with_consent(
    tokens: &TokenIssuer,
    row: &GrantRow,
    approver: &str,
    owner: &str,
    now: i64,
) -> Result<String, Error> {
    let consent = row
        .consent
        .as_ref()
        .and_then(|c| Some((c.by.as_deref()?, c.at?)))
        .ok_or_else(|| Error::Internal("signing a grant without its owner's consent".to_owned()))?;
    let owner_consent = OwnerConsent {
        department: owner,
        consented_by: consent.0,
        consented_at: consent.1 / 1000,
    };
    sign_claims(tokens, row, approver, Some(owner_consent), now)
}

fn sign_claims(
    tokens: &TokenIssuer,
    row: &GrantRow,
    approver: &str,
    owner_consent: Option<OwnerConsent<'_>>,
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
        owner_consent,
        statistics: row.statistics.as_ref(),
    };
    tokens
        .sign_document(ARTEFACT_TYPE, &claims)
        .map_err(|e| Error::Internal(format!("cannot sign the grant artefact: {e}")))
}
