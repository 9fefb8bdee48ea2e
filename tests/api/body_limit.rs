//! Oversize bodies over real TLS, as integration scripts send them: the client writes its whole
//! body before it reads anything, and must still read the 413 with its JSON error body (the hub
//! discards the rest of the body instead of closing on it: lingering close). HTTP/1.1 with a
//! `Content-Length` and chunked, and HTTP/2. The linger is bounded: a client that never stops
//! sending is cut off after about `body_linger_bytes`, one that stops sending after
//! `body_linger_secs`.

use std::sync::Arc;
use std::time::Duration;

use gridhub_tests::{Backend, SpawnOptions, TestApp, spawn_app_with};
use hyper::body::Bytes;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Larger than the default 8 MiB limit, smaller than the default linger cap (4 × the limit).
const TEN_MB: usize = 10 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
/// Guards against a hub that never closes; a failure, never a measurement.
const NEVER: Duration = Duration::from_secs(120);

async fn spawn(extra_config: Option<&str>) -> TestApp {
    spawn_app_with(
        Backend::Sqlite,
        SpawnOptions {
            extra_config: extra_config.map(str::to_owned),
            ..SpawnOptions::default()
        },
    )
    .await
}

/// A TLS connection to `app` offering only `alpn` (`http/1.1` or `h2`).
async fn connect(app: &TestApp, alpn: &[u8]) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(app.data_dir.path().join("pki/ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let port = app.base.rsplit_once(':').unwrap().1;
    let tcp = TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
    tls
}

/// The head of a `POST /v1/records` with `framing` (`Content-Length: N` or
/// `Transfer-Encoding: chunked`).
fn request_head(app: &TestApp, framing: &str) -> String {
    format!(
        "POST /v1/records HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\n{framing}\r\n\r\n",
        app.worker_token
    )
}

/// One HTTP/1.1 answer read off `stream`: status, lower-cased headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Read one answer (head and `Content-Length` body); a reset before it is complete fails.
async fn read_answer(stream: &mut TlsStream<TcpStream>) -> Answer {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(buf[..end].to_vec()).unwrap();
            let mut lines = head.split("\r\n");
            let status = lines.next().unwrap().split(' ').nth(1).unwrap();
            let headers: Vec<(String, String)> = lines
                .map(|l| {
                    let (n, v) = l.split_once(':').unwrap();
                    (n.trim().to_ascii_lowercase(), v.trim().to_owned())
                })
                .collect();
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .expect("a content-length");
            if buf.len() >= end + 4 + length {
                return Answer {
                    status: status.parse().unwrap(),
                    headers,
                    body: buf[end + 4..end + 4 + length].to_vec(),
                };
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) => panic!(
                "connection closed before a whole answer: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => {
                panic!("connection failed before a whole answer (the client sees no 413): {e}")
            }
        }
    }
}

/// The answer is the JSON 413 of the hub's error table, quoting the request id it carries.
fn assert_payload_too_large(status: u16, request_id: Option<&str>, body: &[u8]) {
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(body));
    let body: Value = serde_json::from_slice(body).expect("JSON error body");
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert!(body["error"]["message"].is_string());
    assert_eq!(
        body["error"]["request_id"].as_str(),
        Some(request_id.expect("x-request-id header"))
    );
}

/// After the answer the hub closes the connection cleanly (TLS close_notify, no reset).
async fn assert_closed_cleanly(stream: &mut TlsStream<TcpStream>) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(NEVER, stream.read_to_end(&mut rest))
        .await
        .expect("the hub closes the connection");
    assert_eq!(read.unwrap(), 0, "nothing after the answer");
}

async fn whole_body_then_read_gets_413(framing: &str, body: impl Iterator<Item = Vec<u8>>) {
    let app = spawn(None).await;
    let mut stream = connect(&app, b"http/1.1").await;
    stream
        .write_all(request_head(&app, framing).as_bytes())
        .await
        .unwrap();
    for piece in body {
        stream
            .write_all(&piece)
            .await
            .expect("the hub reads the whole body (no reset while sending)");
    }
    stream.flush().await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert_payload_too_large(answer.status, answer.header("x-request-id"), &answer.body);
    assert_eq!(answer.header("connection"), Some("close"));
    assert_closed_cleanly(&mut stream).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_client_sending_a_whole_oversize_body_reads_the_413() {
    let body = (0..TEN_MB / CHUNK).map(|_| vec![b'x'; CHUNK]);
    whole_body_then_read_gets_413(&format!("Content-Length: {TEN_MB}"), body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_client_sending_a_whole_oversize_chunked_body_reads_the_413() {
    let chunks = (0..TEN_MB / CHUNK).map(|_| {
        let mut piece = format!("{CHUNK:x}\r\n").into_bytes();
        piece.extend_from_slice(&[b'x'; CHUNK]);
        piece.extend_from_slice(b"\r\n");
        piece
    });
    let body = chunks.chain(std::iter::once(b"0\r\n\r\n".to_vec()));
    whole_body_then_read_gets_413("Transfer-Encoding: chunked", body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_client_sending_a_whole_oversize_body_reads_the_413() {
    let app = spawn(None).await;
    let tls = connect(&app, b"h2").await;
    let (client, connection) = h2::client::handshake(tls).await.unwrap();
    let driver = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let req = hyper::Request::post(format!("{}/v1/records", app.base))
        .header("authorization", format!("Bearer {}", app.worker_token))
        .header("content-type", "application/json")
        .header("content-length", TEN_MB.to_string())
        .body(())
        .unwrap();
    let (answer, mut upload) = client.send_request(req, false).unwrap();
    // The whole body goes out before the answer is looked at, as the hub's flow control lets
    // it; a stream reset before the end (which some clients, curl 7.88 among them, report as
    // a failure instead of the answer) fails here.
    let mut left = TEN_MB;
    while left > 0 {
        upload.reserve_capacity(left.min(CHUNK));
        let granted = std::future::poll_fn(|cx| upload.poll_capacity(cx))
            .await
            .expect("the stream stays open")
            .expect("the hub lets the client send its whole body");
        let n = granted.min(left);
        if n == 0 {
            continue;
        }
        left -= n;
        upload
            .send_data(Bytes::from(vec![b'x'; n]), left == 0)
            .expect("the hub lets the client send its whole body");
    }
    let resp = answer.await.expect("an answer");
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut body = resp.into_body();
    let mut bytes = Vec::new();
    while let Some(data) = body.data().await {
        let data = data.expect("the whole answer");
        body.flow_control().release_capacity(data.len()).unwrap();
        bytes.extend_from_slice(&data);
    }
    assert_payload_too_large(status, request_id.as_deref(), &bytes);

    // Only the stream ended: the connection still serves requests.
    let mut client = client.ready().await.expect("the connection lives on");
    let req = hyper::Request::get(format!("{}/healthz", app.base))
        .body(())
        .unwrap();
    let (answer, _) = client.send_request(req, true).unwrap();
    assert_eq!(answer.await.expect("an answer").status(), 200);
    drop(client);
    driver.abort();
    app.stop().await;
}

/// Write 64 KiB pieces of an endless body until the hub cuts the connection; the bytes written.
async fn send_until_cut_off(stream: &mut TlsStream<TcpStream>, at_most: usize) -> Option<usize> {
    let piece = vec![b'x'; CHUNK];
    let mut written = 0;
    while written < at_most {
        if stream.write_all(&piece).await.is_err() || stream.flush().await.is_err() {
            return Some(written);
        }
        written += CHUNK;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_stops_sending_is_cut_off_after_the_linger_cap() {
    const CAP: usize = 1024 * 1024;
    // Socket buffers (client send, hub receive) and TLS buffers hold a few MiB that the hub
    // never read; far less than this.
    const BUFFERS: usize = 32 * 1024 * 1024;
    // A long deadline, so that only the cap can cut the client off.
    let app = spawn(Some(&format!(
        "body_linger_bytes = {CAP}\nbody_linger_secs = 60"
    )))
    .await;
    let mut stream = connect(&app, b"http/1.1").await;
    let endless = format!("Content-Length: {}", 1u64 << 40);
    stream
        .write_all(request_head(&app, &endless).as_bytes())
        .await
        .unwrap();
    let written = send_until_cut_off(&mut stream, 8 * (CAP + BUFFERS)).await;
    let written = written.expect("the hub cut the connection");
    assert!(
        written < CAP + BUFFERS,
        "the hub read about {written} bytes, far beyond its linger cap of {CAP}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_sending_is_cut_off_after_the_linger_deadline() {
    let app = spawn(Some("body_linger_secs = 1")).await;
    let mut stream = connect(&app, b"http/1.1").await;
    let head = request_head(&app, &format!("Content-Length: {TEN_MB}"));
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b'x'; CHUNK]).await.unwrap();
    stream.flush().await.unwrap();
    // This client reads while it sends: it gets the 413 at once, then stalls.
    let answer = read_answer(&mut stream).await;
    assert_payload_too_large(answer.status, answer.header("x-request-id"), &answer.body);
    // Without the deadline the hub would wait for the rest of the body forever.
    assert_closed_cleanly(&mut stream).await;
    app.stop().await;
}

/// The client of issue 18 itself: Python `requests`, which writes the whole body before it
/// reads (needs `python3` with `requests`: `pip install requests`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_requests_reads_the_413() {
    const SCRIPT: &str = r#"
import sys, requests
url, ca, token = sys.argv[1:4]
body = b"x" * (10 * 1024 * 1024)
headers = {"authorization": "Bearer " + token, "content-type": "application/json"}
for _ in range(5):
    r = requests.post(url, data=body, headers=headers, verify=ca)
    print(r.status_code, r.json()["error"]["code"])
"#;
    let app = spawn(None).await;
    let ca = app.data_dir.path().join("pki/ca.pem");
    let out = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(app.url("/v1/records"))
        .arg(&ca)
        .arg(&app.worker_token)
        .output()
        .await
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python3 with `requests` (pip install requests): {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "413 payload_too_large\n".repeat(5));
    app.stop().await;
}
