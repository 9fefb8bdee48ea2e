//! `GET /openapi.json`: the OpenAPI document, generated from the handlers' annotations so it
//! cannot drift from the routes it describes.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

use super::openapi_errors::{ErrorObject, ErrorResponse, ErrorResponses, FieldProblemDoc};

use super::{
    admin, anomalies, audit, auth, cases, catalog, data, decisions, departments, grants, grids,
    health, purposes, records, roles, subject_report,
};
use super::{ledger_keys, watch, webhooks, witnesses};

#[derive(OpenApi)]
#[openapi(
    info(title = "Gridhub API", version = "1",
        description = "Privacy-preserving data exchange hub for grid-based community governance. \
            Errors are always `{\"error\": {\"code\", \"message\", \"request_id\", \"details\"?}}`."),
    paths(
        health::healthz, health::readyz, health::metrics,
        auth::login, auth::client_token, auth::jwks,
        admin::create_user, admin::list_users, admin::get_user, admin::put_user_grids,
        admin::disable_user, admin::enable_user,
        departments::create_department, departments::list_departments,
        departments::put_jurisdiction,
        departments::create_client, departments::get_client, departments::revoke_client,
        departments::list_clients,
        departments::whoami,
        roles::list_roles, roles::get_role, roles::put_role, roles::put_user_roles,
        roles::put_client_roles,
        grids::list_grids, grids::create_grid,
        catalog::catalog, catalog::put_category, catalog::category_audit,
        purposes::list_purposes, purposes::create_purpose,
        records::create_record, records::create_batch, records::read_record,
        records::patch_record, records::erase_record,
        audit::entries, audit::checkpoint, audit::public_key, audit::inclusion,
        audit::consistency, audit::subject, subject_report::report,
        ledger_keys::status, ledger_keys::verify, ledger_keys::keys, ledger_keys::rotate, ledger_keys::rotate_ledger_key,
        watch::watchlist, watch::record_visibility,
        anomalies::anomalies, anomalies::acknowledge, anomalies::resolve, anomalies::activity,
        witnesses::put_witness, witnesses::delete_witness, witnesses::list_witnesses,
        witnesses::post_cosignature,
        grants::request_grant, grants::list_grants, grants::get_grant, grants::approve,
        grants::reject, grants::suspend, grants::resume, grants::revoke, grants::artefact,
        grants::consent, grants::decline,
        cases::report, cases::get_case, cases::assign, cases::reply, cases::close,
        decisions::explain, data::pull, data::lookup, data::statistics,
        webhooks::put_webhook, webhooks::list_webhooks, webhooks::delete_webhook,
        webhooks::deliveries,
    ),
    modifiers(&BearerAuth, &ErrorResponses),
    components(schemas(ErrorResponse, ErrorObject, FieldProblemDoc)),
    tags(
        (name = "identity", description = "Login, client tokens (mTLS, certificate-bound), users, departments, clients, roles"),
        (name = "reference", description = "Grids, the catalog (with department-owned categories and their ledger slice), purposes"),
        (name = "records", description = "Grid-side records, encrypted field by field"),
        (name = "grants", description = "Grants (records or statistics): request, DPO approval or rejection, the owner's consent on department-owned categories, suspension, revocation, signed artefacts"),
        (name = "cases", description = "Cases: the closed loop and the responsibilities it creates"),
        (name = "decisions", description = "Why a department gets what it gets"),
        (name = "disclosure", description = "Department systems pull what their grants and responsibilities allow, or counts under statistics grants; audited before release"),
        (name = "audit", description = "The audit ledger: entries, checkpoints, proofs"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT bound to the TLS client certificate (RFC 8705)")
                    .description(Some(
                        "Department clients: a TLS client certificate of a registered client \
                         and a token from POST /v1/oauth/token over that certificate.",
                    ))
                    .build(),
            ),
        );
    }
}

pub fn router() -> Router<AppState> {
    // Built once, not per request: the document is fixed for the life of the process, and
    // building it runs every schema derive and the error-answer rules.
    let document = std::sync::Arc::new(ApiDoc::openapi());
    Router::new().route(
        "/openapi.json",
        get(move || {
            let document = document.clone();
            async move { Json(document) }
        }),
    )
}
