//! The demo's two-way exchange, through the same services as the API: health publishes a
//! `home_care` category and its system writes the home-care level of elderly residents living
//! alone; civil affairs asks for it, the DPO approves and health consents; civil affairs also
//! holds a statistics grant on `person` (counts per community and tag, no records).

use policy::CategoryDef;
use serde_json::{Map, Value, json};

use super::acting::{self, Services};
use super::synth::SyntheticRecord;
use crate::error::REQUEST_ID;
use crate::grants::GrantDraft;
use crate::records::RecordInput;
use crate::storage::Store;
use crate::time::{now_ms, rfc3339};

const DAY_MS: i64 = 24 * 3600 * 1000;
/// Home-care records the demo writes at most.
const CARE_RECORDS: usize = 300;

/// What the exchange story made, for the demo's closing text.
pub struct ExchangeStory {
    /// Civil affairs' grant on `home_care` (approved and consented).
    pub care_grant: String,
    /// Home-care records health's system wrote.
    pub care_records: usize,
    /// Civil affairs' statistics grant on `person`.
    pub statistics_grant: String,
}

/// Health's home-care register: who gets care at home, at which level.
fn home_care() -> anyhow::Result<CategoryDef> {
    Ok(serde_json::from_value(json!({
        "name": "home_care",
        "owner": "health",
        "description": "居家护理: home-care level of residents, published by health",
        "fields": [
            {"name": "id_number", "type": "id_number", "sensitivity": "sensitive",
             "share": "conditional", "encrypted": true, "indexed": true, "required": true,
             "mask": {"type": "keep_ends", "first": 6, "last": 4},
             "description": "Resident identity number"},
            {"name": "care_level", "type": "enum", "values": ["light", "regular", "full"],
             "sensitivity": "sensitive", "share": "conditional", "encrypted": true,
             "indexed": true, "required": true, "description": "Care received at home"}
        ]
    }))?)
}

fn refused(what: &str) -> impl Fn(crate::error::Error) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("demo {what} refused: {e:?}")
}

/// Seed the exchange story. `people` are the demo's synthetic records; `admin` and `dpo` user
/// ids; `district` is civil affairs' jurisdiction.
pub async fn seed(
    store: &Store,
    services: &Services,
    people: &[SyntheticRecord],
    admin: &str,
    dpo: &str,
    district: &str,
) -> anyhow::Result<ExchangeStory> {
    let admin = acting::user(store, admin).await?;
    let dpo = acting::user(store, dpo).await?;
    let health = acting::department_system(store, "health").await?;
    let civil = acting::department_system(store, "civil-affairs").await?;
    REQUEST_ID
        .scope("demo".to_owned(), async {
            services
                .catalog
                .put(&admin, "home_care", home_care()?)
                .await
                .map_err(refused("category"))?;
            let levels = ["light", "regular", "full"].into_iter().cycle();
            let inputs: Vec<RecordInput> = people
                .iter()
                .filter(|r| r.category == "person")
                .filter(|r| {
                    r.fields
                        .get("tags")
                        .and_then(Value::as_array)
                        .is_some_and(|t| t.iter().any(|v| v == "elderly_alone"))
                })
                .filter_map(|r| Some((r, r.fields.get("id_number")?.clone())))
                .take(CARE_RECORDS)
                .zip(levels)
                .map(|((r, id_number), level)| {
                    let mut fields = Map::new();
                    fields.insert("id_number".to_owned(), id_number);
                    fields.insert("care_level".to_owned(), Value::from(level));
                    RecordInput {
                        category: "home_care".to_owned(),
                        grid: r.grid.clone(),
                        fields,
                        purpose: "elderly-care".to_owned(),
                        legal_basis: None,
                        retention_until: None,
                    }
                })
                .collect();
            let care_records = inputs.len();
            if care_records > 0 {
                services
                    .records
                    .create_batch(&health, inputs, Ok(None))
                    .await
                    .map_err(refused("home-care records"))?;
            }
            let now = now_ms();
            let window = (rfc3339(now - DAY_MS), rfc3339(now + 365 * DAY_MS));
            let care = GrantDraft {
                kind: None,
                group_by: None,
                min_cell: None,
                privacy: None,
                grantee: "civil-affairs".to_owned(),
                purpose: "elderly-care".to_owned(),
                category: "home_care".to_owned(),
                fields: [("care_level", "clear"), ("id_number", "masked")]
                    .into_iter()
                    .map(|(f, l)| (f.to_owned(), l.to_owned()))
                    .collect(),
                scope: vec![district.to_owned()],
                row_filter: None,
                case_bound: false,
                valid_from: window.0.clone(),
                valid_until: window.1.clone(),
                daily_quota: Some(10_000),
                legal_basis: Some("Elderly Rights Protection Law art. 3".to_owned()),
            };
            let row = services
                .grants
                .request(&civil, care)
                .await
                .map_err(refused("home-care grant"))?;
            services
                .grants
                .approve(&dpo, &row.id, None)
                .await
                .map_err(refused("approval"))?;
            services
                .grants
                .consent(&health, &row.id, Some("for elderly-care visits"))
                .await
                .map_err(refused("consent"))?;
            let counts = GrantDraft {
                kind: Some("statistics".to_owned()),
                group_by: Some(
                    ["grid.community", "tags", "residence"]
                        .map(str::to_owned)
                        .to_vec(),
                ),
                min_cell: Some(10),
                privacy: None,
                grantee: "civil-affairs".to_owned(),
                purpose: "elderly-care".to_owned(),
                category: "person".to_owned(),
                fields: Default::default(),
                scope: vec![district.to_owned()],
                row_filter: None,
                case_bound: false,
                valid_from: window.0,
                valid_until: window.1,
                daily_quota: None,
                legal_basis: None,
            };
            let statistics = services
                .grants
                .request(&civil, counts)
                .await
                .map_err(refused("statistics grant"))?;
            services
                .grants
                .approve(&dpo, &statistics.id, None)
                .await
                .map_err(refused("approval"))?;
            Ok(ExchangeStory {
                care_grant: row.id,
                care_records,
                statistics_grant: statistics.id,
            })
        })
        .await
}
