//! The anomalies page (`/console/anomalies`): the anomalies of a window (default the last 24
//! hours; `since`/`until` in Beijing time) as `Oversight::anomalies` computes them for
//! `GET /v1/audit/anomalies` (same check, same `audit.anomalies` entry), each with the ledger
//! entries behind it (links into the audit explorer) and its review, and forms to acknowledge
//! and resolve it. Both forms call `Oversight::review_anomaly`, the method behind
//! `POST /v1/audit/anomalies/{id}/acknowledge|resolve`: the same permission, the same 404, 409
//! and 422 (a resolve needs a note), the same ledger entries. Who and when only by id: no
//! personal value.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use serde::Deserialize;

use super::i18n::{Lang, Text};
use super::layout::{ConsoleError, InLang, Shell, ok};
use super::session::{ConsoleUser, FormOrigin};
use crate::error::Error;
use crate::oversight::{Anomaly, AnomalyReport, ReviewAction};
use crate::state::AppState;
use crate::time::{cst_minutes, parse_cst_local};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/anomalies", get(page))
        .route("/console/anomalies/{id}/acknowledge", post(acknowledge))
        .route("/console/anomalies/{id}/resolve", post(resolve))
}

/// Entry links shown per anomaly (the explorer lists the rest).
const SHOWN_ENTRIES: usize = 50;

/// The window as the form sends it (Beijing `datetime-local`; empty: the default).
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct Window {
    since: String,
    until: String,
    /// After a review step: `acknowledged` or `resolved`.
    done: String,
}

impl Window {
    /// (since, until) in Unix ms; a bad time is a 422 naming the field.
    fn parse(&self) -> Result<(Option<i64>, Option<i64>), Error> {
        let time = |field: &'static str, v: &str| match v.trim() {
            "" => Ok(None),
            v => parse_cst_local(v)
                .map(Some)
                .ok_or_else(|| Error::validation(field, "not a time")),
        };
        Ok((time("since", &self.since)?, time("until", &self.until)?))
    }

    /// The page of this window, with `done` if given, at anomaly `anchor`.
    fn back(&self, done: &str, anchor: &str) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if !self.since.trim().is_empty() {
            q.append_pair("since", self.since.trim());
        }
        if !self.until.trim().is_empty() {
            q.append_pair("until", self.until.trim());
        }
        q.append_pair("done", done);
        format!("/console/anomalies?{}#anomaly-{anchor}", q.finish())
    }
}

/// `2026-12-06T16:00`, as a `datetime-local` input shows Beijing time.
fn local_input(ms: i64) -> String {
    cst_minutes(ms).replace(' ', "T")
}

async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(window): Query<Window>,
) -> Result<Response, ConsoleError> {
    let notice = match window.done.as_str() {
        "acknowledged" => Some(Text::AnomAcknowledgedNotice),
        "resolved" => Some(Text::AnomResolvedNotice),
        _ => None,
    };
    render(&state, &user, &window, notice, None).await
}

/// The page: the window's anomalies as `Oversight::anomalies` answers them. `notice` is a
/// status line (a step done), `alert` a refusal shown above the list.
async fn render(
    state: &AppState,
    user: &ConsoleUser,
    window: &Window,
    notice: Option<Text>,
    alert: Option<Text>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    // The API's check first, so a caller without `audit:read` is refused whatever it sent.
    state
        .oversight
        .admit(&user.principal, "audit.anomalies")
        .await
        .in_lang(lang)?;
    let (since, until) = window.parse().in_lang(lang)?;
    let report = state
        .oversight
        .anomalies(&user.principal, since, until)
        .await
        .in_lang(lang)?;
    let shell = Shell::of(state, user, "/console/anomalies").await;
    let body = html! {
        @if let Some(text) = alert { p.notice.refused role="alert" { (lang.t(text)) } }
        @if let Some(text) = notice { p.notice role="status" { (lang.t(text)) } }
        p { (lang.t(Text::AnomExplained)) }
        (window_form(lang, &report))
        @if report.truncated { p.notice { (lang.t(Text::AnomTruncated)) } }
        dl.facts {
            dt { (lang.t(Text::AnomScanned)) } dd data-scanned=(report.scanned) { (report.scanned) }
        }
        @if report.anomalies.is_empty() {
            p { (lang.t(Text::AnomNone)) }
        }
        @for a in &report.anomalies {
            (card(lang, user, window, a))
        }
    };
    let mut response = ok(shell.page(lang.t(Text::AnomTitle), body));
    if alert.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

fn window_form(lang: Lang, report: &AnomalyReport) -> Markup {
    html! {
        form.filters method="get" action="/console/anomalies" {
            fieldset {
                legend { (lang.t(Text::AnomWindow)) }
                label for="since" { (lang.t(Text::Since)) }
                input #since name="since" type="datetime-local" value=(local_input(report.since_ms));
                label for="until" { (lang.t(Text::Until)) }
                input #until name="until" type="datetime-local" value=(local_input(report.until_ms));
                button type="submit" { (lang.t(Text::Show)) }
            }
        }
    }
}

fn kind_text(kind: &str) -> Option<Text> {
    match kind {
        "bulk_pull" => Some(Text::AnomKindBulkPull),
        "off_hours" => Some(Text::AnomKindOffHours),
        "repeated_denials" => Some(Text::AnomKindRepeatedDenials),
        "lookup_without_case" => Some(Text::AnomKindLookupWithoutCase),
        _ => None,
    }
}

fn state_text(state: &str) -> Text {
    match state {
        "acknowledged" => Text::AnomAcknowledged,
        "resolved" => Text::AnomResolved,
        _ => Text::AnomOpen,
    }
}

/// One anomaly: what, who, how much, when, the entries behind it, its review and its forms.
fn card(lang: Lang, user: &ConsoleUser, window: &Window, a: &Anomaly) -> Markup {
    let id = &a.id;
    let kind = kind_text(a.kind).map_or(a.kind, |t| lang.t(t));
    html! {
        section.anomaly id={ "anomaly-" (id) } data-anomaly=(id) data-kind=(a.kind)
            data-state=(a.review.state) aria-labelledby={ "anomaly-title-" (id) } {
            h2 id={ "anomaly-title-" (id) } { (kind) " · " code { (a.actor_key) } }
            dl.facts {
                dt { (lang.t(Text::Kind)) } dd { (kind) " (" code { (a.kind) } ")" }
                dt { (lang.t(Text::Actor)) } dd { code { (a.actor_key) } }
                @if let Some(d) = &a.actor.department {
                    dt { (lang.t(Text::Department)) } dd { (d) }
                }
                dt { (lang.t(Text::AnomCount)) } dd data-count=(a.count) { (a.count) }
                dt { (lang.t(Text::AnomFirst)) } dd { (cst_minutes(a.first_ms)) }
                dt { (lang.t(Text::AnomLast)) } dd { (cst_minutes(a.last_ms)) }
                dt { (lang.t(Text::AnomReview)) }
                dd.review { strong { (lang.t(state_text(a.review.state))) } }
            }
            h3 { (lang.t(Text::AnomEntries)) }
            ul.entries {
                @for index in a.entries.iter().take(SHOWN_ENTRIES) {
                    li { a href={ "/console/audit/entries/" (index) } data-entry=(index) { (index) } }
                }
                @if a.entries.len() > SHOWN_ENTRIES { li { "…" } }
            }
            @if !a.review.steps.is_empty() {
                table.history {
                    caption { (lang.t(Text::AnomReview)) }
                    thead { tr {
                        th scope="col" { (lang.t(Text::Status)) }
                        th scope="col" { (lang.t(Text::AnomBy)) }
                        th scope="col" { (lang.t(Text::AnomAt)) }
                        th scope="col" { (lang.t(Text::AnomNote)) }
                        th scope="col" { (lang.t(Text::Entry)) }
                    } }
                    tbody {
                        @for s in &a.review.steps {
                            tr data-step=(s.state) {
                                td { (lang.t(state_text(&s.state))) }
                                td { code { (s.by) } }
                                td { (cst_minutes(s.at_ms)) }
                                td { (s.note.as_deref().unwrap_or("")) }
                                td { a href={ "/console/audit/entries/" (s.entry) } { (s.entry) } }
                            }
                        }
                    }
                }
            }
            (forms(lang, user, window, a))
        }
    }
}

fn forms(lang: Lang, user: &ConsoleUser, window: &Window, a: &Anomaly) -> Markup {
    let id = &a.id;
    html! {
        @if a.review.state != "resolved" {
            div.answer {
                @if a.review.state == "open" {
                    form.acknowledge method="post" action={ "/console/anomalies/" (id) "/acknowledge" } {
                        input type="hidden" name="csrf" value=(user.csrf);
                        input type="hidden" name="since" value=(window.since);
                        input type="hidden" name="until" value=(window.until);
                        button type="submit" { (lang.t(Text::AnomAcknowledge)) }
                    }
                }
                form.resolve method="post" action={ "/console/anomalies/" (id) "/resolve" } {
                    input type="hidden" name="csrf" value=(user.csrf);
                    input type="hidden" name="since" value=(window.since);
                    input type="hidden" name="until" value=(window.until);
                    label for={ "note-" (id) } { (lang.t(Text::AnomResolveNote)) }
                    textarea id={ "note-" (id) } name="note" required maxlength="500" rows="2" {}
                    button type="submit" { (lang.t(Text::AnomResolve)) }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct StepForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

async fn acknowledge(
    state: State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    id: Path<String>,
    form: Form<StepForm>,
) -> Result<Response, ConsoleError> {
    step(state, user, origin, id, form, ReviewAction::Acknowledge).await
}

async fn resolve(
    state: State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    id: Path<String>,
    form: Form<StepForm>,
) -> Result<Response, ConsoleError> {
    step(state, user, origin, id, form, ReviewAction::Resolve).await
}

/// A review step through `Oversight::review_anomaly`, then back to the page (PRG). A resolve
/// without a note is the API's 422: the page again, saying so, with nothing changed.
async fn step(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    Path(id): Path<String>,
    Form(form): Form<StepForm>,
    action: ReviewAction,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &origin, form.csrf.as_deref())
        .await?;
    let window = Window {
        since: form.since,
        until: form.until,
        done: String::new(),
    };
    let now = state.clock.now_ms();
    let done = state
        .oversight
        .review_anomaly(&user.principal, &id, action, form.note.as_deref(), now)
        .await;
    match done {
        Ok(review) => Ok(Redirect::to(&window.back(review.state, &id)).into_response()),
        Err(Error::Validation(_)) if action == ReviewAction::Resolve => {
            render(&state, &user, &window, None, Some(Text::AnomNoteRequired)).await
        }
        Err(e) => Err(ConsoleError::new(e, user.lang)),
    }
}
