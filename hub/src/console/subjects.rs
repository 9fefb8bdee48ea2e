//! The subject access report (PIPL art. 45) for one record: every disclosure that touched it
//! and the records of the same person in other categories, with the departments that received
//! something. Built by `Oversight::subject_report`, the method behind
//! `GET /v1/audit/subjects/{id}/report` (`audit:read`, audited); disclosures of confidential
//! cases still open are held back and counted, as there. Printable (the print stylesheet drops
//! navigation and forms). Record ids, field names and levels only: never a value.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use super::i18n::{Lang, Text};
use super::layout::{ConsoleError, InLang, Shell, ok};
use super::session::ConsoleUser;
use crate::oversight::DisclosureLine;
use crate::state::AppState;
use crate::time::{cst_minutes, parse_rfc3339};

pub fn router() -> Router<AppState> {
    Router::new().route("/console/subjects", get(report))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SubjectQuery {
    record: String,
}

fn lines(lang: Lang, lines: &[DisclosureLine]) -> Markup {
    html! {
        table.disclosures {
            thead { tr {
                th scope="col" { (lang.t(Text::Time)) }
                th scope="col" { (lang.t(Text::Department)) }
                th scope="col" { (lang.t(Text::Actor)) }
                th scope="col" { (lang.t(Text::Purpose)) }
                th scope="col" { (lang.t(Text::FieldsDisclosed)) }
                th scope="col" { (lang.t(Text::Index)) }
            } }
            tbody {
                @for l in lines {
                    tr {
                        td { (parse_rfc3339(&l.time).map(cst_minutes).unwrap_or_default()) }
                        td { (l.department.as_deref().unwrap_or("")) }
                        td {
                            (l.client.as_deref().unwrap_or(""))
                            @if let Some(officer) = &l.on_behalf_of { " (" (officer) ")" }
                        }
                        td { (l.purpose.as_deref().unwrap_or("")) " · " (l.how) }
                        td { @for (f, level) in &l.fields { code { (f) } " → " (level) "; " } }
                        td { a href={ "/console/audit/entries/" (l.ledger_index) } { (l.ledger_index) } }
                    }
                }
            }
        }
    }
}

async fn report(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<SubjectQuery>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let record = q.record.trim().to_owned();
    let report = if record.is_empty() {
        // The form alone still needs the permission: the page is the DPO's.
        state
            .authorize(
                &user.principal,
                "audit",
                "read",
                None,
                "audit.subject_report",
            )
            .await
            .in_lang(lang)?;
        None
    } else {
        Some(
            state
                .oversight
                .subject_report(&user.principal, record.clone())
                .await
                .in_lang(lang)?,
        )
    };
    let shell = Shell::of(&state, &user, "/console/subjects").await;
    let body = html! {
        form.filters method="get" action="/console/subjects" {
            div {
                label for="record" { (lang.t(Text::Record)) }
                input #record name="record" type="text" value=(record) required;
            }
            div.actions { button type="submit" { (lang.t(Text::Show)) } }
        }
        @if let Some(r) = &report {
            section aria-labelledby="subject-title" {
                h2 #subject-title { (lang.t(Text::Record)) " " code { (r.record) } }
                p { button type="button" data-print { (lang.t(Text::Print)) } }
                @if r.held_back > 0 {
                    p.notice { (lang.t(Text::HeldBack)) ": " strong { (r.held_back) } }
                }
                h3 { (lang.t(Text::ReceivingDepartments)) }
                dl.facts {
                    @for (department, n) in &r.departments {
                        dt { (department) } dd { (n) }
                    }
                }
                @if r.disclosures.is_empty() {
                    p { (lang.t(Text::NoEntries)) }
                } @else {
                    (lines(lang, &r.disclosures))
                }
                @for related in &r.related {
                    h3 { (lang.t(Text::RelatedRecord)) " " code { (related.record) } " · " (related.category)
                        @if let Some(owner) = &related.owner { " · " (owner) } }
                    @if related.held_back > 0 {
                        p.notice { (lang.t(Text::HeldBack)) ": " strong { (related.held_back) } }
                    }
                    (lines(lang, &related.disclosures))
                }
            }
        }
    };
    Ok(ok(shell.page(lang.t(Text::SubjectReport), body)))
}
