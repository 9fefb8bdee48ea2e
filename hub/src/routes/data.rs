//! Disclosure to department systems (API.md "Disclosure"): `GET /v1/data/{category}` and
//! `POST /v1/data/{category}/lookup`. Each handler parses the request into a
//! `disclosure::Ask`, then decides, records and releases through `crate::disclosure` (which
//! owns the rules, the ledger entry and the idempotency keys), and responds: JSON, or with
//! `Accept: application/age` the same JSON sealed to the client's registered age recipient.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::auth::DepartmentCaller;
use crate::disclosure::{
    self, Answer, Ask, Cursor, Delivery, DisclosedPage, Kind, LookupKey, PageLimit,
};
use crate::error::Error;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::idempotency::IdempotencyKey;
use crate::state::AppState;
use crate::statistics::{StatisticsAnswer, StatisticsAsk};

/// The media type of a sealed response (`Accept: application/age`).
const AGE: &str = "application/age";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/data/{category}", get(pull))
        .route("/v1/data/{category}/lookup", post(lookup))
        .route("/v1/data/{category}/statistics", post(statistics))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"purpose": "elderly-care", "group_by": ["grid.community", "tags"],
    "filter": "tags has \"elderly_alone\""}))]
pub struct StatisticsRequest {
    /// The registered purpose the counts are for.
    purpose: String,
    /// Dimensions the statistics grant allows: `grid`, `grid.city`, `grid.district`,
    /// `grid.street`, `grid.community`, blind-indexed enum and tag-set fields.
    #[schema(min_items = 1, max_items = 4)]
    group_by: Vec<String>,
    /// A row filter over the fields the grant groups by (`tags has "elderly_alone"`).
    #[serde(default)]
    #[schema(max_length = 1000)]
    filter: Option<String>,
}

/// Counts per cell under a statistics grant: no record, no record id, no value of a field
/// not grouped by; cells under the grant's `min_cell` suppressed; with the grant's privacy
/// budget, discrete Laplace noise on every count and 429 `privacy_budget_exhausted` once the
/// day's ε is spent. The query and every cell's size are in the ledger before the answer.
#[utoipa::path(post, path = "/v1/data/{category}/statistics", tag = "disclosure",
    params(("category" = String, Path),
        ("gridhub-on-behalf-of" = Option<String>, Header, pattern = "^[A-Za-z0-9._@:-]{1,64}$", description = "the officer the system acts for; recorded in the ledger")),
    request_body = StatisticsRequest,
    security(("client_token" = [])),
    responses((status = 200, body = StatisticsAnswer), (status = 401), (status = 403),
        (status = 404), (status = 422), (status = 429), (status = 503)))]
pub async fn statistics(
    State(state): State<AppState>,
    DepartmentCaller(who): DepartmentCaller,
    ApiPath(category): ApiPath<String>,
    ApiJson(req): ApiJson<StatisticsRequest>,
) -> Result<Json<StatisticsAnswer>, Error> {
    let catalog = state.decisions.catalog_at(who.versions.decision).await?;
    let ask = StatisticsAsk {
        category: disclosure::category(catalog, &category)?,
        purpose: req.purpose,
        group_by: req.group_by,
        filter: req.filter,
    };
    Ok(Json(state.statistics.answer(&who, ask).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PullQuery {
    /// The registered purpose the data is for.
    purpose: String,
    /// A case assigned to the department (needed for case-bound grants).
    #[serde(default)]
    case: Option<String>,
    /// Only records in this grid subtree.
    #[serde(default)]
    grid: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    /// 1–500, default 100.
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Pull the records a department's grants and responsibilities allow.
#[utoipa::path(get, path = "/v1/data/{category}", tag = "disclosure",
    params(("category" = String, Path), PullQuery,
        ("idempotency-key" = Option<String>, Header, pattern = "^[A-Za-z0-9._:-]{1,64}$", description = "a retry with the same key is the same disclosure"),
        ("gridhub-on-behalf-of" = Option<String>, Header, pattern = "^[A-Za-z0-9._@:-]{1,64}$", description = "the officer the system acts for; recorded in the ledger")),
    security(("client_token" = [])),
    responses((status = 200, body = DisclosedPage,
            description = "JSON, or with `Accept: application/age` the same JSON sealed to the client's age recipient"),
        (status = 401), (status = 403), (status = 404), (status = 406), (status = 422),
        (status = 503)))]
pub async fn pull(
    State(state): State<AppState>,
    DepartmentCaller(who): DepartmentCaller,
    ApiPath(category): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PullQuery>,
) -> Result<Response, Error> {
    state.disclosures.admit(&who, Kind::Pull).await?;
    let catalog = state.decisions.catalog_at(who.versions.decision).await?;
    let ask = Ask {
        kind: Kind::Pull,
        category: disclosure::category(catalog, &category)?,
        purpose: q.purpose,
        case: q.case,
        within: disclosure::within(q.grid.as_deref())?,
        cursor: q.cursor.as_deref().map(Cursor::parse).transpose()?,
        limit: PageLimit::parse(q.limit)?,
        key: None,
        idempotency: idempotency_key(&headers)?,
        delivery: delivery(&headers),
    };
    let decided = state.disclosures.decide(&who, ask).await?;
    let recorded = state.disclosures.record(&who, decided).await?;
    respond(state.disclosures.release(recorded)?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    purpose: String,
    #[serde(default)]
    case: Option<String>,
    /// Exactly one `indexed` field and its value, e.g. `{"id_number": "…"}`; compared through
    /// the blind index, never by decrypting.
    #[schema(value_type = Object)]
    key: Map<String, Value>,
    /// 1–500, default 100.
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Look a subject up by an indexed field (identity number, phone, …), under the same grants
/// and responsibilities as a pull.
#[utoipa::path(post, path = "/v1/data/{category}/lookup", tag = "disclosure",
    params(("category" = String, Path),
        ("idempotency-key" = Option<String>, Header, pattern = "^[A-Za-z0-9._:-]{1,64}$", description = "a retry with the same key is the same disclosure"),
        ("gridhub-on-behalf-of" = Option<String>, Header, pattern = "^[A-Za-z0-9._@:-]{1,64}$", description = "the officer the system acts for; recorded in the ledger")),
    request_body = LookupRequest,
    security(("client_token" = [])),
    responses((status = 200, body = DisclosedPage,
            description = "JSON, or with `Accept: application/age` the same JSON sealed to the client's age recipient"),
        (status = 401), (status = 403), (status = 404), (status = 406), (status = 422),
        (status = 503)))]
pub async fn lookup(
    State(state): State<AppState>,
    DepartmentCaller(who): DepartmentCaller,
    ApiPath(category): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LookupRequest>,
) -> Result<Response, Error> {
    state.disclosures.admit(&who, Kind::Lookup).await?;
    let catalog = state.decisions.catalog_at(who.versions.decision).await?;
    let category = disclosure::category(catalog, &category)?;
    let ask = Ask {
        kind: Kind::Lookup,
        category,
        purpose: req.purpose,
        case: req.case,
        within: None,
        cursor: None,
        limit: PageLimit::parse(req.limit)?,
        key: Some(LookupKey::parse(
            state.disclosures.vault(),
            category,
            &req.key,
        )?),
        idempotency: idempotency_key(&headers)?,
        delivery: delivery(&headers),
    };
    let decided = state.disclosures.decide(&who, ask).await?;
    let recorded = state.disclosures.record(&who, decided).await?;
    respond(state.disclosures.release(recorded)?)
}

/// The `idempotency-key` header (pulls, lookups and record writes).
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, Error> {
    IdempotencyKey::parse(headers.get("idempotency-key").map(|v| v.as_bytes()))
}

/// Does `Accept` ask for a body sealed with `age`?
fn delivery(headers: &HeaderMap) -> Delivery {
    let sealed = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            m.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(AGE))
        });
    if sealed {
        Delivery::Sealed
    } else {
        Delivery::Plain
    }
}

fn respond(answer: Answer) -> Result<Response, Error> {
    Ok(match answer {
        Answer::Plain(page) => Json::<DisclosedPage>(page).into_response(),
        Answer::Sealed(sealed) => ([(header::CONTENT_TYPE, AGE)], sealed).into_response(),
    })
}
