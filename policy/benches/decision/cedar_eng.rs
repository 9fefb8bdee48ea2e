//! Cedar encoding, copied from `shared/reference/policy-bench/src/cedar_eng.rs` (minus the
//! per-request entity slices); the level order is Gridhub's (see `data.rs`).
//!
//! Entities (built once, one store for every request):
//!   Grid::"330110.001.002"      parent = the enclosing grid prefix (5-level tree)
//!   Person::"r000123"           parent = its leaf grid; attr tags: Set<String>
//!   Department::"dept017"       attr jurisdiction: Set<Grid>
//!   Case::"c000042"             attrs status, assignees: Set<Department>, records: Set<Person>
//! Grid containment is Cedar's hierarchy: `resource in Grid::"330110.001"`.
//!
//! Policies: one static `permit` per (approved grant, disclosure level) with
//! `@grant("g…") @level("…")`; the fields at that level are listed in the condition.
//! The answer is the highest @level among the satisfied policies
//! (`diagnostics().reason()`).
//! Request: principal = department, action = read, resource = the person record,
//! context = { purpose, field, now, case? }.

use crate::data::{CATEGORIES, FIELDS, Level, NOW, PURPOSES, Request, TAGS, World};
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request as CRequest, RestrictedExpression,
};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(EntityTypeName::from_str(ty).unwrap(), EntityId::new(id))
}

pub fn build_entities(w: &World) -> Entities {
    let mut ents: Vec<Entity> =
        Vec::with_capacity(w.tree.len() + w.records.len() + w.cases.len() + w.depts.len());
    for (code, parent) in &w.tree {
        let parents: HashSet<EntityUid> = parent.iter().map(|p| uid("Grid", p)).collect();
        ents.push(Entity::new_no_attrs(uid("Grid", code), parents));
    }
    for d in &w.depts {
        let attrs = HashMap::from([(
            "jurisdiction".to_string(),
            RestrictedExpression::new_set(
                d.jurisdiction
                    .iter()
                    .map(|j| RestrictedExpression::new_entity_uid(uid("Grid", j))),
            ),
        )]);
        ents.push(Entity::new(uid("Department", &d.name), attrs, HashSet::new()).unwrap());
    }
    for r in &w.records {
        let tags = (0..TAGS.len())
            .filter(|t| r.tags & (1 << t) != 0)
            .map(|t| RestrictedExpression::new_string(TAGS[t].to_string()));
        let attrs = HashMap::from([("tags".to_string(), RestrictedExpression::new_set(tags))]);
        let parents = HashSet::from([uid("Grid", &w.grids[r.grid as usize])]);
        ents.push(Entity::new(uid("Person", &r.name), attrs, parents).unwrap());
    }
    for c in &w.cases {
        ents.push(case_entity(w, c));
    }
    Entities::from_entities(ents, None).expect("entities")
}

pub fn case_entity(w: &World, c: &crate::data::Case) -> Entity {
    let attrs = HashMap::from([
        (
            "status".to_string(),
            RestrictedExpression::new_string(if c.open { "open" } else { "closed" }.to_string()),
        ),
        (
            "assignees".to_string(),
            RestrictedExpression::new_set(c.assignees.iter().map(|d| {
                RestrictedExpression::new_entity_uid(uid("Department", &w.depts[*d as usize].name))
            })),
        ),
        (
            "records".to_string(),
            RestrictedExpression::new_set(c.records.iter().map(|r| {
                RestrictedExpression::new_entity_uid(uid("Person", &w.records[*r as usize].name))
            })),
        ),
    ]);
    Entity::new(uid("Case", &c.name), attrs, HashSet::new()).unwrap()
}

fn quote_list<I: IntoIterator<Item = String>>(it: I) -> String {
    it.into_iter().collect::<Vec<_>>().join(", ")
}

pub struct PolicyText {
    pub dept: u16,
    pub purpose: u8,
    pub text: String,
}

/// One policy text per (approved grant, disclosure level).
pub fn policy_texts(w: &World) -> Vec<PolicyText> {
    let mut out = Vec::new();
    for g in w.grants.iter().filter(|g| g.approved) {
        for lvl in Level::ALL_DESC {
            let fields: Vec<&str> = g
                .fields
                .iter()
                .filter(|(_, l)| *l == lvl)
                .map(|(f, _)| FIELDS[*f as usize])
                .collect();
            if fields.is_empty() {
                continue;
            }
            let field_cond = if fields.len() == 1 {
                format!("context.field == \"{}\"", fields[0])
            } else {
                format!(
                    "[{}].contains(context.field)",
                    quote_list(fields.iter().map(|f| format!("\"{f}\"")))
                )
            };
            let ty = match CATEGORIES[g.cat as usize] {
                "person" => "Person",
                "household" => "Household",
                _ => "Enterprise",
            };
            let scope = quote_list(g.scope.iter().map(|p| format!("Grid::\"{p}\"")));
            let mut cond = format!(
                "context.purpose == \"{}\" && {field_cond} && context.now < {} && resource in [{scope}]",
                PURPOSES[g.purpose as usize], g.expires
            );
            if let Some(t) = g.tag {
                cond.push_str(&format!(
                    " && resource.tags.contains(\"{}\")",
                    TAGS[t as usize]
                ));
            }
            if g.case_bound {
                cond.push_str(
                    " && context has case && context.case.status == \"open\" \
                     && context.case.assignees.contains(principal) \
                     && context.case.records.contains(resource)",
                );
            } else {
                cond.push_str(" && resource in principal.jurisdiction");
            }
            let text = format!(
                "@grant(\"g{}\") @level(\"{}\")\npermit (principal == Department::\"{}\", action == Action::\"read\", resource is {ty})\nwhen {{ {cond} }};\n",
                g.id,
                lvl.as_str(),
                w.depts[g.dept as usize].name
            );
            out.push(PolicyText {
                dept: g.dept,
                purpose: g.purpose,
                text,
            });
        }
    }
    out
}

/// Parse a group of policy texts as one PolicySet (`PolicySet::from_str` is about 2x
/// faster than `Policy::parse` + `add` per policy).
pub fn policy_set<'a>(texts: impl Iterator<Item = &'a PolicyText>) -> PolicySet {
    let src: String = texts.map(|t| t.text.as_str()).collect();
    src.parse().expect("cedar policies")
}

pub fn prepare(w: &World, reqs: &[Request]) -> Vec<CRequest> {
    let action = uid("Action", "read");
    reqs.iter()
        .map(|r| {
            let mut ctx = vec![
                (
                    "purpose".to_string(),
                    RestrictedExpression::new_string(PURPOSES[r.purpose as usize].to_string()),
                ),
                (
                    "field".to_string(),
                    RestrictedExpression::new_string(FIELDS[r.field as usize].to_string()),
                ),
                ("now".to_string(), RestrictedExpression::new_long(NOW)),
            ];
            if let Some(c) = r.case {
                ctx.push((
                    "case".to_string(),
                    RestrictedExpression::new_entity_uid(uid("Case", &w.cases[c as usize].name)),
                ));
            }
            CRequest::new(
                uid("Department", &w.depts[r.dept as usize].name),
                action.clone(),
                uid("Person", &w.records[r.rec as usize].name),
                Context::from_pairs(ctx).unwrap(),
                None,
            )
            .unwrap()
        })
        .collect()
}

/// Returns (answer, number of evaluation errors reported by Cedar). The answer is the
/// highest @level among the satisfied policies.
#[inline]
pub fn decide(
    auth: &Authorizer,
    ps: &PolicySet,
    ents: &Entities,
    req: &CRequest,
) -> (Option<Level>, usize) {
    let resp = auth.is_authorized(req, ps, ents);
    let errs = resp.diagnostics().errors().count();
    if resp.decision() != Decision::Allow {
        return (None, errs);
    }
    let best = resp
        .diagnostics()
        .reason()
        .filter_map(|id| ps.annotation(id, "level").and_then(Level::parse))
        .max();
    (best, errs)
}
