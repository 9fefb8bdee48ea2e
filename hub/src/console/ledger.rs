//! Ledger and keys: the ledger's size, its newest signed checkpoint (size, root, age on the
//! hub's clock) and signing key; a verify button whose progress `assets/console.js` drives
//! range by range through `POST /console/ledger/verify`; every key category's KEK versions with
//! the data keys each wraps. The same `Oversight` methods as `GET /v1/audit/status`,
//! `POST /v1/audit/verify` and `GET /v1/admin/keys`: the same `audit:read` check, the same
//! ledger entries.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::i18n::{Lang, Text};
use super::layout::{ConsoleError, InLang, Shell, ok};
use super::session::{ConsoleUser, FormOrigin};
use crate::oversight::ledger_keys::{KeyReport, LedgerStatus, MAX_VERIFY_RANGE};
use crate::state::AppState;
use crate::time::cst_minutes;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/ledger", get(page))
        .route("/console/ledger/verify", post(verify))
        .route("/console/ledger/keys/rotate", post(rotate))
}

/// Entries the browser asks to verify per request, unless the page is asked for another
/// (`?chunk=`, e.g. small ranges to watch the progress on a small ledger).
const CHUNK: u64 = 50_000;

#[derive(Deserialize, Default)]
#[serde(default)]
struct PageQuery {
    chunk: Option<u64>,
    /// After a rotation: the category and its new version (the notice).
    rotated: Option<String>,
    version: Option<u32>,
}

async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let now = state.clock.now_ms();
    let status = state
        .oversight
        .ledger_status(&user.principal, now)
        .await
        .in_lang(lang)?;
    let keys = state
        .oversight
        .key_versions(&user.principal)
        .await
        .in_lang(lang)?;
    let chunk = q.chunk.unwrap_or(CHUNK).clamp(1, MAX_VERIFY_RANGE);
    let may_rotate = state
        .permits(
            &user.principal,
            crate::auth::permissions::NO_GRID,
            "catalog",
            "write",
        )
        .await;
    let rotated = q.rotated.as_deref().zip(q.version);
    let shell = Shell::of(&state, &user, "/console/ledger").await;
    let body = html! {
        (status_facts(lang, &status))
        (verify_section(lang, &user, &status, chunk))
        (key_table(lang, &keys, may_rotate.then_some(user.csrf.as_str()), rotated))
    };
    Ok(ok(shell.page(lang.t(Text::LkTitle), body)))
}

fn status_facts(lang: Lang, status: &LedgerStatus) -> Markup {
    html! {
        dl.facts #ledger-status data-size=(status.size) {
            dt { (lang.t(Text::LedgerSize)) } dd { (status.size) }
            dt { (lang.t(Text::LkKeyName)) } dd { code { (status.key_name) } }
            dt { (lang.t(Text::LkKeyId)) } dd { code #key-id { (status.key_id) } }
        }
        h2 { (lang.t(Text::LkCheckpoint)) }
        @match &status.checkpoint {
            None => p { (lang.t(Text::LkNoCheckpoint)) },
            Some(cp) => dl.facts #checkpoint data-size=(cp.size) data-root=(cp.root) {
                dt { (lang.t(Text::LkCheckpointSize)) } dd #checkpoint-size { (cp.size) }
                dt { (lang.t(Text::LkRoot)) } dd { code.hash { (cp.root) } }
                dt { (lang.t(Text::LkSignedAt)) } dd { (cst_minutes(cp.signed_ms)) }
                dt { (lang.t(Text::LkAgeMinutes)) }
                dd #checkpoint-age { (status.checkpoint_age_minutes.unwrap_or(0)) }
            },
        }
    }
}

/// The verify button, its progress bar and a live region for the outcome; `console.js` reads
/// the `data-*` texts, so the script holds no language.
fn verify_section(lang: Lang, user: &ConsoleUser, status: &LedgerStatus, chunk: u64) -> Markup {
    html! {
        section.verify #verify data-verify data-target=(status.size) data-chunk=(chunk)
            data-csrf=(user.csrf) data-busy=(lang.t(Text::LkVerifying))
            data-ok=(lang.t(Text::LkVerifyOk)) data-fail=(lang.t(Text::LkVerifyFailed))
            data-error=(lang.t(Text::LkVerifyError)) aria-labelledby="verify-title" {
            h2 #verify-title { (lang.t(Text::LkVerifyTitle)) }
            p { (lang.t(Text::LkVerifyExplained)) }
            button type="button" data-verify-start { (lang.t(Text::LkVerifyButton)) }
            div.progress {
                label for="verify-progress" { (lang.t(Text::LkProgress)) }
                progress #verify-progress max=(status.size.max(1)) value="0" { "0 %" }
            }
            p.verify-status role="status" aria-live="polite" data-verify-status {}
        }
    }
}

/// The KEK versions; with `rotate_csrf` (the user may rotate) a rotate button per category.
fn key_table(
    lang: Lang,
    keys: &KeyReport,
    rotate_csrf: Option<&str>,
    rotated: Option<(&str, u32)>,
) -> Markup {
    use crate::storage::KekState;
    let state_text = |s: KekState| match s {
        KekState::Active => lang.t(Text::LkStateActive),
        KekState::Rewrap => lang.t(Text::LkStateRewrap),
        KekState::Retired => lang.t(Text::LkStateRetired),
    };
    html! {
        h2 #keys-title { (lang.t(Text::LkKeysTitle)) }
        @if let Some((category, version)) = rotated {
            p.notice role="status" data-rotated=(category) {
                code { (category) } " — " (lang.t(Text::LkRotated)) " " (version)
            }
        }
        @if rotate_csrf.is_some() { p { (lang.t(Text::LkRotateExplained)) } }
        table.keys aria-labelledby="keys-title" {
            thead { tr {
                th scope="col" { (lang.t(Text::LkKeyCategory)) }
                th scope="col" { (lang.t(Text::LkKekVersion)) }
                th scope="col" { (lang.t(Text::LkKeyState)) }
                th scope="col" { (lang.t(Text::LkDeks)) }
                th scope="col" { (lang.t(Text::LkWraps)) }
                th scope="col" { (lang.t(Text::LkRewrapped)) }
                @if rotate_csrf.is_some() { th scope="col" { (lang.t(Text::LkRotate)) } }
            } }
            tbody {
                @for c in &keys.categories {
                    @for v in &c.versions {
                        tr data-category=(c.category) data-version=(v.version) data-deks=(v.deks)
                            data-current=(v.current) data-state=(v.state.as_str())
                            data-rewrapped=(v.rewrapped) {
                            th scope="row" { code { (c.category) } }
                            td {
                                (v.version)
                                @if v.current { " " strong.current { "(" (lang.t(Text::LkCurrent)) ")" } }
                            }
                            td { (state_text(v.state)) }
                            td { (v.deks) }
                            td { (v.wraps) }
                            td { (v.rewrapped) }
                            @if let Some(csrf) = rotate_csrf {
                                td {
                                    @if v.current {
                                        form.rotate method="post" action="/console/ledger/keys/rotate" {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="category" value=(c.category);
                                            button type="submit"
                                                aria-label={ (lang.t(Text::LkRotate)) " " (c.category) } {
                                                (lang.t(Text::LkRotate))
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
        p { (lang.t(Text::LkWrapLimit)) ": " (keys.wrap_limit) }
        p { (lang.t(Text::LkRotateAfter)) ": " (keys.rotate_after_wraps) }
    }
}

#[derive(Deserialize)]
struct RotateForm {
    #[serde(default)]
    csrf: Option<String>,
    category: String,
}

/// The rotate button: the API's path (`routes::ledger_keys::rotate_as`), then back to the
/// page with a notice.
async fn rotate(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    Form(form): Form<RotateForm>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &origin, form.csrf.as_deref())
        .await?;
    let rotation = crate::routes::ledger_keys::rotate_as(&state, &user.principal, &form.category)
        .await
        .in_lang(user.lang)?;
    let mut target = form_urlencoded::Serializer::for_suffix(
        "/console/ledger?".to_owned(),
        "/console/ledger?".len(),
    );
    target.append_pair("rotated", &rotation.category);
    target.append_pair("version", &rotation.version.to_string());
    Ok(axum::response::Redirect::to(&target.finish()).into_response())
}

#[derive(Deserialize)]
struct VerifyForm {
    #[serde(default)]
    csrf: Option<String>,
    from: u64,
    to: u64,
}

/// One range's answer, as `POST /v1/audit/verify` gives it.
#[derive(Serialize)]
struct RangeAnswer {
    from: u64,
    to: u64,
    size: u64,
    checkpoints: usize,
    ok: bool,
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<FailureAnswer>,
}

#[derive(Serialize)]
struct FailureAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u64>,
    problem: String,
}

/// One range of the verification, for `console.js` (a form post with the session's CSRF
/// token: the range that ends it writes a ledger entry).
async fn verify(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    Form(form): Form<VerifyForm>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &origin, form.csrf.as_deref())
        .await?;
    let check = state
        .oversight
        .verify_range(&user.principal, form.from, form.to)
        .await
        .in_lang(user.lang)?;
    Ok(Json(RangeAnswer {
        from: check.from,
        to: check.to,
        size: check.size,
        checkpoints: check.checkpoints,
        ok: check.failure.is_none(),
        done: check.failure.is_some() || check.to >= check.size,
        failure: check.failure.map(|f| FailureAnswer {
            index: f.index,
            problem: f.problem,
        }),
    })
    .into_response())
}
