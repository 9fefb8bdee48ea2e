//! The client SDK (`connectors`) against the real hub over real mTLS: one token refresh for
//! many workers across an expiry, paging to the end with every receipt and proof verified,
//! sealed answers, a lost refresh response, a rewritten or shrunk ledger caught, and a state
//! file shared by two clients that never loses the newer checkpoint.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use age::secrecy::ExposeSecret;
use connectors::state::StateFile;
use connectors::{Client, Clock, Config, Error, Page, PullRequest};
use futures_util::TryStreamExt;
use gridhub_tests::mtls::DeptClient;
use gridhub_tests::{
    Backend, TestApp, WORKER_GRID, id_number, on_both_backends, person, spawn_app,
};
use serde_json::{Value, json};

use crate::grants::{approved_grant, grant_request};

pub(crate) const RECORDS: usize = 23;

/// A hub with `RECORDS` residents in the worker's grid, a department `civil-affairs` over the
/// district with an approved grant, and its client `civil-sys`; returns the record ids.
pub(crate) async fn hub_with_residents(
    backend: Backend,
) -> (TestApp, DeptClient, BTreeSet<String>) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let records: Vec<Value> = (0..RECORDS)
        .map(|i| {
            person(
                WORKER_GRID,
                "张三丰",
                &id_number(&format!("33010219500101{i:03}")),
                &format!("1381234{i:04}"),
            )
        })
        .collect();
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records/batch",
            &json!({"records": records}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let ids = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect::<BTreeSet<_>>();
    assert_eq!(ids.len(), RECORDS);
    let grant = grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "masked", "phone": "masked", "birth_date": "generalized"}),
        &["330110.001"],
    );
    approved_grant(&app, &civil, &grant).await;
    (app, civil, ids)
}

pub(crate) fn config(app: &TestApp, client: &DeptClient) -> Config {
    let ca = std::fs::read_to_string(app.data_dir.path().join("pki/ca.pem")).unwrap();
    Config::new(&app.base, ca, &client.cert_pem, &client.key_pem)
}

pub(crate) fn state_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("gridhub-state.json")
}

pub(crate) fn pull(limit: u32) -> PullRequest {
    PullRequest {
        limit: Some(limit),
        ..PullRequest::new("elderly-care")
    }
}

/// Every page of a pull, from the start.
async fn all_pages(client: &Client, limit: u32) -> Vec<Page> {
    client
        .pull_all("person", pull(limit))
        .try_collect()
        .await
        .unwrap()
}

fn ids_of(pages: &[Page]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p.records.iter().map(|r| r.id.clone()))
        .collect()
}

async fn sixteen_workers_share_one_refresh_and_page_to_the_end(backend: Backend) {
    let (mut app, civil, ids) = hub_with_residents(backend).await;
    let state = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(AtomicU64::new(
        u64::try_from(gridhub::time::now_ms()).unwrap(),
    )));
    let client = Client::new(
        config(&app, &civil)
            .state_file(state_path(&state))
            .clock(clock.clone()),
    )
    .unwrap();
    let first = client.pull("person", pull(1)).await.unwrap();
    assert_eq!(first.records.len(), 1);
    assert!(first.checkpoint_size > first.receipt.index);
    assert_eq!(client.token_fetches(), 1);

    // The token's life (300 s) passes on the SDK's clock: all sixteen workers need a new
    // token at once, and exactly one of them fetches it (the proactive path; the reactive
    // one, on the hub's clock, follows below).
    clock.advance(Duration::from_secs(400));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { all_pages(&client, 5).await })
        })
        .collect();
    for worker in workers {
        let pages = worker.await.unwrap();
        let got = ids_of(&pages);
        assert_eq!(got.len(), RECORDS, "every record exactly once");
        assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), ids);
        assert!(pages.last().unwrap().next_cursor.is_none());
        for page in &pages {
            assert!(page.checkpoint_size > page.receipt.index);
            for record in &page.records {
                assert!(record.fields["phone"].as_str().unwrap().contains("****"));
                assert!(!record.fields.contains_key("id_number"));
            }
        }
    }
    assert_eq!(
        client.token_fetches(),
        2,
        "one initial token and one refresh"
    );
    // The state file holds the pinned key and the newest verified checkpoint.
    let stored = StateFile::new(state_path(&state)).load().unwrap();
    assert_eq!(
        stored.checkpoint.as_deref(),
        Some(client.trusted_checkpoint().unwrap().note())
    );
    let key: Value = app
        .client
        .get(app.url("/v1/audit/public-key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored.vkey.as_deref(), key["verifier"].as_str());

    // Resuming from a saved cursor yields the rest, and nothing twice.
    let one = client.pull("person", pull(10)).await.unwrap();
    let rest: Vec<Page> = client
        .pull_all(
            "person",
            PullRequest {
                cursor: one.next_cursor.clone(),
                ..pull(10)
            },
        )
        .try_collect()
        .await
        .unwrap();
    let mut resumed = ids_of(std::slice::from_ref(&one));
    resumed.extend(ids_of(&rest));
    assert_eq!(resumed.len(), RECORDS);
    assert_eq!(resumed.into_iter().collect::<BTreeSet<_>>(), ids);

    // The token's life passes on the hub's clock only: the SDK believes its token good, the
    // hub answers every worker 401 `unauthenticated`, and exactly one of them refreshes;
    // each retries once and succeeds.
    let start = crate::refusals::ledger_size(&app).await;
    app.clock.advance(Duration::from_secs(400));
    let go = Arc::new(tokio::sync::Barrier::new(16));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (client, go) = (client.clone(), Arc::clone(&go));
            tokio::spawn(async move {
                go.wait().await;
                client.pull("person", pull(5)).await
            })
        })
        .collect();
    for worker in workers {
        let page = worker.await.unwrap().unwrap();
        assert_eq!(page.records.len(), 5);
    }
    assert_eq!(
        client.token_fetches(),
        3,
        "one refresh for sixteen refusals"
    );
    app.log_in_again().await;
    app.close_refusal_window().await;
    let (singles, counted) = crate::refusals::accounted(&app, start, "auth.token").await;
    assert_eq!(singles + counted, 16, "every worker was refused once");
    app.stop().await;
}

async fn a_sealed_client_gets_the_same_records(backend: Backend) {
    let (app, civil, ids) = hub_with_residents(backend).await;
    let (sealed, identity) = app
        .register_sealed_client("civil-sealed", "civil-affairs")
        .await;
    let plain = Client::new(config(&app, &civil)).unwrap();
    let opened = Client::new(
        config(&app, &sealed).age_identity(identity.to_string().expose_secret().to_owned()),
    )
    .unwrap();
    let clear: Vec<_> = all_pages(&plain, 7)
        .await
        .into_iter()
        .flat_map(|p| p.records)
        .collect();
    let unsealed: Vec<_> = all_pages(&opened, 7)
        .await
        .into_iter()
        .flat_map(|p| p.records)
        .collect();
    assert_eq!(clear.len(), RECORDS);
    assert_eq!(unsealed, clear, "same records, same fields");
    assert_eq!(
        unsealed
            .iter()
            .map(|r| r.id.clone())
            .collect::<BTreeSet<_>>(),
        ids
    );
    // Asking for a sealed answer without a registered recipient is the hub's 406.
    let stranger = age::x25519::Identity::generate();
    let unregistered = Client::new(
        config(&app, &civil).age_identity(stranger.to_string().expose_secret().to_owned()),
    )
    .unwrap();
    match unregistered.pull("person", pull(1)).await {
        Err(Error::Api { status: 406, .. }) => {}
        other => panic!("expected 406, got {other:?}"),
    }
    app.stop().await;
}

/// The SDK's clock, moved by the test.
#[derive(Debug)]
struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    fn advance(&self, by: Duration) {
        self.0
            .fetch_add(u64::try_from(by.as_millis()).unwrap(), Ordering::SeqCst);
    }
}

/// A TCP proxy in front of the hub that can be made to fail: it then cuts the connections it
/// carries and closes new ones at once (the token request gets no answer).
struct FlakyProxy {
    port: u16,
    failing: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
    /// Connections being carried.
    carried: Arc<tokio::sync::watch::Sender<usize>>,
}

impl FlakyProxy {
    async fn start(target_port: u16) -> FlakyProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let failing = Arc::new(AtomicBool::new(false));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let carried = Arc::new(tokio::sync::watch::channel(0usize).0);
        let (fail, cuts, count) = (Arc::clone(&failing), cut.clone(), Arc::clone(&carried));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if fail.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = cuts.subscribe();
                let count = Arc::clone(&count);
                count.send_modify(|n| *n += 1);
                tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                    {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = cut.changed() => {}
                        }
                    }
                    drop(inbound);
                    count.send_modify(|n| *n -= 1);
                });
            }
        });
        FlakyProxy {
            port,
            failing,
            cut,
            carried,
        }
    }

    /// Fail from now on; returns once every carried connection is closed.
    async fn fail(&self) {
        self.failing.store(true, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
        self.carried
            .subscribe()
            .wait_for(|n| *n == 0)
            .await
            .unwrap();
    }

    fn recover(&self) {
        self.failing.store(false, Ordering::SeqCst);
    }
}

async fn a_lost_refresh_keeps_the_old_token_while_it_is_valid(backend: Backend) {
    let (app, civil, _) = hub_with_residents(backend).await;
    let hub_port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = FlakyProxy::start(hub_port).await;
    let clock = Arc::new(TestClock(AtomicU64::new(
        u64::try_from(gridhub::time::now_ms()).unwrap(),
    )));
    let client = Client::new(
        config(&app, &civil)
            .token_url(format!("https://localhost:{}/v1/oauth/token", proxy.port))
            .refresh_ahead(Duration::from_secs(60))
            .clock(clock.clone()),
    )
    .unwrap();
    client.pull("person", pull(1)).await.unwrap();
    assert_eq!((client.token_fetches(), client.token_failures()), (1, 0));

    // Within a minute of the token's expiry (300 s) the SDK refreshes ahead; the refresh is
    // lost; the old token, still valid, carries the pull.
    clock.advance(Duration::from_secs(250));
    proxy.fail().await;
    let page = client.pull("person", pull(1)).await.unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(client.token_fetches(), 1, "no token was received");
    assert!(client.token_failures() >= 1, "the refresh was attempted");

    // The next call tries again, and the new token replaces the old one.
    proxy.recover();
    client.pull("person", pull(1)).await.unwrap();
    assert_eq!(client.token_fetches(), 2);

    // Once a token has expired it is not used, whether or not a refresh comes through.
    proxy.fail().await;
    let failures = client.token_failures();
    clock.advance(Duration::from_secs(600));
    match client.pull("person", pull(1)).await {
        Err(Error::Transport(_)) => {}
        other => panic!("expected the failed refresh, got {other:?}"),
    }
    assert!(client.token_failures() > failures);
    assert_eq!(client.token_fetches(), 2);
    app.stop().await;
}

/// Run SQL statements against a stopped hub's database (from `restart_after`'s closure, which
/// is not async).
fn run_sql(backend: Backend, sqlite: PathBuf, pg: Option<String>, statements: &[&str]) {
    use sqlx::Connection;
    let statements: Vec<String> = statements.iter().map(|s| (*s).to_owned()).collect();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            for statement in statements {
                match backend {
                    Backend::Sqlite => {
                        let url = format!("sqlite://{}", sqlite.display());
                        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                            .execute(&mut conn)
                            .await
                            .unwrap();
                        conn.close().await.unwrap();
                    }
                    Backend::Postgres => {
                        let mut conn = sqlx::PgConnection::connect(pg.as_deref().unwrap())
                            .await
                            .unwrap();
                        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                            .execute(&mut conn)
                            .await
                            .unwrap();
                        conn.close().await.unwrap();
                    }
                }
            }
        });
    })
    .join()
    .unwrap();
}

/// Stop the hub, run `statements` on its database, start it again (it re-derives its tree
/// from the entries and signs anew).
pub(crate) async fn rewrite_ledger(app: TestApp, statements: &'static [&'static str]) -> TestApp {
    let (backend, sqlite, pg) = (app.backend, app.sqlite_path(), app.database_url.clone());
    app.restart_after(move || run_sql(backend, sqlite, pg, statements))
        .await
}

/// Rewrite one early entry, and drop the derived nodes and the signed checkpoints that would
/// give it away: the hub starts on a forked log and signs it with its own key.
pub(crate) const FORK: &[&str] = &[
    "UPDATE ledger_entries SET canonical = replace(canonical, '\"decision\":\"allow\"', \
     '\"decision\":\"deny\"') WHERE idx = (SELECT MIN(idx) FROM ledger_entries \
     WHERE canonical LIKE '%\"decision\":\"allow\"%')",
    "DELETE FROM ledger_nodes",
    "DELETE FROM ledger_checkpoints",
    "UPDATE ledger_head SET checkpoint_size = -1",
];

/// Cut the log back to three entries and drop what would give it away (the coordination row
/// too, or the hub would refuse to append to a ledger shorter than the row says).
const SHRINK: &[&str] = &[
    "DELETE FROM ledger_entries WHERE idx >= 3",
    "DELETE FROM ledger_nodes",
    "DELETE FROM ledger_checkpoints",
    "UPDATE ledger_head SET size = 3, checkpoint_size = -1",
];

async fn a_rewritten_ledger_is_inconsistent_and_a_shrunk_one_a_rollback(backend: Backend) {
    let (app, civil, _) = hub_with_residents(backend).await;
    let state = tempfile::tempdir().unwrap();
    let client = Client::new(config(&app, &civil).state_file(state_path(&state))).unwrap();
    client.pull("person", pull(5)).await.unwrap();
    let trusted = client.trusted_checkpoint().unwrap();
    let size = trusted.size();

    // The hub restarts on a forked log (on another port: the department system starts a new
    // client, which trusts what the state file holds).
    let app = rewrite_ledger(app, FORK).await;
    let client = Client::new(config(&app, &civil).state_file(state_path(&state))).unwrap();
    match client.pull("person", pull(5)).await {
        Err(Error::Inconsistent {
            trusted: evidence,
            presented,
        }) => {
            assert_eq!(evidence, trusted.note());
            let lines: Vec<&str> = presented.lines().collect();
            assert!(lines[1].parse::<u64>().unwrap() >= size, "{presented}");
            assert_ne!(presented, evidence);
        }
        other => panic!("expected Inconsistent, got {other:?}"),
    }
    // The state file still holds the checkpoint verified before the fork, and asking again
    // gives the same answer.
    let stored = StateFile::new(state_path(&state)).load().unwrap();
    assert_eq!(stored.checkpoint.as_deref(), Some(trusted.note()));
    assert!(matches!(
        client.checkpoint().await,
        Err(Error::Inconsistent { .. })
    ));

    let app = rewrite_ledger(app, SHRINK).await;
    let client = Client::new(config(&app, &civil).state_file(state_path(&state))).unwrap();
    match client.checkpoint().await {
        Err(Error::Rollback {
            trusted_size,
            presented_size,
            trusted: evidence,
            presented,
        }) => {
            assert_eq!((trusted_size, evidence.as_str()), (size, trusted.note()));
            assert!(presented_size < size, "{presented_size} < {size}");
            assert!(presented.contains(&format!("\n{presented_size}\n")));
        }
        other => panic!("expected Rollback, got {other:?}"),
    }
    app.stop().await;
}

async fn two_clients_sharing_a_state_file_never_lose_the_newer_checkpoint(backend: Backend) {
    let (app, civil, _) = hub_with_residents(backend).await;
    let other = app.register_client("civil-other", "civil-affairs").await;
    let state = tempfile::tempdir().unwrap();
    let a = Client::new(config(&app, &civil).state_file(state_path(&state))).unwrap();
    let b = Client::new(config(&app, &other).state_file(state_path(&state))).unwrap();
    let run = |client: Client| {
        tokio::spawn(async move {
            let mut sizes = Vec::new();
            for _ in 0..8 {
                let page = client.pull("person", pull(2)).await.unwrap();
                sizes.push(page.checkpoint_size);
            }
            sizes
        })
    };
    let (sa, sb) = (run(a.clone()), run(b.clone()));
    let (sa, sb) = (sa.await.unwrap(), sb.await.unwrap());
    let newest = sa.iter().chain(&sb).copied().max().unwrap();
    let stored = StateFile::new(state_path(&state)).load().unwrap();
    let note = stored.checkpoint.unwrap();
    let stored_size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
    assert!(
        stored_size >= newest,
        "the state file went back: {stored_size} < {newest}"
    );
    for client in [&a, &b] {
        assert!(client.trusted_checkpoint().unwrap().size() <= stored_size);
    }
    // Both still agree with the hub and the file.
    a.checkpoint().await.unwrap();
    b.checkpoint().await.unwrap();
    app.stop().await;
}

on_both_backends!(
    sixteen_workers_share_one_refresh_and_page_to_the_end,
    a_sealed_client_gets_the_same_records,
    a_lost_refresh_keeps_the_old_token_while_it_is_valid,
    a_rewritten_ledger_is_inconsistent_and_a_shrunk_one_a_rollback,
    two_clients_sharing_a_state_file_never_lose_the_newer_checkpoint,
);

fn cosigner(name: &str) -> connectors::tlog::cosignature::Cosigner {
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    connectors::tlog::cosignature::Cosigner::from_pkcs8(name, pkcs8.as_ref()).unwrap()
}

async fn a_department_witnesses_checkpoints_and_clients_can_require_witnesses(backend: Backend) {
    let (app, civil, _) = hub_with_residents(backend).await;
    let witness_key = cosigner("civil-affairs.example/witness");
    let resp = app
        .put_json(
            &app.admin_token,
            "/v1/admin/clients/civil-sys/witness",
            &json!({"vkey": witness_key.vkey()}),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let state = tempfile::tempdir().unwrap();
    let witness = Client::new(config(&app, &civil).state_file(state_path(&state))).unwrap();
    let witnessed = witness.witness(&witness_key).await.unwrap();
    assert_eq!(witnessed.size, witnessed.checkpoint.size());
    assert_eq!(witnessed.key_name, "civil-affairs.example/witness");

    // A client requiring that witness accepts the cosigned checkpoint.
    let strict =
        Client::new(config(&app, &civil).require_witnesses(vec![witness_key.vkey()], 1)).unwrap();
    let accepted = strict.checkpoint().await.unwrap();
    assert_eq!(accepted.size(), witnessed.size);
    assert!(accepted.note().contains("civil-affairs.example/witness"));
    // A new disclosure is not covered until the witness cosigns a newer checkpoint.
    match strict.pull("person", pull(1)).await {
        Err(Error::ProofFailed(_)) => {}
        other => panic!("expected ProofFailed, got {other:?}"),
    }
    // (The pull's receipt is checked again once the witness caught up.)
    let page = witness.pull("person", pull(1)).await.unwrap();
    witness.witness(&witness_key).await.unwrap();
    strict.verify_receipt(&page.receipt).await.unwrap();

    // A client requiring a witness that never cosigned refuses the checkpoint.
    let stranger = cosigner("stranger.example/witness");
    let picky =
        Client::new(config(&app, &civil).require_witnesses(vec![stranger.vkey()], 1)).unwrap();
    assert!(matches!(
        picky.checkpoint().await,
        Err(Error::BadCheckpoint(_))
    ));
    app.stop().await;
}

on_both_backends!(a_department_witnesses_checkpoints_and_clients_can_require_witnesses);

async fn grants_explanations_and_lookups_are_typed_calls(backend: Backend) {
    let (app, civil, ids) = hub_with_residents(backend).await;
    let client = Client::new(config(&app, &civil)).unwrap();
    let request = connectors::GrantRequest {
        grantee: "civil-affairs".to_owned(),
        purpose: "population-registration".to_owned(),
        category: "person".to_owned(),
        fields: json!({"name": "clear", "phone": "clear"})
            .as_object()
            .unwrap()
            .clone(),
        scope: vec!["330110.001".to_owned()],
        row_filter: None,
        case_bound: false,
        valid_from: crate::grants::rfc3339(-3600),
        valid_until: crate::grants::rfc3339(86_400),
        daily_quota: None,
        legal_basis: None,
    };
    let requested = client.request_grant(&request).await.unwrap();
    assert_eq!(requested.status, "requested");
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{}/approve", requested.id),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        client.grant(&requested.id).await.unwrap().status,
        "approved"
    );
    let explained = client
        .explain("person", "population-registration", None, None)
        .await
        .unwrap();
    assert!(explained.allowed);
    assert!(explained.fields.contains_key("phone"));

    let key = json!({"phone": "13812340007"}).as_object().unwrap().clone();
    let found = client
        .lookup("person", "population-registration", None, &key)
        .await
        .unwrap();
    assert_eq!(found.records.len(), 1);
    assert!(ids.contains(&found.records[0].id));
    assert_eq!(found.records[0].fields["phone"], "13812340007");
    assert!(found.checkpoint_size > found.receipt.index);

    // The hub's refusals are typed errors with the stable code, and no value in the message.
    match client.lookup("person", "court-execution", None, &key).await {
        Err(e @ Error::Api { status: 403, .. }) => {
            assert_eq!(e.code(), Some(&connectors::ApiCode::NoGrant));
            assert!(!e.to_string().contains("13812340007"));
        }
        other => panic!("expected no_grant, got {other:?}"),
    }
    match client.grant("no-such-grant").await {
        Err(Error::Api {
            status: 404,
            code: connectors::ApiCode::NotFound,
            request_id: Some(_),
            ..
        }) => {}
        other => panic!("expected not_found, got {other:?}"),
    }
    app.stop().await;
}

on_both_backends!(grants_explanations_and_lookups_are_typed_calls);
