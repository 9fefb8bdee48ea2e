//! Ledger entries and their canonical form: compact JSON with keys in lexicographic order
//! (structs below declare their fields alphabetically, maps are `BTreeMap`s), no floats, no
//! insignificant whitespace. Invariant: an entry names records by id and fields by name only;
//! no personal value is ever put in one. A refusal entry also names the network address the
//! refused request came from (`source`): the address of a department system, an office network
//! or a scanner, never a resident's value (docs/SECURITY.md "Refusals and source addresses").

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::merkle::Hash;
use crate::storage::LedgerRow;
use crate::time::rfc3339_millis;

/// Who acted. Fields in alphabetical order (canonical form).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Actor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Actor {
    pub fn user(id: &str) -> Actor {
        Actor {
            user: Some(id.to_owned()),
            ..Actor::default()
        }
    }

    pub fn system() -> Actor {
        Actor {
            user: Some("system".to_owned()),
            ..Actor::default()
        }
    }

    /// Names no user or client: a caller that did not authenticate.
    pub fn is_anonymous(&self) -> bool {
        self.user.is_none() && self.client.is_none()
    }

    /// One string for the `actor` filter column.
    fn key(&self) -> String {
        self.client
            .clone()
            .or_else(|| self.user.clone())
            .unwrap_or_else(|| "anonymous".to_owned())
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// What happened to each field of a record (`written`, `removed`, `clear`, …), by field name in
/// alphabetical order (canonical form). Shared: the records of a page that got the same field
/// plan point at one map, so building and dropping a page's entry costs a few maps, not one per
/// record. Serialised as the map itself.
pub type FieldLevels = Arc<BTreeMap<String, String>>;

/// A record an entry concerns, with what happened to each of its fields.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordRef {
    pub fields: FieldLevels,
    pub id: String,
}

impl RecordRef {
    pub fn new(id: &str, fields: impl IntoIterator<Item = (String, &'static str)>) -> RecordRef {
        RecordRef::sharing(
            id,
            Arc::new(fields.into_iter().map(|(k, v)| (k, v.to_owned())).collect()),
        )
    }

    /// A record whose field levels are shared with other records of the entry.
    pub fn sharing(id: &str, fields: FieldLevels) -> RecordRef {
        RecordRef {
            id: id.to_owned(),
            fields,
        }
    }
}

/// Hands out one `FieldLevels` per distinct plan, so the records of an entry that got the same
/// field levels share one map.
#[derive(Debug, Default)]
pub struct SharedLevels {
    seen: HashMap<Vec<(usize, &'static str)>, FieldLevels>,
}

impl SharedLevels {
    /// The map of `levels` (each a field's position in `names` and its level); the same `Arc`
    /// as every earlier call with equal levels. Positions outside `names` are left out.
    pub fn get(&mut self, names: &[String], levels: Vec<(usize, &'static str)>) -> FieldLevels {
        let shared = self.seen.entry(levels).or_insert_with_key(|levels| {
            Arc::new(
                levels
                    .iter()
                    .filter_map(|(at, level)| Some((names.get(*at)?.clone(), (*level).to_owned())))
                    .collect(),
            )
        });
        Arc::clone(shared)
    }
}

/// Refusals of callers that named no user or client (`crate::auth::refusals`) that were counted
/// instead of written one entry each: how many from one source in one window, and why. Fields
/// in alphabetical order (canonical form).
///
/// Invariant: every such refusal is counted exactly once, either as an entry of its own or in
/// one summary's `count`; `reasons` add up to `count`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefusalCount {
    pub count: u64,
    pub first_request_id: String,
    pub last_request_id: String,
    pub reasons: BTreeMap<String, u64>,
    /// End of the window (exclusive), RFC 3339 with milliseconds, on the hub's clock.
    pub window_end: String,
    /// Start of the window, RFC 3339 with milliseconds, on the hub's clock.
    pub window_start: String,
}

/// What a caller asks the ledger to record; the ledger adds `index` and `time`.
#[derive(Debug, Clone)]
pub struct EntryDraft {
    pub actor: Actor,
    pub action: String,
    pub category: Option<String>,
    pub purpose: Option<String>,
    pub case: Option<String>,
    pub decision: Decision,
    pub reason: Option<String>,
    pub grants: Vec<String>,
    pub records: Vec<RecordRef>,
    /// Counted refusals (summary entries only).
    pub refusals: Option<RefusalCount>,
    pub request_id: String,
    /// The IP address a refused request came from (`deny` entries written in a request), or
    /// `overflow` on the summary of refusals from addresses beyond the tracked maximum.
    pub source: Option<String>,
    /// A statistics answer: the query, every cell's size and what was released.
    pub statistics: Option<StatisticsRecord>,
}

/// What a statistics answer counted and released (fields in alphabetical order). No person is
/// named: cells are keyed by grid codes and catalog values, and sized by counts.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StatisticsRecord {
    pub cells: Vec<StatisticsCell>,
    /// ε spent, in thousandths, when the grant adds noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon_milli: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    pub group_by: Vec<String>,
    pub min_cell: u32,
}

/// One cell of a statistics answer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StatisticsCell {
    /// One value per `group_by` dimension.
    pub group: Vec<String>,
    /// The count answered (noisy when the grant adds noise); absent: suppressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<u64>,
    /// The true count.
    pub size: u64,
}

/// The canonical entry: fields in alphabetical order.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct CanonicalEntry {
    pub action: String,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub decision: Decision,
    pub grants: Vec<String>,
    pub index: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub records: Vec<RecordRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusals: Option<RefusalCount>,
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics: Option<StatisticsRecord>,
    pub time: String,
}

/// `CanonicalEntry` borrowed from a draft: same fields, same order, same text.
#[derive(Serialize)]
struct CanonicalView<'a> {
    action: &'a str,
    actor: &'a Actor,
    #[serde(skip_serializing_if = "Option::is_none")]
    case: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'a str>,
    decision: Decision,
    grants: &'a [String],
    index: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    records: &'a [RecordRef],
    #[serde(skip_serializing_if = "Option::is_none")]
    refusals: Option<&'a RefusalCount>,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statistics: Option<&'a StatisticsRecord>,
    time: &'a str,
}

impl EntryDraft {
    /// An entry with no category, purpose, case, grants or records.
    pub fn new(actor: Actor, action: &str, decision: Decision, request_id: String) -> EntryDraft {
        EntryDraft {
            actor,
            action: action.to_owned(),
            category: None,
            purpose: None,
            case: None,
            decision,
            reason: None,
            grants: Vec::new(),
            records: Vec::new(),
            refusals: None,
            request_id,
            source: None,
            statistics: None,
        }
    }

    /// A statistics answer's query and cells.
    pub fn statistics(mut self, statistics: StatisticsRecord) -> EntryDraft {
        self.statistics = Some(statistics);
        self
    }

    /// The address the request came from (refusals).
    pub fn source(mut self, source: Option<String>) -> EntryDraft {
        self.source = source;
        self
    }

    pub fn refusals(mut self, refusals: RefusalCount) -> EntryDraft {
        self.refusals = Some(refusals);
        self
    }

    pub fn reason(mut self, reason: &str) -> EntryDraft {
        self.reason = Some(reason.to_owned());
        self
    }

    pub fn category(mut self, category: &str) -> EntryDraft {
        self.category = Some(category.to_owned());
        self
    }

    pub fn purpose(mut self, purpose: &str) -> EntryDraft {
        self.purpose = Some(purpose.to_owned());
        self
    }

    pub fn case(mut self, case: &str) -> EntryDraft {
        self.case = Some(case.to_owned());
        self
    }

    pub fn grants(mut self, grants: Vec<String>) -> EntryDraft {
        self.grants = grants;
        self
    }

    pub fn records(mut self, records: Vec<RecordRef>) -> EntryDraft {
        self.records = records;
        self
    }

    /// The exact text that is hashed.
    pub fn canonical(&self, index: u64, time_ms: i64) -> String {
        self.canonical_at(index, &rfc3339_millis(time_ms))
    }

    /// As `canonical`, with the time already formatted (one batch shares one time). Serialises
    /// a borrowed view, so nothing is cloned; `CanonicalEntry` parses the same text back.
    pub fn canonical_at(&self, index: u64, time: &str) -> String {
        let view = CanonicalView {
            action: &self.action,
            actor: &self.actor,
            case: self.case.as_deref(),
            category: self.category.as_deref(),
            decision: self.decision,
            grants: &self.grants,
            index,
            purpose: self.purpose.as_deref(),
            reason: self.reason.as_deref(),
            records: &self.records,
            refusals: self.refusals.as_ref(),
            request_id: &self.request_id,
            source: self.source.as_deref(),
            statistics: self.statistics.as_ref(),
            time,
        };
        // Serialising plain structs, strings and integers cannot fail.
        serde_json::to_string(&view).unwrap_or_default()
    }

    pub(super) fn row(&self, index: u64, time_ms: i64, canonical: String, leaf: Hash) -> LedgerRow {
        LedgerRow {
            index: i64::try_from(index).unwrap_or(i64::MAX),
            time_ms,
            actor: self.actor.key(),
            action: self.action.clone(),
            purpose: self.purpose.clone(),
            case_id: self.case.clone(),
            decision: self.decision.as_str().to_owned(),
            department: self.actor.department.clone(),
            category: self.category.clone(),
            request_id: self.request_id.clone(),
            stream: super::Stream::of(&self.action).as_str(),
            canonical,
            leaf_hash: leaf.to_vec(),
            subjects: self.records.iter().map(|r| r.id.clone()).collect(),
        }
    }
}

/// Parse canonical text back and check it is canonical (re-serialising gives the same bytes).
pub fn parse_canonical(text: &str) -> Result<CanonicalEntry, String> {
    let entry: CanonicalEntry =
        serde_json::from_str(text).map_err(|_| "entry is not valid entry JSON".to_owned())?;
    let again =
        serde_json::to_string(&entry).map_err(|_| "entry does not re-serialise".to_owned())?;
    if again != text {
        return Err("entry is not in canonical form".to_owned());
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> EntryDraft {
        EntryDraft::new(
            Actor::user("u1"),
            "record.create",
            Decision::Allow,
            "req-1".to_owned(),
        )
        .category("person")
        .purpose("population-registration")
        .records(vec![RecordRef::new(
            "r1",
            [
                ("phone".to_owned(), "written"),
                ("name".to_owned(), "written"),
            ],
        )])
    }

    #[test]
    fn records_with_equal_levels_share_one_map_and_serialise_as_before() {
        let names = [
            "name".to_owned(),
            "phone".to_owned(),
            "id_number".to_owned(),
        ];
        let mut shared = SharedLevels::default();
        let a = shared.get(&names, vec![(0, "clear"), (1, "masked")]);
        let b = shared.get(&names, vec![(0, "clear"), (1, "masked")]);
        let c = shared.get(&names, vec![(0, "clear")]);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        // Positions map to names; a position outside the names is left out.
        assert_eq!(
            shared
                .get(&names, vec![(2, "pseudonym"), (9, "clear")])
                .len(),
            1
        );
        let by_name = RecordRef::new(
            "r1",
            [("phone".to_owned(), "masked"), ("name".to_owned(), "clear")],
        );
        let sharing = RecordRef::sharing("r1", a);
        assert_eq!(sharing, by_name);
        let draft = |r: RecordRef| {
            EntryDraft::new(
                Actor::user("u1"),
                "data.pull",
                Decision::Allow,
                "q".to_owned(),
            )
            .records(vec![r])
            .canonical(1, 0)
        };
        assert_eq!(draft(sharing), draft(by_name));
    }

    #[test]
    fn canonical_form_has_sorted_keys_and_no_whitespace() {
        let text = draft().canonical(7, 1_700_000_000_123);
        assert_eq!(
            text,
            r#"{"action":"record.create","actor":{"user":"u1"},"category":"person","decision":"allow","grants":[],"index":7,"purpose":"population-registration","records":[{"fields":{"name":"written","phone":"written"},"id":"r1"}],"request_id":"req-1","time":"2023-11-14T22:13:20.123Z"}"#
        );
        assert_eq!(parse_canonical(&text).unwrap().index, 7);
    }

    #[test]
    fn a_refusal_summary_keeps_canonical_key_order_and_parses_back() {
        let summary = EntryDraft::new(
            Actor::default(),
            "auth.token.refusals",
            Decision::Deny,
            "-".to_owned(),
        )
        .source(Some("10.0.0.7".to_owned()))
        .refusals(RefusalCount {
            count: 3,
            first_request_id: "a".to_owned(),
            last_request_id: "c".to_owned(),
            reasons: BTreeMap::from([("invalid token".to_owned(), 3)]),
            window_end: "2026-01-01T00:01:00.000Z".to_owned(),
            window_start: "2026-01-01T00:00:00.000Z".to_owned(),
        });
        let text = summary.canonical(1, 0);
        assert_eq!(
            text,
            r#"{"action":"auth.token.refusals","actor":{},"decision":"deny","grants":[],"index":1,"records":[],"refusals":{"count":3,"first_request_id":"a","last_request_id":"c","reasons":{"invalid token":3},"window_end":"2026-01-01T00:01:00.000Z","window_start":"2026-01-01T00:00:00.000Z"},"request_id":"-","source":"10.0.0.7","time":"1970-01-01T00:00:00.000Z"}"#
        );
        let parsed = parse_canonical(&text).unwrap();
        assert_eq!(parsed.source.as_deref(), Some("10.0.0.7"));
        assert_eq!(parsed.refusals.unwrap().count, 3);
    }

    #[test]
    fn non_canonical_text_is_refused() {
        let text = draft().canonical(1, 0);
        let spaced = text.replace(":", ": ");
        assert!(parse_canonical(&spaced).is_err());
        let head = r#"{"action":"record.create","#;
        let rest = text.strip_prefix(head).unwrap().strip_suffix('}').unwrap();
        let reordered = format!(r#"{{{rest},"action":"record.create"}}"#);
        assert!(parse_canonical(&reordered).is_err());
    }
}
