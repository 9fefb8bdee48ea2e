//! The JSON bodies of records, grants, cases and roles: read by the extractor the API uses
//! (`extract::parse_json`) into the routes' request types, turned into the services' drafts by
//! the routes' own conversions, then checked by the services' own checks.

use policy::{Catalog, GridCode, WorkingCalendar};
use serde_json::{Map, Value};

use super::{split_choice, vault};
use crate::auth::permissions::{EVERY_GRID, object_spec, valid_role_name};
use crate::cases::input::{CaseKind, CaseText, Satisfaction, deadline, departments, subjects};
use crate::cases::{AssignmentDraft, ClosingDraft};
use crate::extract::parse_json;
use crate::grants::GrantDraft;
use crate::identity::RolePut;
use crate::records::{Change, RecordDraft, RecordInput, open_all, seal};
use crate::routes::cases::body::{AssignCase, CloseCase, ReplyCase, ReportCase};
use crate::routes::grants::GrantRequest;
use crate::routes::records::body::{CreateBatch, CreateRecord, PatchRecord};
use crate::routes::roles::PutRole;
use crate::storage::StoredRecord;
use crate::time::parse_rfc3339;

/// 2026-03-02T09:00:00+08:00, a Monday: "now" for checks that need one.
const NOW_MS: i64 = 1_772_413_200_000;

/// `POST /v1/records` (one record or a batch) and `PATCH /v1/records/{id}`. A record that
/// passes its checks is sealed and opened again, and must read back as it was checked.
pub fn record_body(data: &[u8]) {
    let Some((choice, body)) = split_choice(data, 3) else {
        return;
    };
    match choice {
        0 => {
            if let Ok(req) = parse_json::<CreateRecord>(body) {
                create_record(RecordInput::from(req));
            }
        }
        1 => {
            if let Ok(batch) = parse_json::<CreateBatch>(body) {
                batch.into_parts().1.into_iter().for_each(create_record);
            }
        }
        _ => {
            if let Ok(req) = parse_json::<PatchRecord>(body) {
                let change = Change::from(req);
                for category in Catalog::default_catalog().categories() {
                    let _ = category.parse_patch(&change.fields);
                }
            }
        }
    }
}

/// `records::prepare::one` without its lookups (the grid and purpose exist, the caller may
/// write there), then `seal`, then the read path's `open_all`.
fn create_record(input: RecordInput) {
    let Some(category) = Catalog::default_catalog().category(&input.category) else {
        return;
    };
    let grid = GridCode::parse(&input.grid);
    let values = category.parse_fields(&input.fields);
    let (Ok(grid), Ok(values)) = (grid, values) else {
        return;
    };
    let written: Map<String, Value> = values
        .iter()
        .map(|(name, value)| (name.clone(), value.to_json()))
        .collect();
    let draft = RecordDraft {
        category,
        grid,
        purpose: input.purpose,
        legal_basis: input.legal_basis,
        retention_until: None,
        collector: "fuzz".to_owned(),
        values,
    };
    let new = seal(vault(), draft).expect("a checked record seals");
    let stored = StoredRecord {
        id: new.id,
        category: new.category,
        grid: new.grid,
        version: 1,
        purpose: new.purpose,
        legal_basis: new.legal_basis,
        collector: new.collector,
        plain_fields: new.plain_fields,
        wrapped: new.wrapped,
        sealed: new.sealed,
        created_at: NOW_MS,
        updated_at: NOW_MS,
        retention_until: new.retention_until,
    };
    let read = open_all(vault(), category, &stored).expect("a sealed record opens");
    assert_eq!(read, written, "a record reads back as it was written");
}

/// `POST /v1/grants`: `GrantDraft::parse` without its lookups (the grantee, purpose and grids
/// exist, and the grantee's jurisdiction is the scope asked for).
pub fn grant_body(data: &[u8]) {
    let Ok(req) = parse_json::<GrantRequest>(data) else {
        return;
    };
    let draft = GrantDraft::from(req);
    let mut problems = Vec::new();
    let fields = draft.levels(&mut problems);
    let scope: Result<Vec<GridCode>, _> = draft.scope.iter().map(|g| GridCode::parse(g)).collect();
    let valid_from = parse_rfc3339(&draft.valid_from);
    let valid_until = parse_rfc3339(&draft.valid_until);
    let (Ok(scope), Some(valid_from), Some(valid_until), true) =
        (scope, valid_from, valid_until, problems.is_empty())
    else {
        return;
    };
    let jurisdiction = scope.clone();
    let terms = draft.into_terms(fields, scope, valid_from, valid_until);
    let _ = crate::grants::checked_terms(
        terms,
        &jurisdiction,
        Catalog::default_catalog(),
        vault(),
        NOW_MS,
    );
}

/// The cases API's four bodies (report, assign, reply, close) and the case service's checks
/// of each (`cases::input`), with the weekday calendar.
pub fn case_body(data: &[u8]) {
    let Some((choice, body)) = split_choice(data, 4) else {
        return;
    };
    match choice {
        0 => {
            let Ok(req) = parse_json::<ReportCase>(body) else {
                return;
            };
            let Ok(draft) = req.into_draft() else {
                return;
            };
            let _ = CaseKind::parse(&draft.kind);
            let _ = CaseText::parse("summary", &draft.summary);
            let _ = subjects(&draft.subjects);
        }
        1 => {
            let Ok(req) = parse_json::<AssignCase>(body) else {
                return;
            };
            let draft = AssignmentDraft::from(req);
            let _ = departments(&draft.departments);
            if let Ok(due) = deadline(&WorkingCalendar::weekdays(), &draft, NOW_MS) {
                assert!(due > NOW_MS, "a reply deadline lies in the future");
            }
        }
        2 => {
            if let Ok(req) = parse_json::<ReplyCase>(body) {
                let _ = CaseText::parse("note", &req.note);
            }
        }
        _ => {
            let Ok(req) = parse_json::<CloseCase>(body) else {
                return;
            };
            let draft = ClosingDraft::from(req);
            let _ = CaseText::parse("resolution", &draft.resolution);
            let _ = Satisfaction::parse(draft.satisfaction);
        }
    }
}

/// `PUT /v1/admin/roles/{role}`: the first line is the role name from the path, the rest the
/// body; then `Identity::put_role`'s checks without its grid lookups.
pub fn role_body(data: &[u8]) {
    let (name, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let _ = std::str::from_utf8(name).map(valid_role_name);
    let Ok(req) = parse_json::<PutRole>(body) else {
        return;
    };
    let put = RolePut::from(req);
    let _ = put.checked_description();
    for p in &put.permissions {
        let Some(spec) = object_spec(&p.object) else {
            continue;
        };
        if spec.actions.contains(&p.action.as_str()) {
            for g in p
                .grids
                .iter()
                .filter(|g| *g != EVERY_GRID && spec.grid_bound)
            {
                let _ = GridCode::parse(g);
            }
        }
    }
}
