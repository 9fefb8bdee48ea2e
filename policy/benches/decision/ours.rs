//! The workload mapped onto Gridhub's engine (`policy::DecisionIndex`): a bench catalog whose
//! `person` category holds the reference's ten fields plus an indexed `tags` set, every reference
//! grant as a `LiveGrant` upserted with its status, jurisdictions, and every case as a
//! `Responsibility`. Times are Unix milliseconds (the reference counts seconds).

use std::collections::BTreeMap;

use policy::catalog::{CategoryDef, FieldDef, FieldType, GeneralizeRule, MaskRule};
use policy::{
    Candidates, Catalog, DecisionIndex, Disclosure, FieldPlan, GrantStatus, GrantTerms, GridCode,
    LiveGrant, Record, Request, Responsibility, RowFilter, RowView, Sensitivity, ShareClass,
};

use crate::data::{self, CATEGORIES, FIELDS, Level, PURPOSES, Status, TAGS, World};

/// The reference's `NOW`, in milliseconds.
pub const NOW_MS: i64 = data::NOW * 1000;
/// Every grant starts 100 days before `NOW` (so even an expired one has a valid window).
pub const VALID_FROM_MS: i64 = (data::NOW - 100 * 86_400) * 1000;

/// A record's filterable fields: its tag bitmask (bit i = `TAGS[i]`).
pub struct Tags(pub u8);

impl RowView<String> for Tags {
    fn has(&self, field: &str, value: &String) -> bool {
        field == "tags"
            && TAGS
                .iter()
                .position(|t| t == value)
                .is_some_and(|i| self.0 & (1 << i) != 0)
    }

    fn equals(&self, _field: &str, _value: &String) -> bool {
        false
    }
}

pub fn disclosure(level: Level) -> Disclosure {
    match level {
        Level::Generalized => Disclosure::Generalized,
        Level::Masked => Disclosure::Masked,
        Level::Pseudonym => Disclosure::Pseudonym,
        Level::Clear => Disclosure::Clear,
    }
}

pub fn level(disclosure: Disclosure) -> Level {
    match disclosure {
        Disclosure::Generalized => Level::Generalized,
        Disclosure::Masked => Level::Masked,
        Disclosure::Pseudonym => Level::Pseudonym,
        Disclosure::Clear => Level::Clear,
    }
}

/// One category with the reference's ten fields (text, personal, conditional, each with a mask
/// and a generalisation so every level a grant names is supported) and an indexed `tags` set.
fn category(name: &str) -> CategoryDef {
    let mut fields: Vec<FieldDef> = FIELDS
        .iter()
        .map(|f| FieldDef {
            name: (*f).to_owned(),
            ty: FieldType::Text { max_chars: 64 },
            sensitivity: Sensitivity::Personal,
            share: ShareClass::Conditional,
            encrypted: true,
            indexed: matches!(*f, "id_number" | "phone"),
            required: false,
            mask: Some(MaskRule::KeepFirstChars { n: 1 }),
            generalize: Some(GeneralizeRule::GridCode),
            description: format!("bench field {f}"),
        })
        .collect();
    fields.push(FieldDef {
        name: "tags".to_owned(),
        ty: FieldType::TagSet {
            values: TAGS.map(String::from).to_vec(),
        },
        sensitivity: Sensitivity::Sensitive,
        share: ShareClass::Conditional,
        encrypted: true,
        indexed: true,
        required: false,
        mask: None,
        generalize: None,
        description: "care labels (the row filters' field)".to_owned(),
    });
    CategoryDef {
        name: name.to_owned(),
        description: format!("bench category {name}"),
        owner: None,
        fields,
    }
}

pub fn catalog() -> Catalog {
    Catalog::from_categories(CATEGORIES.iter().map(|c| category(c)).collect())
        .expect("the bench catalog is valid")
}

pub fn grid(code: &str) -> GridCode {
    GridCode::parse(code).expect("workload grid codes are valid")
}

pub fn status(g: &data::Grant) -> GrantStatus {
    match g.status {
        Status::Approved => GrantStatus::Approved,
        Status::Pending => GrantStatus::Requested,
        Status::Revoked => GrantStatus::Revoked,
    }
}

/// A reference grant as the index takes it (row filter parsed against its category).
pub fn live_grant(w: &World, catalog: &Catalog, g: &data::Grant) -> LiveGrant {
    let category = CATEGORIES[g.cat as usize];
    let row_filter = g.tag.map(|t| format!(r#"tags has "{}""#, TAGS[t as usize]));
    let filter = row_filter.as_deref().map(|text| {
        let def = catalog.category(category).expect("bench category");
        RowFilter::parse(text, def).expect("bench row filters parse")
    });
    LiveGrant {
        id: format!("g{}", g.id),
        terms: GrantTerms {
            grantee: w.depts[g.dept as usize].name.clone(),
            purpose: PURPOSES[g.purpose as usize].to_owned(),
            category: category.to_owned(),
            fields: g
                .fields
                .iter()
                .map(|(f, l)| (FIELDS[*f as usize].to_owned(), disclosure(*l)))
                .collect::<BTreeMap<_, _>>(),
            scope: g.scope.iter().map(|s| grid(s)).collect(),
            row_filter,
            case_bound: g.case_bound,
            valid_from: VALID_FROM_MS,
            valid_until: g.expires * 1000,
            daily_quota: None,
            legal_basis: None,
        },
        filter,
    }
}

pub fn responsibility(w: &World, c: &data::Case) -> Responsibility {
    Responsibility {
        case: c.name.clone(),
        open: c.open,
        assignees: c
            .assignees
            .iter()
            .map(|d| w.depts[*d as usize].name.clone())
            .collect(),
        records: c
            .records
            .iter()
            .map(|r| w.records[*r as usize].name.clone())
            .collect(),
    }
}

/// Setup time of each part of the index, for the report.
pub struct Setup {
    pub grants: std::time::Duration,
    pub upserts: std::time::Duration,
    pub jurisdictions: std::time::Duration,
    pub cases: std::time::Duration,
}

/// The engine with what a request needs precomputed: parsed leaf grids, and each reference
/// field's position in the `person` category (= its position in a `RecordPlan`).
pub struct Ours<'w> {
    pub index: DecisionIndex,
    pub grants: Vec<LiveGrant>,
    grids: Vec<GridCode>,
    rows: Vec<Tags>,
    positions: [usize; FIELDS.len()],
    w: &'w World,
}

impl<'w> Ours<'w> {
    pub fn build(w: &'w World) -> (Ours<'w>, Setup) {
        let catalog = catalog();
        let person = catalog.category("person").expect("bench person category");
        let positions = FIELDS.map(|f| {
            person
                .fields
                .iter()
                .position(|d| d.name == f)
                .expect("every workload field is in the bench catalog")
        });
        let mut index = DecisionIndex::new(catalog.clone());
        let t = std::time::Instant::now();
        let grants: Vec<LiveGrant> = w
            .grants
            .iter()
            .map(|g| live_grant(w, &catalog, g))
            .collect();
        let t_grants = t.elapsed();
        let t = std::time::Instant::now();
        for (live, g) in grants.iter().zip(&w.grants) {
            index
                .upsert_grant(live, status(g))
                .expect("bench grants name bench categories");
        }
        let t_upserts = t.elapsed();
        let t = std::time::Instant::now();
        for d in &w.depts {
            index.set_jurisdiction(&d.name, d.jurisdiction.iter().map(|j| grid(j)).collect());
        }
        let t_juris = t.elapsed();
        let t = std::time::Instant::now();
        for c in &w.cases {
            index.set_case(&responsibility(w, c));
        }
        let t_cases = t.elapsed();
        let ours = Ours {
            index,
            grants,
            grids: w.grids.iter().map(|g| grid(g)).collect(),
            rows: w.records.iter().map(|r| Tags(r.tags)).collect(),
            positions,
            w,
        };
        let setup = Setup {
            grants: t_grants,
            upserts: t_upserts,
            jurisdictions: t_juris,
            cases: t_cases,
        };
        (ours, setup)
    }

    pub fn request<'a>(&'a self, r: &data::Request) -> Request<'a> {
        Request {
            department: &self.w.depts[r.dept as usize].name,
            category: "person",
            purpose: PURPOSES[r.purpose as usize],
            case: r.case.map(|c| self.w.cases[c as usize].name.as_str()),
            now: NOW_MS,
        }
    }

    pub fn record(&self, r: &data::Request) -> Record<'_, Tags> {
        let rec = &self.w.records[r.rec as usize];
        Record {
            id: &rec.name,
            grid: &self.grids[rec.grid as usize],
            row: &self.rows[r.rec as usize],
        }
    }

    /// Step 1 alone (what a page of records shares).
    pub fn candidates(&self, r: &data::Request) -> Option<Candidates> {
        self.index.candidates(&self.request(r)).ok()
    }

    /// Step 2 for one record, read at the requested field.
    pub fn plan_field(&self, c: &Candidates, r: &data::Request) -> Option<Level> {
        let plan = c.plan(&self.record(r));
        plan.fields()
            .get(self.positions[r.field as usize])
            .and_then(FieldPlan::level)
            .map(level)
    }

    /// How many workload grants `grant::check_terms` would refuse at creation, by the path of
    /// their first problem with indices dropped (`scope[3]` → `scope`). The index takes them
    /// all; this only says how far the workload is from what the product would store.
    pub fn creation_refusals(&self, w: &World) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (live, g) in self.grants.iter().zip(&w.grants) {
            let dept = &w.depts[g.dept as usize];
            let jurisdiction: Vec<GridCode> = dept.jurisdiction.iter().map(|j| grid(j)).collect();
            let catalog = self.index.catalog();
            if let Err(problems) =
                policy::grant::check_terms(&live.terms, catalog, &jurisdiction, VALID_FROM_MS)
                && let Some(first) = problems.first()
            {
                let path = first.field.split('[').next().unwrap_or("").to_owned();
                *out.entry(path).or_insert(0) += 1;
            }
        }
        out
    }

    /// Both steps, then the requested field's level (None = deny).
    pub fn decide(&self, r: &data::Request) -> Option<Level> {
        let c = self.candidates(r)?;
        self.plan_field(&c, r)
    }

    /// Both steps for the whole record: how many fields are disclosed, and at what levels (the
    /// sum of their ranks, so nothing is optimised away), plus the requested field's level.
    pub fn decide_record(&self, r: &data::Request) -> (usize, usize, Option<Level>) {
        let Some(c) = self.candidates(r) else {
            return (0, 0, None);
        };
        let plan = c.plan(&self.record(r));
        let mut disclosed = 0;
        let mut ranks = 0;
        for f in plan.fields() {
            if let Some(l) = f.level() {
                disclosed += 1;
                ranks += level(l) as usize;
            }
        }
        let asked = plan.fields()[self.positions[r.field as usize]]
            .level()
            .map(level);
        (disclosed, ranks, asked)
    }
}
