//! Departments with their jurisdiction, a form to create one with its jurisdiction picked from
//! the grid tree, and a department's page to change its jurisdiction: `Identity::departments`,
//! `Identity::create_department` and `Identity::set_jurisdiction`, the methods behind
//! `GET/POST /v1/admin/departments` and `PUT /v1/admin/departments/{id}/jurisdiction`: the same
//! checks, the same `department.create` / `department.jurisdiction` entries. The pages are an
//! admin's (`departments:write` opens them, checked and audited as `console.departments`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;

use super::grids::{answered, form_problem, grid_picker, problems_box};
use super::i18n::Text;
use super::layout::{ConsoleError, InLang, Shell};
use super::session::{ConsoleUser, FormOrigin};
use crate::error::Error;
use crate::identity::DepartmentDraft;
use crate::state::AppState;
use crate::storage::DepartmentRow;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/departments", get(list).post(create))
        .route("/console/departments/{id}", get(detail))
        .route(
            "/console/departments/{id}/jurisdiction",
            post(set_jurisdiction),
        )
}

#[derive(Deserialize, Default)]
struct Notice {
    #[serde(default)]
    done: Option<String>,
}

/// The page's permission, checked (and a refusal audited) before anything is read.
async fn opened(state: &AppState, user: &ConsoleUser) -> Result<(), ConsoleError> {
    state
        .authorize(
            &user.principal,
            "departments",
            "write",
            None,
            "console.departments",
        )
        .await
        .in_lang(user.lang)
}

async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(notice): Query<Notice>,
) -> Result<Response, ConsoleError> {
    render_list(&state, &user, notice.done.as_deref(), None).await
}

async fn render_list(
    state: &AppState,
    user: &ConsoleUser,
    created: Option<&str>,
    refused: Option<&Error>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    opened(state, user).await?;
    let departments = state
        .identity
        .departments(&user.principal)
        .await
        .in_lang(lang)?;
    let grids = state.identity.grids(&user.principal).await.in_lang(lang)?;
    let shell = Shell::of(state, user, "/console/departments").await;
    let body = html! {
        @if let Some(id) = created {
            p.notice role="status" { code { (id) } " — " (lang.t(Text::DeptCreated)) }
        }
        @if let Some(error) = refused { (problems_box(lang, error)) }
        @if departments.is_empty() {
            p { (lang.t(Text::DeptNone)) }
        } @else {
            div.scroll {
                table.departments {
                    caption { (lang.t(Text::DeptTitle)) }
                    thead { tr {
                        th scope="col" { (lang.t(Text::DeptId)) }
                        th scope="col" { (lang.t(Text::DeptName)) }
                        th scope="col" { (lang.t(Text::DeptJurisdiction)) }
                    } }
                    tbody {
                        @for d in &departments {
                            tr data-department=(d.id) {
                                th scope="row" {
                                    a href={ "/console/departments/" (d.id) } { code { (d.id) } }
                                }
                                td { (d.name) }
                                td.jurisdiction { @for g in &d.jurisdiction { code { (g) } " " } }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="new-department" {
            h2 #new-department { (lang.t(Text::DeptNew)) }
            form.admin method="post" action="/console/departments" {
                input type="hidden" name="csrf" value=(user.csrf);
                label for="id" { (lang.t(Text::DeptId)) }
                input #id name="id" type="text" required maxlength="63" autocomplete="off"
                    aria-describedby="id-help";
                p.help #id-help { (lang.t(Text::DeptIdRule)) }
                label for="name" { (lang.t(Text::DeptName)) }
                input #name name="name" type="text" required maxlength="100" autocomplete="off";
                (grid_picker(lang, &grids, "jurisdiction", "new", &[], Text::DeptJurisdiction, Some(Text::DeptPickerHelp)))
                div { button type="submit" { (lang.t(Text::DeptCreate)) } }
            }
        }
    };
    Ok(answered(shell.page(lang.t(Text::DeptTitle), body), refused))
}

/// A form with repeated `jurisdiction` fields (`Form` would keep one): csrf and the rest.
struct DepartmentForm {
    csrf: Option<String>,
    id: String,
    name: String,
    jurisdiction: Vec<String>,
}

impl DepartmentForm {
    fn parse(body: &[u8]) -> DepartmentForm {
        let mut form = DepartmentForm {
            csrf: None,
            id: String::new(),
            name: String::new(),
            jurisdiction: Vec::new(),
        };
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "csrf" => form.csrf = Some(value.into_owned()),
                "id" => form.id = value.trim().to_owned(),
                "name" => form.name = value.into_owned(),
                "jurisdiction" => form.jurisdiction.push(value.into_owned()),
                _ => {}
            }
        }
        form
    }
}

/// Create a department with the picked grids (`Identity::create_department`, as
/// `POST /v1/admin/departments`).
async fn create(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form = DepartmentForm::parse(&body);
    user.check_form(&state, &origin, form.csrf.as_deref())
        .await?;
    let draft = DepartmentDraft {
        id: form.id,
        name: form.name,
        jurisdiction: form.jurisdiction,
    };
    match state
        .identity
        .create_department(&user.principal, draft)
        .await
    {
        Ok(row) => Ok(Redirect::to(&with_notice("/console/departments", &row.id)).into_response()),
        Err(e) if form_problem(&e) => render_list(&state, &user, None, Some(&e)).await,
        Err(e) => Err(ConsoleError::new(e, user.lang)),
    }
}

/// `path?done=value`.
fn with_notice(path: &str, value: &str) -> String {
    let prefix = format!("{path}?");
    let mut target = form_urlencoded::Serializer::for_suffix(prefix.clone(), prefix.len());
    target.append_pair("done", value);
    target.finish()
}

async fn detail(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> Result<Response, ConsoleError> {
    render_detail(&state, &user, &id, notice.done.is_some(), None).await
}

/// One department (from `Identity::departments`, as the API lists them) and the form that
/// changes its jurisdiction.
async fn render_detail(
    state: &AppState,
    user: &ConsoleUser,
    id: &str,
    saved: bool,
    refused: Option<&Error>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    opened(state, user).await?;
    let department: DepartmentRow = state
        .identity
        .departments(&user.principal)
        .await
        .in_lang(lang)?
        .into_iter()
        .find(|d| d.id == id)
        .ok_or_else(|| ConsoleError::new(Error::NotFound("department"), lang))?;
    let grids = state.identity.grids(&user.principal).await.in_lang(lang)?;
    let shell = Shell::of(state, user, "/console/departments").await;
    let body = html! {
        @if saved {
            p.notice role="status" { (lang.t(Text::DeptJurisdictionSaved)) }
        }
        @if let Some(error) = refused { (problems_box(lang, error)) }
        dl.facts {
            dt { (lang.t(Text::DeptId)) } dd { code { (department.id) } }
            dt { (lang.t(Text::DeptName)) } dd { (department.name) }
            dt { (lang.t(Text::DeptJurisdiction)) }
            dd.jurisdiction { @for g in &department.jurisdiction { code { (g) } " " } }
        }
        section aria-labelledby="change" {
            h2 #change { (lang.t(Text::DeptChange)) }
            form.admin method="post" action={ "/console/departments/" (department.id) "/jurisdiction" } {
                input type="hidden" name="csrf" value=(user.csrf);
                (grid_picker(lang, &grids, "jurisdiction", "j", &department.jurisdiction, Text::DeptJurisdiction, Some(Text::DeptPickerHelp)))
                div { button type="submit" { (lang.t(Text::DeptSaveJurisdiction)) } }
            }
        }
        p { a href="/console/departments" { (lang.t(Text::DeptTitle)) } }
    };
    let title = format!("{} {}", lang.t(Text::DeptId), department.id);
    Ok(answered(shell.page(&title, body), refused))
}

/// Replace the jurisdiction with the picked grids (`Identity::set_jurisdiction`, as
/// `PUT /v1/admin/departments/{id}/jurisdiction`).
async fn set_jurisdiction(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form = DepartmentForm::parse(&body);
    user.check_form(&state, &origin, form.csrf.as_deref())
        .await?;
    match state
        .identity
        .set_jurisdiction(&user.principal, &id, &form.jurisdiction)
        .await
    {
        Ok(_) => {
            let path = format!("/console/departments/{id}");
            Ok(Redirect::to(&with_notice(&path, "saved")).into_response())
        }
        Err(e) if form_problem(&e) => render_detail(&state, &user, &id, false, Some(&e)).await,
        Err(e) => Err(ConsoleError::new(e, user.lang)),
    }
}
