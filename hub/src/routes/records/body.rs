//! The records API's request and response bodies (their OpenAPI schemas) and their mapping to
//! and from the values of `crate::records`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::ledger::Receipt;
use crate::records::{BatchWritten, Change, ClearRecord, RecordInput, Upserted, Written};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"category": "person", "grid": "330110.001.001.001",
    "purpose": "population-registration",
    "fields": {"name": "张三", "gender": "male", "phone": "13812345678"}}))]
pub struct CreateRecord {
    category: String,
    /// A grid code.
    #[schema(pattern = "^(?!L$)[A-Za-z0-9-]{1,32}(\\.[A-Za-z0-9-]{1,32}){0,5}$")]
    grid: String,
    /// Field name → value, validated against the catalog.
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
    purpose: String,
    #[serde(default)]
    legal_basis: Option<String>,
    /// When the record is to be erased (crypto-shredded) by the retention job: an RFC 3339 time
    /// (e.g. `2031-12-31T00:00:00+08:00`). Absent: kept until erased by hand.
    #[serde(default)]
    retention_until: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBatch {
    /// 1–5 000 records.
    #[schema(min_items = 1, max_items = 5000)]
    records: Vec<CreateRecord>,
    /// An `indexed` field of the (one) category of the batch, present once in every record
    /// and unique within the batch: a record whose key matches a live record updates it
    /// (its fields overlaid, the whole validated again) instead of creating another.
    #[serde(default)]
    #[schema(example = "id_number")]
    upsert_by: Option<String>,
}

impl CreateBatch {
    /// The upsert key field, if the batch asked for one, and the records.
    pub fn into_parts(self) -> (Option<String>, Vec<RecordInput>) {
        let upsert_by = self.upsert_by;
        (
            upsert_by,
            self.records.into_iter().map(RecordInput::from).collect(),
        )
    }
}

/// A JSON object with at least one member.
fn non_empty_object() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .min_properties(Some(1))
        .build()
}

#[derive(Serialize, ToSchema)]
pub struct RecordCreated {
    id: String,
    version: i64,
    /// Signed receipt of the ledger entry that recorded this write.
    receipt: Receipt,
}

#[derive(Serialize, ToSchema)]
pub struct RecordWritten {
    id: String,
    version: i64,
}

#[derive(Serialize, ToSchema)]
pub struct BatchCreated {
    records: Vec<RecordWritten>,
    /// Signed receipt of the one ledger entry that recorded the whole batch.
    receipt: Receipt,
    /// With `upsert_by`: the record ids in request order (created or updated).
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<String>>,
    /// With `upsert_by`: how many records were created.
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<usize>,
    /// With `upsert_by`: how many existing records were updated.
    #[serde(skip_serializing_if = "Option::is_none")]
    updated: Option<usize>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchRecord {
    /// Fields to set (at least one); `null` removes an optional field.
    #[schema(schema_with = non_empty_object)]
    fields: Map<String, Value>,
    /// If given, the update applies only if the record is still at this version (else 409).
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    expected_version: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct RecordView {
    id: String,
    category: String,
    grid: String,
    version: i64,
    purpose: String,
    legal_basis: Option<String>,
    collector: String,
    created_at: String,
    updated_at: String,
    /// When the retention job erases the record, if it has a retention date.
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_until: Option<String>,
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
}

impl From<CreateRecord> for RecordInput {
    fn from(r: CreateRecord) -> RecordInput {
        RecordInput {
            category: r.category,
            grid: r.grid,
            fields: r.fields,
            purpose: r.purpose,
            legal_basis: r.legal_basis,
            retention_until: r.retention_until,
        }
    }
}

impl From<PatchRecord> for Change {
    fn from(p: PatchRecord) -> Change {
        Change {
            fields: p.fields,
            expected_version: p.expected_version,
        }
    }
}

impl From<Written> for RecordCreated {
    fn from(w: Written) -> RecordCreated {
        RecordCreated {
            id: w.id,
            version: w.version,
            receipt: w.receipt,
        }
    }
}

impl From<BatchWritten> for BatchCreated {
    fn from(w: BatchWritten) -> BatchCreated {
        BatchCreated {
            records: w
                .ids
                .into_iter()
                .map(|id| RecordWritten { id, version: 1 })
                .collect(),
            receipt: w.receipt,
            ids: None,
            created: None,
            updated: None,
        }
    }
}

impl From<Upserted> for BatchCreated {
    fn from(w: Upserted) -> BatchCreated {
        BatchCreated {
            records: w
                .ids
                .iter()
                .zip(&w.versions)
                .map(|(id, version)| RecordWritten {
                    id: id.clone(),
                    version: *version,
                })
                .collect(),
            receipt: w.receipt,
            ids: Some(w.ids),
            created: Some(w.created),
            updated: Some(w.updated),
        }
    }
}

impl From<ClearRecord> for RecordView {
    fn from(r: ClearRecord) -> RecordView {
        RecordView {
            id: r.id,
            category: r.category,
            grid: r.grid,
            version: r.version,
            purpose: r.purpose,
            legal_basis: r.legal_basis,
            collector: r.collector,
            created_at: crate::time::rfc3339(r.created_at),
            updated_at: crate::time::rfc3339(r.updated_at),
            retention_until: r.retention_until.map(crate::time::rfc3339),
            fields: r.fields,
        }
    }
}
