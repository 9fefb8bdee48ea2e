//! The grant queue: requested grants, overdue first and then by answer deadline, each with
//! what it asks (fields and levels, scope, filter, legal basis, window, owner's consent) and
//! forms to approve or reject. Both forms call `Grants::approve` / `Grants::reject`, the
//! methods behind `POST /v1/grants/{id}/approve|reject`: the same checks (a DPO other than the
//! requester; a rejection needs a reason), the same ledger entries.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use policy::GrantStatus;
use serde::Deserialize;

use super::i18n::{Lang, Text};
use super::layout::{ConsoleError, InLang, Shell, ok};
use super::session::{ConsoleUser, FormOrigin};
use crate::error::Error;
use crate::grants::{GrantQuery, GrantView};
use crate::state::AppState;
use crate::time::cst_minutes;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/grants", get(queue))
        .route("/console/grants/{id}", get(detail))
        .route("/console/grants/{id}/approve", post(approve))
        .route("/console/grants/{id}/reject", post(reject))
}

/// Requested grants as the caller may list them (`Grants::list`), overdue first, then by
/// answer deadline.
pub async fn requested(state: &AppState, user: &ConsoleUser) -> Result<Vec<GrantView>, Error> {
    let mut grants = state
        .grants
        .list(
            &user.principal,
            GrantQuery {
                status: Some(GrantStatus::Requested),
                ..GrantQuery::default()
            },
        )
        .await?;
    grants.sort_by_key(|g| (!g.overdue, g.grant.answer_due));
    Ok(grants)
}

#[derive(Deserialize, Default)]
struct Notice {
    #[serde(default)]
    done: Option<String>,
}

async fn queue(
    State(state): State<AppState>,
    user: ConsoleUser,
    axum::extract::Query(notice): axum::extract::Query<Notice>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    // The page of `grants:approve`: those who cannot answer have nothing to do here.
    state
        .authorize(&user.principal, "grants", "approve", None, "console.grants")
        .await
        .in_lang(lang)?;
    let grants = requested(&state, &user).await.in_lang(lang)?;
    let now = state.clock.now_ms();
    let me = format!("user:{}", user.principal.id());
    let shell = Shell::of(&state, &user, "/console/grants").await;
    let body = html! {
        @match notice.done.as_deref() {
            Some("approved") => p.notice role="status" { (lang.t(Text::Approved)) },
            Some("rejected") => p.notice role="status" { (lang.t(Text::Rejected)) },
            _ => {},
        }
        @if grants.is_empty() {
            p { (lang.t(Text::NoRequestedGrants)) }
        }
        @for view in &grants {
            (grant_card(lang, &user, view, now, view.grant.requested_by == me, true))
        }
    };
    Ok(ok(shell.page(lang.t(Text::Grants), body)))
}

/// "overdue" or "due in N days/hours".
fn deadline(lang: Lang, due: i64, now: i64) -> Markup {
    let left = due - now;
    html! {
        @if left < 0 {
            strong.overdue { (lang.t(Text::Overdue)) }
        } @else if left >= 86_400_000 {
            (lang.t(Text::DueIn)) " " (left / 86_400_000) " " (lang.t(Text::Days))
        } @else {
            (lang.t(Text::DueIn)) " " (left / 3_600_000) " " (lang.t(Text::Hours))
        }
    }
}

fn grant_card(
    lang: Lang,
    user: &ConsoleUser,
    view: &GrantView,
    now: i64,
    own: bool,
    in_queue: bool,
) -> Markup {
    let g = &view.grant;
    let t = &g.terms;
    let id = &g.id;
    html! {
        section.grant id={ "grant-" (id) } data-grant=(id) aria-labelledby={ "title-" (id) } {
            h2 id={ "title-" (id) } {
                a href={ "/console/grants/" (id) } { (t.grantee) " · " (t.category) " · " (t.purpose) }
            }
            dl.facts {
                @if view.status == GrantStatus::Requested {
                    dt { (lang.t(Text::AnswerDue)) }
                    dd { (cst_minutes(g.answer_due)) " — " (deadline(lang, g.answer_due, now)) }
                }
                dt { (lang.t(Text::RequestedBy)) } dd { code { (g.requested_by) } }
                dt { (lang.t(Text::Kind)) }
                dd { @if g.statistics.is_some() { "statistics" } @else { "records" } }
                @if let Some(stats) = &g.statistics {
                    dt { "group_by" } dd { code { (serde_json::to_string(stats).unwrap_or_default()) } }
                }
                dt { (lang.t(Text::Scope)) }
                dd { @for code in &t.scope { code { (code.as_str()) } " " } }
                @if let Some(filter) = &t.row_filter {
                    dt { (lang.t(Text::RowFilter)) } dd { code { (filter) } }
                }
                dt { (lang.t(Text::CaseBound)) }
                dd { (lang.t(if t.case_bound { Text::Yes } else { Text::No })) }
                dt { (lang.t(Text::ValidFrom)) } dd { (cst_minutes(t.valid_from)) }
                dt { (lang.t(Text::ValidUntil)) } dd { (cst_minutes(t.valid_until)) }
                @if let Some(q) = t.daily_quota {
                    dt { (lang.t(Text::DailyQuota)) } dd { (q) }
                }
                @if let Some(basis) = &t.legal_basis {
                    dt { (lang.t(Text::LegalBasis)) } dd { (basis) }
                }
                @if let Some(consent) = &g.consent {
                    dt { (lang.t(Text::OwnerConsent)) }
                    dd { (view.owner.as_deref().unwrap_or("")) ": " (consent.state.as_str()) }
                }
            }
            @if !t.fields.is_empty() {
                table.fields {
                    caption { (lang.t(Text::FieldsDisclosed)) }
                    thead { tr { th scope="col" { (lang.t(Text::Field)) } th scope="col" { (lang.t(Text::Level)) } } }
                    tbody {
                        @for (field, level) in &t.fields {
                            tr { td { code { (field) } } td { (level.as_str()) } }
                        }
                    }
                }
            }
            @if !in_queue || view.status != GrantStatus::Requested {
            } @else if own {
                p.notice { (lang.t(Text::OwnRequest)) }
            } @else {
                div.answer {
                    form method="post" action={ "/console/grants/" (id) "/approve" } {
                        input type="hidden" name="csrf" value=(user.csrf);
                        button.approve type="submit" { (lang.t(Text::Approve)) }
                    }
                    form method="post" action={ "/console/grants/" (id) "/reject" } {
                        input type="hidden" name="csrf" value=(user.csrf);
                        label for={ "reason-" (id) } { (lang.t(Text::RejectReason)) }
                        textarea id={ "reason-" (id) } name="reason" required maxlength="500" rows="2" {}
                        button.reject type="submit" { (lang.t(Text::Reject)) }
                    }
                }
            }
        }
    }
}

/// One grant and where it came from: its terms, its history (request, approval or rejection,
/// consent, suspensions) with who and why, its signed artefact (the JWS the department holds, and
/// its payload decoded for reading), and a link to every ledger entry that names it. The
/// disclosure → grant → approval chain of an audit entry ends here. `Grants::get` and
/// `Grants::artefact`, as `GET /v1/grants/{id}` and `…/artefact`.
async fn detail(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let view = state.grants.get(&user.principal, &id).await.in_lang(lang)?;
    let artefact = match state.grants.artefact(&user.principal, &id).await {
        Ok(jws) => Some(jws),
        Err(Error::Conflict(_)) => None,
        Err(e) => return Err(ConsoleError::new(e, lang)),
    };
    let payload = artefact.as_deref().and_then(jws_payload);
    let now = state.clock.now_ms();
    let me = format!("user:{}", user.principal.id());
    let shell = Shell::of(&state, &user, "/console/grants").await;
    let mut search = form_urlencoded::Serializer::new(String::new());
    search.append_pair("grant", &id);
    let body = html! {
        dl.facts {
            dt { (lang.t(Text::Status)) } dd { strong { (view.status.as_str()) } }
        }
        (grant_card(lang, &user, &view, now, view.grant.requested_by == me, false))
        h2 { (lang.t(Text::History)) }
        table.history {
            thead { tr {
                th scope="col" { (lang.t(Text::Time)) }
                th scope="col" { (lang.t(Text::Actor)) }
                th scope="col" { (lang.t(Text::Action)) }
                th scope="col" { (lang.t(Text::Status)) }
                th scope="col" { (lang.t(Text::Reason)) }
            } }
            tbody {
                @for e in &view.history {
                    tr {
                        td { (cst_minutes(e.at)) }
                        td { code { (e.actor) } }
                        td { (e.action) }
                        td { (e.status) }
                        td { (e.reason.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        p { a href={ "/console/audit?" (search.finish()) } { (lang.t(Text::EntriesNamingGrant)) } }
        @if let Some(jws) = &artefact {
            h2 { (lang.t(Text::Artefact)) }
            @if let Some(payload) = &payload {
                pre.canonical { (payload) }
            }
            details {
                summary { "JWS" }
                pre.canonical { (jws) }
            }
        }
    };
    Ok(ok(
        shell.page(&format!("{} {id}", lang.t(Text::Grant)), body)
    ))
}

/// The payload of a compact JWS, pretty-printed for reading (the signature is the department's
/// to check against `/.well-known/jwks.json`).
fn jws_payload(jws: &str) -> Option<String> {
    use base64::Engine;
    let payload = jws.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    serde_json::to_string_pretty(&value).ok()
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// The two answers a DPO gives in the queue.
#[derive(Clone, Copy)]
enum Verdict {
    Approve,
    Reject,
}

async fn approve(
    state: State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    id: Path<String>,
    form: Form<Answer>,
) -> Result<Response, ConsoleError> {
    answer(state, user, origin, id, form, Verdict::Approve).await
}

async fn reject(
    state: State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    id: Path<String>,
    form: Form<Answer>,
) -> Result<Response, ConsoleError> {
    answer(state, user, origin, id, form, Verdict::Reject).await
}

async fn answer(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    Path(id): Path<String>,
    Form(form): Form<Answer>,
    verdict: Verdict,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &origin, form.csrf.as_deref())
        .await?;
    // An empty box is no reason: the service refuses a rejection without one (422) like the
    // API does.
    let reason = form.reason.as_deref().filter(|r| !r.trim().is_empty());
    let (done, target) = match verdict {
        Verdict::Approve => (
            state.grants.approve(&user.principal, &id, reason).await,
            "/console/grants?done=approved",
        ),
        Verdict::Reject => (
            state.grants.reject(&user.principal, &id, reason).await,
            "/console/grants?done=rejected",
        ),
    };
    done.in_lang(user.lang)?;
    Ok(Redirect::to(target).into_response())
}
