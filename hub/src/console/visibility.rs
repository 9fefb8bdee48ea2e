//! "Who can see this": for a category and one of its fields, every department that may see it
//! now, at which level, through which grant, in which grids and until when — from the grants in
//! force as `Grants::list` returns them (`grants:read`, the check of `GET /v1/grants`).
//! Statistics grants are listed apart: they see counts, never the field. Case-bound grants are
//! marked: they see it only for the records of cases currently assigned to the department.
//!
//! For one record (`?record=`): which departments could see it now, through which grants and
//! open cases, at which level per field and until when — `Grants::record_visibility`, as
//! `GET /v1/records/{id}/visibility` (the decision index's own rules; `decisions:explain`;
//! audited as `decision.visibility`).

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use policy::GrantStatus;
use serde::Deserialize;

use super::i18n::{Lang, Text};
use super::layout::{ConsoleError, InLang, Shell, ok};
use super::session::ConsoleUser;
use crate::grants::GrantQuery;
use crate::grants::reach::RecordVisibility;
use crate::state::AppState;
use crate::time::{cst_minutes, parse_rfc3339};

pub fn router() -> Router<AppState> {
    Router::new().route("/console/visibility", get(page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Question {
    category: String,
    field: String,
    /// One record: which departments could see it now (`Grants::record_visibility`).
    record: String,
}

async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<Question>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let category = q.category.trim().to_owned();
    let field = q.field.trim().to_owned();
    let grants = state
        .grants
        .list(
            &user.principal,
            GrantQuery {
                status: Some(GrantStatus::Approved),
                category: (!category.is_empty()).then(|| category.clone()),
                ..GrantQuery::default()
            },
        )
        .await
        .in_lang(lang)?;
    let catalog = state.decisions.catalog().in_lang(lang)?;
    let now = state.clock.now_ms();
    let in_force: Vec<_> = grants
        .iter()
        .filter(|g| g.grant.in_force() && g.grant.terms.valid_at(now))
        .collect();
    let records: Vec<_> = in_force
        .iter()
        .filter(|g| g.grant.statistics.is_none())
        .filter_map(|g| {
            let level = if field.is_empty() {
                None
            } else {
                Some(*g.grant.terms.fields.get(&field)?)
            };
            Some((g, level))
        })
        .collect();
    let counts: Vec<_> = in_force
        .iter()
        .filter(|g| g.grant.statistics.is_some())
        .collect();
    let record = q.record.trim().to_owned();
    let reach = if record.is_empty() {
        None
    } else {
        Some(
            state
                .grants
                .record_visibility(&user.principal, &record, now)
                .await
                .in_lang(lang)?,
        )
    };
    let shell = Shell::of(&state, &user, "/console/visibility").await;
    let body = html! {
        form.filters method="get" action="/console/visibility" {
            div {
                label for="category" { (lang.t(Text::Category)) }
                select #category name="category" {
                    option value="" selected[category.is_empty()] { (lang.t(Text::Any)) }
                    @for c in catalog.categories() {
                        option value=(c.name) selected[c.name == category] { (c.name) }
                    }
                }
            }
            div {
                label for="field" { (lang.t(Text::Field)) }
                input #field name="field" type="text" value=(field);
            }
            div.actions { button type="submit" { (lang.t(Text::Show)) } }
        }
        @if records.is_empty() {
            p { (lang.t(Text::NobodySees)) }
        } @else {
            table.visibility {
                caption { (lang.t(Text::WhoCanSee)) }
                thead { tr {
                    th scope="col" { (lang.t(Text::Department)) }
                    th scope="col" { (lang.t(Text::Category)) }
                    th scope="col" { (lang.t(Text::Level)) }
                    th scope="col" { (lang.t(Text::Purpose)) }
                    th scope="col" { (lang.t(Text::Scope)) }
                    th scope="col" { (lang.t(Text::ValidUntil)) }
                    th scope="col" { (lang.t(Text::Grant)) }
                } }
                tbody {
                    @for (g, level) in &records {
                        @let t = &g.grant.terms;
                        tr {
                            td { (t.grantee) }
                            td { (t.category) }
                            td {
                                @match level {
                                    Some(l) => { (l.as_str()) },
                                    None => {
                                        @for (f, l) in &t.fields { code { (f) } " → " (l.as_str()) "; " }
                                    },
                                }
                                @if t.case_bound { " · " (lang.t(Text::CaseBound)) }
                            }
                            td { (t.purpose) }
                            td { @for code in &t.scope { code { (code.as_str()) } " " } }
                            td { (cst_minutes(t.valid_until)) }
                            td { a href={ "/console/grants/" (g.grant.id) } { code { (g.grant.id) } } }
                        }
                    }
                }
            }
        }
        @if !counts.is_empty() {
            h2 { (lang.t(Text::CountsOnly)) }
            ul {
                @for g in &counts {
                    li {
                        (g.grant.terms.grantee) " · " (g.grant.terms.category) " · "
                        a href={ "/console/grants/" (g.grant.id) } { code { (g.grant.id) } }
                    }
                }
            }
        }
        (record_section(lang, &record, reach.as_ref()))
    };
    Ok(ok(shell.page(lang.t(Text::WhoCanSee), body)))
}

/// Who can see one record now: a form for its id and, once asked, every department, purpose
/// and open case through which a pull would disclose fields of it, with levels, grants and
/// windows — field names and levels only.
fn record_section(lang: Lang, record: &str, reach: Option<&RecordVisibility>) -> Markup {
    html! {
        section.reach #reach aria-labelledby="reach-title" {
            h2 #reach-title { (lang.t(Text::ReachTitle)) }
            p { (lang.t(Text::ReachExplained)) }
            form.filters method="get" action="/console/visibility#reach" aria-label=(lang.t(Text::ReachTitle)) {
                div {
                    label for="record" { (lang.t(Text::ReachRecordId)) }
                    input #record name="record" type="text" value=(record) required;
                }
                div.actions { button type="submit" { (lang.t(Text::Show)) } }
            }
            @if let Some(reach) = reach {
                dl.facts {
                    dt { (lang.t(Text::ReachRecordId)) } dd { code { (reach.record) } }
                    dt { (lang.t(Text::Category)) } dd { (reach.category) }
                    dt { (lang.t(Text::ReachGrid)) } dd { code { (reach.grid) } }
                }
                @if reach.departments.is_empty() {
                    p #reach-nobody { (lang.t(Text::ReachNobody)) }
                } @else {
                    table.reach {
                        caption { (lang.t(Text::ReachTitle)) }
                        thead { tr {
                            th scope="col" { (lang.t(Text::Department)) }
                            th scope="col" { (lang.t(Text::Purpose)) }
                            th scope="col" { (lang.t(Text::ReachThroughCase)) }
                            th scope="col" { (lang.t(Text::FieldsDisclosed)) }
                            th scope="col" { (lang.t(Text::Grant)) " · " (lang.t(Text::ValidUntil)) }
                        } }
                        tbody {
                            @for d in &reach.departments {
                                tr data-department=(d.department) data-purpose=(d.purpose)
                                    data-case=(d.case.as_deref().unwrap_or("")) {
                                    th scope="row" { (d.department) }
                                    td { (d.purpose) }
                                    td {
                                        @match &d.case {
                                            Some(case) => code { (case) },
                                            None => (lang.t(Text::ReachNoCase)),
                                        }
                                    }
                                    td {
                                        ul.levels {
                                            @for f in &d.fields {
                                                li data-field=(f.field) data-level=(f.level) data-grant=(f.grant) {
                                                    code { (f.field) } " → " (f.level)
                                                }
                                            }
                                        }
                                    }
                                    td {
                                        ul.levels {
                                            @for g in &d.grants {
                                                li {
                                                    a href={ "/console/grants/" (g.id) } { code { (g.id) } }
                                                    @if g.case_bound { " · " (lang.t(Text::CaseBound)) }
                                                    " · " (parse_rfc3339(&g.valid_until).map(cst_minutes).unwrap_or_default())
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
