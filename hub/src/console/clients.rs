//! Department systems (clients) in the console: the list with each certificate's thumbprint
//! (`x5t#S256`), issuer and expiry (Beijing time, days left, marked within 30 days), a page per
//! client with its certificate for download or copying, registration from an uploaded CSR (or a
//! pasted one, or an external CA's certificate), and revocation after a confirm step.
//!
//! Every page and form calls the method behind its API twin (`Identity::clients`, `client`,
//! `create_client`, `revoke_client`: `GET /v1/admin/clients`, `GET …/{id}`, `POST
//! /v1/admin/clients`, `POST …/{id}/revoke`), so it passes the same permission check and writes
//! the same ledger entry. The hub only ever sees a CSR or a certificate: no private key is
//! asked for, and none is accepted.

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{Markup, html};
use serde::Deserialize;

use super::i18n::{Lang, Text};
use super::layout::{ConsoleError, InLang, Shell, ok};
use super::session::{ConsoleUser, FormOrigin};
use crate::auth::permissions::NO_GRID;
use crate::error::Error;
use crate::identity::ClientDraft;
use crate::state::AppState;
use crate::storage::ClientRow;
use crate::time::{cst_minutes, rfc3339};

/// A certificate that ends within this many days is marked in the list.
const EXPIRY_WARNING_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;
/// The largest text a registration form field may carry (a CSR or certificate is ~1–4 KiB).
const FIELD_LIMIT: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/clients", get(list).post(register))
        .route("/console/clients/new", get(new_client))
        .route("/console/clients/{id}", get(detail))
        .route("/console/clients/{id}/certificate.pem", get(certificate))
        .route(
            "/console/clients/{id}/revoke",
            get(confirm_revoke).post(revoke),
        )
}

/// Days from `now` to `not_after`, rounded down (negative once expired).
fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(DAY_MS)
}

/// The expiry cell: Beijing time (with the RFC 3339 instant in `datetime`), days left, and a
/// mark when it is expired or ends within `EXPIRY_WARNING_DAYS`.
fn expiry(lang: Lang, not_after: i64, now: i64) -> Markup {
    let left = days_left(not_after, now);
    html! {
        time datetime=(rfc3339(not_after)) { (cst_minutes(not_after)) }
        @if not_after <= now {
            " " strong.expired data-expiry="expired" { (lang.t(Text::ClientExpired)) }
        } @else {
            " (" span.days-left { (left) } " " (lang.t(Text::ClientDaysLeft)) ")"
            @if left < EXPIRY_WARNING_DAYS {
                " " strong.expiring data-expiry="soon" { (lang.t(Text::ClientExpiringSoon)) }
            }
        }
    }
}

fn status(lang: Lang, client: &ClientRow) -> &'static str {
    lang.t(if client.active {
        Text::ClientActive
    } else {
        Text::ClientRevokedStatus
    })
}

fn issuer(lang: Lang, client: &ClientRow) -> &'static str {
    match client.issuer.as_str() {
        "hub" => lang.t(Text::ClientIssuerHub),
        _ => lang.t(Text::ClientIssuerExternal),
    }
}

#[derive(Deserialize, Default)]
struct ListNotice {
    #[serde(default)]
    revoked: Option<String>,
}

/// Every client (`Identity::clients`, as `GET /v1/admin/clients`: `clients:read`).
async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(notice): Query<ListNotice>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let clients = state
        .identity
        .clients(&user.principal)
        .await
        .in_lang(lang)?;
    let can_write = state
        .permits(&user.principal, NO_GRID, "clients", "write")
        .await;
    let now = state.clock.now_ms();
    let shell = Shell::of(&state, &user, "/console/clients").await;
    let body = html! {
        @if let Some(id) = &notice.revoked {
            p.notice role="status" { code { (id) } " — " (lang.t(Text::ClientRevokedNotice)) }
        }
        @if can_write {
            p { a.button href="/console/clients/new" { (lang.t(Text::ClientRegister)) } }
        }
        @if clients.is_empty() {
            p { (lang.t(Text::ClientNone)) }
        } @else {
            // Focusable, so a keyboard can scroll a wide table (axe: scrollable-region-focusable).
            div.scroll tabindex="0" role="region" aria-label=(lang.t(Text::ClientsTitle)) {
                table.clients {
                    caption { (lang.t(Text::ClientsTitle)) }
                    thead { tr {
                        th scope="col" { (lang.t(Text::ClientId)) }
                        th scope="col" { (lang.t(Text::Department)) }
                        th scope="col" { (lang.t(Text::Status)) }
                        th scope="col" { (lang.t(Text::ClientIssuer)) }
                        th scope="col" { (lang.t(Text::ClientThumbprint)) }
                        th scope="col" { (lang.t(Text::ClientExpires)) }
                        th scope="col" { (lang.t(Text::Roles)) }
                    } }
                    tbody {
                        @for c in &clients {
                            tr data-client=(c.id) data-status=(if c.active { "active" } else { "revoked" }) {
                                th scope="row" { a href={ "/console/clients/" (c.id) } { (c.id) } }
                                td { (c.department) }
                                td { (status(lang, c)) }
                                td { (issuer(lang, c)) }
                                td { code.thumbprint { (c.thumbprint) } }
                                td.expires { (expiry(lang, c.not_after, now)) }
                                td { (c.roles.join(", ")) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(ok(shell.page(lang.t(Text::ClientsTitle), body)))
}

/// What the registration form sent (none of it checked yet: `Identity::create_client` does).
#[derive(Default)]
struct Registration {
    csrf: Option<String>,
    id: String,
    department: String,
    csr_file: String,
    csr_pem: String,
    certificate_pem: String,
    age_recipient: String,
}

impl Registration {
    /// The draft the service checks: the uploaded CSR, else the pasted one; blank means absent.
    /// A text box sends its line breaks as CRLF; PEM is kept with the LF it was written with.
    fn draft(&self) -> ClientDraft {
        let given = |s: &str| (!s.trim().is_empty()).then(|| s.replace("\r\n", "\n"));
        ClientDraft {
            id: self.id.trim().to_owned(),
            department: self.department.clone(),
            csr_pem: given(&self.csr_file).or_else(|| given(&self.csr_pem)),
            certificate_pem: given(&self.certificate_pem),
            age_recipient: given(self.age_recipient.trim()),
        }
    }
}

/// The registration form's fields from its `multipart/form-data` body; unknown parts are
/// ignored, oversized ones refused.
async fn read_registration(mut multipart: Multipart) -> Result<Registration, Error> {
    let mut form = Registration::default();
    let bad = |_| Error::BadRequest("not a readable form".to_owned());
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(bad)?;
        if bytes.len() > FIELD_LIMIT {
            return Err(Error::validation(name, "too large for a PEM text"));
        }
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::validation(name.clone(), "not UTF-8 text (PEM)"))?;
        match name.as_str() {
            "csrf" => form.csrf = Some(text),
            "id" => form.id = text,
            "department" => form.department = text,
            "csr_file" => form.csr_file = text,
            "csr_pem" => form.csr_pem = text,
            "certificate_pem" => form.certificate_pem = text,
            "age_recipient" => form.age_recipient = text,
            _ => {}
        }
    }
    Ok(form)
}

/// The registration form (`clients:write`), filled with `sent` after a refusal.
async fn new_client(
    State(state): State<AppState>,
    user: ConsoleUser,
) -> Result<Response, ConsoleError> {
    state
        .authorize(&user.principal, "clients", "write", None, "client.create")
        .await
        .in_lang(user.lang)?;
    let page = registration_page(&state, &user, &Registration::default(), &[]).await?;
    Ok(ok(page))
}

async fn registration_page(
    state: &AppState,
    user: &ConsoleUser,
    sent: &Registration,
    problems: &[policy::FieldProblem],
) -> Result<Markup, ConsoleError> {
    let lang = user.lang;
    let departments = state
        .identity
        .departments(&user.principal)
        .await
        .in_lang(lang)?;
    let shell = Shell::of(state, user, "/console/clients").await;
    let body = html! {
        (problem_list(lang, problems))
        p #register-help { (lang.t(Text::ClientRegisterExplained)) }
        form.register method="post" action="/console/clients" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(user.csrf);
            label for="client-id" { (lang.t(Text::ClientId)) }
            input #client-id name="id" type="text" required value=(sent.id)
                pattern="[a-z0-9][a-z0-9\\-]{1,62}" aria-describedby="client-id-rule";
            small #client-id-rule { (lang.t(Text::ClientIdRule)) }
            label for="client-department" { (lang.t(Text::Department)) }
            select #client-department name="department" required {
                @for d in &departments {
                    option value=(d.id) selected[d.id == sent.department] { (d.id) " — " (d.name) }
                }
            }
            fieldset {
                legend { (lang.t(Text::ClientCredential)) }
                label for="client-csr-file" { (lang.t(Text::ClientCsrFile)) }
                input #client-csr-file name="csr_file" type="file" accept=".pem,.csr,.req,text/plain";
                label for="client-csr-pem" { (lang.t(Text::ClientCsrPem)) }
                textarea #client-csr-pem name="csr_pem" rows="4" spellcheck="false" { (sent.csr_pem) }
                label for="client-certificate-pem" { (lang.t(Text::ClientExternalCertificate)) }
                textarea #client-certificate-pem name="certificate_pem" rows="4" spellcheck="false" { (sent.certificate_pem) }
            }
            label for="client-age" { (lang.t(Text::ClientAgeRecipient)) }
            input #client-age name="age_recipient" type="text" value=(sent.age_recipient) spellcheck="false";
            button type="submit" { (lang.t(Text::ClientRegisterButton)) }
        }
    };
    Ok(shell.page(lang.t(Text::ClientRegister), body))
}

/// The problems of a refused form, with the API's code (`validation_failed`).
pub(super) fn problem_list(lang: Lang, problems: &[policy::FieldProblem]) -> Markup {
    html! {
        @if !problems.is_empty() {
            div.error role="alert" {
                p { (lang.t(Text::ClientFormProblems)) }
                ul.problems {
                    @for p in problems {
                        li { code { (p.field) } ": " (p.problem) }
                    }
                }
                dl.facts {
                    dt { (lang.t(Text::ErrorCode)) } dd { code { "validation_failed" } }
                }
            }
        }
    }
}

/// Register (`Identity::create_client`, as `POST /v1/admin/clients`); then the client's page,
/// which offers its certificate. Field problems: the form again, filled in, with 422.
async fn register(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let multipart =
        multipart.map_err(|e| ConsoleError::new(Error::BadRequest(e.body_text()), lang))?;
    let form = read_registration(multipart).await.in_lang(lang)?;
    user.check_form(&state, &origin, form.csrf.as_deref())
        .await?;
    match state
        .identity
        .create_client(&user.principal, form.draft())
        .await
    {
        Ok(row) => {
            Ok(Redirect::to(&format!("/console/clients/{}?registered=1", row.id)).into_response())
        }
        Err(Error::Validation(problems)) => {
            let page = registration_page(&state, &user, &form, &problems).await?;
            let mut response = ok(page);
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(e) => Err(ConsoleError::new(e, lang)),
    }
}

#[derive(Deserialize, Default)]
struct DetailNotice {
    #[serde(default)]
    registered: Option<String>,
}

/// One client (`Identity::client`, as `GET /v1/admin/clients/{id}`) with its certificate.
async fn detail(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    Query(notice): Query<DetailNotice>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let client = state
        .identity
        .client(&user.principal, &id)
        .await
        .in_lang(lang)?;
    let can_write = state
        .permits(&user.principal, NO_GRID, "clients", "write")
        .await;
    let now = state.clock.now_ms();
    let shell = Shell::of(&state, &user, "/console/clients").await;
    let body = html! {
        @if notice.registered.is_some() {
            p.notice role="status" { (lang.t(Text::ClientRegistered)) }
        }
        (facts(lang, &client, now))
        @if can_write && client.active {
            p { a.button.danger href={ "/console/clients/" (client.id) "/revoke" } { (lang.t(Text::ClientRevoke)) "…" } }
        }
        h2 { (lang.t(Text::ClientCertificate)) }
        p { (lang.t(Text::ClientCertificatePublic)) }
        p.actions {
            a href={ "/console/clients/" (client.id) "/certificate.pem" } download={ (client.id) ".pem" } {
                (lang.t(Text::ClientDownload))
            }
            " "
            button type="button" hidden data-copy="certificate-pem" data-copied=(lang.t(Text::ClientCopied)) {
                (lang.t(Text::ClientCopy))
            }
            " " span.copy-status role="status" {}
        }
        pre.canonical #certificate-pem tabindex="0" role="region" aria-label=(lang.t(Text::ClientCertificate)) { (client.certificate_pem) }
    };
    Ok(ok(shell.page(
        &format!("{} {}", lang.t(Text::ClientDetail), client.id),
        body,
    )))
}

fn facts(lang: Lang, client: &ClientRow, now: i64) -> Markup {
    html! {
        dl.facts.client data-client=(client.id) {
            dt { (lang.t(Text::ClientId)) } dd { code { (client.id) } }
            dt { (lang.t(Text::Department)) } dd { (client.department) }
            dt { (lang.t(Text::Status)) }
            dd data-status=(if client.active { "active" } else { "revoked" }) { strong { (status(lang, client)) } }
            dt { (lang.t(Text::ClientIssuer)) } dd { (issuer(lang, client)) }
            dt { (lang.t(Text::ClientThumbprint)) } dd { code.thumbprint { (client.thumbprint) } }
            dt { (lang.t(Text::ClientExpires)) } dd.expires { (expiry(lang, client.not_after, now)) }
            dt { (lang.t(Text::Roles)) } dd { (client.roles.join(", ")) }
            @if let Some(r) = &client.age_recipient {
                dt { (lang.t(Text::ClientAgeRecipient)) } dd { code { (r) } }
            }
        }
    }
}

/// The certificate as a PEM file (`Identity::client`: `clients:read`). Public material only.
async fn certificate(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let client = state
        .identity
        .client(&user.principal, &id)
        .await
        .in_lang(user.lang)?;
    // INVARIANT (valid_id): a stored client id is `[a-z0-9-]`, so it is safe in the header.
    let disposition = format!("attachment; filename=\"{}.pem\"", client.id);
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-pem-file".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        client.certificate_pem,
    )
        .into_response())
}

/// The confirm step before a revocation (for those whose role may revoke).
async fn confirm_revoke(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    state
        .authorize(&user.principal, "clients", "write", None, "client.revoke")
        .await
        .in_lang(lang)?;
    let client = state
        .identity
        .client(&user.principal, &id)
        .await
        .in_lang(lang)?;
    let now = state.clock.now_ms();
    let shell = Shell::of(&state, &user, "/console/clients").await;
    let body = html! {
        (facts(lang, &client, now))
        form.confirm method="post" action={ "/console/clients/" (client.id) "/revoke" } {
            input type="hidden" name="csrf" value=(user.csrf);
            p.notice role="alert" { (lang.t(Text::ClientRevokeConfirm)) }
            button.reject type="submit" { (lang.t(Text::ClientRevokeYes)) }
            " "
            a href={ "/console/clients/" (client.id) } { (lang.t(Text::ClientCancel)) }
        }
    };
    Ok(ok(shell.page(
        &format!("{} {}", lang.t(Text::ClientRevokeTitle), client.id),
        body,
    )))
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: Option<String>,
}

/// Revoke (`Identity::revoke_client`, as `POST /v1/admin/clients/{id}/revoke`).
async fn revoke(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &origin, form.csrf.as_deref())
        .await?;
    state
        .identity
        .revoke_client(&user.principal, &id)
        .await
        .in_lang(user.lang)?;
    let mut target = form_urlencoded::Serializer::for_suffix(
        "/console/clients?".to_owned(),
        "/console/clients?".len(),
    );
    target.append_pair("revoked", &id);
    Ok(Redirect::to(&target.finish()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_round_down_and_go_negative_after_expiry() {
        assert_eq!(days_left(10 * DAY_MS, 0), 10);
        assert_eq!(days_left(10 * DAY_MS - 1, 0), 9);
        assert_eq!(days_left(0, 1), -1);
    }

    #[test]
    fn a_certificate_within_thirty_days_is_marked_and_an_expired_one_says_so() {
        let now = 1_800_000_000_000;
        let soon = expiry(Lang::En, now + 29 * DAY_MS, now).into_string();
        assert!(
            soon.contains("data-expiry=\"soon\"") && soon.contains("29"),
            "{soon}"
        );
        let later = expiry(Lang::En, now + 31 * DAY_MS, now).into_string();
        assert!(!later.contains("data-expiry"), "{later}");
        let gone = expiry(Lang::Zh, now - 1, now).into_string();
        assert!(gone.contains("data-expiry=\"expired\"") && gone.contains("已过期"));
    }

    #[test]
    fn an_uploaded_csr_wins_over_a_pasted_one_and_blanks_are_absent() {
        let form = Registration {
            id: " civil-sys ".to_owned(),
            csr_file: "FILE".to_owned(),
            csr_pem: "PASTED".to_owned(),
            certificate_pem: "  \n".to_owned(),
            ..Registration::default()
        };
        let draft = form.draft();
        assert_eq!(draft.id, "civil-sys");
        assert_eq!(draft.csr_pem.as_deref(), Some("FILE"));
        assert!(draft.certificate_pem.is_none() && draft.age_recipient.is_none());
        let pasted = Registration {
            certificate_pem: "-----BEGIN\r\nAA\r\n-----END\r\n".to_owned(),
            ..Registration::default()
        };
        assert_eq!(
            pasted.draft().certificate_pem.as_deref(),
            Some("-----BEGIN\nAA\n-----END\n")
        );
    }
}
