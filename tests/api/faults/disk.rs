//! SQLite under disk faults: a tmpfs filled to the last byte mid-load, and an ext4 filesystem
//! turned read-only mid-load.

use std::time::Duration;

use gridhub_tests::Backend;

use super::mounts::{Filler, Mount};
use super::{
    Load, app_under, assert_refusals_are_clean, assert_unready, assert_unready_while_full,
    audit_verify, check_nothing_lost, puller, wait_degraded,
};

/// Bound on recovery after the fault clears (the ledger probes every 200 ms).
const RECOVERY: Duration = Duration::from_secs(30);

/// The disk fills up under writes and pulls: every write and pull is refused with a clean 503
/// (and `/readyz` says so) while it is full; once space is freed the hub serves again by
/// itself, without a restart; after a restart too, nothing acknowledged is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_full_tmpfs_loses_nothing_and_recovers_by_itself() {
    let mount = Mount::tmpfs(48);
    let app = app_under(Backend::Sqlite, &mount.dir).await;
    let dept = puller(&app).await;
    let load = Load::start(&app, Some(&dept), 3, 1).await;
    load.until_acknowledged(30).await;

    let mut filler = Filler::fill(&mount.dir);
    load.until_refused(50).await;
    // Degraded, and says so: readiness fails at once with the kind of fault.
    let body = assert_unready_while_full(&app, &mut filler).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disk_full"),
        "{body}"
    );

    filler.remove();
    app.wait_ready(RECOVERY).await;
    load.until_acknowledged(30).await;
    let outcomes = load.stop().await;
    assert_refusals_are_clean(&outcomes);
    let checked = check_nothing_lost(&app, &outcomes).await;
    eprintln!(
        "full tmpfs, before restart: {checked:?}, refused {:?}",
        outcomes.refused
    );

    // The outage is in the ledger, and a restart keeps everything.
    let recovered = crate::grants::entries_of(&app, "ledger.storage_recovered").await;
    assert!(
        !recovered.is_empty(),
        "the recovery is recorded in the ledger"
    );
    assert!(
        recovered[0]["reason"]
            .as_str()
            .unwrap()
            .contains("disk_full"),
        "{}",
        recovered[0]
    );
    let app = app.restart().await;
    check_nothing_lost(&app, &outcomes).await;
    audit_verify(app.data_dir.path());
    drop(app.stop().await);
}

/// The filesystem turns read-only under load (ext4 `errors=remount-ro`): writes and pulls are
/// refused with clean 503s and nothing acknowledged is lost. The operator stops the hub,
/// repairs the filesystem and starts it again: everything acknowledged is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "ext4 itself loses the last fdatasync'd write in ~1 run in 25 when an error aborts \
            its journal (tests/api/faults/ext4_fdatasync_control.py shows it without hub or \
            SQLite); this test then loses exactly its last acknowledged commit. Run with \
            `cargo test -p gridhub-tests --test api -- --ignored faults::disk`"]
async fn sqlite_on_a_filesystem_turned_read_only_loses_nothing() {
    let mount = Mount::ext4(96);
    let app = app_under(Backend::Sqlite, &mount.dir).await;
    let dept = puller(&app).await;
    let load = Load::start(&app, Some(&dept), 3, 2).await;
    load.until_acknowledged(30).await;

    mount.trigger_ext4_error();
    load.until_refused(50).await;
    wait_degraded(&app).await;
    assert_unready(&app).await;
    // Reads that need no audit entry continue: the checkpoint is served.
    let resp = app
        .client
        .get(app.url("/v1/audit/checkpoint"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let outcomes = load.stop().await;
    assert_refusals_are_clean(&outcomes);

    let dir = app.data_dir.path().to_path_buf();
    let app = app.restart_after(|| mount.repair_ext4()).await;
    app.wait_ready(RECOVERY).await;
    let checked = check_nothing_lost(&app, &outcomes).await;
    eprintln!(
        "read-only ext4: {checked:?}, refused {:?}",
        outcomes.refused
    );
    audit_verify(&dir);
    // Writes work again.
    let load = Load::start(&app, Some(&dept), 2, 3).await;
    load.until_acknowledged(20).await;
    let more = load.stop().await;
    check_nothing_lost(&app, &more).await;
    drop(app.stop().await);
}
