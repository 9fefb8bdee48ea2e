//! Anonymous refusals cannot grow the ledger at will (SECURITY.md "Refusals and source
//! addresses"): per source address, action and minute of the hub's clock, the first refusal of
//! a caller that named no user or client is an entry of its own and the rest are one summary
//! entry (`<action>.refusals`) with their count, first and last request ids and reasons. Every
//! refusal is still answered 401 and counted exactly once, and every refusal entry names its
//! source address. Refusals of authenticated callers stay one entry each.

use futures_util::StreamExt;
use gridhub::time::Clock;
use gridhub_tests::{Backend, DPO_PASSWORD, TestApp, error_code, on_both_backends, spawn_app};
use serde_json::{Value, json};

const FLOOD: usize = 5_000;
/// Requests in flight at once (the client spreads them over a few connections).
const IN_FLIGHT: usize = 32;
/// The test client's address, as the hub sees it.
const LOCAL: &str = "127.0.0.1";

/// Ledger entries of `query` from index `start` on (DPO view), all pages.
async fn entries(app: &TestApp, start: i64, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut from = start;
    loop {
        let page: Value = app
            .get(
                &app.dpo_token,
                &format!("/v1/audit/entries?start={from}&limit=1000&{query}"),
            )
            .await
            .json()
            .await
            .unwrap();
        out.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["entry"].clone()),
        );
        match page["next_start"].as_i64() {
            Some(next) => from = next,
            None => return out,
        }
    }
}

pub(crate) async fn ledger_size(app: &TestApp) -> i64 {
    app.raw_count("SELECT COUNT(*) AS n FROM ledger_entries")
        .await
}

/// (refusals written as entries of their own, refusals counted in summaries) of `action` from
/// index `start` on; checks that each names the local address and that reasons add up.
pub(crate) async fn accounted(app: &TestApp, start: i64, action: &str) -> (u64, u64) {
    let singles = entries(app, start, &format!("action={action}&decision=deny")).await;
    for e in &singles {
        assert_eq!(e["source"], LOCAL, "a refusal entry names its source: {e}");
    }
    let summaries = entries(app, start, &format!("action={action}.refusals")).await;
    let mut counted = 0;
    for s in &summaries {
        assert_eq!(s["source"], LOCAL, "{s}");
        assert_eq!(s["decision"], "deny");
        let r = &s["refusals"];
        let by_reason: u64 = r["reasons"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(by_reason, r["count"].as_u64().unwrap(), "{s}");
        counted += r["count"].as_u64().unwrap();
    }
    (singles.len() as u64, counted)
}

/// One anonymous request: no token, a garbage one, or a well-formed one no key signed.
async fn anonymous_request(app: &TestApp, i: usize) -> (u16, String) {
    let mut req = app
        .client
        .get(app.url("/v1/grids"))
        .header("x-request-id", format!("flood-{i}"));
    req = match i % 3 {
        0 => req,
        1 => req.bearer_auth("garbage"),
        _ => req.bearer_auth("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
    };
    let (status, code, _) = error_code(req.send().await.unwrap()).await;
    (status, code)
}

async fn an_anonymous_flood_adds_a_few_entries_and_is_counted_in_full(backend: Backend) {
    let app = spawn_app(backend).await;
    let start = ledger_size(&app).await;
    let answers: Vec<(u16, String)> = futures_util::stream::iter(0..FLOOD)
        .map(|i| anonymous_request(&app, i))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    assert!(
        answers
            .iter()
            .all(|(status, code)| *status == 401 && code == "unauthenticated"),
        "every request is refused 401 with the JSON error body"
    );
    let written = ledger_size(&app).await - start;
    assert!(
        (1..=IN_FLIGHT as i64).contains(&written),
        "{written} entries for {FLOOD} refusals"
    );
    // The window is the hub's clock's minute, which has not moved: nothing is summarised yet.
    assert_eq!(
        accounted(&app, start, "auth.token").await,
        (written as u64, 0)
    );
    let window_start = app.clock.now_ms() - app.clock.now_ms().rem_euclid(60_000);
    app.close_refusal_window().await;

    let (singles, counted) = accounted(&app, start, "auth.token").await;
    assert_eq!(singles + counted, FLOOD as u64, "each refusal counted once");
    assert!(ledger_size(&app).await - start <= written + 1);
    let summary = entries(&app, start, "action=auth.token.refusals").await;
    let [summary] = summary.as_slice() else {
        panic!("one summary for one address and minute: {summary:?}");
    };
    let r = &summary["refusals"];
    assert_eq!(
        r["window_start"],
        gridhub::time::rfc3339_millis(window_start)
    );
    assert_eq!(
        r["window_end"],
        gridhub::time::rfc3339_millis(window_start + 60_000)
    );
    for id in [&r["first_request_id"], &r["last_request_id"]] {
        assert!(id.as_str().unwrap().starts_with("flood-"), "{summary}");
    }
    let reasons: Vec<&String> = r["reasons"].as_object().unwrap().keys().collect();
    assert_eq!(reasons, ["invalid token", "no bearer token"], "{summary}");
    // The summary is an anonymous denial like the refusals it stands for.
    assert_eq!(summary["actor"], json!({}));
    // Past that window, the next refusal is written again at once.
    anonymous_request(&app, FLOOD).await;
    assert_eq!(ledger_size(&app).await - start, written + 2);
    app.stop().await;
}

on_both_backends!(an_anonymous_flood_adds_a_few_entries_and_is_counted_in_full);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counted_refusals_are_written_at_graceful_shutdown() {
    let app = spawn_app(Backend::Sqlite).await;
    let start = ledger_size(&app).await;
    for i in 0..40 {
        assert_eq!(anonymous_request(&app, i).await.0, 401);
    }
    assert!(app.state.access.refusals().pending() > 0);
    // The window is still open when the hub stops: the summary is written on the way out.
    let app = app.restart().await;
    let (singles, counted) = accounted(&app, start, "auth.token").await;
    assert_eq!(singles + counted, 40);
    assert!(counted > 0, "some were counted, not written one by one");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_known_callers_stay_one_entry_each_with_the_address() {
    let app = spawn_app(Backend::Sqlite).await;
    let start = ledger_size(&app).await;
    let grid = json!({"code": "330110.001.001.077", "name": "x", "kind": "physical"});
    for _ in 0..5 {
        let resp = app.post(&app.worker_token, "/v1/grids", &grid).await;
        assert_eq!(error_code(resp).await.0, 403);
    }
    // Wrong password for an existing account: the entry names the account, one each.
    for _ in 0..3 {
        assert_eq!(app.login("dpo", "wrong-password-000").await.status(), 401);
    }
    // Unknown usernames name no account: counted like any anonymous refusal.
    for i in 0..4 {
        assert_eq!(
            app.login(&format!("nobody-{i}"), DPO_PASSWORD)
                .await
                .status(),
            401
        );
    }
    app.close_refusal_window().await;

    let denied = entries(&app, start, "action=grid.create&decision=deny").await;
    assert_eq!(denied.len(), 5);
    let logins = entries(&app, start, "action=auth.login&decision=deny").await;
    let named: Vec<&Value> = logins
        .iter()
        .filter(|e| e["actor"]["user"].is_string())
        .collect();
    assert_eq!(named.len(), 3);
    for e in denied.iter().chain(logins.iter()) {
        assert_eq!(e["source"], LOCAL, "{e}");
    }
    let anonymous = logins.len() - named.len();
    let summaries = entries(&app, start, "action=auth.login.refusals").await;
    let counted: u64 = summaries
        .iter()
        .map(|s| s["refusals"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(anonymous as u64 + counted, 4, "{summaries:?}");
    assert!(
        entries(&app, start, "action=grid.create.refusals")
            .await
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_action_filter_is_exact_and_needs_audit_read() {
    let app = spawn_app(Backend::Sqlite).await;
    let resp = app
        .get(&app.worker_token, "/v1/audit/entries?action=auth.token")
        .await;
    assert_eq!(error_code(resp).await.0, 403);
    let all = entries(&app, 0, "action=auth").await;
    assert!(all.is_empty(), "no prefix match: {all:?}");
    let logins = entries(&app, 0, "action=auth.login").await;
    assert!(!logins.is_empty());
    assert!(logins.iter().all(|e| e["action"] == "auth.login"));
    app.stop().await;
}
