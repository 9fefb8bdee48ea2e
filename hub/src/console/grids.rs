//! The grid hierarchy as a tree (parent implied by the code), and a form to add a grid, with
//! `Identity::grids` and `Identity::create_grid`, the methods behind `GET/POST /v1/grids`: the
//! same checks, the same `grid.create` entry. The page is an admin's (`grids:write` opens it,
//! checked and audited as `console.grids`): grid workers read grids through the API, but have
//! no admin page.
//!
//! Also the pieces the admin pages of people and places share: the grid tree, the grid picker
//! (a tree of checkboxes, for jurisdictions and a user's grids) and the box that lists why a
//! form was refused.

use std::collections::{HashMap, HashSet};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{Markup, html};
use policy::GridCode;
use serde::Deserialize;

use super::i18n::{Lang, Text};
use super::layout::{ConsoleError, InLang, Shell, ok};
use super::session::{ConsoleUser, FormOrigin};
use crate::error::Error;
use crate::identity::GridDraft;
use crate::state::AppState;
use crate::storage::GridRow;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/grids", get(page).post(create))
}

/// Grids as a forest: roots are grids whose parent (by code) is not stored.
struct Tree<'a> {
    roots: Vec<&'a GridRow>,
    children: HashMap<String, Vec<&'a GridRow>>,
}

impl<'a> Tree<'a> {
    fn of(grids: &'a [GridRow]) -> Tree<'a> {
        let codes: HashSet<&str> = grids.iter().map(|g| g.code.as_str()).collect();
        let mut tree = Tree {
            roots: Vec::new(),
            children: HashMap::new(),
        };
        for grid in grids {
            let parent = GridCode::parse(&grid.code)
                .ok()
                .and_then(|c| c.parent())
                .map(|p| p.as_str().to_owned())
                .filter(|p| codes.contains(p.as_str()));
            match parent {
                Some(p) => tree.children.entry(p).or_default().push(grid),
                None => tree.roots.push(grid),
            }
        }
        tree
    }

    /// Nested lists, `item` drawing each grid. Depth is at most six (`GridCode`'s segments).
    fn branch(&self, nodes: &[&GridRow], item: &dyn Fn(&GridRow) -> Markup) -> Markup {
        html! {
            ul.tree {
                @for grid in nodes {
                    li {
                        (item(grid))
                        @if let Some(kids) = self.children.get(&grid.code) {
                            (self.branch(kids, item))
                        }
                    }
                }
            }
        }
    }

    fn render(&self, item: &dyn Fn(&GridRow) -> Markup) -> Markup {
        self.branch(&self.roots, item)
    }
}

/// The grid picker: every grid as a checkbox named `name` (value: its code), in its tree,
/// `checked` ticked. `prefix` keeps the ids unique when a page has more than one picker.
pub(super) fn grid_picker(
    lang: Lang,
    grids: &[GridRow],
    name: &str,
    prefix: &str,
    checked: &[String],
    legend: Text,
    help: Option<Text>,
) -> Markup {
    let tree = Tree::of(grids);
    let help_id = format!("{prefix}-help");
    let item = |g: &GridRow| {
        let id = format!("{prefix}-{}", g.code);
        html! {
            input type="checkbox" id=(id) name=(name) value=(g.code)
                checked[checked.contains(&g.code)];
            label.inline for=(id) { code { (g.code) } " " (g.name) }
        }
    };
    html! {
        fieldset.picker aria-describedby=[help.map(|_| help_id.clone())] {
            legend { (lang.t(legend)) }
            @if let Some(help) = help {
                p.help id=(help_id) { (lang.t(help)) }
            }
            @if grids.is_empty() {
                p { (lang.t(Text::GridNone)) }
            } @else {
                (tree.render(&item))
            }
        }
    }
}

/// Is `error` a refusal of what the form said (then the page is shown again with the reasons)
/// rather than of who sent it or of the hub?
pub(super) fn form_problem(error: &Error) -> bool {
    matches!(error, Error::Validation(_) | Error::Conflict(_))
}

/// Why a form was refused: the fields at fault (named, never their values) or the conflict.
pub(super) fn problems_box(lang: Lang, error: &Error) -> Markup {
    html! {
        div.error role="alert" {
            p { (lang.t(Text::FormProblems)) }
            @match error {
                Error::Validation(problems) => ul {
                    @for p in problems { li { code { (p.field) } ": " (p.problem) } }
                },
                other => p.message { (other.to_string()) },
            }
        }
    }
}

/// A page answered with the status of the refusal it shows, if any.
pub(super) fn answered(page: Markup, refused: Option<&Error>) -> Response {
    let mut response = ok(page);
    if let Some(error) = refused {
        *response.status_mut() = error.status_and_code().0;
    }
    response
}

#[derive(Deserialize, Default)]
struct Notice {
    #[serde(default)]
    created: Option<String>,
}

async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(notice): Query<Notice>,
) -> Result<Response, ConsoleError> {
    render(&state, &user, notice.created.as_deref(), None).await
}

async fn render(
    state: &AppState,
    user: &ConsoleUser,
    created: Option<&str>,
    refused: Option<&Error>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    state
        .authorize(&user.principal, "grids", "write", None, "console.grids")
        .await
        .in_lang(lang)?;
    let grids = state.identity.grids(&user.principal).await.in_lang(lang)?;
    let tree = Tree::of(&grids);
    let item = |g: &GridRow| {
        html! {
            span.grid data-code=(g.code) {
                code { (g.code) } " " (g.name) " "
                small.kind { (lang.t(if g.kind == "logical" { Text::GridLogical } else { Text::GridPhysical })) }
            }
        }
    };
    let shell = Shell::of(state, user, "/console/grids").await;
    let body = html! {
        @if let Some(code) = created {
            p.notice role="status" { code { (code) } " — " (lang.t(Text::GridCreated)) }
        }
        @if let Some(error) = refused { (problems_box(lang, error)) }
        section aria-labelledby="tree-title" {
            h2 #tree-title { (lang.t(Text::GridTree)) }
            @if grids.is_empty() {
                p { (lang.t(Text::GridNone)) }
            } @else {
                (tree.render(&item))
            }
        }
        section aria-labelledby="new-grid" {
            h2 #new-grid { (lang.t(Text::GridNew)) }
            form.admin method="post" action="/console/grids" {
                input type="hidden" name="csrf" value=(user.csrf);
                label for="code" { (lang.t(Text::GridCode)) }
                input #code name="code" type="text" required maxlength="200"
                    aria-describedby="code-help" autocomplete="off";
                p.help #code-help { (lang.t(Text::GridCodeHelp)) }
                label for="name" { (lang.t(Text::GridName)) }
                input #name name="name" type="text" required maxlength="100" autocomplete="off";
                label for="kind" { (lang.t(Text::Kind)) }
                select #kind name="kind" {
                    option value="physical" { (lang.t(Text::GridPhysical)) }
                    option value="logical" { (lang.t(Text::GridLogical)) }
                }
                div { button type="submit" { (lang.t(Text::GridCreate)) } }
            }
        }
    };
    Ok(answered(
        shell.page(lang.t(Text::GridsTitle), body),
        refused,
    ))
}

#[derive(Deserialize)]
struct NewGrid {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
}

/// Add a grid (`Identity::create_grid`, as `POST /v1/grids`), then back to the tree.
async fn create(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    Form(form): Form<NewGrid>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &origin, form.csrf.as_deref())
        .await?;
    let draft = GridDraft {
        code: form.code.trim().to_owned(),
        name: form.name,
        kind: form.kind,
    };
    match state.identity.create_grid(&user.principal, draft).await {
        Ok(row) => {
            let mut target = form_urlencoded::Serializer::for_suffix(
                "/console/grids?".to_owned(),
                "/console/grids?".len(),
            );
            target.append_pair("created", &row.code);
            Ok(Redirect::to(&target.finish()).into_response())
        }
        Err(e) if form_problem(&e) => render(&state, &user, None, Some(&e)).await,
        Err(e) => Err(ConsoleError::new(e, user.lang)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(code: &str) -> GridRow {
        GridRow {
            code: code.to_owned(),
            name: format!("{code} name"),
            kind: "physical".to_owned(),
        }
    }

    #[test]
    fn a_grid_hangs_under_the_parent_its_code_implies() {
        let grids = [
            grid("330110"),
            grid("330110.001"),
            grid("330110.001.001"),
            grid("330110.002"),
            grid("L.court"),
            grid("440100.001"),
        ];
        let tree = Tree::of(&grids);
        let roots: Vec<&str> = tree.roots.iter().map(|g| g.code.as_str()).collect();
        // A grid whose parent is not stored is a root rather than lost.
        assert_eq!(roots, ["330110", "L.court", "440100.001"]);
        let kids: Vec<&str> = tree.children["330110"]
            .iter()
            .map(|g| g.code.as_str())
            .collect();
        assert_eq!(kids, ["330110.001", "330110.002"]);
        assert_eq!(tree.children["330110.001"].len(), 1);
        let html = tree.render(&|g| html! { (g.code) }).into_string();
        assert_eq!(html.matches("<ul").count(), 3, "{html}");
    }

    #[test]
    fn the_picker_ticks_the_grids_it_is_given() {
        let grids = [grid("330110"), grid("330110.001")];
        let html = grid_picker(
            Lang::En,
            &grids,
            "jurisdiction",
            "new",
            &["330110.001".to_owned()],
            Text::DeptJurisdiction,
            None,
        )
        .into_string();
        assert!(
            html.contains(r#"id="new-330110.001" name="jurisdiction" value="330110.001" checked"#),
            "{html}"
        );
        assert!(!html.contains(r#"value="330110" checked"#), "{html}");
        assert!(
            html.contains(r#"<label class="inline" for="new-330110">"#),
            "{html}"
        );
    }
}
