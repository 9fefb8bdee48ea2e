//! The page shell every console page shares (header, navigation by permission, language
//! switch, logout form), and the console's error pages. Pages are built with `maud`, which
//! escapes every value it is given; nothing here takes raw HTML from a caller. No inline script
//! or style anywhere (the CSP forbids both): behaviour is in `/console/assets/console.js`.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};

use super::i18n::{Lang, Text};
use super::session::ConsoleUser;
use crate::auth::permissions::NO_GRID;
use crate::error::{Error, current_request_id};
use crate::state::AppState;

/// A section of the navigation: path, label, and the permission (object, action) that opens
/// it — the same one the section's API twin checks.
type Section = (&'static str, Text, &'static str, &'static str);

/// Oversight: what data protection officers read and answer.
const OVERSIGHT: &[Section] = &[
    ("/console/", Text::Overview, "", ""),
    ("/console/audit", Text::Audit, "audit", "read"),
    ("/console/subjects", Text::SubjectReport, "audit", "read"),
    ("/console/grants", Text::Grants, "grants", "approve"),
    ("/console/watchlist", Text::WatchTitle, "grants", "read"),
    ("/console/visibility", Text::WhoCanSee, "grants", "read"),
    ("/console/anomalies", Text::AnomTitle, "audit", "read"),
    ("/console/charts", Text::ChartTitle, "audit", "read"),
    ("/console/ledger", Text::LkTitle, "audit", "read"),
];

/// Administration: who may do what, and the reference data.
const ADMINISTRATION: &[Section] = &[
    ("/console/roles", Text::RolePermissions, "roles", "read"),
    ("/console/users", Text::UsersTitle, "users", "write"),
    (
        "/console/departments",
        Text::DeptTitle,
        "departments",
        "write",
    ),
    ("/console/clients", Text::ClientsTitle, "clients", "read"),
    ("/console/grids", Text::GridsTitle, "grids", "write"),
    (
        "/console/purposes",
        Text::PurposesTitle,
        "purposes",
        "write",
    ),
    ("/console/catalog", Text::CatalogTitle, "catalog", "read"),
];

/// The sections of `group` that `user`'s roles open.
async fn open_to(
    state: &AppState,
    user: &ConsoleUser,
    group: &[Section],
) -> Vec<(&'static str, Text)> {
    let mut open = Vec::new();
    for &(path, label, object, action) in group {
        if object.is_empty()
            || state
                .permits(&user.principal, NO_GRID, object, action)
                .await
        {
            open.push((path, label));
        }
    }
    open
}

/// What a page needs to draw its shell.
pub struct Shell<'a> {
    pub lang: Lang,
    pub user: Option<&'a ConsoleUser>,
    /// The oversight sections this user may open.
    pub sections: Vec<(&'static str, Text)>,
    /// The administration sections this user may open.
    pub admin_sections: Vec<(&'static str, Text)>,
    /// The path of the current section (marked in the navigation).
    pub current: &'a str,
}

impl<'a> Shell<'a> {
    /// The shell for `user`, with the sections its roles open.
    pub async fn of(state: &AppState, user: &'a ConsoleUser, current: &'a str) -> Shell<'a> {
        Shell {
            lang: user.lang,
            user: Some(user),
            sections: open_to(state, user, OVERSIGHT).await,
            admin_sections: open_to(state, user, ADMINISTRATION).await,
            current,
        }
    }

    /// The shell of a page without a session (login).
    pub fn anonymous(lang: Lang) -> Shell<'static> {
        Shell {
            lang,
            user: None,
            sections: Vec::new(),
            admin_sections: Vec::new(),
            current: "",
        }
    }

    /// A whole page: `title` in the `<title>` and the `<h1>`, `body` in `<main>`.
    pub fn page(&self, title: &str, body: Markup) -> Markup {
        let lang = self.lang;
        html! {
            (DOCTYPE)
            html lang=(lang.html_lang()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · " (lang.t(Text::AppName)) }
                    link rel="icon" href="data:,";
                    link rel="stylesheet" href="/console/assets/console.css";
                    script src="/console/assets/console.js" defer {}
                }
                body {
                    a.skip href="#main" { (lang.t(Text::SkipToContent)) }
                    header.top {
                        span.brand { (lang.t(Text::AppName)) }
                        @if !self.sections.is_empty() || !self.admin_sections.is_empty() {
                            nav aria-label=(lang.t(Text::MainNavigation)) {
                                @for (group, sections) in [(Text::NavOversight, &self.sections), (Text::NavAdministration, &self.admin_sections)] {
                                    @if !sections.is_empty() {
                                        div.group {
                                            span.group-name { (lang.t(group)) }
                                            ul {
                                                @for (path, label) in sections.iter() {
                                                    li {
                                                        @if *path == self.current {
                                                            a href=(path) aria-current="page" { (lang.t(*label)) }
                                                        } @else {
                                                            a href=(path) { (lang.t(*label)) }
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        div.session {
                            a.lang href={ "/console/lang?to=" (lang.other().code()) "&back=" (if self.current.is_empty() { "/console/" } else { self.current }) }
                                lang=(lang.other().html_lang()) { (lang.t(Text::SwitchLanguage)) }
                            @if let Some(user) = self.user {
                                span.who { (lang.t(Text::SignedInAs)) " " strong { (user.username) } }
                                form method="post" action="/console/logout" {
                                    input type="hidden" name="csrf" value=(user.csrf);
                                    button type="submit" { (lang.t(Text::LogOut)) }
                                }
                            }
                        }
                    }
                    main #main {
                        h1 { (title) }
                        (body)
                    }
                }
            }
        }
    }
}

/// A rendered page with status 200.
pub fn ok(page: Markup) -> Response {
    Html(page.into_string()).into_response()
}

/// A console failure: the hub's `Error` rendered as a page (403 says the attempt was
/// recorded; 401 goes to the login page). The status and stable code are the API's.
pub struct ConsoleError {
    error: Error,
    lang: Lang,
    csrf: bool,
}

impl ConsoleError {
    pub fn new(error: Error, lang: Lang) -> ConsoleError {
        ConsoleError {
            error,
            lang,
            csrf: false,
        }
    }

    /// A refused form (CSRF).
    pub fn csrf(error: Error, lang: Lang) -> ConsoleError {
        ConsoleError {
            error,
            lang,
            csrf: true,
        }
    }
}

/// `?` in console handlers: a service error becomes its page in the user's language.
pub trait InLang<T> {
    fn in_lang(self, lang: Lang) -> Result<T, ConsoleError>;
}

impl<T, E: Into<Error>> InLang<T> for Result<T, E> {
    fn in_lang(self, lang: Lang) -> Result<T, ConsoleError> {
        self.map_err(|e| ConsoleError::new(e.into(), lang))
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let lang = self.lang;
        let (status, code) = self.error.status_and_code();
        if status == StatusCode::UNAUTHORIZED {
            return Redirect::to("/console/login").into_response();
        }
        let (title, explained) = match status {
            StatusCode::FORBIDDEN if self.csrf => (Text::Forbidden, Some(Text::CsrfRefused)),
            StatusCode::FORBIDDEN => (Text::Forbidden, Some(Text::ForbiddenExplained)),
            StatusCode::NOT_FOUND => (Text::NotFound, None),
            _ => (Text::ErrorTitle, None),
        };
        // 5xx messages are the API's "internal error"; others name no personal value either
        // (crate::error). Logged by the API's own conversion.
        let message = if status.is_server_error() {
            let _logged = self.error.into_response();
            None
        } else {
            Some(self.error.to_string())
        };
        let shell = Shell::anonymous(lang);
        let body = html! {
            div.error role="alert" {
                @if let Some(text) = explained { p { (lang.t(text)) } }
                @if let Some(message) = &message { p.message { (message) } }
                dl.facts {
                    dt { (lang.t(Text::ErrorCode)) } dd { code { (code) } }
                    dt { (lang.t(Text::RequestId)) } dd { code { (current_request_id()) } }
                }
                p { a href="/console/" { (lang.t(Text::BackHome)) } }
            }
        };
        let mut response = Html(shell.page(lang.t(title), body).into_string()).into_response();
        *response.status_mut() = status;
        response
    }
}
