//! Prometheus metrics (issue 22), served at `GET /metrics` in the Prometheus text format
//! (0.0.4) to a scraper holding the configured `metrics_token`. Counted as things happen: HTTP
//! requests by route template, method and status with a latency histogram (`observe_request`,
//! from the request middleware), and what the ledger writer committed (`ledger::metrics`).
//! Read at each scrape: the ledger's size, connection pools, the outbox backlog.
//!
//! Labels are route templates (`/v1/records/{id}`, never a path with an id in it), method
//! names, status codes, stream and decision names, pool and sink names: a bounded set, and no
//! personal data.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::Error;
use crate::ledger::{Health as LedgerHealth, Ledger};
use crate::storage::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KekLabels {
    category: String,
    version: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// The KEK rows, waiting at most `DATABASE_WAIT`.
async fn ask_rows(
    store: &Store,
) -> Result<Result<Vec<crate::storage::KekRow>, sqlx::Error>, tokio::time::error::Elapsed> {
    tokio::time::timeout(DATABASE_WAIT, store.kek_rows()).await
}

fn request_histogram() -> Histogram {
    // 0.5 ms … ~16 s.
    Histogram::new(exponential_buckets(0.000_5, 2.0, 16))
}

/// The hub's metrics and the registry that names them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    ledger_size: Gauge,
    writable: Gauge,
    degraded_since: Gauge,
    refused: Gauge,
    fault: Family<FaultLabels, Gauge>,
    ledger_committed: Gauge,
    pool_connections: Family<PoolLabels, Gauge>,
    outbox_backlog: Family<SinkLabels, Gauge>,
    kek_wraps: Family<KekLabels, Gauge>,
    kek_rewrapped: Family<KekLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics(..)")
    }
}

impl Metrics {
    /// Every metric registered under `gridhub_`, the ledger's (`ledger`) among them.
    pub fn new(ledger: &Ledger) -> Metrics {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("gridhub");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            request_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route template and method",
            durations.clone(),
        );
        let m = ledger.metrics();
        registry.register(
            "ledger_appended_entries",
            "Ledger entries committed by this process, by stream and decision (the disclosure \
             stream's are the access decisions)",
            m.entries.clone(),
        );
        registry.register(
            "ledger_commits",
            "Ledger transactions committed by this process",
            m.commits.clone(),
        );
        registry.register(
            "ledger_committed_entries",
            "Ledger entries committed by this process",
            m.committed_entries.clone(),
        );
        registry.register(
            "disclosed_records",
            "Records released to departments (pull and lookup pages, as their ledger entries \
             name them)",
            m.disclosed_records.clone(),
        );
        registry.register(
            "disclosed_fields",
            "Fields released to departments, summed over the records released",
            m.disclosed_fields.clone(),
        );
        registry.register(
            "ledger_append_duration_seconds",
            "Time of one ledger append transaction, from taking the coordination row to the \
             commit",
            m.append_seconds.clone(),
        );
        registry.register(
            "ledger_group_commit_entries",
            "Entries per ledger append transaction (the group-commit size)",
            m.batch_entries.clone(),
        );
        registry.register(
            "ledger_catch_ups",
            "Append transactions that first caught up with entries other processes appended",
            m.catch_ups.clone(),
        );
        let ledger_size = Gauge::default();
        registry.register(
            "ledger_entries",
            "Entries in the audit ledger as this process's tree holds it",
            ledger_size.clone(),
        );
        let writable = Gauge::default();
        registry.register(
            "ledger_writable",
            "1 while the audit ledger can commit; 0 while storage writes fail (writes and \
             disclosures are refused)",
            writable.clone(),
        );
        let degraded_since = Gauge::default();
        registry.register(
            "ledger_degraded_since_seconds",
            "Unix time of the first failed write of the current outage, 0 when writable",
            degraded_since.clone(),
        );
        let refused = Gauge::default();
        registry.register(
            "ledger_refused_operations",
            "Operations refused during the current outage",
            refused.clone(),
        );
        let fault = Family::<FaultLabels, Gauge>::default();
        registry.register(
            "ledger_fault",
            "The kind of storage fault of the current outage (1; absent when writable)",
            fault.clone(),
        );
        let ledger_committed = Gauge::default();
        registry.register(
            "ledger_committed_size",
            "Entries in the ledger as committed by every process (the coordination row)",
            ledger_committed.clone(),
        );
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database connections by pool and state (in_use, idle, max)",
            pool_connections.clone(),
        );
        let outbox_backlog = Family::<SinkLabels, Gauge>::default();
        registry.register(
            "outbox_backlog",
            "Webhook and NATS events not yet delivered (pending, not dead), by sink",
            outbox_backlog.clone(),
        );
        let kek_wraps = Family::<KekLabels, Gauge>::default();
        registry.register(
            "kek_wraps",
            "Data keys wrapped under each KEK version so far (rotation before 2^32), by state",
            kek_wraps.clone(),
        );
        let kek_rewrapped = Family::<KekLabels, Gauge>::default();
        registry.register(
            "kek_rewrapped",
            "Data keys the rewrap has moved off each KEK version (its progress), by state",
            kek_rewrapped.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The running build (always 1)", build);
        Metrics {
            registry: root,
            requests,
            durations,
            ledger_size,
            writable,
            degraded_since,
            refused,
            fault,
            ledger_committed,
            pool_connections,
            outbox_backlog,
            kek_wraps,
            kek_rewrapped,
        }
    }

    /// One answered request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                method: method.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// The text a scrape gets: the gauges read now, then everything encoded.
    pub async fn render(&self, store: &Store, ledger: &Ledger) -> Result<String, Error> {
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.ledger_size.set(as_i64(ledger.size()));
        self.fault.clear();
        match ledger.health() {
            LedgerHealth::Writable => {
                self.writable.set(1);
                self.degraded_since.set(0);
                self.refused.set(0);
            }
            LedgerHealth::Degraded {
                since_ms,
                refused,
                fault,
                ..
            } => {
                self.writable.set(0);
                self.degraded_since.set(since_ms / 1000);
                self.refused.set(as_i64(refused));
                self.fault
                    .get_or_create(&FaultLabels {
                        kind: fault.as_str(),
                    })
                    .set(1);
            }
        }
        // From the database, at most a second each: the metrics matter most when the database
        // is in trouble, so they are served without what it cannot answer.
        let ask = |what| tokio::time::timeout(DATABASE_WAIT, what);
        if let Ok(Ok(head)) = ask(store.ledger_head()).await {
            self.ledger_committed.set(as_i64(head.size));
        }
        for (pool, open, idle, max) in store.pool_use() {
            for (state, n) in [
                ("in_use", open.saturating_sub(idle)),
                ("idle", idle),
                ("max", max),
            ] {
                self.pool_connections
                    .get_or_create(&PoolLabels { pool, state })
                    .set(i64::from(n));
            }
        }
        let backlog = match tokio::time::timeout(DATABASE_WAIT, store.outbox_backlog()).await {
            Ok(Ok(backlog)) => Some(backlog),
            _ => None,
        };
        for sink in backlog.iter().flat_map(|_| ["webhook", "nats"]) {
            let n = backlog
                .iter()
                .flatten()
                .find(|(s, _)| s == sink)
                .map_or(0, |(_, n)| *n);
            self.outbox_backlog
                .get_or_create(&SinkLabels {
                    sink: sink.to_owned(),
                })
                .set(n);
        }
        if let Ok(Ok(rows)) = ask_rows(store).await {
            self.kek_wraps.clear();
            self.kek_rewrapped.clear();
            for row in rows {
                let labels = KekLabels {
                    category: row.category,
                    version: row.version.to_string(),
                    state: row.state.as_str(),
                };
                self.kek_wraps.get_or_create(&labels).set(row.wraps);
                self.kek_rewrapped.get_or_create(&labels).set(row.rewrapped);
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .map_err(|_| Error::Internal("the metrics could not be encoded".to_owned()))?;
        Ok(text)
    }
}

/// Longest wait for one database figure of a scrape.
const DATABASE_WAIT: Duration = Duration::from_secs(1);

/// The Content-Type of `render`'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
