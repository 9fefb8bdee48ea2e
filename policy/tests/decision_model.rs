//! Model-based test of the decision engine: random catalogs, grants (with random status
//! histories), jurisdictions, cases (with reassignments) and requests, checked against a
//! deliberately simple reference implementation of DESIGN.md §3 rules 3–5 written here from the
//! text of the rules: no index, no shortcuts, every grant looked at for every field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};

use policy::catalog::{CategoryDef, FieldDef, FieldType, GeneralizeRule, MaskRule};
use policy::{
    Catalog, DecisionIndex, Disclosure, GrantStatus, GrantTerms, GridCode, LiveGrant, Record,
    Refusal, Request, Responsibility, RowFilter, RowView, Sensitivity, ShareClass,
};
use proptest::prelude::*;

const GRIDS: [&str; 15] = [
    "1", "1.1", "1.2", "1.1.1", "1.1.2", "1.2.1", "1.2.2", "1.1.1.1", "1.1.1.2", "1.1.2.1",
    "1.1.2.2", "1.2.1.1", "1.2.1.2", "1.2.2.1", "1.2.2.2",
];
const LEAVES: std::ops::Range<usize> = 7..15;
const DEPARTMENTS: [&str; 3] = ["d0", "d1", "d2"];
const PURPOSES: [&str; 2] = ["p0", "p1"];
const TAGS: [&str; 3] = ["t0", "t1", "t2"];
const RECORDS: usize = 6;
const CASES: usize = 3;
const NOW: i64 = 1_000_000;

#[derive(Debug, Clone)]
struct ModelGrant {
    dept: usize,
    purpose: usize,
    category: usize,
    fields: BTreeMap<usize, Disclosure>,
    scope: Vec<usize>,
    tag: Option<usize>,
    case_bound: bool,
    valid_from: i64,
    valid_until: i64,
    /// Earlier statuses (applied to the index first), then the final one.
    history: Vec<GrantStatus>,
}

#[derive(Debug, Clone)]
struct ModelCase {
    open: bool,
    assignees: BTreeSet<usize>,
    records: BTreeSet<usize>,
    /// Assignees before the last reassignment (applied to the index first).
    earlier: BTreeSet<usize>,
}

#[derive(Debug, Clone)]
struct ModelRecord {
    grid: usize,
    tags: BTreeSet<usize>,
}

#[derive(Debug, Clone)]
struct World {
    /// Share class of each field of the two categories (field 0 is the `tags` field).
    shares: [Vec<ShareClass>; 2],
    grants: Vec<ModelGrant>,
    jurisdictions: [Vec<usize>; 3],
    cases: Vec<ModelCase>,
    records: Vec<ModelRecord>,
}

#[derive(Debug, Clone)]
struct Ask {
    dept: usize,
    purpose: usize,
    category: usize,
    case: Option<usize>,
    record: usize,
}

fn share() -> impl Strategy<Value = ShareClass> {
    prop_oneof![
        Just(ShareClass::Unconditional),
        Just(ShareClass::Conditional),
        Just(ShareClass::None)
    ]
}

fn level() -> impl Strategy<Value = Disclosure> {
    prop::sample::select(Disclosure::ALL.to_vec())
}

fn status() -> impl Strategy<Value = GrantStatus> {
    prop::sample::select(GrantStatus::ALL.to_vec())
}

fn grant(fields: usize) -> impl Strategy<Value = ModelGrant> {
    (
        0..DEPARTMENTS.len(),
        0..PURPOSES.len(),
        0..2usize,
        prop::collection::btree_map(0..fields, level(), 1..4),
        prop::collection::vec(0..GRIDS.len(), 1..3),
        prop::option::weighted(0.3, 0..TAGS.len()),
        any::<bool>(),
        (-3i64..1, -1i64..4),
        prop::collection::vec(status(), 0..3),
        prop_oneof![3 => Just(GrantStatus::Approved), 1 => status()],
    )
        .prop_map(
            |(
                dept,
                purpose,
                category,
                fields,
                scope,
                tag,
                case_bound,
                (from, until),
                mut history,
                last,
            )| {
                history.push(last);
                ModelGrant {
                    dept,
                    purpose,
                    category,
                    fields,
                    scope,
                    tag,
                    case_bound,
                    valid_from: NOW + from * 1000,
                    valid_until: NOW + until * 1000,
                    history,
                }
            },
        )
}

fn world() -> impl Strategy<Value = World> {
    (3usize..7, 3usize..7).prop_flat_map(|(f0, f1)| {
        let widest = f0.max(f1);
        (
            prop::collection::vec(share(), f0),
            prop::collection::vec(share(), f1),
            prop::collection::vec(grant(widest), 0..12),
            prop::collection::vec(prop::collection::vec(0..GRIDS.len(), 0..3), 3),
            prop::collection::vec(
                (
                    any::<bool>(),
                    prop::collection::btree_set(0..DEPARTMENTS.len(), 0..3),
                    prop::collection::btree_set(0..RECORDS, 0..4),
                    prop::collection::btree_set(0..DEPARTMENTS.len(), 0..3),
                )
                    .prop_map(|(open, assignees, records, earlier)| ModelCase {
                        open,
                        assignees,
                        records,
                        earlier,
                    }),
                CASES,
            ),
            prop::collection::vec(
                (LEAVES, prop::collection::btree_set(0..TAGS.len(), 0..3))
                    .prop_map(|(grid, tags)| ModelRecord { grid, tags }),
                RECORDS,
            ),
        )
            .prop_map(move |(s0, s1, mut grants, j, cases, records)| {
                // Field names beyond a category's width do not exist in it.
                let widths = [f0, f1];
                for g in &mut grants {
                    g.fields.retain(|f, _| *f < widths[g.category]);
                }
                World {
                    shares: [s0, s1],
                    grants,
                    jurisdictions: [j[0].clone(), j[1].clone(), j[2].clone()],
                    cases,
                    records,
                }
            })
    })
}

fn ask() -> impl Strategy<Value = Ask> {
    (
        0..DEPARTMENTS.len(),
        0..PURPOSES.len(),
        0..2usize,
        prop::option::weighted(0.7, 0..CASES + 1),
        0..RECORDS,
    )
        .prop_map(|(dept, purpose, category, case, record)| Ask {
            dept,
            purpose,
            category,
            case,
            record,
        })
}

// ---- the reference, straight from DESIGN.md §3 ----

fn within(outer: usize, inner: usize) -> bool {
    let (o, i) = (GRIDS[outer], GRIDS[inner]);
    i == o || i.starts_with(&format!("{o}."))
}

/// Rule 3: is there any approved grant valid now for (dept, purpose, category)?
fn reference_has_candidates(w: &World, a: &Ask) -> bool {
    w.grants.iter().any(|g| {
        *g.history.last().unwrap() == GrantStatus::Approved
            && g.valid_from <= NOW
            && NOW < g.valid_until
            && g.dept == a.dept
            && g.purpose == a.purpose
            && g.category == a.category
    })
}

/// Rules 4–5: the level of `field` of the asked record, or None when withheld.
fn reference_level(w: &World, a: &Ask, field: usize) -> Option<Disclosure> {
    if w.shares[a.category][field] == ShareClass::None {
        return None;
    }
    let record = &w.records[a.record];
    let mut best: Option<Disclosure> = None;
    for g in &w.grants {
        let candidate = *g.history.last().unwrap() == GrantStatus::Approved
            && g.valid_from <= NOW
            && NOW < g.valid_until
            && g.dept == a.dept
            && g.purpose == a.purpose
            && g.category == a.category;
        if !candidate {
            continue;
        }
        let Some(level) = g.fields.get(&field) else {
            continue;
        };
        let in_scope = g.scope.iter().any(|s| within(*s, record.grid));
        let filter_holds = g.tag.is_none_or(|t| record.tags.contains(&t));
        let responsible = if g.case_bound {
            match a.case {
                Some(c) if c < CASES => {
                    let case = &w.cases[c];
                    case.open
                        && case.assignees.contains(&a.dept)
                        && case.records.contains(&a.record)
                }
                _ => false,
            }
        } else {
            w.jurisdictions[a.dept]
                .iter()
                .any(|j| within(*j, record.grid))
        };
        if in_scope && filter_holds && responsible {
            best = best.max(Some(*level));
        }
    }
    best
}

// ---- the engine under test ----

fn field_name(field: usize) -> String {
    if field == 0 {
        "tags".to_owned()
    } else {
        format!("f{field}")
    }
}

fn catalog(w: &World) -> Catalog {
    let category = |name: &str, shares: &[ShareClass]| CategoryDef {
        name: name.to_owned(),
        description: String::new(),
        owner: None,
        fields: shares
            .iter()
            .enumerate()
            .map(|(i, share)| FieldDef {
                name: field_name(i),
                ty: if i == 0 {
                    FieldType::TagSet {
                        values: TAGS.iter().map(|t| (*t).to_owned()).collect(),
                    }
                } else {
                    FieldType::Text { max_chars: 50 }
                },
                sensitivity: Sensitivity::Personal,
                share: *share,
                encrypted: true,
                indexed: i == 0,
                required: false,
                mask: (i != 0).then_some(MaskRule::KeepFirstChars { n: 1 }),
                generalize: (i != 0).then_some(GeneralizeRule::GridCode),
                description: String::new(),
            })
            .collect(),
    };
    // A filter must be able to read `tags`, so it is never `none` in the model.
    let mut s0 = w.shares[0].clone();
    let mut s1 = w.shares[1].clone();
    s0[0] = ShareClass::Conditional;
    s1[0] = ShareClass::Conditional;
    Catalog::from_categories(vec![category("k0", &s0), category("k1", &s1)]).unwrap()
}

struct Tags<'a>(&'a BTreeSet<usize>);

impl RowView<String> for Tags<'_> {
    fn has(&self, field: &str, value: &String) -> bool {
        field == "tags" && self.0.iter().any(|t| TAGS[*t] == value)
    }
    fn equals(&self, _: &str, _: &String) -> bool {
        false
    }
}

fn build(w: &World) -> DecisionIndex {
    let catalog = catalog(w);
    let mut index = DecisionIndex::new(catalog.clone());
    for (d, grids) in w.jurisdictions.iter().enumerate() {
        index.set_jurisdiction(
            DEPARTMENTS[d],
            grids
                .iter()
                .map(|g| GridCode::parse(GRIDS[*g]).unwrap())
                .collect(),
        );
    }
    for (i, g) in w.grants.iter().enumerate() {
        let category = ["k0", "k1"][g.category];
        let filter = g.tag.map(|t| {
            RowFilter::parse(
                &format!("tags has \"{}\"", TAGS[t]),
                catalog.category(category).unwrap(),
            )
            .unwrap()
        });
        let live = LiveGrant {
            id: format!("g{i}"),
            terms: GrantTerms {
                grantee: DEPARTMENTS[g.dept].to_owned(),
                purpose: PURPOSES[g.purpose].to_owned(),
                category: category.to_owned(),
                fields: g.fields.iter().map(|(f, l)| (field_name(*f), *l)).collect(),
                scope: g
                    .scope
                    .iter()
                    .map(|s| GridCode::parse(GRIDS[*s]).unwrap())
                    .collect(),
                row_filter: None,
                case_bound: g.case_bound,
                valid_from: g.valid_from,
                valid_until: g.valid_until,
                daily_quota: None,
                legal_basis: None,
            },
            filter,
        };
        for status in &g.history {
            index.upsert_grant(&live, *status).unwrap();
        }
    }
    for (c, case) in w.cases.iter().enumerate() {
        let responsibility = |assignees: &BTreeSet<usize>, open| Responsibility {
            case: format!("c{c}"),
            open,
            assignees: assignees
                .iter()
                .map(|d| DEPARTMENTS[*d].to_owned())
                .collect(),
            records: case.records.iter().map(|r| format!("r{r}")).collect(),
        };
        index.set_case(&responsibility(&case.earlier, true));
        index.set_case(&responsibility(&case.assignees, case.open));
    }
    index
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_engine_agrees_with_the_reference(w in world(), asks in prop::collection::vec(ask(), 1..20)) {
        let index = build(&w);
        let grids: Vec<GridCode> = GRIDS.iter().map(|g| GridCode::parse(g).unwrap()).collect();
        for a in &asks {
            let case = a.case.map(|c| format!("c{c}"));
            let request = Request {
                department: DEPARTMENTS[a.dept],
                category: ["k0", "k1"][a.category],
                purpose: PURPOSES[a.purpose],
                case: case.as_deref(),
                now: NOW,
            };
            let record = &w.records[a.record];
            let id = format!("r{}", a.record);
            let tags = Tags(&record.tags);
            let subject = Record { id: &id, grid: &grids[record.grid], row: &tags };
            match index.plan(&request, &subject) {
                Err(refusal) => {
                    prop_assert_eq!(refusal, Refusal::NoGrant);
                    prop_assert!(!reference_has_candidates(&w, a), "engine refused {:?}", a);
                }
                Ok(plan) => {
                    prop_assert!(reference_has_candidates(&w, a), "engine had candidates for {:?}", a);
                    prop_assert_eq!(plan.fields().len(), w.shares[a.category].len());
                    for (field, got) in plan.fields().iter().enumerate() {
                        // Field 0 (`tags`) is forced shareable in the catalog.
                        let expected = if field == 0 {
                            let mut w = w.clone();
                            w.shares[a.category][0] = ShareClass::Conditional;
                            reference_level(&w, a, 0)
                        } else {
                            reference_level(&w, a, field)
                        };
                        prop_assert_eq!(got.level(), expected, "field {} of {:?}", field, a);
                    }
                }
            }
        }
    }
}
