//! The web console at `/console/` for data protection officers and admins (issue 20):
//! server-rendered pages (maud), Chinese first, on the same service methods as the JSON API,
//! so the two cannot disagree: every console action passes the API's permission checks and is
//! recorded in the ledger like its API twin. HTTP in and out only; no SQL, no policy here.
//!
//! Guarantees of every console answer (`security_headers`): a `Content-Security-Policy` without
//! `unsafe-inline` or `unsafe-eval` and with `frame-ancestors 'none'`; sessions and CSRF as in
//! `session`. No page shows a personal value: officers see record ids, field names and levels.

mod anomalies;
mod audit;
mod catalog;
mod charts;
mod clients;
mod departments;
mod grants;
mod grids;
pub mod i18n;
mod layout;
mod ledger;
mod purposes;
mod roles;
pub mod session;
mod subjects;
mod users;
mod visibility;
mod watchlist;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::html;
use serde::Deserialize;

use crate::auth::Connection;
use crate::auth::login::PasswordLogin;
use crate::auth::permissions::NO_GRID;
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft};
use crate::state::AppState;
use i18n::{LANG_COOKIE, Lang, Text};
use layout::{ConsoleError, InLang, Shell, ok};
use session::{ConsoleUser, FormOrigin, safe_next};

/// The policy of every console answer: scripts and styles from the hub only, no inline code,
/// no framing, forms post back here only; `connect-src 'self'` for the proof check's fetches.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(home))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/lang", get(switch_language))
        .route("/console/assets/{name}", get(asset))
        .merge(audit::router())
        .merge(grants::router())
        .merge(roles::router())
        .merge(subjects::router())
        .merge(visibility::router())
        // Oversight: anomalies and charts.
        .merge(anomalies::router())
        .merge(charts::router())
        // Ledger and keys; the watchlist.
        .merge(ledger::router())
        .merge(watchlist::router())
        // Admin: people and places.
        .merge(users::router())
        .merge(departments::router())
        .merge(grids::router())
        .merge(purposes::router())
        // Admin: systems and the catalog.
        .merge(clients::router())
        .merge(catalog::router())
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Browsers send `Origin: null` on form posts under `no-referrer` (the API's policy); the
    // console's forms need their origin (`session::same_origin`), and no other site learns
    // anything: `same-origin` sends no referrer off the hub.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The stylesheet and scripts, compiled into the binary (no CDN: the console works offline).
async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "console.css" => (
            include_str!("assets/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_str!("assets/console.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return (StatusCode::NOT_FOUND, "").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
struct LangQuery {
    to: String,
    #[serde(default)]
    back: Option<String>,
}

/// Remember the chosen language (a cookie of its own: it says nothing about the user).
async fn switch_language(Query(q): Query<LangQuery>) -> Response {
    let lang = Lang::parse(&q.to).unwrap_or(Lang::Zh);
    let back = q
        .back
        .filter(|b| safe_next(b))
        .unwrap_or_else(|| "/console/".to_owned());
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/console; Secure; SameSite=Strict; Max-Age=31536000",
        lang.code()
    );
    let mut response = Redirect::to(&back).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    expired: Option<String>,
}

fn login_form(lang: Lang, next: &str, notice: Option<Text>) -> maud::Markup {
    let shell = Shell::anonymous(lang);
    let body = html! {
        @if let Some(notice) = notice {
            p.notice role="alert" { (lang.t(notice)) }
        }
        form.login method="post" action="/console/login" {
            input type="hidden" name="next" value=(next);
            label for="username" { (lang.t(Text::Username)) }
            input #username name="username" type="text" autocomplete="username" required autofocus;
            label for="password" { (lang.t(Text::Password)) }
            input #password name="password" type="password" autocomplete="current-password" required;
            button type="submit" { (lang.t(Text::LogIn)) }
        }
    };
    shell.page(lang.t(Text::LogIn), body)
}

async fn login_page(headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    let lang = Lang::of(&headers);
    let next = q
        .next
        .filter(|n| safe_next(n))
        .unwrap_or_else(|| "/console/".to_owned());
    let notice = q.expired.is_some().then_some(Text::SessionExpired);
    ok(login_form(lang, &next, notice))
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// The login form: the password check of `POST /v1/auth/login` (throttled, audited as
/// `auth.console_login`), then a session. A form from another origin is refused (login CSRF).
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    origin: FormOrigin,
    connection: Connection,
    Form(form): Form<LoginForm>,
) -> Result<Response, ConsoleError> {
    let lang = Lang::of(&headers);
    if !origin.0 {
        let reason = "console login form from another origin";
        let error = state
            .deny(
                Default::default(),
                "console.csrf",
                reason,
                Error::Forbidden(reason.to_owned()),
            )
            .await;
        return Err(ConsoleError::csrf(error, lang));
    }
    let next = form
        .next
        .filter(|n| safe_next(n))
        .unwrap_or_else(|| "/console/".to_owned());
    let checked = PasswordLogin {
        store: &state.store,
        access: &state.access,
        limiter: &state.login_limiter,
    }
    .check(
        &form.username,
        form.password,
        connection.peer.ip(),
        "auth.console_login",
    )
    .await;
    let user = match checked {
        Ok(user) => user,
        Err(Error::Unauthenticated) => {
            let mut page = ok(login_form(lang, &next, Some(Text::LoginFailed)));
            *page.status_mut() = StatusCode::UNAUTHORIZED;
            return Ok(page);
        }
        Err(Error::RateLimited { retry_after_secs }) => {
            let mut page = ok(login_form(lang, &next, Some(Text::LoginThrottled)));
            *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                page.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Ok(page);
        }
        Err(other) => return Err(ConsoleError::new(other, lang)),
    };
    let cookie = session::open(&state, &user.id).await.in_lang(lang)?;
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: Option<String>,
}

/// End the session (a form with the CSRF token, so another site cannot log the user out).
async fn logout(
    State(state): State<AppState>,
    user: ConsoleUser,
    origin: FormOrigin,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &origin, form.csrf.as_deref())
        .await?;
    state
        .audit(EntryDraft::new(
            user.principal.actor(),
            "auth.console_logout",
            Decision::Allow,
            current_request_id(),
        ))
        .await
        .in_lang(user.lang)?;
    session::close(&state, &headers).await.in_lang(user.lang)?;
    let mut response = Redirect::to("/console/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::forget());
    Ok(response)
}

/// The overview: the ledger's size and the grant queue's length, for those who may see them.
async fn home(State(state): State<AppState>, user: ConsoleUser) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    let shell = Shell::of(&state, &user, "/console/").await;
    let queue = if state
        .permits(&user.principal, NO_GRID, "grants", "approve")
        .await
    {
        let requested = grants::requested(&state, &user).await.in_lang(lang)?;
        let overdue = requested.iter().filter(|g| g.overdue).count();
        Some((requested.len(), overdue))
    } else {
        None
    };
    let audit = state
        .permits(&user.principal, NO_GRID, "audit", "read")
        .await;
    let body = html! {
        dl.facts {
            dt { (lang.t(Text::Roles)) } dd { (user.principal.roles.join(", ")) }
            @if audit {
                dt { (lang.t(Text::LedgerSize)) } dd { (state.ledger.size()) }
            }
            @if let Some((requested, overdue)) = queue {
                dt { (lang.t(Text::PendingGrants)) }
                dd { a href="/console/grants" { (requested) } }
                dt { (lang.t(Text::OverdueGrants)) } dd { (overdue) }
            }
        }
    };
    Ok(ok(shell.page(lang.t(Text::Overview), body)))
}
