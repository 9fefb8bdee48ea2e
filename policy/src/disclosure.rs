//! How much of a field a grant discloses, and why a field is withheld.
//!
//! Invariant: `Disclosure`'s order is how much it reveals (DESIGN.md §3: clear › pseudonym ›
//! masked › generalized), so "the most revealing level among the grants" is `max`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The level at which a grant discloses one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disclosure {
    /// Only a coarser value: a date's year, an address's grid code.
    Generalized,
    /// Some characters replaced by `*` (the field's mask rule).
    Masked,
    /// A stable per-department token (HMAC of the value), unlinkable across departments.
    Pseudonym,
    /// The value itself.
    Clear,
}

impl Disclosure {
    pub const ALL: [Disclosure; 4] = [
        Disclosure::Generalized,
        Disclosure::Masked,
        Disclosure::Pseudonym,
        Disclosure::Clear,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Disclosure::Generalized => "generalized",
            Disclosure::Masked => "masked",
            Disclosure::Pseudonym => "pseudonym",
            Disclosure::Clear => "clear",
        }
    }
}

impl fmt::Display for Disclosure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Disclosure {
    type Err = ();

    fn from_str(s: &str) -> Result<Disclosure, ()> {
        Disclosure::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or(())
    }
}

/// Why a grant does not reach a record (DESIGN.md §3 rule 4), in the order the rule checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unreached {
    /// The record's grid is outside the grant's scope.
    OutOfScope,
    /// The grant's row filter does not hold on the record.
    RowFilter,
    /// Not case-bound, and the record's grid is outside the department's jurisdiction.
    OutsideJurisdiction,
    /// Case-bound, and the request names no case.
    CaseRequired,
    /// Case-bound, and the named case is unknown.
    UnknownCase,
    /// Case-bound, and the named case is closed.
    CaseClosed,
    /// Case-bound, and the named case is not currently assigned to the department.
    CaseNotAssigned,
    /// Case-bound, and the record is not linked to the named case.
    NotLinkedToCase,
}

impl Unreached {
    pub fn as_str(self) -> &'static str {
        match self {
            Unreached::OutOfScope => "out_of_scope",
            Unreached::RowFilter => "row_filter",
            Unreached::OutsideJurisdiction => "outside_jurisdiction",
            Unreached::CaseRequired => "case_required",
            Unreached::UnknownCase => "unknown_case",
            Unreached::CaseClosed => "case_closed",
            Unreached::CaseNotAssigned => "case_not_assigned",
            Unreached::NotLinkedToCase => "not_linked_to_case",
        }
    }
}

/// Why a field is not disclosed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Withheld {
    /// Share class `none`: never disclosed, whatever a grant says.
    NeverShared,
    /// Some grant reaches the record, but none names this field.
    NotGranted,
    /// No candidate grant reaches the record.
    RecordNotReached,
    /// No approved, valid grant for this department, purpose and category.
    NoGrant,
}

impl Withheld {
    pub fn as_str(self) -> &'static str {
        match self {
            Withheld::NeverShared => "never_shared",
            Withheld::NotGranted => "not_granted",
            Withheld::RecordNotReached => "record_not_reached",
            Withheld::NoGrant => "no_grant",
        }
    }
}

/// The decision for one field of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldPlan {
    /// Disclosed at `level`, because of the candidate grant at position `grant` (the first
    /// grant giving that level, in candidate order).
    Disclosed {
        level: Disclosure,
        grant: u32,
    },
    Withheld(Withheld),
}

impl FieldPlan {
    pub fn level(&self) -> Option<Disclosure> {
        match self {
            FieldPlan::Disclosed { level, .. } => Some(*level),
            FieldPlan::Withheld(_) => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_order_is_how_much_is_revealed() {
        assert!(Disclosure::Clear > Disclosure::Pseudonym);
        assert!(Disclosure::Pseudonym > Disclosure::Masked);
        assert!(Disclosure::Masked > Disclosure::Generalized);
        for d in Disclosure::ALL {
            assert_eq!(d.as_str().parse::<Disclosure>(), Ok(d));
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
        assert!("CLEAR".parse::<Disclosure>().is_err());
    }
}
