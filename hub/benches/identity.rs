//! Identity figures: access-token issuance and verification (`auth::tokens::TokenIssuer`,
//! EdDSA JWTs) against raw Ed25519 sign/verify of a 200-byte message measured in the same run
//! (ring, and `jsonwebtoken::crypto`, the signature step of the JWT path); TLS 1.3
//! handshakes/s over loopback TCP with tokio-rustls and the hub's own server configuration
//! (`tls::server_config`, ring provider): full handshakes without and with a client
//! certificate, and resumed handshakes (session cache, session tickets), against plain TCP
//! connections doing the same exchange.
//! Run: `cargo bench -p gridhub-hub --bench identity`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark binary: failing loudly is the point"
)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gridhub::auth::tokens::TokenIssuer;
use gridhub::tls::pki;
use gridhub::vault::Vault;
use gridhub::vault::keyring::KeyringFile;
use jsonwebtoken::Algorithm;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use rustls::client::Resumption;
use rustls::{ClientConfig, HandshakeKind, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The same allocator as the `gridhub` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 7;
const TLS_ROUNDS: usize = 5;

/// Median ops/s of `f` over `ROUNDS` rounds of about 300 ms each.
fn measure(mut f: impl FnMut()) -> f64 {
    let mut n = 1usize;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        if t.elapsed() > Duration::from_millis(50) {
            break;
        }
        n *= 2;
    }
    let per_round = n * 6;
    let mut rates: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_round {
                f();
            }
            per_round as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[ROUNDS / 2]
}

fn tokens(thumbprint: &str) {
    let vault = Vault::from_keyring(&KeyringFile::generate(["person"], 0).expect("keyring"))
        .expect("vault");
    let issuer = TokenIssuer::new(&vault, "gridhub/bench".into(), 300).expect("issuer");
    let client_id = uuid::Uuid::now_v7().to_string();
    let user_id = uuid::Uuid::now_v7().to_string();

    // Reference: ring Ed25519 on a 200-byte message, key parsed once.
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("pkcs8");
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
    let public = UnparsedPublicKey::new(&ED25519, key.public_key().as_ref().to_vec());
    let msg = [0x5au8; 200];
    let sig = key.sign(&msg);
    let raw_sign = measure(|| {
        black_box(key.sign(black_box(&msg)));
    });
    let raw_verify = measure(|| {
        public
            .verify(black_box(&msg), black_box(sig.as_ref()))
            .expect("raw verify");
    });

    // The JWT library's own signature step on the same message: `jsonwebtoken::crypto` with the
    // issuer's key encodings (it parses the key on every call, as `encode`/`decode` do).
    let encoding = jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref());
    let decoding = jsonwebtoken::DecodingKey::from_ed_der(key.public_key().as_ref());
    let jwt_sig = jsonwebtoken::crypto::sign(&msg, &encoding, Algorithm::EdDSA).expect("sign");
    let lib_sign = measure(|| {
        black_box(
            jsonwebtoken::crypto::sign(black_box(&msg), &encoding, Algorithm::EdDSA).expect("sign"),
        );
    });
    let lib_verify = measure(|| {
        assert!(
            jsonwebtoken::crypto::verify(&jwt_sig, black_box(&msg), &decoding, Algorithm::EdDSA)
                .expect("verify")
        );
    });

    let issue_user = measure(|| {
        black_box(issuer.issue_user(&user_id).expect("issue user"));
    });
    let issue_client = measure(|| {
        black_box(
            issuer
                .issue_client(&client_id, thumbprint)
                .expect("issue client"),
        );
    });
    let client_token = issuer
        .issue_client(&client_id, thumbprint)
        .expect("client token");
    let user_token = issuer.issue_user(&user_id).expect("user token");
    let verify_client = measure(|| {
        black_box(issuer.verify(black_box(&client_token)).expect("verify"));
    });
    // What a verified-token cache would pay per lookup before the map itself: a digest of the token.
    let digest = measure(|| {
        black_box(ring::digest::digest(
            &ring::digest::SHA256,
            black_box(client_token.as_bytes()),
        ));
    });
    let verify_user = measure(|| {
        black_box(issuer.verify(black_box(&user_token)).expect("verify"));
    });

    println!(
        "tokens: client token {} bytes, user token {} bytes (EdDSA JWT; jsonwebtoken with ed25519-dalek)",
        client_token.len(),
        user_token.len()
    );
    println!(
        "{:<50} {:>11} {:>9} {:>10}",
        "", "ops/s", "µs/op", "% of ring"
    );
    for (label, rate, reference) in [
        ("ring Ed25519 sign, 200-byte message", raw_sign, raw_sign),
        (
            "jsonwebtoken::crypto::sign, same message",
            lib_sign,
            raw_sign,
        ),
        ("TokenIssuer::issue_user", issue_user, raw_sign),
        (
            "TokenIssuer::issue_client (cnf x5t#S256)",
            issue_client,
            raw_sign,
        ),
        (
            "ring Ed25519 verify, 200-byte message",
            raw_verify,
            raw_verify,
        ),
        (
            "jsonwebtoken::crypto::verify, same message",
            lib_verify,
            raw_verify,
        ),
        (
            "TokenIssuer::verify (client token)",
            verify_client,
            raw_verify,
        ),
        ("TokenIssuer::verify (user token)", verify_user, raw_verify),
    ] {
        println!(
            "{label:<50} {rate:>11.0} {:>9.2} {:>9.1}%",
            1e6 / rate,
            100.0 * rate / reference
        );
    }
    println!(
        "{:<50} {digest:>11.0} {:>9.2}",
        "ring SHA-256 of the client token (a cache key)",
        1e6 / digest
    );
}

/// `fut`'s value, or a panic naming `stage` if it fails or makes no progress for 10 s.
async fn within<T, E: std::fmt::Debug>(stage: &str, fut: impl Future<Output = Result<T, E>>) -> T {
    match tokio::time::timeout(Duration::from_secs(10), fut).await {
        Ok(r) => r.unwrap_or_else(|e| panic!("{stage}: {e:?}")),
        Err(_) => panic!("{stage}: no progress in 10 s"),
    }
}

/// A loopback server: TLS handshake (none for `config: None`), read one byte, echo it, close
/// (close_notify + FIN, so the server side takes the TIME_WAIT and the client's ports are not
/// exhausted).
async fn serve(config: Option<Arc<ServerConfig>>, expect_client_cert: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = config.map(TlsAcceptor::from);
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.expect("accept");
            tcp.set_nodelay(true).expect("nodelay");
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let mut b = [0u8; 1];
                let Some(acceptor) = acceptor else {
                    within("plain server read", tcp.read_exact(&mut b)).await;
                    within("plain server write", tcp.write_all(&b)).await;
                    within("plain server shutdown", tcp.shutdown()).await;
                    return;
                };
                let mut tls = within("server handshake", acceptor.accept(tcp)).await;
                assert_eq!(
                    tls.get_ref().1.peer_certificates().is_some(),
                    expect_client_cert,
                    "client certificate presence"
                );
                within("server read", tls.read_exact(&mut b)).await;
                within("server write", tls.write_all(&b)).await;
                within("server shutdown", tls.shutdown()).await;
            });
        }
    });
    addr
}

/// One connection: TCP connect, TLS handshake, one byte each way, wait for the server's
/// close. Returns whether the handshake was a resumption.
async fn handshake(connector: Option<&TlsConnector>, addr: SocketAddr) -> bool {
    let mut tcp = within("connect", TcpStream::connect(addr)).await;
    tcp.set_nodelay(true).expect("nodelay");
    let mut b = [0u8; 1];
    let mut rest = Vec::new();
    let Some(connector) = connector else {
        within("plain client write", tcp.write_all(b"x")).await;
        within("plain client read", tcp.read_exact(&mut b)).await;
        within("plain client close", tcp.read_to_end(&mut rest)).await;
        return false;
    };
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = within("client handshake", connector.connect(name, tcp)).await;
    within("client write", tls.write_all(b"x")).await;
    within("client read", tls.read_exact(&mut b)).await;
    within("client close", tls.read_to_end(&mut rest)).await;
    let kind = tls.get_ref().1.handshake_kind();
    assert!(
        matches!(kind, Some(HandshakeKind::Full | HandshakeKind::Resumed)),
        "unexpected handshake {kind:?}"
    );
    kind == Some(HandshakeKind::Resumed)
}

/// `n` handshakes split over `clients` concurrent tasks; returns (seconds, resumed count).
async fn batch(
    connector: Option<&TlsConnector>,
    addr: SocketAddr,
    n: usize,
    clients: usize,
) -> (f64, usize) {
    let t = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let connector = connector.cloned();
            tokio::spawn(async move {
                let mut resumed = 0usize;
                for _ in 0..n / clients {
                    resumed += usize::from(handshake(connector.as_ref(), addr).await);
                }
                resumed
            })
        })
        .collect();
    let mut resumed = 0;
    for task in tasks {
        resumed += task.await.expect("client task");
    }
    (t.elapsed().as_secs_f64(), resumed)
}

/// Median handshakes/s over `TLS_ROUNDS` rounds of about 400 ms, and the fraction resumed.
async fn handshakes(
    connector: Option<&TlsConnector>,
    addr: SocketAddr,
    clients: usize,
) -> (f64, f64) {
    let (secs, _) = batch(connector, addr, 40 * clients, clients).await; // warm-up and sizing
    let per = secs / (40 * clients) as f64;
    let n = ((0.4 / per) as usize).max(20 * clients) / clients * clients;
    let mut rates = Vec::with_capacity(TLS_ROUNDS);
    let mut resumed = 0usize;
    for _ in 0..TLS_ROUNDS {
        let (secs, r) = batch(connector, addr, n, clients).await;
        rates.push(n as f64 / secs);
        resumed += r;
    }
    rates.sort_by(f64::total_cmp);
    (
        rates[TLS_ROUNDS / 2],
        resumed as f64 / (n * TLS_ROUNDS) as f64,
    )
}

fn client_config(
    roots: rustls::RootCertStore,
    client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    resume: bool,
) -> TlsConnector {
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_root_certificates(roots);
    let mut config = match client_cert {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    if !resume {
        config.resumption = Resumption::disabled();
    }
    TlsConnector::from(Arc::new(config))
}

async fn tls(dir: &Path, chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) {
    let ca = dir.join(pki::CA_CERT);
    let roots = || gridhub::tls::client_roots(&[ca.as_path()]).expect("roots");
    // The hub's configuration, unchanged: it requests a client certificate on every connection
    // and keeps a 256-entry server session cache (rustls' default), no session tickets.
    let hub = gridhub::tls::server_config(
        &dir.join(pki::SERVER_CERT),
        &dir.join(pki::SERVER_KEY),
        roots(),
    )
    .expect("server config");
    // The same plus stateless session tickets.
    let tickets = || {
        let mut config = ServerConfig::clone(&hub);
        config.ticketer = rustls::crypto::ring::Ticketer::new().expect("ticketer");
        Arc::new(config)
    };

    let plain = serve(None, false).await;
    let anon = serve(Some(hub.clone()), false).await;
    let mtls = serve(Some(hub.clone()), true).await;
    let anon_tickets = serve(Some(tickets()), false).await;
    let mtls_tickets = serve(Some(tickets()), true).await;
    let cert = || Some((chain.clone(), key.clone_key()));

    let cases = [
        ("baseline: TCP only, no TLS", None, plain),
        (
            "full, no client certificate",
            Some(client_config(roots(), None, false)),
            anon,
        ),
        (
            "full, client certificate (WebPkiClientVerifier)",
            Some(client_config(roots(), cert(), false)),
            mtls,
        ),
        (
            "resumed, no client cert, session cache (hub)",
            Some(client_config(roots(), None, true)),
            anon,
        ),
        (
            "resumed, client cert, session cache (hub)",
            Some(client_config(roots(), cert(), true)),
            mtls,
        ),
        (
            "resumed, no client cert, tickets (ring Ticketer)",
            Some(client_config(roots(), None, true)),
            anon_tickets,
        ),
        (
            "resumed, client cert, tickets (ring Ticketer)",
            Some(client_config(roots(), cert(), true)),
            mtls_tickets,
        ),
    ];
    println!();
    println!(
        "TLS 1.3 over loopback TCP (tokio-rustls, ring, ECDSA P-256 certificates, X25519); client and server share the {} cores of this machine",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!("each connection: TCP connect, handshake, 1 byte each way, server close");
    println!(
        "{:<50} {:>13} {:>12} {:>13} {:>12} {:>9}",
        "", "1 client: /s", "µs/hs", "2 clients: /s", "µs/hs each", "resumed"
    );
    for (label, connector, addr) in cases {
        let (one, r1) = handshakes(connector.as_ref(), addr, 1).await;
        let (two, r2) = handshakes(connector.as_ref(), addr, 2).await;
        println!(
            "{label:<50} {one:>13.0} {:>12.0} {two:>13.0} {:>12.0} {:>5.1}/{:.1}%",
            1e6 / one,
            2e6 / two,
            100.0 * r1,
            100.0 * r2
        );
    }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    pki::create_dev_pki(dir.path(), "bench", &[]).expect("dev pki");
    let key = rcgen::KeyPair::generate().expect("client key");
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("csr pem");
    let issued = pki::issue_client_certificate(
        gridhub::vault::client_ca::ClientCa::load(dir.path())
            .expect("CA")
            .as_ref(),
        &csr,
        "bench-client",
        365,
    )
    .expect("client cert");

    tokens(&issued.thumbprint);

    let chain = vec![CertificateDer::from(issued.der.clone())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    tls(dir.path(), chain, key).await;
}
