//! The grant watchlist: approved grants to look at again (expiring within 14 days, case-bound
//! with every case closed, unused for 30 days), each linked to its grant page where the DPO can
//! suspend or revoke it. `Grants::watchlist`, as `GET /v1/grants/watchlist`: the same
//! `grants:read` check, "now" on the hub's clock.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};

use super::i18n::{Lang, Text};
use super::layout::{ConsoleError, InLang, Shell, ok};
use super::session::ConsoleUser;
use crate::grants::watchlist::WatchedGrant;
use crate::state::AppState;
use crate::time::{cst_minutes, parse_rfc3339};

pub fn router() -> Router<AppState> {
    Router::new().route("/console/watchlist", get(page))
}

async fn page(State(state): State<AppState>, user: ConsoleUser) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let now = state.clock.now_ms();
    let list = state
        .grants
        .watchlist(&user.principal, now)
        .await
        .in_lang(lang)?;
    let shell = Shell::of(&state, &user, "/console/watchlist").await;
    let body = html! {
        p { (lang.t(Text::WatchExplained)) }
        (table(lang, "expiring", Text::WatchExpiring, &list.expiring))
        (table(lang, "cases_closed", Text::WatchCasesClosed, &list.cases_closed))
        (table(lang, "unused", Text::WatchUnused, &list.unused))
    };
    Ok(ok(shell.page(lang.t(Text::WatchTitle), body)))
}

/// One part of the watchlist; every row links to its grant.
fn table(lang: Lang, key: &str, title: Text, grants: &[WatchedGrant]) -> Markup {
    let heading = format!("watch-{key}");
    html! {
        section.watch data-list=(key) aria-labelledby=(heading) {
            h2 id=(heading) { (lang.t(title)) }
            @if grants.is_empty() {
                p { (lang.t(Text::WatchNone)) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { (lang.t(Text::Grant)) }
                        th scope="col" { (lang.t(Text::Grantee)) }
                        th scope="col" { (lang.t(Text::Category)) }
                        th scope="col" { (lang.t(Text::Purpose)) }
                        th scope="col" { (lang.t(Text::ValidUntil)) }
                        th scope="col" { (lang.t(Text::WatchDaysLeft)) }
                        th scope="col" { (lang.t(Text::WatchLastUsed)) }
                        th scope="col" { (lang.t(Text::WatchIdleDays)) }
                        th scope="col" { (lang.t(Text::WatchClosedCases)) }
                    } }
                    tbody {
                        @for g in grants {
                            tr data-grant=(g.id) data-days-left=(g.days_left) data-idle-days=(g.idle_days) {
                                th scope="row" { a href={ "/console/grants/" (g.id) } { code { (g.id) } } }
                                td { (g.grantee) }
                                td { (g.category) }
                                td {
                                    (g.purpose)
                                    @if g.case_bound { " · " (lang.t(Text::CaseBound)) }
                                }
                                td { (parse_rfc3339(&g.valid_until).map(cst_minutes).unwrap_or_default()) }
                                td { (g.days_left) }
                                td { (g.last_used.as_deref().unwrap_or(lang.t(Text::WatchNeverUsed))) }
                                td { (g.idle_days) }
                                td { @if let Some(n) = g.closed_cases { (n) } }
                            }
                        }
                    }
                }
            }
        }
    }
}
