//! Database failover (issue 22): PostgreSQL streaming replication managed by `pg_auto_failover`
//! (Debian's `postgresql-15-auto-failover`), a monitor, a primary and a synchronous secondary of
//! the test's own in a temporary directory (the shared server on 5432 is never touched). The hub
//! is given both nodes in one URL; the primary is killed under load, and the hub must serve again
//! from the new primary by itself, answering 503 meanwhile, and lose nothing it acknowledged.
//!
//! `pg_autoctl` must be installed (`.ci/run` installs the package): without it the test fails,
//! it does not skip.

mod formation;
mod leftovers;

use std::path::Path;
use std::time::{Duration, Instant};

use gridhub_tests::process::{drain_to_end, signal, start_server, wait_bounded};
use gridhub_tests::{Backend, SpawnOptions, spawn_app_with};

use crate::faults::{
    BIN, Load, assert_refusals_are_clean, audit_verify, check_nothing_lost, puller,
};
use formation::Formation;

/// The secondary is synchronous: the primary's commits wait for it (what makes "nothing
/// acknowledged is lost" hold at a failover).
async fn assert_synchronous(admin_url: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await.unwrap();
    let setting = |name: &'static str| {
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
            "SELECT current_setting('{name}')"
        )))
    };
    let names = setting("synchronous_standby_names")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let commit = setting("synchronous_commit")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let standbys: Vec<String> = sqlx::query_scalar("SELECT sync_state FROM pg_stat_replication")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert!(
        !names.is_empty()
            && commit == "on"
            && standbys.iter().any(|s| s == "sync" || s == "quorum"),
        "the secondary is not synchronous: synchronous_standby_names = {names:?}, \
         synchronous_commit = {commit}, standbys {standbys:?}"
    );
}

/// The ledger on `url` is gap-free: indexes 0..n, each once, and the coordination row agrees
/// (as `replicas` checks). Returns n.
async fn assert_ledger_gap_free(url: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let (entries, next, head): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM ledger_entries), \
         (SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries), \
         (SELECT size FROM ledger_head)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert_eq!(entries, next, "the ledger has a gap");
    assert_eq!(
        head, next,
        "the coordination row disagrees with the entries"
    );
    next
}

/// Write `url` as the data directory's `database_url`.
fn set_database_url(data_dir: &Path, url: &str) {
    let path = data_dir.join("gridhub.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut replaced = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with("database_url") {
                replaced = true;
                format!("database_url = \"{url}\"")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(replaced, "gridhub.toml has a database_url line");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

/// The primary is SIGKILLed under load (writes and disclosures through a `gridhub serve`
/// process, and an in-process hub on the same data and URL): the hubs answer 503 while there is
/// no primary, serve again from the promoted secondary without a restart, and every record and
/// ledger entry they acknowledged is there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_follows_a_failover_and_loses_nothing_acknowledged() {
    let started = Instant::now();
    // The formation's waits block (processes, polling the monitor): off the runtime's workers,
    // which serve the in-process hub and the load meanwhile.
    let mut formation = tokio::task::block_in_place(Formation::start);
    let formed = started.elapsed();

    assert_synchronous(&formation.admin_url("n1")).await;

    // The hub's database on the primary; set up on it alone, then given both nodes.
    let app = spawn_app_with(
        Backend::Postgres,
        SpawnOptions {
            pg_admin_url: Some(formation.admin_url("n1")),
            ..SpawnOptions::default()
        },
    )
    .await;
    let dept = puller(&app).await;
    let database = app
        .database_url
        .as_deref()
        .and_then(|u| u.rsplit_once('/'))
        .map(|(_, name)| name.to_owned())
        .unwrap();
    let both = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{database}?target_session_attrs=read-write",
        formation.node("n1").port,
        formation.node("n2").port
    );
    set_database_url(app.data_dir.path(), &both);
    let mut app = app;
    // The test's own cluster: nothing to drop on the shared server when the app stops.
    app.database_url = None;
    let app = app.restart().await;
    let mut server = start_server(BIN, app.data_dir.path());
    let base = format!("https://localhost:{}", server.port);

    let load = Load::start_at(&app, &base, Some(&dept), 3, 70).await;
    load.until_acknowledged(30).await;

    let killed = Instant::now();
    let state = tokio::task::block_in_place(|| {
        formation.kill("n1");
        formation.wait_for("n2 to be promoted", |state| {
            state.is_some_and(|nodes| {
                nodes.iter().any(|n| {
                    n["nodename"] == "n2"
                        && ["wait_primary", "primary"]
                            .iter()
                            .any(|s| n["current_group_state"] == *s)
                })
            })
        })
    });
    let promoted = killed.elapsed();

    // A write acknowledged now went to the promoted node: the old primary is dead.
    let before = load.writes_acknowledged();
    let deadline = Instant::now() + Duration::from_secs(60);
    while load.writes_acknowledged() == before {
        assert!(
            Instant::now() < deadline,
            "no write was acknowledged within 60 s of n2's promotion; the monitor says \
             {state:?}"
        );
        // Polling a counter the load advances.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first_write = killed.elapsed();
    load.until_acknowledged(30).await;
    let outcomes = load.stop().await;

    // While there was no primary: 503s with a stable code, and every request got an answer.
    assert_refusals_are_clean(&outcomes);
    assert_eq!(
        outcomes.transport_errors, 0,
        "requests got no answer during the failover"
    );
    let refused: u64 = outcomes.refused.values().sum();
    let checked = check_nothing_lost(&app, &outcomes).await;

    // The same `gridhub serve` process served before and after: it was never restarted, and
    // it says it followed the new primary.
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the hub process exited"
    );
    signal(&server.child, "TERM");
    let status = wait_bounded(server.child);
    assert!(status.success(), "the hub stopped cleanly: {status:?}");
    let log = drain_to_end(&server.log);
    let followed = log
        .iter()
        .find(|l| l.contains("the hub follows the database primary"))
        .unwrap_or_else(|| {
            panic!(
                "the hub did not log that it followed the new primary:\n{}",
                log.join("\n")
            )
        });
    assert!(
        followed.contains(&format!("127.0.0.1:{}", formation.node("n2").port)),
        "the hub followed n2: {followed}"
    );

    // `gridhub audit verify` through the same two-host URL reaches the new primary.
    audit_verify(app.data_dir.path());
    let n2 = format!(
        "postgres://postgres@127.0.0.1:{}/{database}",
        formation.node("n2").port
    );
    let ledger = assert_ledger_gap_free(&n2).await;
    drop(app.stop().await);
    tokio::task::block_in_place(|| drop(formation));
    eprintln!(
        "failover: formation up in {formed:?}; n2 promoted {promoted:?} after the kill; first \
         write acknowledged {first_write:?} after the kill; refused meanwhile {refused} \
         ({:?}); {checked:?}; {ledger} ledger entries, gap-free; hub log: {followed}; test \
         ran {:?}",
        outcomes.refused,
        started.elapsed()
    );
}
