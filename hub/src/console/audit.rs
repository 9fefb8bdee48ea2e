//! The audit explorer: the ledger filtered and paged, one entry with what was decided and why
//! and its inclusion proof checked in the browser (`assets/console.js`), and exports that
//! follow the active filter exactly. Reads go through the same permission check as
//! `GET /v1/audit/entries` (`audit:read`, refusals audited).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use super::i18n::{Lang, Text};
use super::layout::{ConsoleError, InLang, Shell, ok};
use super::session::ConsoleUser;
use crate::error::Error;
use crate::ledger::bundle::MAX_BUNDLE_ENTRIES;
use crate::ledger::entry::CanonicalEntry;
use crate::oversight::{AuditExport, AuditParams, AuditQuery};
use crate::state::AppState;
use crate::time::{cst_minutes, parse_cst_local, parse_rfc3339, rfc3339};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/audit", get(explorer))
        .route("/console/audit/export", get(export))
        .route("/console/audit/bundle", get(bundle))
        .route("/console/audit/entries/{index}", get(entry))
}

/// Entries on one explorer page.
const PAGE: i64 = 50;
/// Entries one export reads per query.
const EXPORT_CHUNK: i64 = 1000;

/// The explorer's filter as the form sends it: every field optional, empty means "any".
/// Times are Beijing time to the minute (`datetime-local`).
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct ExplorerQuery {
    since: String,
    until: String,
    department: String,
    actor: String,
    action: String,
    decision: String,
    category: String,
    field: String,
    purpose: String,
    grant: String,
    case: String,
    request_id: String,
    stream: String,
    /// Next (older) page: entries below this index.
    before: Option<i64>,
}

fn some(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

/// A form time (Beijing `datetime-local`, or RFC 3339) as the API's RFC 3339.
fn form_time(field: &'static str, v: &str) -> Result<Option<String>, Error> {
    match some(v) {
        None => Ok(None),
        Some(v) => parse_cst_local(v)
            .or_else(|| parse_rfc3339(v))
            .map(|ms| Some(rfc3339(ms)))
            .ok_or_else(|| Error::validation(field, "not a time")),
    }
}

impl ExplorerQuery {
    /// The search, newest first, as `GET /v1/audit/entries` would parse it; a bad value is a
    /// 422 naming the field.
    fn search(&self, limit: i64, newest_first: bool) -> Result<AuditQuery, Error> {
        let since = form_time("since", &self.since)?;
        let until = form_time("until", &self.until)?;
        AuditQuery::parse(&AuditParams {
            limit: Some(limit),
            order: newest_first.then_some("desc"),
            before: if newest_first { self.before } else { None },
            since: since.as_deref(),
            until: until.as_deref(),
            department: some(&self.department),
            actor: some(&self.actor),
            action: some(&self.action),
            decision: some(&self.decision),
            category: some(&self.category),
            field: some(&self.field),
            purpose: some(&self.purpose),
            grant: some(&self.grant),
            case: some(&self.case),
            request_id: some(&self.request_id),
            stream: some(&self.stream),
            ..AuditParams::default()
        })
    }

    /// The query string of this filter (for links that keep it), without the cursor.
    fn query_string(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("since", &self.since),
            ("until", &self.until),
            ("department", &self.department),
            ("actor", &self.actor),
            ("action", &self.action),
            ("decision", &self.decision),
            ("category", &self.category),
            ("field", &self.field),
            ("purpose", &self.purpose),
            ("grant", &self.grant),
            ("case", &self.case),
            ("request_id", &self.request_id),
            ("stream", &self.stream),
        ] {
            if !v.trim().is_empty() {
                s.append_pair(k, v.trim());
            }
        }
        s.finish()
    }
}

/// The streams the explorer keeps apart (`crate::ledger::stream`).
const STREAMS: [(&str, Text); 5] = [
    ("disclosure", Text::StreamDisclosure),
    ("records", Text::StreamRecords),
    ("admin", Text::StreamAdmin),
    ("login", Text::StreamLogin),
    ("system", Text::StreamSystem),
];

fn filter_form(lang: Lang, q: &ExplorerQuery) -> Markup {
    let text = |id: &str, label: Text, value: &str| {
        html! {
            div {
                label for=(id) { (lang.t(label)) }
                input id=(id) name=(id) type="text" value=(value);
            }
        }
    };
    html! {
        form.filters method="get" action="/console/audit" aria-label=(lang.t(Text::Filters)) {
            div {
                label for="since" { (lang.t(Text::Since)) }
                input #since name="since" type="datetime-local" value=(q.since);
            }
            div {
                label for="until" { (lang.t(Text::Until)) }
                input #until name="until" type="datetime-local" value=(q.until);
            }
            div {
                label for="stream" { (lang.t(Text::Stream)) }
                select #stream name="stream" {
                    option value="" selected[q.stream.is_empty()] { (lang.t(Text::Any)) }
                    @for (value, label) in STREAMS {
                        option value=(value) selected[q.stream == value] { (lang.t(label)) }
                    }
                }
            }
            (text("department", Text::Department, &q.department))
            (text("actor", Text::Actor, &q.actor))
            (text("action", Text::Action, &q.action))
            div {
                label for="decision" { (lang.t(Text::Decision)) }
                select #decision name="decision" {
                    option value="" selected[q.decision.is_empty()] { (lang.t(Text::Any)) }
                    option value="allow" selected[q.decision == "allow"] { (lang.t(Text::Allow)) }
                    option value="deny" selected[q.decision == "deny"] { (lang.t(Text::Deny)) }
                }
            }
            (text("category", Text::Category, &q.category))
            (text("field", Text::Field, &q.field))
            (text("purpose", Text::Purpose, &q.purpose))
            (text("grant", Text::Grant, &q.grant))
            (text("case", Text::Case, &q.case))
            (text("request_id", Text::RequestId, &q.request_id))
            div.actions {
                button type="submit" { (lang.t(Text::Apply)) }
                a href="/console/audit" { (lang.t(Text::Reset)) }
            }
        }
    }
}

async fn explorer(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<ExplorerQuery>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let query = q.search(PAGE, true).in_lang(lang)?;
    let page = state
        .oversight
        .search_entries(&user.principal, &query)
        .await
        .in_lang(lang)?;
    let next = page.next;
    let entries: Vec<(u64, Option<CanonicalEntry>)> = page
        .entries
        .into_iter()
        .map(|e| (e.index, serde_json::from_str(&e.canonical).ok()))
        .collect();
    let qs = q.query_string();
    let shell = Shell::of(&state, &user, "/console/audit").await;
    let body = html! {
        (filter_form(lang, &q))
        p.exports {
            a href={ "/console/audit/export?format=csv&" (qs) } download { (lang.t(Text::ExportCsv)) }
            " · "
            a href={ "/console/audit/export?format=jsonl&" (qs) } download { (lang.t(Text::ExportJsonl)) }
            " · "
            a href={ "/console/audit/bundle?" (qs) } download { (lang.t(Text::EvidenceBundle)) }
        }
        @if entries.is_empty() {
            p { (lang.t(Text::NoEntries)) }
        } @else {
            table.entries {
                caption { (lang.t(Text::Audit)) }
                thead {
                    tr {
                        th scope="col" { (lang.t(Text::Index)) }
                        th scope="col" { (lang.t(Text::Time)) }
                        th scope="col" { (lang.t(Text::Action)) }
                        th scope="col" { (lang.t(Text::Actor)) }
                        th scope="col" { (lang.t(Text::Department)) }
                        th scope="col" { (lang.t(Text::Decision)) }
                        th scope="col" { (lang.t(Text::Category)) }
                        th scope="col" { (lang.t(Text::Records)) }
                    }
                }
                tbody {
                    @for (index, entry) in &entries {
                        tr data-index=(index) {
                            td { a href={ "/console/audit/entries/" (index) } { (index) } }
                            @if let Some(e) = entry {
                                td { (entry_time(&e.time)) }
                                td { code { (e.action) } }
                                td { (actor_name(e)) }
                                td { (e.actor.department.as_deref().unwrap_or("")) }
                                td { (decision(lang, e)) }
                                td { (e.category.as_deref().unwrap_or("")) }
                                td { (e.records.len()) }
                            } @else {
                                td colspan="7" { "?" }
                            }
                        }
                    }
                }
            }
        }
        @if page.scan_limited {
            p.notice role="status" { (lang.t(Text::ScanLimited)) }
        }
        nav.pager aria-label=(lang.t(Text::Pages)) {
            @if q.before.is_some() {
                a href={ "/console/audit?" (qs) } { "← " (lang.t(Text::Newest)) }
            }
            @if let Some(next) = next {
                a rel="next" href={ "/console/audit?" (qs) "&before=" (next) } { (lang.t(Text::Older)) " →" }
            }
        }
    };
    Ok(ok(shell.page(lang.t(Text::Audit), body)))
}

fn entry_time(rfc3339: &str) -> String {
    parse_rfc3339(rfc3339).map(cst_minutes).unwrap_or_default()
}

fn actor_name(e: &CanonicalEntry) -> String {
    e.actor
        .client
        .clone()
        .or_else(|| e.actor.user.clone())
        .unwrap_or_else(|| "anonymous".to_owned())
}

fn decision_word(e: &CanonicalEntry) -> &'static str {
    match e.decision {
        crate::ledger::Decision::Allow => "allow",
        crate::ledger::Decision::Deny => "deny",
    }
}

fn decision(lang: Lang, e: &CanonicalEntry) -> Markup {
    match e.decision {
        crate::ledger::Decision::Allow => html! { span.allow { (lang.t(Text::Allow)) } },
        crate::ledger::Decision::Deny => html! { span.deny { (lang.t(Text::Deny)) } },
    }
}

/// For an entry of a department under a case: the assignment that made the department
/// responsible at the entry's time (the latest round assigned by then, if it names the
/// department), read with `Cases::assignments` (the case's own read check; no text opened).
/// `None` when the entry names no case or no department; `Err` carries the refusal's code.
async fn responsibility_then(
    state: &AppState,
    user: &ConsoleUser,
    e: &CanonicalEntry,
) -> Option<Result<Option<crate::storage::AssignmentRow>, &'static str>> {
    let (Some(case), Some(department)) = (&e.case, &e.actor.department) else {
        return None;
    };
    let at = parse_rfc3339(&e.time).unwrap_or(i64::MAX);
    Some(match state.cases.assignments(&user.principal, case).await {
        Ok(rows) => {
            let round = rows
                .iter()
                .filter(|a| a.assigned_at <= at)
                .map(|a| a.round)
                .max();
            Ok(rows
                .into_iter()
                .find(|a| Some(a.round) == round && a.department == *department))
        }
        Err(error) => Err(error.status_and_code().1),
    })
}

/// One entry: what was decided and why, its records and fields (ids, names and levels only),
/// its canonical text, and its inclusion proof checked in the browser.
async fn entry(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(index): Path<i64>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let query = AuditQuery::parse(&AuditParams {
        start: Some(index),
        end: Some(index.saturating_add(1)),
        limit: Some(1),
        ..AuditParams::default()
    })
    .in_lang(lang)?;
    let page = state
        .oversight
        .search_entries(&user.principal, &query)
        .await
        .in_lang(lang)?;
    let Some(found) = page.entries.into_iter().next() else {
        return Err(ConsoleError::new(Error::NotFound("entry"), lang));
    };
    let canonical = found.canonical;
    let e: CanonicalEntry = serde_json::from_str(&canonical)
        .map_err(|_| Error::Integrity("a ledger entry is not a canonical entry".to_owned()))
        .in_lang(lang)?;
    let responsibility = responsibility_then(&state, &user, &e).await;
    let shell = Shell::of(&state, &user, "/console/audit").await;
    let title = format!("{} #{index}", lang.t(Text::Entry));
    let body = html! {
        section aria-labelledby="decided" {
            h2 #decided { (lang.t(Text::WhatWasDecided)) }
            dl.facts {
                dt { (lang.t(Text::Time)) } dd { (entry_time(&e.time)) " (" (e.time) ")" }
                dt { (lang.t(Text::Action)) } dd { code { (e.action) } }
                dt { (lang.t(Text::Actor)) } dd { (actor_name(&e)) }
                @if let Some(d) = &e.actor.department {
                    dt { (lang.t(Text::Department)) } dd { (d) }
                }
                dt { (lang.t(Text::Decision)) } dd { (decision(lang, &e)) }
                @if let Some(c) = &e.category { dt { (lang.t(Text::Category)) } dd { (c) } }
                @if let Some(p) = &e.purpose { dt { (lang.t(Text::Purpose)) } dd { (p) } }
                @if let Some(c) = &e.case { dt { (lang.t(Text::Case)) } dd { code { (c) } } }
                dt { (lang.t(Text::Grant)) }
                dd {
                    @if e.grants.is_empty() {
                        @if e.decision == crate::ledger::Decision::Deny {
                            span.deny { (lang.t(Text::NoGrantDenied)) }
                        } @else { "—" }
                    }
                    @for g in &e.grants { a href={ "/console/grants/" (g) } { code { (g) } } " " }
                }
                @if let Some(r) = &e.reason { dt { (lang.t(Text::Reason)) } dd { (r) } }
                dt { (lang.t(Text::RequestId)) } dd { code { (e.request_id) } }
            }
        }
        @if let Some(then) = &responsibility {
            section aria-labelledby="responsibility" {
                h2 #responsibility { (lang.t(Text::ResponsibilityThen)) }
                @match then {
                    Ok(Some(a)) => {
                        dl.facts data-round=(a.round) {
                            dt { (lang.t(Text::AssignmentRound)) } dd { (a.round) }
                            dt { (lang.t(Text::AssignedAt)) } dd { (cst_minutes(a.assigned_at)) }
                            dt { (lang.t(Text::Deadline)) } dd { (cst_minutes(a.deadline)) }
                            @if let Some(replied) = a.replied_at {
                                dt { (lang.t(Text::RepliedAt)) } dd { (cst_minutes(replied)) }
                            }
                            dt { (lang.t(Text::AssignmentNow)) }
                            dd { (lang.t(if a.current { Text::StillAssigned } else { Text::NoLongerAssigned })) }
                        }
                    }
                    Ok(None) => p.deny { (lang.t(Text::NotAssignedThen)) },
                    Err(code) => p { (lang.t(Text::ResponsibilityUnavailable)) " (" code { (code) } ")" },
                }
            }
        }
        @if !e.records.is_empty() {
            table.fields {
                caption { (lang.t(Text::FieldsDisclosed)) }
                thead { tr {
                    th scope="col" { (lang.t(Text::Record)) }
                    th scope="col" { (lang.t(Text::Field)) " → " (lang.t(Text::Level)) }
                } }
                tbody {
                    @for r in e.records.iter().take(200) {
                        tr {
                            td { code { (r.id) } }
                            td { @for (f, level) in r.fields.iter() { code { (f) } " → " (level) "; " } }
                        }
                    }
                }
            }
        }
        section data-proof data-index=(index) data-canonical="canonical"
            data-ok=(lang.t(Text::ProofVerified)) data-fail=(lang.t(Text::ProofFailed))
            data-busy=(lang.t(Text::Verifying)) data-key-changed=(lang.t(Text::KeyChanged))
            aria-labelledby="proof-title" {
            h2 #proof-title { (lang.t(Text::InclusionProof)) }
            p { (lang.t(Text::ProofExplained)) }
            p { output data-proof-status aria-live="polite" {} }
            p { small data-checkpoint {} }
            button type="button" { (lang.t(Text::VerifyInBrowser)) }
        }
        h2 { (lang.t(Text::CanonicalText)) }
        pre.canonical #canonical { (canonical) }
    };
    Ok(ok(shell.page(&title, body)))
}

#[derive(Deserialize)]
struct ExportFormat {
    format: String,
}

/// Every entry the filter matches, as CSV (one row per entry: index, time, action, actor,
/// department, decision, category, purpose, case, grants, records, request id) or JSONL (the
/// canonical texts, exactly as logged). Read in chunks; the answer is built before it leaves,
/// so it is complete or an error.
async fn export(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(format): Query<ExportFormat>,
    Query(q): Query<ExplorerQuery>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let csv = match format.format.as_str() {
        "csv" => true,
        "jsonl" => false,
        _ => {
            return Err(ConsoleError::new(
                Error::validation("format", "not one of: csv, jsonl"),
                lang,
            ));
        }
    };
    let mut export = export_of(&state, &user, &q).await?;
    let mut out = String::new();
    if csv {
        out.push_str(
            "index,time,action,actor,department,decision,category,purpose,case,grants,records,request_id\n",
        );
    }
    while let Some(entries) = export.next_page().await.in_lang(lang)? {
        for found in entries {
            if csv {
                let e: CanonicalEntry = serde_json::from_str(&found.canonical)
                    .map_err(|_| Error::Integrity("a ledger entry is not canonical".to_owned()))
                    .in_lang(lang)?;
                let cells = [
                    found.index.to_string(),
                    e.time.clone(),
                    e.action.clone(),
                    actor_name(&e),
                    e.actor.department.clone().unwrap_or_default(),
                    decision_word(&e).to_owned(),
                    e.category.clone().unwrap_or_default(),
                    e.purpose.clone().unwrap_or_default(),
                    e.case.clone().unwrap_or_default(),
                    e.grants.join(" "),
                    e.records.len().to_string(),
                    e.request_id.clone(),
                ];
                let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            } else {
                out.push_str(&found.canonical);
                out.push('\n');
            }
        }
    }
    let (kind, name) = if csv {
        ("text/csv; charset=utf-8", "gridhub-audit.csv")
    } else {
        ("application/x-ndjson", "gridhub-audit.jsonl")
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        out,
    )
        .into_response())
}

/// Every entry `q` matches, oldest first, as `Oversight::export_entries` hands them out
/// (checked and recorded as `audit.export` before anything is read).
async fn export_of(
    state: &AppState,
    user: &ConsoleUser,
    q: &ExplorerQuery,
) -> Result<AuditExport, ConsoleError> {
    let query = q.search(EXPORT_CHUNK, false).in_lang(user.lang)?;
    state
        .oversight
        .export_entries(&user.principal, &query)
        .await
        .in_lang(user.lang)
}

/// Every entry the filter matches (at most `MAX_BUNDLE_ENTRIES`), each with its inclusion
/// proof, and the signed checkpoint they lead to: `gridhub audit verify --bundle FILE` checks
/// it offline.
async fn bundle(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<ExplorerQuery>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let mut export = export_of(&state, &user, &q).await?;
    let mut rows = Vec::new();
    while let Some(entries) = export.next_page().await.in_lang(lang)? {
        for found in entries {
            rows.push((
                i64::try_from(found.index).unwrap_or(i64::MAX),
                found.canonical,
            ));
        }
        if rows.len() > MAX_BUNDLE_ENTRIES {
            break;
        }
    }
    let bundle = state.ledger.evidence_bundle(rows).await.in_lang(lang)?;
    let body = serde_json::to_string_pretty(&bundle)
        .map_err(|e| Error::Internal(e.to_string()))
        .in_lang(lang)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"gridhub-evidence.json\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// A CSV cell (RFC 4180): quoted when it holds a comma, quote or line break; a leading `=`,
/// `+`, `-` or `@` is prefixed with `'` so a spreadsheet does not run it as a formula.
fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        assert_eq!(csv_cell("data.read"), "data.read");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_cell("=cmd()"), "'=cmd()");
    }
}
