//! Errors injected under load, on both backends, by triggers the test adds to the hub's own
//! database and arms through a one-row switch table:
//!
//! - at the ledger append: the insert of an entry fails. On SQLite with `RAISE(ROLLBACK)`,
//!   which rolls the whole transaction back inside SQLite, then `RAISE(ABORT)`, which fails
//!   only the statement: the sequence that used to leave sqlx's transaction depth out of step
//!   with SQLite's, so that every later "commit" only released a savepoint of a transaction
//!   that never committed (issue 16's root cause);
//! - at COMMIT: a deferred constraint fails when the transaction commits.
//!
//! Each run checks the whole fault contract (`check_nothing_lost`), and that a process outside
//! the hub can take the write lock afterwards (no transaction was left open).

use gridhub::ledger::Health;
use gridhub_tests::{Backend, TestApp, on_both_backends, spawn_app};

use super::{Load, assert_refusals_are_clean, audit_verify, check_nothing_lost, puller};

const RECOVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// The statements that install the faults (disarmed).
fn install(backend: Backend) -> Vec<String> {
    let sql: &[&str] = match backend {
        Backend::Sqlite => &[
            "CREATE TABLE fault_switch (mode TEXT NOT NULL)",
            "INSERT INTO fault_switch VALUES ('off')",
            "CREATE TABLE fault_parent (id INTEGER PRIMARY KEY)",
            "CREATE TABLE fault_child (parent INTEGER REFERENCES fault_parent(id) \
             DEFERRABLE INITIALLY DEFERRED)",
            "CREATE TRIGGER fault_rollback BEFORE INSERT ON ledger_entries \
             WHEN (SELECT mode FROM fault_switch) = 'rollback' \
             BEGIN SELECT RAISE(ROLLBACK, 'injected: transaction rolled back'); END",
            "CREATE TRIGGER fault_abort BEFORE INSERT ON ledger_entries \
             WHEN (SELECT mode FROM fault_switch) = 'abort' \
             BEGIN SELECT RAISE(ABORT, 'injected: statement failed'); END",
            "CREATE TRIGGER fault_commit AFTER INSERT ON ledger_entries \
             WHEN (SELECT mode FROM fault_switch) = 'commit' \
             BEGIN INSERT INTO fault_child VALUES (-1); END",
        ],
        Backend::Postgres => &[
            "CREATE TABLE fault_switch (mode TEXT NOT NULL)",
            "INSERT INTO fault_switch VALUES ('off')",
            "CREATE FUNCTION fault_now() RETURNS trigger AS $$ BEGIN \
             IF (SELECT mode FROM fault_switch) IN ('rollback', 'abort') THEN \
             RAISE EXCEPTION 'injected: statement failed'; END IF; RETURN NEW; END $$ \
             LANGUAGE plpgsql",
            "CREATE FUNCTION fault_at_commit() RETURNS trigger AS $$ BEGIN \
             IF (SELECT mode FROM fault_switch) = 'commit' THEN \
             RAISE EXCEPTION 'injected: commit failed'; END IF; RETURN NULL; END $$ \
             LANGUAGE plpgsql",
            "CREATE TRIGGER fault_now BEFORE INSERT ON ledger_entries FOR EACH ROW \
             EXECUTE FUNCTION fault_now()",
            "CREATE CONSTRAINT TRIGGER fault_commit AFTER INSERT ON ledger_entries \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fault_at_commit()",
        ],
    };
    sql.iter().map(|s| (*s).to_owned()).collect()
}

async fn switch(app: &TestApp, mode: &str) {
    app.raw_execute(format!("UPDATE fault_switch SET mode = '{mode}'"))
        .await;
}

/// Outside the hub, take the write lock and release it: fails if the hub left a transaction
/// open (SQLite: "database is locked" after the busy timeout of the raw connection).
async fn outside_writer_gets_the_lock(app: &TestApp) {
    app.raw_execute("UPDATE fault_switch SET mode = mode".to_owned())
        .await;
}

async fn metrics(app: &TestApp) -> String {
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// Wait until `more` further probe writes of the degraded ledger have failed (each one went
/// through the injected fault).
async fn failed_probes(app: &TestApp, more: u64) {
    let now = |app: &TestApp| match app.state.ledger.health() {
        Health::Degraded { failed_probes, .. } => Some(failed_probes),
        Health::Writable => None,
    };
    let start = tokio::time::Instant::now();
    let mut from = None;
    loop {
        match (from, now(app)) {
            (None, Some(n)) => from = Some(n),
            (Some(f), Some(n)) if n >= f + more => return,
            _ => {}
        }
        assert!(
            start.elapsed() < RECOVERY,
            "the ledger did not probe in time"
        );
        // Polling the ledger's own counter.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn injected_errors_lose_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for statement in install(backend) {
        app.raw_execute(statement).await;
    }
    let dept = puller(&app).await;
    let load = Load::start(&app, Some(&dept), 3, 6).await;
    load.until_acknowledged(20).await;

    // The whole transaction rolled back by the database, then a failed statement, then
    // failures at COMMIT; after each, the hub must recover and commit for real.
    for mode in ["rollback", "abort", "commit", "rollback", "off"] {
        switch(&app, mode).await;
        if mode == "off" {
            break;
        }
        failed_probes(&app, 2).await;
        let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(
            resp.status(),
            503,
            "readiness while `{mode}` faults are injected"
        );
        let metrics = metrics(&app).await;
        assert!(
            metrics.contains("\ngridhub_ledger_writable 0\n")
                && metrics.contains("\ngridhub_ledger_fault{kind=\"database_error\"} 1\n"),
            "{metrics}"
        );
    }
    app.wait_ready(RECOVERY).await;
    let metrics = metrics(&app).await;
    assert!(
        metrics.contains("\ngridhub_ledger_writable 1\n") && !metrics.contains("ledger_fault{"),
        "{metrics}"
    );
    load.until_acknowledged(20).await;
    let outcomes = load.stop().await;
    assert_refusals_are_clean(&outcomes);
    outside_writer_gets_the_lock(&app).await;
    let checked = check_nothing_lost(&app, &outcomes).await;
    eprintln!(
        "injected errors ({backend:?}): {checked:?}, refused {:?}",
        outcomes.refused
    );
    assert!(checked.receipts > 40 && checked.records > 0 && checked.checkpoints > 0);

    // Every committed entry is visible from outside the hub, and a restart keeps them all.
    let size = i64::try_from(checked.ledger_size).unwrap();
    assert!(
        app.raw_count("SELECT COUNT(*) AS n FROM ledger_entries")
            .await
            >= size,
        "entries acknowledged by the hub are not visible to another connection"
    );
    let app = app.restart().await;
    check_nothing_lost(&app, &outcomes).await;
    audit_verify(app.data_dir.path());
    drop(app.stop().await);
}

on_both_backends!(injected_errors_lose_nothing);
