//! The catalog (资源目录) in the console: every category with its owner department and its
//! fields (type, sensitivity, share class, encryption, blind index, mask and generalisation),
//! for everyone the API lets read it (`CatalogService::current`, as `GET /v1/catalog`); and,
//! for `catalog:write`, a form that creates or evolves a category, department-owned or not,
//! through `CatalogService::put`, the method behind `PUT /v1/catalog/{category}`: the same
//! rules (what may change once records or open grants exist), the same ledger entry. A refusal
//! shows the API's code: field problems on the form itself (422), anything else as an error
//! page (409 `conflict` for a change the stored data could not survive).
//!
//! Field syntax of the form: one field per line, each a JSON object exactly as `GET
//! /v1/catalog` shows a field (blank lines ignored), so the console and the API accept the
//! same definitions and the form opens filled with the category as it stands.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{Markup, html};
use policy::{CategoryDef, FieldDef, FieldProblem, FieldType, MaskRule};
use serde::{Deserialize, Serialize};

use super::clients::problem_list;
use super::i18n::{Lang, Text};
use super::layout::{ConsoleError, InLang, Shell, ok};
use super::session::{ConsoleUser, FormOrigin};
use crate::auth::permissions::NO_GRID;
use crate::catalog::{Put, parse_fields};
use crate::error::Error;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/catalog", get(catalog).post(save))
        .route("/console/catalog/new", get(new_category))
        .route("/console/catalog/{category}/edit", get(edit_category))
}

/// The example under the field box (a department-owned category's typical field).
const EXAMPLE: &str = r#"{"name":"care_level","type":"enum","values":["none","light","full"],"sensitivity":"sensitive","share":"conditional","encrypted":true,"indexed":true}"#;

/// A value's serde name (`sensitive`, `conditional`, `year`).
fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn type_text(ty: &FieldType) -> String {
    match ty {
        FieldType::Text { max_chars } => format!("text (≤ {max_chars})"),
        FieldType::IdNumber => "id_number".to_owned(),
        FieldType::Phone => "phone".to_owned(),
        FieldType::Date => "date".to_owned(),
        FieldType::Enum { values } => format!("enum: {}", values.join(" | ")),
        FieldType::TagSet { values } => format!("tag_set: {}", values.join(" | ")),
        FieldType::Integer { min, max } => format!("integer [{min}, {max}]"),
    }
}

fn mask_text(mask: &MaskRule) -> String {
    match mask {
        MaskRule::KeepFirstChars { n } => format!("keep_first_chars({n})"),
        MaskRule::KeepEnds { first, last } => format!("keep_ends({first}, {last})"),
    }
}

/// The form's field box as it opens for `fields`: one JSON object per line.
fn field_lines(fields: &[FieldDef]) -> String {
    fields
        .iter()
        .filter_map(|f| serde_json::to_string(f).ok())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The field box's lines as field definitions, or every problem, filed under `line N`.
fn parse_field_lines(text: &str) -> Result<Vec<FieldDef>, Error> {
    let mut values = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let label = format!("line {}", i + 1);
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => values.push((label, v)),
            Err(e) => problems.push(FieldProblem {
                field: label,
                problem: format!("not a JSON object: {e}"),
            }),
        }
    }
    match parse_fields(values) {
        Ok(fields) if problems.is_empty() => Ok(fields),
        Ok(_) => Err(Error::Validation(problems)),
        Err(Error::Validation(more)) => {
            problems.extend(more);
            problems.sort_by_key(|p| line_number(&p.field));
            Err(Error::Validation(problems))
        }
        Err(other) => Err(other),
    }
}

fn line_number(label: &str) -> usize {
    label
        .strip_prefix("line ")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[derive(Deserialize, Default)]
struct Saved {
    #[serde(default)]
    saved: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    added: Option<String>,
}

/// Every category (`CatalogService::current`, as `GET /v1/catalog`: `catalog:read`).
async fn catalog(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(saved): Query<Saved>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let catalog = state.catalog.current(&user.principal).await.in_lang(lang)?;
    let can_write = state
        .permits(&user.principal, NO_GRID, "catalog", "write")
        .await;
    let can_audit = state
        .permits(&user.principal, NO_GRID, "audit", "read")
        .await;
    let shell = Shell::of(&state, &user, "/console/catalog").await;
    let body = html! {
        @if let Some(name) = &saved.saved {
            p.notice role="status" {
                code { (name) } " — "
                (lang.t(match saved.outcome.as_deref() {
                    Some("created") => Text::CatalogCreated,
                    Some("changed") => Text::CatalogChanged,
                    _ => Text::CatalogUnchanged,
                }))
                @if let Some(added) = saved.added.as_deref().filter(|a| !a.is_empty()) {
                    " " (lang.t(Text::CatalogAdded)) ": " code { (added) }
                }
            }
        }
        @if can_write {
            p { a.button href="/console/catalog/new" { (lang.t(Text::CatalogNew)) } }
        }
        nav.contents aria-label=(lang.t(Text::CatalogContents)) {
            ul {
                @for c in catalog.categories() {
                    li { a href={ "#category-" (c.name) } { (c.name) } }
                }
            }
        }
        @for c in catalog.categories() {
            (category_section(lang, c, can_write, can_audit))
        }
    };
    Ok(ok(shell.page(lang.t(Text::CatalogTitle), body)))
}

fn category_section(lang: Lang, c: &CategoryDef, can_write: bool, can_audit: bool) -> Markup {
    let mut audit = form_urlencoded::Serializer::new(String::new());
    audit.append_pair("category", &c.name);
    html! {
        section.category id={ "category-" (c.name) } data-category=(c.name) aria-labelledby={ "title-" (c.name) } {
            h2 id={ "title-" (c.name) } { code { (c.name) } }
            @if !c.description.is_empty() { p { (c.description) } }
            dl.facts {
                dt { (lang.t(Text::CatalogOwner)) }
                dd data-owner=(c.owner.as_deref().unwrap_or("")) {
                    @match &c.owner {
                        Some(owner) => code { (owner) },
                        None => (lang.t(Text::CatalogGridSide)),
                    }
                }
            }
            p.actions {
                @if can_write {
                    a href={ "/console/catalog/" (c.name) "/edit" } aria-label={ (lang.t(Text::CatalogEditLink)) " " (c.name) } {
                        (lang.t(Text::CatalogEditLink))
                    }
                    " "
                }
                @if can_audit {
                    a href={ "/console/audit?" (audit.finish()) } { (lang.t(Text::CatalogEntries)) }
                }
            }
            // Focusable, so a keyboard can scroll a wide table (axe: scrollable-region-focusable).
            div.scroll tabindex="0" role="region" aria-labelledby={ "title-" (c.name) } {
                table.catalog-fields {
                    caption { (lang.t(Text::CatalogFieldsOf)) " " (c.name) }
                    thead { tr {
                        th scope="col" { (lang.t(Text::Field)) }
                        th scope="col" { (lang.t(Text::CatalogType)) }
                        th scope="col" { (lang.t(Text::CatalogSensitivity)) }
                        th scope="col" { (lang.t(Text::CatalogShare)) }
                        th scope="col" { (lang.t(Text::CatalogEncrypted)) }
                        th scope="col" { (lang.t(Text::CatalogIndexed)) }
                        th scope="col" { (lang.t(Text::CatalogRequired)) }
                        th scope="col" { (lang.t(Text::CatalogMask)) }
                        th scope="col" { (lang.t(Text::CatalogGeneralize)) }
                        th scope="col" { (lang.t(Text::CatalogDescription)) }
                    } }
                    tbody {
                        @for f in &c.fields {
                            tr data-field=(f.name) {
                                th scope="row" { code { (f.name) } }
                                td { (type_text(&f.ty)) }
                                td.sensitivity { (word(&f.sensitivity)) }
                                td { (word(&f.share)) }
                                td { (yes_no(lang, f.encrypted)) }
                                td { (yes_no(lang, f.indexed)) }
                                td { (yes_no(lang, f.required)) }
                                td { @if let Some(m) = &f.mask { code { (mask_text(m)) } } }
                                td { @if let Some(g) = &f.generalize { code { (word(g)) } } }
                                td { (f.description) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn yes_no(lang: Lang, value: bool) -> &'static str {
    lang.t(if value { Text::Yes } else { Text::No })
}

/// What the category form sends.
#[derive(Deserialize, Default)]
struct CategoryForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    category: String,
    #[serde(default)]
    description: String,
    /// Empty: the grid side.
    #[serde(default)]
    owner: String,
    #[serde(default)]
    fields: String,
}

/// The empty form (`catalog:write`, checked and audited as the API's `catalog.put`).
async fn new_category(
    State(state): State<AppState>,
    user: ConsoleUser,
) -> Result<Response, ConsoleError> {
    state
        .catalog
        .admit_write(&user.principal)
        .await
        .in_lang(user.lang)?;
    let page = form_page(&state, &user, &CategoryForm::default(), false, &[]).await?;
    Ok(ok(page))
}

/// The form filled with category `name` as it stands.
async fn edit_category(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    state
        .catalog
        .admit_write(&user.principal)
        .await
        .in_lang(lang)?;
    let catalog = state.catalog.current(&user.principal).await.in_lang(lang)?;
    let def = catalog
        .category(&name)
        .ok_or(Error::NotFound("category"))
        .in_lang(lang)?;
    let form = CategoryForm {
        csrf: None,
        category: def.name.clone(),
        description: def.description.clone(),
        owner: def.owner.clone().unwrap_or_default(),
        fields: field_lines(&def.fields),
    };
    let page = form_page(&state, &user, &form, true, &[]).await?;
    Ok(ok(page))
}

async fn form_page(
    state: &AppState,
    user: &ConsoleUser,
    form: &CategoryForm,
    editing: bool,
    problems: &[FieldProblem],
) -> Result<Markup, ConsoleError> {
    let lang = user.lang;
    // The owner is picked from the departments when the role may list them; else typed.
    let departments = if state
        .permits(&user.principal, NO_GRID, "departments", "read")
        .await
    {
        Some(
            state
                .identity
                .departments(&user.principal)
                .await
                .in_lang(lang)?,
        )
    } else {
        None
    };
    let shell = Shell::of(state, user, "/console/catalog").await;
    let title = lang.t(if editing {
        Text::CatalogEdit
    } else {
        Text::CatalogNew
    });
    let body = html! {
        (problem_list(lang, problems))
        form.category method="post" action="/console/catalog" {
            input type="hidden" name="csrf" value=(user.csrf);
            label for="category-name" { (lang.t(Text::CatalogName)) }
            input #category-name name="category" type="text" required readonly[editing]
                value=(form.category) pattern="[a-z][a-z0-9_]*" aria-describedby="category-name-rule";
            small #category-name-rule { (lang.t(Text::CatalogNameRule)) }
            label for="category-description" { (lang.t(Text::CatalogDescription)) }
            input #category-description name="description" type="text" value=(form.description);
            label for="category-owner" { (lang.t(Text::CatalogOwner)) }
            @match &departments {
                Some(departments) => select #category-owner name="owner" {
                    option value="" selected[form.owner.is_empty()] { (lang.t(Text::CatalogGridSide)) }
                    @for d in departments {
                        option value=(d.id) selected[d.id == form.owner] { (d.id) " — " (d.name) }
                    }
                },
                None => input #category-owner name="owner" type="text" value=(form.owner);,
            }
            label for="category-fields" { (lang.t(Text::CatalogFields)) }
            textarea #category-fields name="fields" rows="12" spellcheck="false" required
                aria-describedby="category-fields-help category-rules" { (form.fields) }
            div #category-fields-help {
                p { (lang.t(Text::CatalogFieldSyntax)) }
                pre.canonical { (EXAMPLE) }
            }
            p #category-rules { (lang.t(Text::CatalogRules)) }
            button type="submit" { (lang.t(Text::CatalogSave)) }
        }
    };
    Ok(shell.page(title, body))
}

/// Create or change a category (`CatalogService::put`, as `PUT /v1/catalog/{category}`).
async fn save(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    Form(form): Form<CategoryForm>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    user.check_form(&state, &origin, form.csrf.as_deref())
        .await?;
    // The role first, as the API does: a caller who may not change the catalog is refused
    // (and recorded) whatever its fields say.
    state
        .catalog
        .admit_write(&user.principal)
        .await
        .in_lang(lang)?;
    let name = form.category.trim().to_owned();
    let outcome = match parse_field_lines(&form.fields) {
        Ok(fields) => {
            let owner = form.owner.trim();
            let definition = CategoryDef {
                name: name.clone(),
                description: form.description.trim().to_owned(),
                owner: (!owner.is_empty()).then(|| owner.to_owned()),
                fields,
            };
            state.catalog.put(&user.principal, &name, definition).await
        }
        Err(e) => Err(e),
    };
    let (outcome, added) = match outcome {
        Ok(Put::Created) => ("created", String::new()),
        Ok(Put::Changed { added }) => ("changed", added.join(", ")),
        Ok(Put::Unchanged) => ("unchanged", String::new()),
        Err(Error::Validation(problems)) => {
            let catalog = state.catalog.current(&user.principal).await.in_lang(lang)?;
            let editing = catalog.category(&name).is_some();
            let mut response = ok(form_page(&state, &user, &form, editing, &problems).await?);
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(response);
        }
        Err(e) => return Err(ConsoleError::new(e, lang)),
    };
    let mut target = form_urlencoded::Serializer::for_suffix(
        "/console/catalog?".to_owned(),
        "/console/catalog?".len(),
    );
    target.append_pair("saved", &name);
    target.append_pair("outcome", outcome);
    target.append_pair("added", &added);
    let target = format!("{}#category-{name}", target.finish());
    Ok(Redirect::to(&target).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_box_round_trips_a_category() {
        let catalog = policy::Catalog::default_catalog();
        for category in catalog.categories() {
            let text = field_lines(&category.fields);
            assert_eq!(text.lines().count(), category.fields.len());
            let parsed = parse_field_lines(&text).map_err(|e| e.to_string());
            assert_eq!(parsed.as_ref(), Ok(&category.fields), "{}", category.name);
        }
    }

    #[test]
    fn the_example_is_a_valid_field() {
        assert!(parse_field_lines(EXAMPLE).is_ok());
    }

    #[test]
    fn bad_lines_are_named_by_line_number_and_blank_lines_are_skipped() {
        let text = format!("\n{EXAMPLE}\nnot json\n\n{{\"name\":\"x\"}}\n");
        let Err(Error::Validation(problems)) = parse_field_lines(&text) else {
            panic!("bad lines must be refused");
        };
        let lines: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(lines, ["line 3", "line 5"]);
    }
}
