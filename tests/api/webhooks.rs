//! Webhooks and the NATS publisher (issue 21): events from the transactional outbox reach a
//! receiver served here over HTTPS (a certificate from a test CA the hub trusts through
//! `webhooks.ca_file`) exactly once per `webhook-id`, through transient 500s and a hub restart,
//! each signed as Standard Webhooks says (recomputed here with ring); a dead event is replayed by
//! `gridhub webhooks replay --dead`; a refused change emits nothing. NATS: case events and a
//! checkpoint are published to JetStream with `Nats-Msg-Id` = the outbox id, and a duplicate
//! publish is dropped by the stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gridhub_tests::mtls::DeptClient;
use gridhub_tests::{
    Backend, SpawnOptions, TestApp, WORKER_GRID, error_code, on_both_backends, spawn_app_with,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::{Value, json};

use crate::grants::{client_post, rfc3339};

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// Attempts per `webhook-id`, failed ones included.
    attempts: HashMap<String, u32>,
    /// Answered 2xx: (path, id, timestamp, signature, body), in arrival order.
    accepted: Vec<(String, String, String, String, String)>,
    /// Paths that answer 500 to everything.
    down: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

/// Answers 500 to the first attempt of every `case.assigned`, `grant.approved` and
/// `case.overdue` event, and to everything on a path that is down; 204 otherwise.
async fn receive(
    State(seen): State<Shared>,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = header("webhook-id");
    let kind = serde_json::from_str::<Value>(&body).unwrap()["type"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut seen = seen.lock().unwrap();
    let n = {
        let n = seen.attempts.entry(id.clone()).or_default();
        *n += 1;
        *n
    };
    let flaky = matches!(
        kind.as_str(),
        "case.assigned" | "grant.approved" | "case.overdue"
    );
    if seen.down.contains(&path) || (flaky && n == 1) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let (ts, sig) = (header("webhook-timestamp"), header("webhook-signature"));
    seen.accepted.push((path, id, ts, sig, body));
    StatusCode::NO_CONTENT
}

/// A receiver on `https://localhost:<port>/{path}` with a certificate from a fresh test CA;
/// returns the port, the CA file (PEM) and what it saw.
async fn start_receiver(dir: &std::path::Path) -> (u16, std::path::PathBuf, Shared) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let ca_file = dir.join("webhook-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();

    let certs = vec![leaf.der().clone()];
    let key = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let seen = Shared::default();
    let app = axum::Router::new()
        .route("/{path}", axum::routing::post(receive))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    (port, ca_file, seen)
}

/// `v1,<base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}"))>`, computed here independently.
fn expected_signature(secret: &str, id: &str, ts: &str, body: &str) -> String {
    let bytes = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes);
    let tag = ring::hmac::sign(&key, format!("{id}.{ts}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(tag.as_ref()))
}

async fn put_webhook(app: &TestApp, destination: &str, url: &str) -> reqwest::Response {
    app.put_json(
        &app.admin_token,
        &format!("/v1/admin/webhooks/{destination}"),
        &json!({ "url": url }),
    )
    .await
}

/// Run delivery rounds (moving the clock past the backoff cap between them) until `done`
/// holds, at most `rounds` times.
async fn deliver_until(app: &TestApp, seen: &Shared, rounds: u32, done: impl Fn(&Seen) -> bool) {
    for _ in 0..rounds {
        app.state.webhooks.deliver_due().await.unwrap();
        if done(&seen.lock().unwrap()) {
            return;
        }
        app.clock.advance(Duration::from_secs(11));
    }
}

fn accepted_types(seen: &Seen, path: &str) -> Vec<String> {
    seen.accepted
        .iter()
        .filter(|a| a.0 == path)
        .map(|a| {
            serde_json::from_str::<Value>(&a.4).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

async fn report_case(app: &TestApp) -> String {
    let resp = app
        .post(
            &app.worker_token,
            "/v1/cases",
            &json!({"grid": WORKER_GRID, "kind": "dispute", "summary": "邻里纠纷 张三"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn assign(app: &TestApp, case: &str, departments: &[&str], due_in: i64) {
    let resp = app
        .post(
            &app.admin_token,
            &format!("/v1/cases/{case}/assign"),
            &json!({"departments": departments, "deadline": rfc3339(due_in)}),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

async fn request_grant(app: &TestApp, civil: &DeptClient, valid_secs: i64) -> String {
    let mut request = crate::grants::grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "clear"}),
        &[WORKER_GRID],
    );
    request["valid_until"] = json!(rfc3339(valid_secs));
    let resp = client_post(app, civil, "/v1/grants", &request).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn webhooks_deliver_every_event_once_signed_through_failures_and_a_restart(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (port, ca_file, seen) = start_receiver(dir.path()).await;
    let extra = format!(
        "[webhooks]\nca_file = \"{}\"\nbackoff_base_secs = 1\nbackoff_cap_secs = 10\n\
         max_attempts = 3\npoll_secs = 3600\n",
        ca_file.display()
    );
    let mut app = spawn_app_with(
        backend,
        SpawnOptions {
            extra_config: Some(extra),
            ..SpawnOptions::default()
        },
    )
    .await;
    app.create_department("civil-affairs", &[WORKER_GRID]).await;
    app.create_department("housing", &[WORKER_GRID]).await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;

    // Endpoints: https only, known destinations only, admins only; the secret shown once.
    let url = |path: &str| format!("https://localhost:{port}/{path}");
    let resp = put_webhook(
        &app,
        "civil-affairs",
        &format!("http://localhost:{port}/civil"),
    )
    .await;
    assert_eq!(error_code(resp).await.1, "validation_failed");
    let resp = put_webhook(&app, "nobody", &url("civil")).await;
    assert_eq!(error_code(resp).await.1, "validation_failed");
    let resp = app
        .put_json(
            &app.dpo_token,
            "/v1/admin/webhooks/civil-affairs",
            &json!({"url": url("civil")}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let resp = put_webhook(&app, "civil-affairs", &url("civil")).await;
    assert_eq!(resp.status(), 200);
    let shown: Value = resp.json().await.unwrap();
    let secret = shown["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{shown}");
    let resp = put_webhook(&app, "housing", &url("housing")).await;
    assert_eq!(resp.status(), 200);
    let housing_secret = resp.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let list: Value = app
        .get(&app.admin_token, "/v1/admin/webhooks")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 2, "{list}");
    assert!(
        !list.to_string().contains("whsec_"),
        "no secret in the list"
    );
    seen.lock().unwrap().down.push("housing".to_owned());

    // A case assigned, then reassigned (civil-affairs keeps it, housing joins).
    let case = report_case(&app).await;
    assign(&app, &case, &["civil-affairs"], 3 * 3600).await;
    assign(&app, &case, &["civil-affairs", "housing"], 3 * 3600).await;
    // Grants: requested, approved, revoked; another one expiring within two days.
    let g1 = request_grant(&app, &civil, 30 * 86_400).await;
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{g1}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let g2 = request_grant(&app, &civil, 2 * 86_400).await;
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{g2}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // Refused changes emit nothing: approving twice, rejecting without a reason.
    let before = app.raw_count("SELECT COUNT(*) AS n FROM outbox").await;
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{g1}/approve"),
            &json!({}),
        )
        .await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{g1}/reject"),
            &json!({}),
        )
        .await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert_eq!(
        app.raw_count("SELECT COUNT(*) AS n FROM outbox").await,
        before
    );
    let resp = app
        .post(
            &app.admin_token,
            &format!("/v1/grants/{g1}/revoke"),
            &json!({"reason": "no longer needed"}),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    // First round: the flaky events fail once; then the hub restarts with them pending.
    app.state.webhooks.deliver_due().await.unwrap();
    let rows: Value = app
        .get(&app.admin_token, "/v1/admin/webhooks/deliveries")
        .await
        .json()
        .await
        .unwrap();
    {
        let seen = seen.lock().unwrap();
        assert!(!seen.accepted.is_empty(), "{rows}");
        let types = accepted_types(&seen, "civil");
        assert!(types.contains(&"grant.requested".to_owned()), "{types:?}");
        assert!(!types.contains(&"case.assigned".to_owned()), "{types:?}");
    }
    app = app.restart().await;
    app.clock.advance(Duration::from_secs(11));
    deliver_until(&app, &seen, 4, |s| {
        let t = accepted_types(s, "civil");
        t.contains(&"case.assigned".to_owned()) && t.contains(&"grant.approved".to_owned())
    })
    .await;

    // Time-based events: overdue after three hours, the second grant expiring within a day.
    app.advance_clock(Duration::from_secs(4 * 3600)).await;
    app.state.webhooks.sweep().await.unwrap();
    app.advance_clock(Duration::from_secs(30 * 3600)).await;
    app.state.webhooks.sweep().await.unwrap();
    assert_eq!(
        app.state.webhooks.sweep().await.unwrap(),
        0,
        "each time-based event once"
    );
    deliver_until(&app, &seen, 5, |s| {
        let t = accepted_types(s, "civil");
        t.contains(&"case.overdue".to_owned()) && t.contains(&"grant.expiring".to_owned())
    })
    .await;
    // Housing was down all along: its events are dead after three attempts.
    deliver_until(&app, &seen, 5, |_| false).await;

    {
        let seen = seen.lock().unwrap();
        let mut types = accepted_types(&seen, "civil");
        types.sort();
        for expected in [
            "case.assigned",
            "case.reassigned",
            "case.overdue",
            "grant.requested",
            "grant.approved",
            "grant.revoked",
            "grant.expiring",
        ] {
            assert!(types.iter().any(|t| t == expected), "{expected}: {types:?}");
        }
        let mut ids: Vec<&String> = seen.accepted.iter().map(|a| &a.1).collect();
        let all = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all, "every webhook-id accepted exactly once");
        let once = |kind: &str| types.iter().filter(|t| *t == kind).count();
        assert_eq!(once("case.overdue"), 1, "{types:?}");
        assert_eq!(once("grant.expiring"), 1, "{types:?}");
        assert_eq!(once("grant.requested"), 2, "{types:?}");
        for (path, id, ts, sig, body) in &seen.accepted {
            assert_eq!(path, "civil");
            assert_eq!(sig, &expected_signature(&secret, id, ts, body), "{body}");
            assert!(!body.contains("张三") && !body.contains("纠纷"), "{body}");
            let v: Value = serde_json::from_str(body).unwrap();
            assert!(v["timestamp"].is_string() && v["data"].is_object(), "{v}");
        }
    }
    let dead: Value = app
        .get(&app.admin_token, "/v1/admin/webhooks/deliveries?state=dead")
        .await
        .json()
        .await
        .unwrap();
    let dead = dead["deliveries"]
        .as_array()
        .unwrap_or_else(|| panic!("{dead}"))
        .clone();
    assert!(!dead.is_empty());
    assert!(
        dead.iter()
            .all(|d| d["destination"] == "housing" && d["attempts"] == 3)
    );
    assert!(
        dead.iter().all(|d| d["last_error"] == "HTTP 500"),
        "{dead:?}"
    );
    let resp = app
        .get(&app.admin_token, "/v1/admin/webhooks/deliveries?state=lost")
        .await;
    assert_eq!(error_code(resp).await.1, "bad_request");

    // Housing is back; the dead events are replayed by the CLI on the stopped hub.
    seen.lock().unwrap().down.clear();
    let data_dir = app.data_dir.path().to_path_buf();
    let database_url = app.database_url.clone();
    app = app
        .restart_after(move || {
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async {
                    let n = gridhub::webhooks::replay(
                        data_dir,
                        database_url,
                        gridhub::storage::ReplayFilter {
                            dead: true,
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                    assert!(n > 0);
                })
            })
        })
        .await;
    app.clock.advance(Duration::from_secs(1));
    app.state.webhooks.deliver_due().await.unwrap();
    let housing: Vec<_> = seen
        .lock()
        .unwrap()
        .accepted
        .iter()
        .filter(|a| a.0 == "housing")
        .cloned()
        .collect();
    assert_eq!(
        housing.len(),
        dead.len(),
        "every dead event delivered after the replay"
    );
    for (_, id, ts, sig, body) in &housing {
        assert_eq!(sig, &expected_signature(&housing_secret, id, ts, body));
    }
    let still: Value = app
        .get(&app.admin_token, "/v1/admin/webhooks/deliveries?state=dead")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still["deliveries"].as_array().unwrap().len(), 0);
    let replays = crate::grants::entries_of(&app, "webhook.replay").await;
    assert_eq!(replays.len(), 1, "the replay is audited");
    let puts = crate::grants::entries_of(&app, "webhook.put").await;
    let allowed = puts.iter().filter(|e| e["decision"] == "allow").count();
    assert_eq!(
        allowed, 2,
        "both endpoint changes audited (and the DPO's refusal): {puts:?}"
    );
    assert_eq!(puts.len(), 3, "{puts:?}");
    let resp = app
        .delete(&app.admin_token, "/v1/admin/webhooks/housing")
        .await;
    assert_eq!(resp.status(), 204);
    let resp = app
        .delete(&app.admin_token, "/v1/admin/webhooks/housing")
        .await;
    assert_eq!(resp.status(), 404);
    app.stop().await;
}

async fn nats_publishes_case_events_and_checkpoints_deduplicated(backend: Backend) {
    use futures_util::StreamExt;
    use gridhub::webhooks::nats::async_nats;

    let tag = uuid::Uuid::new_v4().simple().to_string();
    let stream = format!("GRIDHUB_TEST_{tag}");
    let prefix = format!("gridhub.test{tag}");
    let extra = format!(
        "[webhooks]\npoll_secs = 3600\n[nats]\nurl = \"nats://127.0.0.1:4222\"\n\
         stream = \"{stream}\"\nsubject_prefix = \"{prefix}\"\n"
    );
    let mut app = spawn_app_with(
        backend,
        SpawnOptions {
            extra_config: Some(extra),
            ..SpawnOptions::default()
        },
    )
    .await;
    app.create_department("civil-affairs", &[WORKER_GRID]).await;
    let case = report_case(&app).await;
    assign(&app, &case, &["civil-affairs"], 3600).await;
    app.state.ledger.checkpoint().await.unwrap();
    app.advance_clock(Duration::from_secs(2 * 3600)).await;
    app.state.webhooks.sweep().await.unwrap();
    app.state.webhooks.deliver_due().await.unwrap();

    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut consumer_stream = js.get_stream(&stream).await.unwrap();
    let info = consumer_stream.info().await.unwrap();
    let published = info.state.messages;
    let consumer = consumer_stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer
        .fetch()
        .max_messages(100)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(m) = messages.next().await {
        let m = m.unwrap();
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| panic!("{:?} {:?}", m.subject, m.headers));
        got.push((m.subject.to_string(), id, m.payload.to_vec()));
        m.ack().await.unwrap();
    }
    assert_eq!(got.len() as u64, published);
    let subjects: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert!(
        subjects.contains(&format!("{prefix}.cases.assigned").as_str()),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&format!("{prefix}.cases.overdue").as_str()),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&format!("{prefix}.checkpoints").as_str()),
        "{subjects:?}"
    );
    // The ids are the outbox's, all delivered.
    let rows: Value = app
        .get(
            &app.admin_token,
            "/v1/admin/webhooks/deliveries?state=delivered",
        )
        .await
        .json()
        .await
        .unwrap();
    let delivered: Vec<&str> = rows["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["sink"] == "nats")
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    for (_, id, _) in &got {
        assert!(delivered.contains(&id.as_str()), "{id} in {delivered:?}");
    }
    let checkpoint = got.iter().find(|g| g.0.ends_with(".checkpoints")).unwrap();
    let body: Value = serde_json::from_slice(&checkpoint.2).unwrap();
    assert!(
        body["data"]["note"].as_str().unwrap().contains("gridhub/"),
        "{body}"
    );

    // A re-publish with the same id (a crash between the ack and the mark) is dropped.
    let (subject, id, payload) = got[0].clone();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
    let ack = js
        .publish_with_headers(subject, headers, payload.into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(ack.duplicate, "JetStream deduplicates by Nats-Msg-Id");
    assert_eq!(
        consumer_stream.info().await.unwrap().state.messages,
        published
    );
    js.delete_stream(&stream).await.unwrap();
    app.stop().await;
}

/// An anomaly (here: five denials of one client within the hour) reaches the DPO endpoint as
/// one signed `anomaly.flagged`, however often the sweep runs, with ids, counts, times and
/// ledger indexes only.
async fn anomalies_are_flagged_to_the_dpos_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (port, ca_file, seen) = start_receiver(dir.path()).await;
    let extra = format!(
        "[webhooks]\nca_file = \"{}\"\npoll_secs = 3600\n",
        ca_file.display()
    );
    let app = spawn_app_with(
        backend,
        SpawnOptions {
            extra_config: Some(extra),
            ..SpawnOptions::default()
        },
    )
    .await;
    app.create_department("health", &[WORKER_GRID]).await;
    let health = app.register_client("health-sys", "health").await;
    for _ in 0..5 {
        let resp =
            crate::grants::client_get(&app, &health, "/v1/data/person?purpose=elderly-care").await;
        assert_eq!(error_code(resp).await.0, 403);
    }
    // Without a DPO endpoint nothing is written (and nothing marked).
    assert_eq!(app.state.webhooks.sweep().await.unwrap(), 0);
    let resp = put_webhook(&app, "dpo", &format!("https://localhost:{port}/dpo")).await;
    assert_eq!(resp.status(), 200);
    let secret = resp.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let reported: Value = app
        .get(&app.dpo_token, "/v1/audit/anomalies")
        .await
        .json()
        .await
        .unwrap();
    let denials: Vec<&Value> = reported["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "repeated_denials")
        .collect();
    assert_eq!(denials.len(), 1, "{reported}");
    let anomaly = denials[0];

    let flagged = app.state.webhooks.sweep().await.unwrap();
    assert!(flagged >= 1, "the denials, and any off-hours disclosure");
    assert_eq!(app.state.webhooks.sweep().await.unwrap(), 0, "once only");
    deliver_until(&app, &seen, 3, |s| {
        accepted_types(s, "dpo").len() >= flagged
    })
    .await;
    app.state.webhooks.sweep().await.unwrap();
    app.state.webhooks.deliver_due().await.unwrap();

    let flags: Vec<(String, String, String, String, String)> = seen
        .lock()
        .unwrap()
        .accepted
        .iter()
        .filter(|a| a.0 == "dpo")
        .cloned()
        .collect();
    assert_eq!(flags.len(), flagged, "each anomaly once");
    let mine: Vec<Value> = flags
        .iter()
        .map(|(_, id, ts, sig, body)| {
            assert_eq!(sig, &expected_signature(&secret, id, ts, body));
            serde_json::from_str::<Value>(body).unwrap()
        })
        .filter(|b| b["data"]["anomaly_id"] == anomaly["id"])
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    let event = &mine[0];
    assert_eq!(event["type"], "anomaly.flagged");
    assert_eq!(
        event["data"],
        json!({
            "anomaly_id": anomaly["id"],
            "kind": "repeated_denials",
            "client": "health-sys",
            "department": "health",
            "count": 5,
            "first": anomaly["first"],
            "last": anomaly["last"],
            "entries": anomaly["entries"],
        })
    );
    app.stop().await;
}

on_both_backends!(
    webhooks_deliver_every_event_once_signed_through_failures_and_a_restart,
    nats_publishes_case_events_and_checkpoints_deduplicated,
    anomalies_are_flagged_to_the_dpos_once,
);
