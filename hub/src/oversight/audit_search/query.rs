//! The audit search's query, parsed at the boundary: `AuditParams` is a search as its parameters
//! arrive (the names of `GET /v1/audit/entries`, or a console form), `AuditQuery::parse` makes
//! the typed `AuditQuery` the service takes, or a 422 naming the first parameter that is wrong.

use crate::error::Error;
use crate::ledger::{Decision, Stream};
use crate::time::parse_rfc3339;

/// Most entries one page holds.
pub const MAX_PAGE: u32 = 1000;
/// Entries per page when the caller names no `limit`.
pub const DEFAULT_PAGE: u32 = 100;
/// Most entries one page examines (and the default).
pub const MAX_SCAN_BUDGET: u32 = 50_000;
/// Longest value a text filter takes.
const MAX_FILTER_CHARS: usize = 256;

/// A value a filter compares with exactly. Invariant: at most 256 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exact(String);

impl Exact {
    /// Parameter `name` given as `text`; 422 naming it when longer than 256 characters.
    pub fn parse(name: &str, text: &str) -> Result<Exact, Error> {
        if text.chars().count() > MAX_FILTER_CHARS {
            return Err(Error::validation(name, "at most 256 characters"));
        }
        Ok(Exact(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Entries per page. Invariant: 1–1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    pub fn parse(name: &str, n: i64) -> Result<PageSize, Error> {
        u32::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .map(PageSize)
            .ok_or_else(|| Error::validation(name, "1 to 1000"))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for PageSize {
    fn default() -> PageSize {
        PageSize(DEFAULT_PAGE)
    }
}

/// Entries one page may examine. Invariant: 1–50 000 (`MAX_SCAN_BUDGET`, the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanBudget(u32);

impl ScanBudget {
    /// `n` entries, brought into 1–50 000.
    pub fn new(n: u32) -> ScanBudget {
        ScanBudget(n.clamp(1, MAX_SCAN_BUDGET))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for ScanBudget {
    fn default() -> ScanBudget {
        ScanBudget(MAX_SCAN_BUDGET)
    }
}

/// Which way a search pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first, from `AuditQuery::start`; the next page's `start` is `AuditPage::next`.
    #[default]
    Ascending,
    /// Newest first, below `before` (default: the end of the range); the next page's `before`
    /// is `AuditPage::next`.
    Descending { before: Option<u64> },
}

/// What an entry must be to match; `None` is "any". All given filters must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Entries dated at or after this (Unix ms).
    pub since_ms: Option<i64>,
    /// Entries dated before this (Unix ms).
    pub until_ms: Option<i64>,
    /// The actor's department.
    pub department: Option<Exact>,
    /// The client id, or the user id of an entry without a client.
    pub actor: Option<Exact>,
    /// The action, exactly (`data.read`, `auth.token.refusals`).
    pub action: Option<Exact>,
    pub decision: Option<Decision>,
    pub category: Option<Exact>,
    /// A field name in the field levels of any record of the entry.
    pub field: Option<Exact>,
    pub purpose: Option<Exact>,
    /// A grant id among the entry's `grants`.
    pub grant: Option<Exact>,
    pub case: Option<Exact>,
    pub request_id: Option<Exact>,
    pub stream: Option<Stream>,
}

/// One search: a page of the entries of index range `start..end` that match `filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// The first index of the range (and, oldest first, where this page starts).
    pub start: u64,
    /// One past the last index of the range (default: the ledger's size when searched).
    pub end: Option<u64>,
    pub order: Order,
    pub filter: AuditFilter,
    pub limit: PageSize,
    pub budget: ScanBudget,
}

impl Default for AuditQuery {
    /// Every entry, oldest first, 100 per page.
    fn default() -> AuditQuery {
        AuditQuery {
            start: 0,
            end: None,
            order: Order::Ascending,
            filter: AuditFilter::default(),
            limit: PageSize::default(),
            budget: ScanBudget::default(),
        }
    }
}

/// A search as its parameters arrive (the names of `GET /v1/audit/entries`), before parsing.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditParams<'a> {
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub limit: Option<i64>,
    /// `asc` (default) or `desc`.
    pub order: Option<&'a str>,
    pub before: Option<i64>,
    /// RFC 3339.
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub department: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub action: Option<&'a str>,
    /// `allow` or `deny`.
    pub decision: Option<&'a str>,
    pub category: Option<&'a str>,
    pub field: Option<&'a str>,
    pub purpose: Option<&'a str>,
    pub grant: Option<&'a str>,
    pub case: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// `disclosure`, `records`, `admin`, `login` or `system`.
    pub stream: Option<&'a str>,
}

fn index(name: &str, value: Option<i64>) -> Result<Option<u64>, Error> {
    value
        .map(|v| u64::try_from(v).map_err(|_| Error::validation(name, "a ledger index: 0 or more")))
        .transpose()
}

fn exact(name: &str, value: Option<&str>) -> Result<Option<Exact>, Error> {
    value.map(|v| Exact::parse(name, v)).transpose()
}

fn instant(name: &str, value: Option<&str>) -> Result<Option<i64>, Error> {
    value
        .map(|v| parse_rfc3339(v).ok_or_else(|| Error::validation(name, "not an RFC 3339 time")))
        .transpose()
}

impl AuditQuery {
    /// Parse the parameters of a search; 422 naming the first one that is wrong.
    pub fn parse(p: &AuditParams<'_>) -> Result<AuditQuery, Error> {
        let before = index("before", p.before)?;
        let order = match (p.order, before) {
            (None | Some("asc"), None) => Order::Ascending,
            (None | Some("asc"), Some(_)) => {
                return Err(Error::validation("before", "only with order=desc"));
            }
            (Some("desc"), before) => Order::Descending { before },
            (Some(_), _) => return Err(Error::validation("order", "not one of: asc, desc")),
        };
        let decision = match p.decision {
            None => None,
            Some("allow") => Some(Decision::Allow),
            Some("deny") => Some(Decision::Deny),
            Some(_) => return Err(Error::validation("decision", "not one of: allow, deny")),
        };
        let stream = p
            .stream
            .map(|s| {
                Stream::parse(s).ok_or_else(|| {
                    Error::validation(
                        "stream",
                        "not one of: disclosure, records, admin, login, system",
                    )
                })
            })
            .transpose()?;
        Ok(AuditQuery {
            start: index("start", p.start)?.unwrap_or(0),
            end: index("end", p.end)?,
            order,
            filter: AuditFilter {
                since_ms: instant("since", p.since)?,
                until_ms: instant("until", p.until)?,
                department: exact("department", p.department)?,
                actor: exact("actor", p.actor)?,
                action: exact("action", p.action)?,
                decision,
                category: exact("category", p.category)?,
                field: exact("field", p.field)?,
                purpose: exact("purpose", p.purpose)?,
                grant: exact("grant", p.grant)?,
                case: exact("case", p.case)?,
                request_id: exact("request_id", p.request_id)?,
                stream,
            },
            limit: p
                .limit
                .map(|n| PageSize::parse("limit", n))
                .transpose()?
                .unwrap_or_default(),
            budget: ScanBudget::default(),
        })
    }

    /// The same search, from where a page said the next one starts (`AuditPage::next`).
    pub fn continued(&self, next: u64) -> AuditQuery {
        let mut query = self.clone();
        match &mut query.order {
            Order::Ascending => query.start = next,
            Order::Descending { before } => *before = Some(next),
        }
        query
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parsed(p: AuditParams<'_>) -> Result<AuditQuery, String> {
        AuditQuery::parse(&p).map_err(|e| match e {
            Error::Validation(problems) => problems
                .iter()
                .map(|p| p.field.clone())
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        })
    }

    #[test]
    fn every_bad_parameter_is_named() {
        let cases: Vec<(AuditParams<'_>, &str)> = vec![
            (
                AuditParams {
                    start: Some(-1),
                    ..Default::default()
                },
                "start",
            ),
            (
                AuditParams {
                    end: Some(-5),
                    ..Default::default()
                },
                "end",
            ),
            (
                AuditParams {
                    limit: Some(0),
                    ..Default::default()
                },
                "limit",
            ),
            (
                AuditParams {
                    limit: Some(1001),
                    ..Default::default()
                },
                "limit",
            ),
            (
                AuditParams {
                    order: Some("newest"),
                    ..Default::default()
                },
                "order",
            ),
            (
                AuditParams {
                    before: Some(3),
                    ..Default::default()
                },
                "before",
            ),
            (
                AuditParams {
                    order: Some("desc"),
                    before: Some(-1),
                    ..Default::default()
                },
                "before",
            ),
            (
                AuditParams {
                    decision: Some("maybe"),
                    ..Default::default()
                },
                "decision",
            ),
            (
                AuditParams {
                    stream: Some("logins"),
                    ..Default::default()
                },
                "stream",
            ),
            (
                AuditParams {
                    since: Some("yesterday"),
                    ..Default::default()
                },
                "since",
            ),
            (
                AuditParams {
                    until: Some("2026-13-01T00:00:00Z"),
                    ..Default::default()
                },
                "until",
            ),
        ];
        for (params, name) in cases {
            assert_eq!(parsed(params).unwrap_err(), name, "{params:?}");
        }
        let long = "x".repeat(257);
        let p = AuditParams {
            grant: Some(&long),
            ..Default::default()
        };
        assert_eq!(parsed(p).unwrap_err(), "grant");
    }

    #[test]
    fn a_query_parses_into_typed_filters_and_continues_from_next() {
        let q = parsed(AuditParams {
            order: Some("desc"),
            before: Some(900),
            limit: Some(50),
            stream: Some("disclosure"),
            decision: Some("deny"),
            since: Some("2026-12-06T00:00:00+08:00"),
            department: Some("civil-affairs"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.order, Order::Descending { before: Some(900) });
        assert_eq!(q.limit.get(), 50);
        assert_eq!(q.filter.stream, Some(Stream::Disclosure));
        assert_eq!(q.filter.decision, Some(Decision::Deny));
        assert_eq!(q.filter.since_ms, Some(1_796_486_400_000));
        assert_eq!(
            q.continued(400).order,
            Order::Descending { before: Some(400) }
        );
        let asc = parsed(AuditParams::default()).unwrap();
        assert_eq!(asc, AuditQuery::default());
        assert_eq!(asc.continued(7).start, 7);
    }
}
