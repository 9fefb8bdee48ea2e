//! Registered purposes of processing with their legal basis, and a form to register one, with
//! `Identity::purposes` and `Identity::create_purpose`, the methods behind
//! `GET/POST /v1/purposes`: the same checks, the same `purpose.create` entry. The page is an
//! admin's (`purposes:write` opens it, checked and audited as `console.purposes`).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::html;
use serde::Deserialize;

use super::grids::{answered, form_problem, problems_box};
use super::i18n::Text;
use super::layout::{ConsoleError, InLang, Shell};
use super::session::{ConsoleUser, FormOrigin};
use crate::error::Error;
use crate::identity::PurposeDraft;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/purposes", get(page).post(create))
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
        .authorize(
            &user.principal,
            "purposes",
            "write",
            None,
            "console.purposes",
        )
        .await
        .in_lang(lang)?;
    let purposes = state
        .identity
        .purposes(&user.principal)
        .await
        .in_lang(lang)?;
    let shell = Shell::of(state, user, "/console/purposes").await;
    let body = html! {
        @if let Some(id) = created {
            p.notice role="status" { code { (id) } " — " (lang.t(Text::PurposeCreated)) }
        }
        @if let Some(error) = refused { (problems_box(lang, error)) }
        div.scroll {
            table.purposes {
                caption { (lang.t(Text::PurposesTitle)) }
                thead { tr {
                    th scope="col" { (lang.t(Text::PurposeId)) }
                    th scope="col" { (lang.t(Text::PurposeDescription)) }
                    th scope="col" { (lang.t(Text::LegalBasis)) }
                } }
                tbody {
                    @for p in &purposes {
                        tr data-purpose=(p.id) {
                            th scope="row" { code { (p.id) } }
                            td { (p.description) }
                            td { (p.legal_basis) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="new-purpose" {
            h2 #new-purpose { (lang.t(Text::PurposeNew)) }
            form.admin method="post" action="/console/purposes" {
                input type="hidden" name="csrf" value=(user.csrf);
                label for="id" { (lang.t(Text::PurposeId)) }
                input #id name="id" type="text" required maxlength="64" autocomplete="off"
                    aria-describedby="id-help";
                p.help #id-help { (lang.t(Text::PurposeIdRule)) }
                label for="description" { (lang.t(Text::PurposeDescription)) }
                textarea #description name="description" required maxlength="500" rows="2" {}
                label for="legal_basis" { (lang.t(Text::LegalBasis)) }
                textarea #legal_basis name="legal_basis" required maxlength="500" rows="2" {}
                div { button type="submit" { (lang.t(Text::PurposeCreate)) } }
            }
        }
    };
    Ok(answered(
        shell.page(lang.t(Text::PurposesTitle), body),
        refused,
    ))
}

#[derive(Deserialize)]
struct NewPurpose {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    legal_basis: String,
}

/// Register a purpose (`Identity::create_purpose`, as `POST /v1/purposes`).
async fn create(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    Form(form): Form<NewPurpose>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &origin, form.csrf.as_deref())
        .await?;
    let draft = PurposeDraft {
        id: form.id.trim().to_owned(),
        description: form.description.trim().to_owned(),
        legal_basis: form.legal_basis.trim().to_owned(),
    };
    match state.identity.create_purpose(&user.principal, draft).await {
        Ok(row) => {
            let mut target = form_urlencoded::Serializer::for_suffix(
                "/console/purposes?".to_owned(),
                "/console/purposes?".len(),
            );
            target.append_pair("created", &row.id);
            Ok(Redirect::to(&target.finish()).into_response())
        }
        Err(e) if form_problem(&e) => render(&state, &user, None, Some(&e)).await,
        Err(e) => Err(ConsoleError::new(e, user.lang)),
    }
}
