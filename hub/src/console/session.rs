//! Console sessions and the checks every console request passes.
//!
//! A login with the user's password (throttled and audited like `POST /v1/auth/login`, as
//! `auth.console_login`) opens a session: 32 random bytes in the `gridhub_console` cookie
//! (`HttpOnly; Secure; SameSite=Strict; Path=/console`, no `Max-Age`: the browser forgets it
//! when it closes), of which the hub stores only the SHA-256. Guarantees:
//! - a session ends at logout, `console_idle_secs` after its last request or
//!   `console_session_secs` after its login, on the hub's clock; a disabled user's session ends
//!   on its next request;
//! - every request of a session acts as the user's `Principal`, read afresh (roles, versions),
//!   so the console passes exactly the permission checks of the API;
//! - every state-changing form carries the session's CSRF token and comes from this origin
//!   (`Origin`, else `Sec-Fetch-Site`); a refusal changes nothing and is a `deny` entry
//!   (`console.csrf`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

use super::i18n::Lang;
use super::layout::ConsoleError;
use crate::auth::Principal;
use crate::error::Error;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "gridhub_console";

/// A session's `last_seen_ms` is written at most this often (one write per minute of use, not
/// one per request); idle expiry is therefore exact to within a minute.
const TOUCH_EVERY_MS: i64 = 60_000;

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn random_token() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Internal("no randomness for a session token".to_owned()))?;
    Ok(B64URL.encode(bytes))
}

fn token_hash(token: &str) -> String {
    crate::hex::encode(digest(&SHA256, token.as_bytes()).as_ref())
}

/// Does a session made at `created_ms` and last used at `last_seen_ms` still hold at `now_ms`?
pub fn session_live(state: &AppState, created_ms: i64, last_seen_ms: i64, now_ms: i64) -> bool {
    let idle = i64::try_from(state.settings.console_idle_secs.saturating_mul(1000)).unwrap_or(0);
    let absolute =
        i64::try_from(state.settings.console_session_secs.saturating_mul(1000)).unwrap_or(0);
    now_ms - last_seen_ms < idle && now_ms - created_ms < absolute
}

/// Open a session for `user_id`; returns the `Set-Cookie` value. Stale sessions are cleared
/// on the way (logins are rare, so this keeps the table small without a sweeper).
pub async fn open(state: &AppState, user_id: &str) -> Result<HeaderValue, Error> {
    let token = random_token()?;
    let csrf = random_token()?;
    let now = state.clock.now_ms();
    let idle = i64::try_from(state.settings.console_idle_secs.saturating_mul(1000)).unwrap_or(0);
    let absolute =
        i64::try_from(state.settings.console_session_secs.saturating_mul(1000)).unwrap_or(0);
    state
        .store
        .delete_stale_console_sessions(now - absolute, now - idle)
        .await?;
    state
        .store
        .insert_console_session(&token_hash(&token), user_id, &csrf, now)
        .await?;
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/console; HttpOnly; Secure; SameSite=Strict"
    ))
    .map_err(|_| Error::Internal("session cookie is not a header value".to_owned()))
}

/// The `Set-Cookie` value that makes the browser forget its session.
pub fn forget() -> HeaderValue {
    HeaderValue::from_static(
        "gridhub_console=; Path=/console; HttpOnly; Secure; SameSite=Strict; Max-Age=0",
    )
}

/// End the session the request carries, if any.
pub async fn close(state: &AppState, headers: &HeaderMap) -> Result<bool, Error> {
    match cookie(headers, SESSION_COOKIE) {
        Some(token) => Ok(state
            .store
            .delete_console_session(&token_hash(&token))
            .await?),
        None => Ok(false),
    }
}

/// The user of a live console session, as a `Principal` read for this request, with the
/// session's CSRF token and the page language. A request without one is sent to the login
/// page (which says so when the session expired).
pub struct ConsoleUser {
    pub principal: Principal,
    pub csrf: String,
    pub lang: Lang,
    pub username: String,
}

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = Lang::of(&parts.headers);
        let fail = |e: Error| ConsoleError::new(e, lang).into_response();
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login(parts, false));
        };
        let hash = token_hash(&token);
        let Some(session) = state
            .store
            .console_session(&hash)
            .await
            .map_err(|e| fail(e.into()))?
        else {
            return Err(to_login(parts, true));
        };
        let now = state.clock.now_ms();
        if !session_live(state, session.created_ms, session.last_seen_ms, now) {
            state
                .store
                .delete_console_session(&hash)
                .await
                .map_err(|e| fail(e.into()))?;
            return Err(to_login(parts, true));
        }
        let user = state
            .store
            .user_by_id(&session.user_id)
            .await
            .map_err(|e| fail(e.into()))?;
        let Some(user) = user.filter(|u| !u.disabled) else {
            state
                .store
                .delete_console_session(&hash)
                .await
                .map_err(|e| fail(e.into()))?;
            return Err(to_login(parts, true));
        };
        if now - session.last_seen_ms >= TOUCH_EVERY_MS {
            state
                .store
                .touch_console_session(&hash, now)
                .await
                .map_err(|e| fail(e.into()))?;
        }
        let versions = state.store.versions().await.map_err(|e| fail(e.into()))?;
        let username = user.username.clone();
        Ok(ConsoleUser {
            principal: Principal::of_user(user, versions),
            csrf: session.csrf_token,
            lang,
            username,
        })
    }
}

/// 303 to the login page, which brings the user back to this page (GET) afterwards.
fn to_login(parts: &Parts, expired: bool) -> Response {
    let back = if parts.method == axum::http::Method::GET {
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| safe_next(p))
            .unwrap_or("/console/")
    } else {
        "/console/"
    };
    let mut target = form_urlencoded::Serializer::for_suffix(
        "/console/login?".to_owned(),
        "/console/login?".len(),
    );
    target.append_pair("next", back);
    if expired {
        target.append_pair("expired", "1");
    }
    Redirect::to(&target.finish()).into_response()
}

/// Is `next` a console path (no open redirect to another site)?
pub fn safe_next(next: &str) -> bool {
    next.starts_with("/console/") && !next.starts_with("//") && !next.contains('\\')
}

/// Did this request come from a page of this origin? A browser says so itself with
/// `Sec-Fetch-Site` (which no page script can set); without it, `Origin` must name this host.
/// A request with neither (not a browser) passes here and still needs the CSRF token.
/// `authority` is the request's own host and port (`Host`, or the URI's authority on HTTP/2).
pub fn same_origin(headers: &HeaderMap, authority: Option<&str>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let from = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        return matches!((from, authority), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h));
    }
    true
}

/// Whether a form post came from this origin (`same_origin`), as an extractor.
pub struct FormOrigin(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for FormOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let authority = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()));
        Ok(FormOrigin(same_origin(
            &parts.headers,
            authority.as_deref(),
        )))
    }
}

impl ConsoleUser {
    /// The check of every state-changing console form: its `csrf` field is this session's
    /// token and it came from this origin. A refusal is a `deny` entry and a 403 page.
    pub async fn check_form(
        &self,
        state: &AppState,
        origin: &FormOrigin,
        csrf: Option<&str>,
    ) -> Result<(), ConsoleError> {
        let token_ok = csrf.is_some_and(|c| {
            // Compare digests: equal length, and no early exit on the token itself.
            digest(&SHA256, c.as_bytes()).as_ref() == digest(&SHA256, self.csrf.as_bytes()).as_ref()
        });
        let reason = match (token_ok, origin.0) {
            (true, true) => return Ok(()),
            (false, _) => "console form without this session's CSRF token",
            (true, false) => "console form from another origin",
        };
        let error = state
            .deny(
                self.principal.actor(),
                "console.csrf",
                reason,
                Error::Forbidden(reason.to_owned()),
            )
            .await;
        Err(ConsoleError::csrf(error, self.lang))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers(&[("cookie", "x_gridhub_console=no; gridhub_console=yes")]);
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("yes"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn only_console_paths_are_followed_after_login() {
        assert!(safe_next("/console/audit?department=x"));
        assert!(!safe_next("https://evil.example/"));
        assert!(!safe_next("//evil.example/console/"));
        assert!(!safe_next("/console/\\evil"));
        assert!(!safe_next("/v1/audit/entries"));
    }

    #[test]
    fn a_form_from_another_origin_is_refused() {
        let host = Some("hub.example:8443");
        let ok = headers(&[("origin", "https://hub.example:8443")]);
        assert!(same_origin(&ok, host));
        assert!(!same_origin(&ok, None));
        assert!(!same_origin(
            &headers(&[("origin", "https://evil.example")]),
            host
        ));
        assert!(!same_origin(&headers(&[("origin", "null")]), host));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            host
        ));
        assert!(same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            host
        ));
        // The browser's own word wins over an `Origin` a proxy may have rewritten.
        assert!(!same_origin(
            &headers(&[
                ("sec-fetch-site", "same-site"),
                ("origin", "https://hub.example:8443")
            ]),
            host
        ));
    }
}
