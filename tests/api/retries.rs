//! Write transactions survive what distributed SQL engines answer all the time (issue 22): a
//! transaction that PostgreSQL refuses with a serialization failure (SQLSTATE 40001) or a
//! deadlock (40P01) runs again, a bounded number of times, and is acknowledged only once an
//! attempt committed. The conflicts are real PostgreSQL errors raised by a trigger the test adds
//! behind the hub's back, counted by a sequence (which a rolled-back transaction does not undo).

use gridhub_tests::{Backend, TestApp, WORKER_GRID, error_code, id_number, person, spawn_app};
use serde_json::Value;

/// Make inserts into `table` fail with `serialization_failure` while the sequence counts at
/// most `serialization`, then with `deadlock_detected` up to `serialization + deadlocks`, then
/// succeed.
async fn force_conflicts(app: &TestApp, table: &str, serialization: i64, deadlocks: i64) {
    app.raw_execute(format!("CREATE SEQUENCE conflicts_{table}"))
        .await;
    app.raw_execute(format!(
        "CREATE FUNCTION conflict_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ \
         DECLARE n BIGINT := nextval('conflicts_{table}'); \
         BEGIN \
           IF n <= {serialization} THEN \
             RAISE EXCEPTION 'forced by the test' USING ERRCODE = 'serialization_failure'; \
           ELSIF n <= {serialization} + {deadlocks} THEN \
             RAISE EXCEPTION 'forced by the test' USING ERRCODE = 'deadlock_detected'; \
           END IF; \
           RETURN NULL; \
         END $$"
    ))
    .await;
    app.raw_execute(format!(
        "CREATE TRIGGER conflict_{table} BEFORE INSERT ON {table} \
         FOR EACH STATEMENT EXECUTE FUNCTION conflict_{table}()"
    ))
    .await;
}

/// Statements the trigger of `table` saw (attempts, failed or not).
async fn attempts(app: &TestApp, table: &'static str) -> i64 {
    let sql: &'static str = match table {
        "records" => "SELECT last_value AS n FROM conflicts_records",
        _ => "SELECT last_value AS n FROM conflicts_ledger_entries",
    };
    app.raw_count(sql).await
}

async fn post_person(app: &TestApp, first17: &str) -> reqwest::Response {
    app.post(
        &app.worker_token,
        "/v1/records",
        &person(WORKER_GRID, "李雷", &id_number(first17), "13812345678"),
    )
    .await
}

#[tokio::test]
async fn a_record_write_refused_twice_as_unserializable_and_once_as_a_deadlock_commits_once() {
    let app = spawn_app(Backend::Postgres).await;
    let before = app.raw_count("SELECT COUNT(*) AS n FROM records").await;
    force_conflicts(&app, "records", 2, 1).await;

    let resp = post_person(&app, "33010219800101321").await;
    assert_eq!(
        resp.status(),
        201,
        "the write was retried until it committed"
    );
    let created: Value = resp.json().await.unwrap();
    assert_eq!(
        attempts(&app, "records").await,
        4,
        "three refused attempts, then one that committed"
    );
    assert_eq!(
        app.raw_count("SELECT COUNT(*) AS n FROM records").await,
        before + 1,
        "written once"
    );
    let id = created["id"].as_str().unwrap();
    let read = app
        .get(&app.worker_token, &format!("/v1/records/{id}"))
        .await;
    assert_eq!(read.status(), 200);
    let record: Value = read.json().await.unwrap();
    assert_eq!(record["fields"]["name"], "李雷");
    drop(app.stop().await);
}

#[tokio::test]
async fn a_write_that_keeps_conflicting_gives_up_after_bounded_attempts_and_writes_nothing() {
    let app = spawn_app(Backend::Postgres).await;
    let before = app.raw_count("SELECT COUNT(*) AS n FROM records").await;
    force_conflicts(&app, "records", 1_000, 0).await;

    let (status, code, body) = error_code(post_person(&app, "33010219800101322").await).await;
    assert_eq!(
        (status, code.as_str()),
        (503, "storage_unavailable"),
        "{body}"
    );
    let tried = attempts(&app, "records").await;
    assert_eq!(
        tried,
        i64::from(gridhub::storage::WRITE_ATTEMPTS),
        "attempts are bounded"
    );
    assert_eq!(
        app.raw_count("SELECT COUNT(*) AS n FROM records").await,
        before,
        "nothing was written"
    );
    // The next write, once the conflicts stop, is served.
    app.raw_execute("DROP TRIGGER conflict_records ON records".to_owned())
        .await;
    assert_eq!(post_person(&app, "33010219800101323").await.status(), 201);
    drop(app.stop().await);
}

#[tokio::test]
async fn a_ledger_append_refused_as_unserializable_is_retried_and_the_ledger_verifies() {
    let app = spawn_app(Backend::Postgres).await;
    force_conflicts(&app, "ledger_entries", 2, 1).await;

    let resp = post_person(&app, "33010219800101324").await;
    assert_eq!(
        resp.status(),
        201,
        "the append was retried until it committed"
    );
    let created: Value = resp.json().await.unwrap();
    assert!(created["receipt"].is_object(), "{created}");
    assert!(attempts(&app, "ledger_entries").await >= 4);
    assert_eq!(
        app.state.ledger.health(),
        gridhub::ledger::Health::Writable,
        "a conflict the retry absorbed does not degrade the ledger"
    );
    let entries = app
        .raw_count("SELECT COUNT(*) AS n FROM ledger_entries")
        .await;
    let next = app
        .raw_count("SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM ledger_entries")
        .await;
    assert_eq!(entries, next, "no gap, no entry twice");
    crate::faults::audit_verify(app.data_dir.path());
    drop(app.stop().await);
}
