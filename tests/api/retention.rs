//! Retention (issue 22): a record's retention date is kept with it; the sweep crypto-shreds the
//! records whose date has passed, one `record.expire` ledger entry per batch written first, and
//! leaves every other record alone; the dry run lists what would go and changes nothing; only
//! one process sweeps at a time.

use gridhub::time::Clock;
use gridhub_tests::{
    Backend, TestApp, WORKER_GRID, error_code, id_number, on_both_backends, person, spawn_app,
};
use serde_json::{Value, json};

use crate::faults::BIN;

on_both_backends!(records_past_their_retention_date_are_shredded_and_audited);

const DAY_MS: i64 = 86_400_000;

async fn create(app: &TestApp, first17: &str, retention_until: Option<String>) -> String {
    let mut body = person(WORKER_GRID, "钱进", &id_number(first17), "13612345678");
    if let Some(until) = retention_until {
        body["retention_until"] = json!(until);
    }
    let resp = app.post(&app.worker_token, "/v1/records", &body).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn status_of(app: &TestApp, id: &str) -> u16 {
    app.get(&app.worker_token, &format!("/v1/records/{id}"))
        .await
        .status()
        .as_u16()
}

/// The record ids that `record.expire` entries of `decision` name.
async fn expired_in_ledger(app: &TestApp, decision: &str) -> Vec<String> {
    let page: Value = app
        .get(
            &app.dpo_token,
            &format!("/v1/audit/entries?action=record.expire&decision={decision}&limit=100"),
        )
        .await
        .json()
        .await
        .unwrap();
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            e["entry"]["records"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn gridhub(app: &TestApp, args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .args(["retention", "run", "--data-dir"])
        .arg(app.data_dir.path())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gridhub retention run {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn records_past_their_retention_date_are_shredded_and_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let now = app.clock.now_ms();
    let at = |ms: i64| gridhub::time::rfc3339(ms);

    // A date that is not a time is refused, naming the field.
    let mut bad = person(
        WORKER_GRID,
        "钱进",
        &id_number("33010219600101701"),
        "13612345678",
    );
    bad["retention_until"] = json!("next year");
    let (status, code, body) =
        error_code(app.post(&app.worker_token, "/v1/records", &bad).await).await;
    assert_eq!(
        (status, code.as_str()),
        (422, "validation_failed"),
        "{body}"
    );
    assert!(body.to_string().contains("retention_until"), "{body}");

    // A day in the past: the command line runs in a process of its own, whose wall clock may
    // lag this one's (under libfaketime every process starts at the same faked time).
    let past = create(
        &app,
        "33010219600101702",
        Some(at(gridhub::time::now_ms() - DAY_MS)),
    )
    .await;
    let tomorrow = create(&app, "33010219600101703", Some(at(now + DAY_MS))).await;
    let later = create(&app, "33010219600101704", Some(at(now + 10 * DAY_MS))).await;
    let kept = create(&app, "33010219600101705", None).await;
    let read: Value = app
        .get(&app.worker_token, &format!("/v1/records/{tomorrow}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        gridhub::time::parse_rfc3339(read["retention_until"].as_str().unwrap()),
        gridhub::time::parse_rfc3339(&at(now + DAY_MS)),
        "the retention date is kept and shown: {read}"
    );

    // The command line, on the wall clock: the dry run lists the one record past its date and
    // changes nothing; the run erases it.
    let listed = gridhub(&app, &["--dry-run"]);
    assert!(listed.contains(&past), "{listed}");
    assert!(!listed.contains(&tomorrow), "{listed}");
    assert!(
        listed.contains("1 record(s) past their retention date"),
        "{listed}"
    );
    assert_eq!(
        status_of(&app, &past).await,
        200,
        "a dry run changes nothing"
    );
    let ran = gridhub(&app, &[]);
    assert!(ran.contains("1 record(s) erased in 1 batch(es)"), "{ran}");
    assert_eq!(status_of(&app, &past).await, 404);

    // While another process holds the sweep, a sweep does nothing.
    let two_days = now + 2 * DAY_MS;
    assert!(
        app.state
            .store
            .claim_job("retention", "another-replica", two_days, two_days + 60_000)
            .await
            .unwrap()
    );
    let swept = gridhub::retention::sweep(
        &app.state.store,
        &app.state.ledger,
        "this-test",
        || two_days,
        500,
    )
    .await
    .unwrap();
    assert_eq!(swept, None);
    assert_eq!(status_of(&app, &tomorrow).await, 200);

    // Once the lease ran out: two days on, the record due tomorrow goes, batches of one.
    let later_still = two_days + 120_000;
    let swept = gridhub::retention::sweep(
        &app.state.store,
        &app.state.ledger,
        "this-test",
        || later_still,
        1,
    )
    .await
    .unwrap()
    .expect("the lease ran out");
    assert_eq!(
        (swept.erased, swept.entries.len(), swept.skipped),
        (1, 1, 0)
    );
    assert_eq!(status_of(&app, &tomorrow).await, 404);
    assert_eq!(status_of(&app, &later).await, 200);
    assert_eq!(status_of(&app, &kept).await, 200);
    let mut named = expired_in_ledger(&app, "allow").await;
    named.sort();
    let mut expected = vec![past.clone(), tomorrow.clone()];
    expected.sort();
    assert_eq!(
        named, expected,
        "one entry per batch names exactly what went"
    );
    assert!(expired_in_ledger(&app, "deny").await.is_empty());
    assert_eq!(
        app.raw_count("SELECT COUNT(*) AS n FROM records WHERE erased_at IS NOT NULL AND wrapped_dek IS NULL AND sealed_fields IS NULL")
            .await,
        2,
        "keys and ciphertexts are gone"
    );
    assert_eq!(
        app.raw_count(
            "SELECT COUNT(*) AS n FROM blind_index b JOIN records r ON r.id = b.record_id \
             WHERE r.erased_at IS NOT NULL"
        )
        .await,
        0,
        "no blind-index entry of an erased record is left"
    );

    // Nothing is due again: a second sweep erases nothing and writes no entry.
    let again = gridhub::retention::sweep(
        &app.state.store,
        &app.state.ledger,
        "this-test",
        || later_still,
        500,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(again, gridhub::retention::Swept::default());
    drop(app.stop().await);
}
