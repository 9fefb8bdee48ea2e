//! The load a fault run drives: writers posting batches of records, a department pulling, and a
//! reader of checkpoints, each remembering what the hub acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gridhub_tests::mtls::DeptClient;
use gridhub_tests::{TestApp, WORKER_GRID, id_number, person};
use serde_json::{Value, json};

/// What the hub answered during a run.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    /// Writes answered 201: the record ids and the receipt.
    pub writes: Vec<(Vec<String>, Value)>,
    /// Pulls answered 200: the records disclosed and the receipt.
    pub pulls: Vec<(Vec<String>, Value)>,
    /// Refusals by "status code", counted.
    pub refused: BTreeMap<String, u64>,
    /// Every distinct checkpoint note served.
    pub checkpoints: BTreeSet<String>,
    /// Requests that got no HTTP answer at all.
    pub transport_errors: u64,
}

/// A running load; `stop` ends it and hands back the outcomes.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Outcomes>>,
    acknowledged: Arc<AtomicUsize>,
    refusals: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Records per write.
const BATCH: usize = 10;
/// Bound on every wait for the load to reach a state: a hang guard, not a timing assertion.
const BOUND: Duration = Duration::from_secs(120);

impl Load {
    /// Start `writers` writing tasks, one puller if `dept` is given, and a checkpoint reader.
    /// `seed` keeps identity numbers of separate loads on one hub apart.
    pub async fn start(app: &TestApp, dept: Option<&DeptClient>, writers: u32, seed: u32) -> Load {
        Load::start_at(app, &app.base, dept, writers, seed).await
    }

    /// As `start`, sending every request to `base` (another hub process on the same data
    /// directory and database) with `app`'s tokens and TLS trust.
    pub async fn start_at(
        app: &TestApp,
        base: &str,
        dept: Option<&DeptClient>,
        writers: u32,
        seed: u32,
    ) -> Load {
        // Tokens from the process the load goes to, dated by its clock: another process's clock
        // may lag this one's (under libfaketime every process starts at the same faked time),
        // and a token issued in its future is refused.
        let (worker_token, client_token) = if base == app.base {
            let client = match dept {
                Some(dept) => Some(app.client_token(dept).await),
                None => None,
            };
            (app.worker_token.clone(), client)
        } else {
            let worker = gridhub_tests::login_at(
                &app.client,
                base,
                "worker",
                gridhub_tests::WORKER_PASSWORD,
            )
            .await;
            let client = match dept {
                Some(dept) => {
                    let resp = dept
                        .http
                        .post(format!("{base}/v1/oauth/token"))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 200, "a client token from {base}");
                    let body: Value = resp.json().await.unwrap();
                    Some(body["access_token"].as_str().unwrap().to_owned())
                }
                None => None,
            };
            (worker, client)
        };
        let mut load = Load {
            stop: Arc::new(AtomicBool::new(false)),
            outcomes: Arc::new(Mutex::new(Outcomes::default())),
            acknowledged: Arc::new(AtomicUsize::new(0)),
            refusals: Arc::new(AtomicUsize::new(0)),
            tasks: Vec::new(),
        };
        for w in 0..writers {
            let (client, base, token) = (app.client.clone(), base.to_owned(), worker_token.clone());
            let (stop, outcomes, acked, refusals) = load.handles();
            load.tasks.push(tokio::spawn(async move {
                let mut seq = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let records: Vec<Value> = (0..BATCH)
                        .map(|_| {
                            seq += 1;
                            let n = seed * 1_000_000 + w * 100_000 + seq;
                            let first17 =
                                format!("3301021{:03}0101{:03}", 950 + (n / 1000) % 50, n % 1000);
                            person(WORKER_GRID, "韩梅梅", &id_number(&first17), "13912345678")
                        })
                        .collect();
                    let sent = client
                        .post(format!("{base}/v1/records/batch"))
                        .bearer_auth(&token)
                        .json(&json!({ "records": records }))
                        .send()
                        .await;
                    let answer = answer_of(sent).await;
                    let accepted = record(&outcomes, &acked, &refusals, answer, |body| {
                        (record_ids(body), body["receipt"].clone(), false)
                    });
                    pace(accepted).await;
                }
            }));
        }
        if let (Some(dept), Some(token)) = (dept, client_token) {
            let (http, base) = (dept.http.clone(), base.to_owned());
            let (stop, outcomes, acked, refusals) = load.handles();
            load.tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let sent = http
                        .get(format!(
                            "{base}/v1/data/person?purpose=elderly-care&limit=20"
                        ))
                        .bearer_auth(&token)
                        .send()
                        .await;
                    let answer = answer_of(sent).await;
                    let accepted = record(&outcomes, &acked, &refusals, answer, |body| {
                        (record_ids(body), body["receipt"].clone(), true)
                    });
                    pace(accepted).await;
                }
            }));
        }
        let (client, base) = (app.client.clone(), base.to_owned());
        let (stop, outcomes, _, _) = load.handles();
        load.tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(resp) = client
                    .get(format!("{base}/v1/audit/checkpoint"))
                    .send()
                    .await
                    && resp.status() == 200
                    && let Ok(note) = resp.text().await
                {
                    outcomes.lock().unwrap().checkpoints.insert(note);
                }
                // Pacing of the reader, not synchronisation: a checkpoint every ~50 ms is
                // plenty, and a tight loop would starve the writers on two cores.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
        load
    }

    fn handles(
        &self,
    ) -> (
        Arc<AtomicBool>,
        Arc<Mutex<Outcomes>>,
        Arc<AtomicUsize>,
        Arc<AtomicUsize>,
    ) {
        (
            self.stop.clone(),
            self.outcomes.clone(),
            self.acknowledged.clone(),
            self.refusals.clone(),
        )
    }

    /// Wait until `more` further requests were acknowledged.
    pub async fn until_acknowledged(&self, more: usize) {
        let target = self.acknowledged.load(Ordering::Relaxed) + more;
        self.until(
            || self.acknowledged.load(Ordering::Relaxed) >= target,
            "acknowledged",
        )
        .await;
    }

    /// Writes acknowledged so far.
    pub fn writes_acknowledged(&self) -> usize {
        self.outcomes.lock().unwrap().writes.len()
    }

    /// Wait until `more` further requests were refused.
    pub async fn until_refused(&self, more: usize) {
        let target = self.refusals.load(Ordering::Relaxed) + more;
        self.until(
            || self.refusals.load(Ordering::Relaxed) >= target,
            "refused",
        )
        .await;
    }

    async fn until(&self, done: impl Fn() -> bool, what: &str) {
        let deadline = tokio::time::Instant::now() + BOUND;
        while !done() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the load was not {what} in time: {:?}",
                self.outcomes.lock().unwrap().refused
            );
            // Polling a counter the load tasks advance.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(self) -> Outcomes {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(self.outcomes)
            .map(|m| m.into_inner().unwrap())
            .unwrap_or_default()
    }
}

/// The ids of `records` in a write's or a pull's answer.
fn record_ids(body: &Value) -> Vec<String> {
    body["records"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// (status, body) of a response, or None when there was no answer.
async fn answer_of(sent: reqwest::Result<reqwest::Response>) -> Option<(u16, Value)> {
    let resp = sent.ok()?;
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.ok()?;
    Some((status, body))
}

/// After a refusal, a short pause before the next request: load pacing (a refused request
/// takes well under a millisecond, and two cores are shared with the hub), not synchronisation.
async fn pace(accepted: bool) {
    if !accepted {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Note an answer; true if it was acknowledged.
fn record(
    outcomes: &Mutex<Outcomes>,
    acked: &AtomicUsize,
    refusals: &AtomicUsize,
    answer: Option<(u16, Value)>,
    accepted: impl FnOnce(&Value) -> (Vec<String>, Value, bool),
) -> bool {
    let mut o = outcomes.lock().unwrap();
    match answer {
        Some((200 | 201, body)) => {
            let (ids, receipt, pull) = accepted(&body);
            assert!(
                receipt.is_object(),
                "an acknowledged answer without a receipt: {body}"
            );
            if pull {
                o.pulls.push((ids, receipt));
            } else {
                o.writes.push((ids, receipt));
            }
            acked.fetch_add(1, Ordering::Relaxed);
            true
        }
        Some((status, body)) => {
            let code = body["error"]["code"].as_str().unwrap_or("(no code)");
            *o.refused.entry(format!("{status} {code}")).or_default() += 1;
            refusals.fetch_add(1, Ordering::Relaxed);
            false
        }
        None => {
            o.transport_errors += 1;
            false
        }
    }
}
