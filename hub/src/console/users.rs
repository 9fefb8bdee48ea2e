//! Users: the list (username, roles, department, grids, status, created), a form to create one,
//! and a user's page to change its roles and grids and to disable or enable it. Every action is
//! the method behind its API twin, so it passes the same checks and writes the same entry:
//! `Identity::users` / `user` (`GET /v1/admin/users[/{id}]`), `create_user`
//! (`POST /v1/admin/users`), `assign_user_roles` (`PUT /v1/admin/users/{id}/roles`, with its
//! lock-out guard), `set_user_grids` (`PUT /v1/admin/users/{id}/grids`) and `set_user_disabled`
//! (`POST /v1/admin/users/{id}/disable|enable`). The pages are an admin's (`users:write`). No
//! password is ever shown; the initial one goes from the form to the hash and nowhere else.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use secrecy::SecretString;
use serde::Deserialize;

use super::grids::{answered, form_problem, grid_picker, problems_box};
use super::i18n::{Lang, Text};
use super::layout::{ConsoleError, InLang, Shell};
use super::session::{ConsoleUser, FormOrigin};
use crate::auth::Caller;
use crate::error::Error;
use crate::identity::{UserDraft, UserView};
use crate::state::AppState;
use crate::time::cst_minutes;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/users", get(list).post(create))
        .route("/console/users/{id}", get(detail))
        .route("/console/users/{id}/roles", post(set_roles))
        .route("/console/users/{id}/grids", post(set_grids))
        .route("/console/users/{id}/disable", post(disable))
        .route("/console/users/{id}/enable", post(enable))
}

#[derive(Deserialize, Default)]
struct Notice {
    #[serde(default)]
    done: Option<String>,
}

/// The notice a `done=` query names.
fn notice_text(done: Option<&str>) -> Option<Text> {
    match done? {
        "created" => Some(Text::UserCreated),
        "roles" => Some(Text::UserRolesSaved),
        "grids" => Some(Text::UserGridsSaved),
        "disabled" => Some(Text::UserDisabledNotice),
        "enabled" => Some(Text::UserEnabledNotice),
        _ => None,
    }
}

fn status_text(u: &UserView) -> Text {
    if u.disabled {
        Text::UserDisabledStatus
    } else {
        Text::UserActive
    }
}

/// Role checkboxes named `roles`, `held` ticked.
fn role_boxes(lang: Lang, roles: &[(String, String)], held: &[String], prefix: &str) -> Markup {
    html! {
        fieldset.picker {
            legend { (lang.t(Text::UserRolesLegend)) }
            ul.choices {
                @for (name, description) in roles {
                    @let id = format!("{prefix}-role-{name}");
                    li {
                        input type="checkbox" id=(id) name="roles" value=(name)
                            checked[held.contains(name)];
                        label.inline for=(id) title=(description) { code { (name) } }
                    }
                }
            }
        }
    }
}

/// (name, description) of every role, as `Identity::roles` lists them (`roles:read`).
async fn role_names(
    state: &AppState,
    user: &ConsoleUser,
) -> Result<Vec<(String, String)>, ConsoleError> {
    Ok(state
        .identity
        .roles(&user.principal)
        .await
        .in_lang(user.lang)?
        .into_iter()
        .map(|r| (r.name, r.description))
        .collect())
}

async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(notice): Query<Notice>,
) -> Result<Response, ConsoleError> {
    render_list(&state, &user, notice_text(notice.done.as_deref()), None).await
}

async fn render_list(
    state: &AppState,
    user: &ConsoleUser,
    notice: Option<Text>,
    refused: Option<&Error>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    // `Identity::users` checks `users:write` (audited): the page's permission.
    let users = state.identity.users(&user.principal).await.in_lang(lang)?;
    let roles = role_names(state, user).await?;
    let departments = state
        .identity
        .departments(&user.principal)
        .await
        .in_lang(lang)?;
    let grids = state.identity.grids(&user.principal).await.in_lang(lang)?;
    let shell = Shell::of(state, user, "/console/users").await;
    let body = html! {
        @if let Some(text) = notice {
            p.notice role="status" { (lang.t(text)) }
        }
        @if let Some(error) = refused { (problems_box(lang, error)) }
        @if users.is_empty() {
            p { (lang.t(Text::UserNone)) }
        } @else {
            div.scroll {
                table.users {
                    caption { (lang.t(Text::UsersTitle)) }
                    thead { tr {
                        th scope="col" { (lang.t(Text::Username)) }
                        th scope="col" { (lang.t(Text::Roles)) }
                        th scope="col" { (lang.t(Text::Department)) }
                        th scope="col" { (lang.t(Text::GridsTitle)) }
                        th scope="col" { (lang.t(Text::Status)) }
                        th scope="col" { (lang.t(Text::UserCreatedAt)) }
                    } }
                    tbody {
                        @for u in &users {
                            tr data-user=(u.id) data-username=(u.username) data-status=(if u.disabled { "disabled" } else { "active" }) {
                                th scope="row" {
                                    a href={ "/console/users/" (u.id) } { (u.username) }
                                }
                                td { @for r in &u.roles { code { (r) } " " } }
                                td { (u.department.as_deref().unwrap_or(lang.t(Text::UserNoDepartment))) }
                                td { @for g in &u.grids { code { (g) } " " } }
                                td class=(if u.disabled { "deny" } else { "allow" }) { (lang.t(status_text(u))) }
                                td { (cst_minutes(u.created_at)) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="new-user" {
            h2 #new-user { (lang.t(Text::UserNew)) }
            form.admin method="post" action="/console/users" {
                input type="hidden" name="csrf" value=(user.csrf);
                label for="username" { (lang.t(Text::Username)) }
                input #username name="username" type="text" required minlength="3" maxlength="64"
                    autocomplete="off" aria-describedby="username-help";
                p.help #username-help { (lang.t(Text::UserUsernameRule)) }
                label for="password" { (lang.t(Text::UserInitialPassword)) }
                input #password name="password" type="password" required minlength="12"
                    maxlength="256" autocomplete="new-password";
                (role_boxes(lang, &roles, &[], "new"))
                label for="department" { (lang.t(Text::Department)) }
                select #department name="department" {
                    option value="" { (lang.t(Text::UserNoDepartment)) }
                    @for d in &departments {
                        option value=(d.id) { (d.id) " — " (d.name) }
                    }
                }
                (grid_picker(lang, &grids, "grids", "new", &[], Text::UserGridsLegend, None))
                div { button type="submit" { (lang.t(Text::UserCreate)) } }
            }
        }
    };
    Ok(answered(
        shell.page(lang.t(Text::UsersTitle), body),
        refused,
    ))
}

/// A form's fields, repeated ones (`roles`, `grids`) kept in order (`Form` would keep one).
#[derive(Default)]
struct UserForm {
    csrf: Option<String>,
    username: String,
    password: String,
    department: Option<String>,
    roles: Vec<String>,
    grids: Vec<String>,
}

impl UserForm {
    fn parse(body: &[u8]) -> UserForm {
        let mut form = UserForm::default();
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "csrf" => form.csrf = Some(value.into_owned()),
                "username" => form.username = value.trim().to_owned(),
                "password" => form.password = value.into_owned(),
                "department" if !value.trim().is_empty() => {
                    form.department = Some(value.trim().to_owned());
                }
                "roles" => form.roles.push(value.into_owned()),
                "grids" => form.grids.push(value.into_owned()),
                _ => {}
            }
        }
        form
    }
}

/// Create a user (`Identity::create_user`, as `POST /v1/admin/users`).
async fn create(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let form = UserForm::parse(&body);
    user.check_form(&state, &origin, form.csrf.as_deref())
        .await?;
    let draft = UserDraft {
        username: form.username,
        password: SecretString::from(form.password),
        roles: form.roles,
        department: form.department,
        grids: form.grids,
    };
    match state.identity.create_user(&user.principal, draft).await {
        Ok(_) => Ok(Redirect::to("/console/users?done=created").into_response()),
        Err(e) if form_problem(&e) => render_list(&state, &user, None, Some(&e)).await,
        Err(e) => Err(ConsoleError::new(e, user.lang)),
    }
}

async fn detail(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> Result<Response, ConsoleError> {
    render_detail(
        &state,
        &user,
        &id,
        notice_text(notice.done.as_deref()),
        None,
    )
    .await
}

/// Is `id` the account of the admin looking at it?
fn own_account(user: &ConsoleUser, id: &str) -> bool {
    matches!(&user.principal.caller, Caller::User { id: me, .. } if me == id)
}

async fn render_detail(
    state: &AppState,
    user: &ConsoleUser,
    id: &str,
    notice: Option<Text>,
    refused: Option<&Error>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let target = state
        .identity
        .user(&user.principal, id)
        .await
        .in_lang(lang)?;
    let roles = role_names(state, user).await?;
    let grids = state.identity.grids(&user.principal).await.in_lang(lang)?;
    let shell = Shell::of(state, user, "/console/users").await;
    let base = format!("/console/users/{}", target.id);
    let body = html! {
        @if let Some(text) = notice {
            p.notice role="status" { (lang.t(text)) }
        }
        @if let Some(error) = refused { (problems_box(lang, error)) }
        dl.facts {
            dt { (lang.t(Text::Username)) } dd { (target.username) }
            dt { "ID" } dd { code { (target.id) } }
            dt { (lang.t(Text::Status)) }
            dd.status data-status=(if target.disabled { "disabled" } else { "active" }) {
                (lang.t(status_text(&target)))
            }
            dt { (lang.t(Text::Department)) }
            dd { (target.department.as_deref().unwrap_or(lang.t(Text::UserNoDepartment))) }
            dt { (lang.t(Text::UserCreatedAt)) } dd { (cst_minutes(target.created_at)) }
        }
        section aria-labelledby="roles-title" {
            h2 #roles-title { (lang.t(Text::Roles)) }
            form.admin.roles method="post" action={ (base) "/roles" } {
                input type="hidden" name="csrf" value=(user.csrf);
                (role_boxes(lang, &roles, &target.roles, "edit"))
                div { button type="submit" { (lang.t(Text::UserSaveRoles)) } }
            }
        }
        section aria-labelledby="grids-title" {
            h2 #grids-title { (lang.t(Text::GridsTitle)) }
            form.admin.grids method="post" action={ (base) "/grids" } {
                input type="hidden" name="csrf" value=(user.csrf);
                (grid_picker(lang, &grids, "grids", "edit", &target.grids, Text::UserGridsLegend, None))
                div { button type="submit" { (lang.t(Text::UserSaveGrids)) } }
            }
        }
        section aria-labelledby="status-title" {
            h2 #status-title { (lang.t(Text::Status)) }
            @if target.disabled {
                form.status method="post" action={ (base) "/enable" } {
                    input type="hidden" name="csrf" value=(user.csrf);
                    button.enable type="submit" { (lang.t(Text::UserEnable)) }
                }
            } @else if own_account(user, &target.id) {
                p.notice { (lang.t(Text::UserOwnAccount)) }
            } @else {
                p #disable-help { (lang.t(Text::UserDisableExplained)) }
                form.status method="post" action={ (base) "/disable" } {
                    input type="hidden" name="csrf" value=(user.csrf);
                    button.reject.disable type="submit" aria-describedby="disable-help" { (lang.t(Text::UserDisable)) }
                }
            }
        }
        p { a href="/console/users" { (lang.t(Text::UsersTitle)) } }
    };
    let title = format!("{} {}", lang.t(Text::UserTitle), target.username);
    Ok(answered(shell.page(&title, body), refused))
}

/// What a user's page changes.
#[derive(Clone, Copy)]
enum Change {
    Roles,
    Grids,
    Disable,
    Enable,
}

async fn set_roles(
    state: State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    id: Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    change(state, user, origin, id, body, Change::Roles).await
}

async fn set_grids(
    state: State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    id: Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    change(state, user, origin, id, body, Change::Grids).await
}

async fn disable(
    state: State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    id: Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    change(state, user, origin, id, body, Change::Disable).await
}

async fn enable(
    state: State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    id: Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    change(state, user, origin, id, body, Change::Enable).await
}

/// Check the form, call the API twin's method, and go back to the user's page with a notice
/// (or show the page again with the reasons of a refusal).
async fn change(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    Path(id): Path<String>,
    body: Bytes,
    change: Change,
) -> Result<Response, ConsoleError> {
    let form = UserForm::parse(&body);
    user.check_form(&state, &origin, form.csrf.as_deref())
        .await?;
    let who = &user.principal;
    let (done, outcome) = match change {
        Change::Roles => (
            "roles",
            state
                .identity
                .assign_user_roles(who, &id, &form.roles)
                .await
                .map(drop),
        ),
        Change::Grids => (
            "grids",
            state
                .identity
                .set_user_grids(who, &id, &form.grids)
                .await
                .map(drop),
        ),
        Change::Disable => (
            "disabled",
            state.identity.set_user_disabled(who, &id, true).await,
        ),
        Change::Enable => (
            "enabled",
            state.identity.set_user_disabled(who, &id, false).await,
        ),
    };
    match outcome {
        // INVARIANT: the service found user `id`, whose ids are UUIDs: a valid header value.
        Ok(()) => Ok(Redirect::to(&format!("/console/users/{id}?done={done}")).into_response()),
        Err(e) if form_problem(&e) => render_detail(&state, &user, &id, None, Some(&e)).await,
        Err(e) => Err(ConsoleError::new(e, user.lang)),
    }
}
