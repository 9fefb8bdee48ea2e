//! Several hub processes on one PostgreSQL (issue 22): every replica appends to the one ledger,
//! which stays totally ordered and gap-free (the `ledger_head` coordination row), and checkpoints
//! only ever grow (compare-and-swap), whatever process signs them and even when one process is
//! killed in the middle of a burst.

use std::collections::BTreeMap;

use gridhub_tests::process::{Server, signal, start_server, wait_bounded};
use gridhub_tests::{Backend, spawn_app};

use crate::faults::{BIN, Load, Outcomes, audit_verify, check_nothing_lost, puller};

const REPLICAS: usize = 3;

/// Three `gridhub serve` processes (the real binary) on the data directory and database of an
/// in-process hub, which sets up the department and checks the result. Writes and pulls go
/// through all three at once; the third is SIGKILLed mid-burst while the other two carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_keep_one_gap_free_ledger_through_a_sigkill() {
    let app = spawn_app(Backend::Postgres).await;
    let dept = puller(&app).await;
    let mut replicas: Vec<Server> = (0..REPLICAS)
        .map(|_| start_server(BIN, app.data_dir.path()))
        .collect();
    let bases: Vec<String> = replicas
        .iter()
        .map(|r| format!("https://localhost:{}", r.port))
        .collect();
    let mut loads = Vec::new();
    for (i, base) in bases.iter().enumerate() {
        let seed = 40 + u32::try_from(i).unwrap();
        loads.push(Load::start_at(&app, base, Some(&dept), 2, seed).await);
    }
    for load in &loads {
        load.until_acknowledged(20).await;
    }

    // SIGKILL the third mid-burst: its in-flight requests get no answer, nothing it answered
    // may be lost, and the other two go on appending (it held the ledger's row at most for
    // the length of one transaction, which PostgreSQL rolls back when the connection drops).
    let killed = replicas.pop().unwrap();
    signal(&killed.child, "KILL");
    let status = wait_bounded(killed.child);
    assert!(!status.success(), "the replica was killed: {status:?}");
    for load in loads.iter().take(REPLICAS - 1) {
        load.until_acknowledged(30).await;
    }

    let mut per_replica = Vec::new();
    for load in loads {
        per_replica.push(load.stop().await);
    }
    for (i, outcomes) in per_replica.iter().enumerate().take(REPLICAS - 1) {
        assert!(
            outcomes.refused.is_empty(),
            "replica {i} refused requests while another was killed: {:?}",
            outcomes.refused
        );
    }

    // The replicas really appended concurrently to one ledger: in index order, the receipts'
    // replicas alternate many times.
    let mut by_index = BTreeMap::new();
    for (replica, outcomes) in per_replica.iter().enumerate() {
        for (_, receipt) in outcomes.writes.iter().chain(&outcomes.pulls) {
            let index = receipt["index"].as_u64().unwrap();
            assert!(
                by_index.insert(index, replica).is_none(),
                "two replicas handed out receipts for ledger index {index}"
            );
        }
    }
    let switches = by_index
        .values()
        .zip(by_index.values().skip(1))
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        switches >= 10,
        "appends of different replicas interleave in the ledger ({switches} switches in {} \
         receipts)",
        by_index.len()
    );

    let merged = merge(per_replica);
    let checked = check_nothing_lost(&app, &merged).await;

    // Gap-free and totally ordered: indexes 0..n, each once, and the coordination row agrees.
    let entries = app
        .raw_count("SELECT COUNT(*) AS n FROM ledger_entries")
        .await;
    let next = app
        .raw_count("SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM ledger_entries")
        .await;
    let head = app.raw_count("SELECT size AS n FROM ledger_head").await;
    assert_eq!(entries, next, "the ledger has a gap");
    assert_eq!(
        head, next,
        "the coordination row disagrees with the entries"
    );
    eprintln!(
        "3 replicas, one killed: {checked:?}; {switches} replica switches among {} receipts; \
         {} transport errors at the killed replica",
        by_index.len(),
        merged.transport_errors
    );

    for Server { child, .. } in replicas {
        signal(&child, "TERM");
        let status = wait_bounded(child);
        assert!(status.success(), "a replica stopped cleanly: {status:?}");
    }
    audit_verify(app.data_dir.path());
    drop(app.stop().await);
}

/// One set of outcomes from several loads.
fn merge(all: Vec<Outcomes>) -> Outcomes {
    let mut merged = Outcomes::default();
    for o in all {
        merged.writes.extend(o.writes);
        merged.pulls.extend(o.pulls);
        for (what, n) in o.refused {
            *merged.refused.entry(what).or_default() += n;
        }
        merged.checkpoints.extend(o.checkpoints);
        merged.transport_errors += o.transport_errors;
    }
    merged
}
