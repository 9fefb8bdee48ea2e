//! The load generator: `C` workers, each with its own TLS connection (tokio-rustls, ring, the
//! department client's certificate) and a hyper client on it (HTTP/1.1 keep-alive, or HTTP/2
//! with one connection per worker), pulling pages from a table of cursors, wrapping around at
//! the end. Only requests that complete inside the measured window count. CPU time is read from
//! `/proc` at the window's edges: this process (split into the load generator's threads, named
//! `loadgen`, and the rest, i.e. the server), PostgreSQL's processes and the whole machine.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// One page the workers ask for: the request path and what the answer must hold.
#[derive(Clone, Debug)]
pub struct PageSpec {
    pub path: String,
    pub records: usize,
    pub fields: usize,
}

/// How a worker authenticates.
#[derive(Clone)]
pub enum Auth {
    /// Its own client token from `POST /v1/oauth/token` on its connection, refreshed a minute
    /// before it expires.
    ClientToken,
    /// A fixed header value (the ceiling ignores it; sent so the requests are the same bytes).
    Fixed(String),
}

/// How a worker reads an answer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Parse the JSON and count records and fields (checked against the page's spec).
    Count,
    /// `Accept: application/age`: the body is sealed; count from the page's spec.
    Sealed,
}

#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: Arc<ClientConfig>,
    pub http2: bool,
}

pub struct Phase {
    pub target: Target,
    pub pages: Arc<Vec<PageSpec>>,
    pub auth: Auth,
    pub read: Read,
    pub concurrency: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// A TLS client configuration trusting `ca_pem`, presenting (`cert_pem`, `key_pem`).
pub fn tls_config(ca_pem: &[u8], cert_pem: &str, key_pem: &str, http2: bool) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap();
    config.alpn_protocols = vec![if http2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    Arc::new(config)
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One worker's connection.
pub struct Conn {
    sender: Sender,
    authority: String,
}

impl Conn {
    pub async fn open(target: &Target) -> Conn {
        let tcp = TcpStream::connect(target.addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = TlsConnector::from(target.tls.clone())
            .connect(name, tcp)
            .await
            .unwrap();
        let io = TokioIo::new(tls);
        let sender = if target.http2 {
            let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            Sender::H2(sender)
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            Sender::H1(sender)
        };
        Conn {
            sender,
            authority: format!("localhost:{}", target.addr.port()),
        }
    }

    /// Send `req` (path and headers only; the URI is completed here) and read the whole body.
    pub async fn send(
        &mut self,
        req: hyper::http::request::Builder,
        body: Bytes,
    ) -> (StatusCode, Bytes) {
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                let req = req
                    .header(HOST, &self.authority)
                    .body(Full::new(body))
                    .unwrap();
                s.ready().await.unwrap();
                s.send_request(req).await.unwrap()
            }
            Sender::H2(s) => {
                let path = req.uri_ref().unwrap().to_string();
                let req = req
                    .uri(format!("https://{}{path}", self.authority))
                    .body(Full::new(body))
                    .unwrap();
                s.ready().await.unwrap();
                s.send_request(req).await.unwrap()
            }
        };
        let status = resp.status();
        (status, resp.into_body().collect().await.unwrap().to_bytes())
    }

    /// A client token for this connection's certificate: (token, seconds it lives).
    pub async fn client_token(&mut self) -> (String, u64) {
        let req = Request::post("/v1/oauth/token")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        let (status, body) = self
            .send(req, Bytes::from_static(b"grant_type=client_credentials"))
            .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
            expires_in: u64,
        }
        let t: Token = serde_json::from_slice(&body).unwrap();
        (t.access_token, t.expires_in)
    }
}

/// A page as the load generator reads it: records, fields per record, the cursor.
#[derive(Deserialize)]
pub struct PageCount {
    pub records: Vec<RecordCount>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
pub struct RecordCount {
    pub fields: FieldCount,
}

/// The number of entries of a JSON object, values skipped.
pub struct FieldCount(pub usize);

impl<'de> Deserialize<'de> for FieldCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Counter;
        impl<'de> Visitor<'de> for Counter {
            type Value = FieldCount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldCount, A::Error> {
                let mut n = 0;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(FieldCount(n))
            }
        }
        d.deserialize_map(Counter)
    }
}

impl PageCount {
    pub fn parse(body: &[u8]) -> PageCount {
        serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("not a page ({e}): {}", String::from_utf8_lossy(body)))
    }

    pub fn fields(&self) -> usize {
        self.records.iter().map(|r| r.fields.0).sum()
    }
}

#[derive(Default)]
struct Tally {
    pages: u64,
    records: u64,
    fields: u64,
    bytes: u64,
    latencies_us: Vec<u32>,
}

async fn worker(k: usize, phase: Arc<Phase>, start: Instant, end: Instant) -> Tally {
    let mut conn = Conn::open(&phase.target).await;
    let mut token = None;
    let mut tally = Tally::default();
    let pages = phase.pages.len();
    let mut i = k * pages / phase.concurrency.max(1);
    let accept = match phase.read {
        Read::Count => "application/json",
        Read::Sealed => "application/age",
    };
    while Instant::now() < end {
        let bearer = match &phase.auth {
            Auth::Fixed(t) => t.clone(),
            Auth::ClientToken => {
                let stale = |(_, at, ttl): &(String, Instant, u64)| {
                    at.elapsed() + Duration::from_secs(60) > Duration::from_secs(*ttl)
                };
                if token.as_ref().is_none_or(stale) {
                    let (t, ttl) = conn.client_token().await;
                    token = Some((t, Instant::now(), ttl));
                }
                token
                    .as_ref()
                    .map(|(t, _, _)| t.clone())
                    .unwrap_or_default()
            }
        };
        let spec = &phase.pages[i];
        i = (i + 1) % pages;
        let req = Request::get(spec.path.as_str())
            .header(AUTHORIZATION, format!("Bearer {bearer}"))
            .header(ACCEPT, accept);
        let sent = Instant::now();
        let (status, body) = conn.send(req, Bytes::new()).await;
        let done = Instant::now();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let (records, fields) = match phase.read {
            Read::Count => {
                let page = PageCount::parse(&body);
                (page.records.len(), page.fields())
            }
            Read::Sealed => {
                assert!(body.starts_with(b"age-encryption.org/v1"));
                (spec.records, spec.fields)
            }
        };
        assert_eq!(records, spec.records, "records of {}", spec.path);
        if done >= start && done <= end {
            tally.pages += 1;
            tally.records += records as u64;
            tally.fields += fields as u64;
            tally.bytes += body.len() as u64;
            let us = (done - sent).as_micros();
            tally
                .latencies_us
                .push(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }
    tally
}

/// CPU seconds (user + system) of: this process, its `loadgen` threads, PostgreSQL's
/// processes, and the machine (busy, all cores).
#[derive(Clone, Default)]
pub struct Cpu {
    pub process: f64,
    pub loadgen: f64,
    pub postgres: f64,
    pub machine: f64,
    /// This process's live threads by name (trailing digits and dashes dropped).
    pub threads: BTreeMap<String, f64>,
}

const TICKS: f64 = 100.0; // USER_HZ on Linux

/// utime + stime of a `/proc/…/stat` line, and its `comm`.
fn stat_ticks(text: &str) -> Option<(String, f64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    let utime: f64 = rest.get(11)?.parse().ok()?;
    let stime: f64 = rest.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

pub fn cpu_now() -> Cpu {
    let read = |p: &std::path::Path| std::fs::read_to_string(p).ok();
    let process = read("/proc/self/stat".as_ref())
        .and_then(|t| stat_ticks(&t))
        .map_or(0.0, |(_, t)| t);
    let mut loadgen = 0.0;
    let mut threads = BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Some((comm, t)) = read(&task.path().join("stat")).and_then(|t| stat_ticks(&t)) {
                if comm.starts_with("loadgen") {
                    loadgen += t;
                }
                let group = comm.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
                *threads.entry(group.to_owned()).or_insert(0.0) += t / TICKS;
            }
        }
    }
    let mut postgres = 0.0;
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let numeric = p
                .file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            if numeric
                && let Some((comm, t)) = read(&p.path().join("stat")).and_then(|t| stat_ticks(&t))
                && comm == "postgres"
            {
                postgres += t;
            }
        }
    }
    let machine = read("/proc/stat".as_ref())
        .and_then(|t| {
            let line = t.lines().next()?.to_owned();
            let v: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal: busy = all − idle − iowait.
            let total: f64 = v.iter().take(8).sum();
            Some(total - v.get(3)? - v.get(4)?)
        })
        .unwrap_or(0.0);
    Cpu {
        process: process / TICKS,
        loadgen: loadgen / TICKS,
        postgres: postgres / TICKS,
        machine: machine / TICKS,
        threads,
    }
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, o: Cpu) -> Cpu {
        let threads = self
            .threads
            .iter()
            .map(|(k, v)| (k.clone(), v - o.threads.get(k).copied().unwrap_or(0.0)))
            .collect();
        Cpu {
            process: self.process - o.process,
            loadgen: self.loadgen - o.loadgen,
            postgres: self.postgres - o.postgres,
            machine: self.machine - o.machine,
            threads,
        }
    }
}

/// What one phase measured.
pub struct Outcome {
    pub secs: f64,
    pub pages: u64,
    pub records: u64,
    pub fields: u64,
    pub bytes: u64,
    /// Sorted.
    pub latencies_us: Vec<u32>,
    pub cpu: Cpu,
}

impl Outcome {
    pub fn rate(&self, n: u64) -> f64 {
        n as f64 / self.secs
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let at = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies_us[at.min(self.latencies_us.len() - 1)]) / 1000.0
    }

    /// CPU µs per page: (server side of this process, load generator).
    pub fn cpu_per_page_us(&self) -> (f64, f64) {
        let pages = self.pages.max(1) as f64;
        (
            (self.cpu.process - self.cpu.loadgen) * 1e6 / pages,
            self.cpu.loadgen * 1e6 / pages,
        )
    }
}

/// Run one phase on `runtime` (the load generator's own threads): connect, warm up, measure.
pub async fn run(runtime: &tokio::runtime::Handle, phase: Phase) -> Outcome {
    let phase = Arc::new(phase);
    // Connections and tokens are made during the warm-up.
    let start = Instant::now() + phase.warmup;
    let end = start + phase.measure;
    let workers: Vec<_> = (0..phase.concurrency)
        .map(|k| runtime.spawn(worker(k, phase.clone(), start, end)))
        .collect();
    tokio::time::sleep_until(start.into()).await;
    let before = cpu_now();
    tokio::time::sleep_until(end.into()).await;
    let cpu = cpu_now() - before;
    let mut out = Outcome {
        secs: phase.measure.as_secs_f64(),
        pages: 0,
        records: 0,
        fields: 0,
        bytes: 0,
        latencies_us: Vec::new(),
        cpu,
    };
    for w in workers {
        let t = w.await.unwrap();
        out.pages += t.pages;
        out.records += t.records;
        out.fields += t.fields;
        out.bytes += t.bytes;
        out.latencies_us.extend(t.latencies_us);
    }
    out.latencies_us.sort_unstable();
    out
}
