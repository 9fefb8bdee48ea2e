//! Daily quotas charged in the ledger's group commit: a disclosure's entry and its quota use
//! are written in one transaction, so a page is counted if and only if its audit entry is
//! durable (before, a failed append still used up quota), and no separate write transaction
//! is paid per page. The writer reads the batch's current use once, decides each charge in
//! order — all of a disclosure's claims, or none — and increases the use by the accepted sums.

use std::collections::{BTreeMap, HashMap};

use crate::storage::{QuotaCharge, UsageIncrease};

/// Why a charge was refused: the first grant it would take past its quota, and what that
/// grant has left on the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverQuota {
    pub grant: String,
    pub left: i64,
}

/// The (grant, day) keys the charges touch, each once.
pub fn usage_keys<'a>(charges: impl Iterator<Item = &'a QuotaCharge>) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = charges
        .flat_map(|c| c.claims.iter().map(|q| (q.grant.clone(), c.day.clone())))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Decide `charges` in order against the use in `used` (records so far per (grant, day)):
/// each is accepted whole or refused whole. Returns each charge's outcome and the increases the
/// accepted ones add up to.
pub fn decide(
    charges: &[Option<&QuotaCharge>],
    mut used: HashMap<(String, String), i64>,
) -> (Vec<Result<(), OverQuota>>, Vec<UsageIncrease>) {
    let mut increases: BTreeMap<(String, String), UsageIncrease> = BTreeMap::new();
    let outcomes = charges
        .iter()
        .map(|charge| {
            let Some(charge) = charge else {
                return Ok(());
            };
            // Claims of one charge name distinct grants (one per grant the page drew on).
            for claim in &charge.claims {
                let so_far = used
                    .get(&(claim.grant.clone(), charge.day.clone()))
                    .copied()
                    .unwrap_or(0);
                let quota = i64::from(claim.quota);
                if so_far.saturating_add(claim.records) > quota {
                    return Err(OverQuota {
                        grant: claim.grant.clone(),
                        left: (quota - so_far).max(0),
                    });
                }
            }
            for claim in &charge.claims {
                let key = (claim.grant.clone(), charge.day.clone());
                *used.entry(key.clone()).or_default() += claim.records;
                increases
                    .entry(key)
                    .or_insert_with(|| UsageIncrease {
                        grant: claim.grant.clone(),
                        day: charge.day.clone(),
                        records: 0,
                        quota: claim.quota,
                    })
                    .records += claim.records;
            }
            Ok(())
        })
        .collect();
    (outcomes, increases.into_values().collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::storage::QuotaClaim;

    fn charge(day: &str, claims: &[(&str, u32, i64)]) -> QuotaCharge {
        QuotaCharge {
            day: day.to_owned(),
            claims: claims
                .iter()
                .map(|(g, quota, records)| QuotaClaim {
                    grant: (*g).to_owned(),
                    quota: *quota,
                    records: *records,
                })
                .collect(),
        }
    }

    #[test]
    fn charges_are_decided_in_order_whole_or_not_at_all() {
        let day = "2026-11-24";
        let a = charge(day, &[("g1", 100, 60)]);
        let b = charge(day, &[("g1", 100, 30), ("g2", 10, 5)]);
        // Would take g1 to 130: refused, and its g2 claim is not counted either.
        let c = charge(day, &[("g2", 10, 1), ("g1", 100, 40)]);
        let d = charge(day, &[("g2", 10, 4)]);
        let e = charge("2026-11-25", &[("g1", 100, 100)]);
        let used = HashMap::from([(("g2".to_owned(), day.to_owned()), 1)]);
        let charges = [Some(&a), None, Some(&b), Some(&c), Some(&d), Some(&e)];
        assert_eq!(
            usage_keys(charges.iter().flatten().copied()),
            [
                ("g1".to_owned(), "2026-11-24".to_owned()),
                ("g1".to_owned(), "2026-11-25".to_owned()),
                ("g2".to_owned(), "2026-11-24".to_owned()),
            ]
        );
        let (outcomes, increases) = decide(&charges, used);
        assert_eq!(
            outcomes,
            [
                Ok(()),
                Ok(()),
                Ok(()),
                Err(OverQuota {
                    grant: "g1".to_owned(),
                    left: 10
                }),
                Ok(()),
                Ok(()),
            ]
        );
        let sums: Vec<(&str, &str, i64)> = increases
            .iter()
            .map(|u| (u.grant.as_str(), u.day.as_str(), u.records))
            .collect();
        assert_eq!(
            sums,
            [
                ("g1", "2026-11-24", 90),
                ("g1", "2026-11-25", 100),
                ("g2", "2026-11-24", 9)
            ]
        );
        // Exactly at the quota is allowed; one more is not, and nothing is left.
        let full = charge(day, &[("g2", 10, 1)]);
        let used = HashMap::from([(("g2".to_owned(), day.to_owned()), 10)]);
        assert_eq!(
            decide(&[Some(&full)], used).0,
            [Err(OverQuota {
                grant: "g2".to_owned(),
                left: 0
            })]
        );
    }
}
