//! What a change costs our loaded index: approving a new grant, revoking it, and reassigning a
//! case, each timed on its own. Afterwards the index is back where it was (new grants revoked,
//! cases restored), which `main` checks by deciding every request again.

use std::time::Instant;

use policy::GrantStatus;

use crate::data::{self, World};
use crate::ours::{self, Ours};
use crate::report::UpdateRow;

pub fn ours(o: &mut Ours<'_>, w: &World, n: usize) -> Vec<UpdateRow> {
    // New grants: copies of approved reference grants under fresh ids, so they land in lists
    // of the usual length.
    let fresh: Vec<policy::LiveGrant> = w
        .grants
        .iter()
        .zip(&o.grants)
        .filter(|(g, _)| g.approved)
        .map(|(_, live)| live)
        .cycle()
        .take(n)
        .enumerate()
        .map(|(k, live)| {
            let mut copy = live.clone();
            copy.id = format!("new{k}");
            copy
        })
        .collect();
    let before = o.index.grant_count();
    let mut approve = Vec::with_capacity(n);
    for g in &fresh {
        let t = Instant::now();
        o.index
            .upsert_grant(g, GrantStatus::Approved)
            .expect("bench grants name bench categories");
        approve.push(t.elapsed().as_nanos() as u64);
    }
    assert_eq!(o.index.grant_count(), before + n, "every approval counted");
    let mut revoke = Vec::with_capacity(n);
    for g in &fresh {
        let t = Instant::now();
        o.index
            .upsert_grant(g, GrantStatus::Revoked)
            .expect("bench grants name bench categories");
        revoke.push(t.elapsed().as_nanos() as u64);
    }
    assert_eq!(o.index.grant_count(), before, "every revocation counted");

    // Reassignments: open cases spread over the register, each moved to the next department.
    let picked: Vec<&data::Case> = (0..n)
        .map(|k| &w.cases[(k * 7919) % data::N_OPEN_CASES])
        .collect();
    let moved: Vec<policy::Responsibility> = picked
        .iter()
        .map(|c| {
            let mut r = ours::responsibility(w, c);
            let next = (c.assignees[0] as usize + 1) % data::N_DEPTS;
            r.assignees = vec![w.depts[next].name.clone()];
            r
        })
        .collect();
    let mut reassign = Vec::with_capacity(n);
    for r in &moved {
        let t = Instant::now();
        o.index.set_case(r);
        reassign.push(t.elapsed().as_nanos() as u64);
    }
    for c in picked {
        o.index.set_case(&ours::responsibility(w, c));
    }
    vec![
        UpdateRow::new(
            "ours: approve a new grant (`upsert_grant` … Approved)",
            approve,
        ),
        UpdateRow::new("ours: revoke it (`upsert_grant` … Revoked)", revoke),
        UpdateRow::new(
            "ours: reassign one case (`set_case` with a new assignee)",
            reassign,
        ),
    ]
}
