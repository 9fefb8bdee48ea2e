//! Audit streams: the coarse kind of every ledger entry, which the audit explorer filters by
//! (`ledger_entries.stream`). Invariant: the stream is a function of the action's family (its
//! text before the first `.`) and of nothing else, so a refusal summary (`<action>.refusals`) is
//! in its action's stream, and migration 0017 computes the same mapping in SQL for the entries
//! written before it (a test in `tests/api/audit_search.rs` checks that the two agree for every
//! action in `WRITTEN_ACTIONS`).

/// What kind of event an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Data leaving the hub or a decision about it: pulls, lookups, statistics answers,
    /// explanations (`data.*`, `decision.*`).
    Disclosure,
    /// Records written, read, erased or imported on the grid side (`record.*`).
    Records,
    /// Administration and oversight: identity, roles, grids, the catalog, purposes,
    /// departments, clients, grants, cases, keys, lock-out recovery, audit reads.
    Admin,
    /// Authentication and sessions: logins, tokens, console sessions (`auth.*`, `console.*`).
    Login,
    /// The ledger about itself (`ledger.*`), and any family this table does not know.
    System,
}

impl Stream {
    pub const ALL: [Stream; 5] = [
        Stream::Disclosure,
        Stream::Records,
        Stream::Admin,
        Stream::Login,
        Stream::System,
    ];

    /// The stream of `action`. The one mapping of the hub: the ledger stores its answer with
    /// each entry, and migration 0017's `CASE` repeats it for older entries.
    pub fn of(action: &str) -> Stream {
        let family = action.split_once('.').map_or(action, |(family, _)| family);
        match family {
            "data" | "decision" => Stream::Disclosure,
            "record" => Stream::Records,
            "admin" | "audit" | "case" | "catalog" | "client" | "department" | "grant" | "grid"
            | "keys" | "purpose" | "role" | "user" => Stream::Admin,
            "auth" | "console" => Stream::Login,
            _ => Stream::System,
        }
    }

    /// The stored and API form: `disclosure`, `records`, `admin`, `login`, `system`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Disclosure => "disclosure",
            Stream::Records => "records",
            Stream::Admin => "admin",
            Stream::Login => "login",
            Stream::System => "system",
        }
    }

    pub fn parse(text: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Every action the hub writes (found with `grep -rn '"[a-z_]*\.[a-z_.]*"' hub/src` plus the
/// ones built at run time: `grant.<transition>`, `case.<step>` and the `<action>.refusals`
/// summaries of the actions anonymous callers can be refused). Tests use it to check the
/// mapping and the migration; a new action of a known family needs no change here to be
/// classified, a new family does (it would fall into `System`).
pub const WRITTEN_ACTIONS: &[&str] = &[
    "admin.recover",
    "audit.activity",
    "audit.anomalies",
    "audit.anomaly_acknowledge",
    "audit.anomaly_resolve",
    "audit.entries",
    "audit.export",
    "audit.subject",
    "audit.subject_report",
    "auth.client_token",
    "auth.client_token.refusals",
    "auth.console_login",
    "auth.console_logout",
    "auth.login",
    "auth.login.refusals",
    "auth.token",
    "auth.token.refusals",
    "case.assign",
    "case.close",
    "case.read",
    "case.reply",
    "case.report",
    "catalog.audit",
    "catalog.put",
    "catalog.read",
    "client.create",
    "client.read",
    "client.revoke",
    "client.roles",
    "console.csrf",
    "data.lookup",
    "data.read",
    "data.statistics",
    "decision.explain",
    "department.create",
    "department.read",
    "grant.approve",
    "grant.consent",
    "grant.decline",
    "grant.expire",
    "grant.read",
    "grant.reject",
    "grant.request",
    "grant.resume",
    "grant.revoke",
    "grant.suspend",
    "grid.create",
    "grid.read",
    "keys.create",
    "keys.rotate",
    "ledger.storage_recovered",
    "metrics.read",
    "metrics.read.refusals",
    "purpose.create",
    "purpose.read",
    "record.access",
    "record.create",
    "record.erase",
    "record.expire",
    "record.import",
    "record.read",
    "record.update",
    "role.read",
    "role.update",
    "user.create",
    "user.roles",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected stream of every action the hub writes, written out by hand.
    #[test]
    fn every_written_action_is_in_its_stream() {
        use Stream::*;
        let expected: &[(&str, Stream)] = &[
            ("admin.recover", Admin),
            ("audit.activity", Admin),
            ("audit.anomalies", Admin),
            ("audit.anomaly_acknowledge", Admin),
            ("audit.anomaly_resolve", Admin),
            ("audit.entries", Admin),
            ("audit.export", Admin),
            ("audit.subject", Admin),
            ("audit.subject_report", Admin),
            ("auth.client_token", Login),
            ("auth.client_token.refusals", Login),
            ("auth.console_login", Login),
            ("auth.console_logout", Login),
            ("auth.login", Login),
            ("auth.login.refusals", Login),
            ("auth.token", Login),
            ("auth.token.refusals", Login),
            ("case.assign", Admin),
            ("case.close", Admin),
            ("case.read", Admin),
            ("case.reply", Admin),
            ("case.report", Admin),
            ("catalog.audit", Admin),
            ("catalog.put", Admin),
            ("catalog.read", Admin),
            ("client.create", Admin),
            ("client.read", Admin),
            ("client.revoke", Admin),
            ("client.roles", Admin),
            ("console.csrf", Login),
            ("data.lookup", Disclosure),
            ("data.read", Disclosure),
            ("data.statistics", Disclosure),
            ("decision.explain", Disclosure),
            ("department.create", Admin),
            ("department.read", Admin),
            ("grant.approve", Admin),
            ("grant.consent", Admin),
            ("grant.decline", Admin),
            ("grant.expire", Admin),
            ("grant.read", Admin),
            ("grant.reject", Admin),
            ("grant.request", Admin),
            ("grant.resume", Admin),
            ("grant.revoke", Admin),
            ("grant.suspend", Admin),
            ("grid.create", Admin),
            ("grid.read", Admin),
            ("keys.create", Admin),
            ("keys.rotate", Admin),
            ("ledger.storage_recovered", System),
            ("metrics.read", System),
            ("metrics.read.refusals", System),
            ("purpose.create", Admin),
            ("purpose.read", Admin),
            ("record.access", Records),
            ("record.create", Records),
            ("record.erase", Records),
            ("record.expire", Records),
            ("record.import", Records),
            ("record.read", Records),
            ("record.update", Records),
            ("role.read", Admin),
            ("role.update", Admin),
            ("user.create", Admin),
            ("user.roles", Admin),
        ];
        let listed: Vec<&str> = expected.iter().map(|(a, _)| *a).collect();
        assert_eq!(
            listed, WRITTEN_ACTIONS,
            "the table covers every written action"
        );
        for (action, stream) in expected {
            assert_eq!(Stream::of(action), *stream, "{action}");
        }
    }

    #[test]
    fn grant_transitions_and_refusal_summaries_follow_their_family() {
        for action in [
            policy::GrantAction::Approve,
            policy::GrantAction::Reject,
            policy::GrantAction::Suspend,
            policy::GrantAction::Resume,
            policy::GrantAction::Revoke,
            policy::GrantAction::Expire,
        ] {
            let written = format!("grant.{}", action.as_str());
            assert!(WRITTEN_ACTIONS.contains(&written.as_str()), "{written}");
            assert_eq!(Stream::of(&written), Stream::Admin);
        }
        for action in WRITTEN_ACTIONS {
            let summary = format!("{action}{}", crate::auth::refusals::SUMMARY_SUFFIX);
            assert_eq!(Stream::of(&summary), Stream::of(action), "{summary}");
        }
        // Unknown families, and an action without a dot, are the ledger's own kind.
        assert_eq!(Stream::of("witness.cosign"), Stream::System);
        assert_eq!(Stream::of("data"), Stream::Disclosure);
        assert_eq!(Stream::of(""), Stream::System);
    }

    #[test]
    fn streams_parse_from_their_names_only() {
        for s in Stream::ALL {
            assert_eq!(Stream::parse(s.as_str()), Some(s));
        }
        assert_eq!(Stream::parse("Admin"), None);
        assert_eq!(Stream::parse("logins"), None);
    }
}
