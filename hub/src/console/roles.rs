//! Role permissions as a matrix: one row per (object, action) the policy knows, one column
//! per role, a tick where the role holds that permission. Each role's column is its own form
//! (the checkboxes name it with the `form` attribute), saved with `Identity::put_role`, the
//! method behind `PUT /v1/admin/roles/{role}`: the same checks (`roles:write`, the lock-out
//! guard), the same ledger entry, and live on the next request. A permission limited to some
//! grids keeps its grids while it stays ticked; a new tick holds in every grid.

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;

use super::i18n::Text;
use super::layout::{ConsoleError, InLang, Shell, ok};
use super::session::{ConsoleUser, FormOrigin};
use crate::auth::permissions::{EVERY_GRID, OBJECTS};
use crate::identity::{Permission, RolePut};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/roles", get(matrix))
        .route("/console/roles/{role}", post(save))
}

#[derive(Deserialize, Default)]
struct Notice {
    #[serde(default)]
    saved: Option<String>,
}

async fn matrix(
    State(state): State<AppState>,
    user: ConsoleUser,
    axum::extract::Query(notice): axum::extract::Query<Notice>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let roles = state.identity.roles(&user.principal).await.in_lang(lang)?;
    // role → (object, action) → grids
    let held: BTreeMap<&str, BTreeMap<(&str, &str), Vec<&str>>> = roles
        .iter()
        .map(|r| {
            let mut lines: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
            for (object, action, grids) in &r.permissions {
                lines
                    .entry((object.as_str(), action.as_str()))
                    .or_default()
                    .push(grids.as_str());
            }
            (r.name.as_str(), lines)
        })
        .collect();
    let shell = Shell::of(&state, &user, "/console/roles").await;
    let body = html! {
        @if let Some(role) = &notice.saved {
            p.notice role="status" { code { (role) } " — " (lang.t(Text::Saved)) }
        }
        p { (lang.t(Text::MatrixExplained)) }
        @for role in &roles {
            form id={ "role-" (role.name) } method="post" action={ "/console/roles/" (role.name) } {
                input type="hidden" name="csrf" value=(user.csrf);
            }
        }
        div.scroll {
            table.matrix {
                caption { (lang.t(Text::RolePermissions)) }
                thead {
                    tr {
                        th scope="col" { (lang.t(Text::Object)) }
                        th scope="col" { (lang.t(Text::Action)) }
                        @for role in &roles {
                            th scope="col" {
                                span title=(role.description) { (role.name) }
                                " "
                                button type="submit" form={ "role-" (role.name) }
                                    aria-label={ (lang.t(Text::Save)) " " (role.name) } { (lang.t(Text::Save)) }
                            }
                        }
                    }
                }
                tbody {
                    @for spec in OBJECTS {
                        @for action in spec.actions {
                            tr {
                                th scope="row" { code { (spec.name) } }
                                td { code { (action) } }
                                @for role in &roles {
                                    @let grids = held.get(role.name.as_str()).and_then(|l| l.get(&(spec.name, *action)));
                                    td {
                                        input type="checkbox" name="p" value={ (spec.name) ":" (action) }
                                            form={ "role-" (role.name) }
                                            checked[grids.is_some()]
                                            aria-label={ (role.name) " " (spec.name) ":" (action) };
                                        @if let Some(grids) = grids {
                                            @if !grids.contains(&EVERY_GRID) {
                                                " " small title=(grids.join(", ")) { (lang.t(Text::GridLimited)) }
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
    };
    Ok(ok(shell.page(lang.t(Text::RolePermissions), body)))
}

/// Save one role's column: the ticked `object:action` pairs become its permissions.
async fn save(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    Path(role): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    // Repeated `p` fields: parsed by hand (`Form` would keep one).
    let mut csrf = None;
    let mut ticked = BTreeSet::new();
    for (key, value) in form_urlencoded::parse(&body) {
        match key.as_ref() {
            "csrf" => csrf = Some(value.into_owned()),
            "p" => {
                if let Some((object, action)) = value.split_once(':') {
                    ticked.insert((object.to_owned(), action.to_owned()));
                }
            }
            _ => {}
        }
    }
    user.check_form(&state, &origin, csrf.as_deref()).await?;
    let current = state
        .identity
        .role(&user.principal, &role)
        .await
        .in_lang(lang)?;
    let mut kept: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (object, action, grids) in current.permissions {
        kept.entry((object, action)).or_default().push(grids);
    }
    let permissions = ticked
        .into_iter()
        .map(|(object, action)| {
            let grids = kept
                .get(&(object.clone(), action.clone()))
                .cloned()
                .unwrap_or_else(|| vec![EVERY_GRID.to_owned()]);
            Permission {
                object,
                action,
                grids,
            }
        })
        .collect();
    state
        .identity
        .put_role(
            &user.principal,
            &role,
            RolePut {
                description: None,
                permissions,
            },
        )
        .await
        .in_lang(lang)?;
    let mut target = form_urlencoded::Serializer::for_suffix(
        "/console/roles?".to_owned(),
        "/console/roles?".len(),
    );
    target.append_pair("saved", &role);
    Ok(Redirect::to(&target.finish()).into_response())
}
