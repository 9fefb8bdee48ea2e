//! The HTTPS accept loop: tokio-rustls handshakes (with a deadline), hyper-util's auto
//! HTTP/1.1 + HTTP/2 server with a header-read timeout (slowloris), and graceful shutdown that
//! stops accepting, lets in-flight requests finish, and gives up after a deadline. Every request
//! carries the `Connection` it arrived on (peer address, verified client certificate), and a
//! body the hub stops reading early is discarded within bounds before the connection closes
//! (`linger`), so that clients still sending can read the answer.
//! `Transport::InsecureHttp` serves plain HTTP for development only.

mod linger;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, Version, header};
use hyper::body::Incoming;
use tower::ServiceExt;

use crate::auth::Connection;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use linger::Linger;
use linger::{Abandoned, LingeringBody};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How connections are secured.
#[derive(Clone)]
pub enum Transport {
    Tls(Arc<rustls::ServerConfig>),
    /// Plain HTTP (`--insecure-http`): no TLS, so no client certificates either.
    InsecureHttp,
}

pub async fn serve(
    listener: TcpListener,
    transport: Transport,
    app: Router,
    linger: Linger,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let acceptor = match &transport {
        Transport::Tls(config) => Some(TlsAcceptor::from(config.clone())),
        Transport::InsecureHttp => None,
    };
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers go out as soon as they are written: without this, HTTP/2 answers of a few
        // kB wait for Nagle and delayed ACKs (~40 ms each; measured 362 → 6 776 pages/s).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                let service = HubService::new(app, Connection::plain(peer), linger);
                let conn = builder.serve_connection(TokioIo::new(tcp), service);
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            };
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    // Includes refused client certificates (unknown CA, expired, no clientAuth).
                    tracing::info!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let connection = Connection::from_tls(peer, stream.get_ref().1);
            let service = HubService::new(app, connection, linger);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, waiting for in-flight requests");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "graceful shutdown deadline passed; closing"
        );
    }
}

/// The router as hyper calls it on one connection: every request carries `connection`, and its
/// body is a `LingeringBody`, discarded within `linger` if the answer leaves part of it unread.
#[derive(Clone)]
struct HubService {
    app: Router,
    connection: Connection,
    linger: Linger,
}

impl HubService {
    fn new(app: Router, connection: Connection, linger: Linger) -> HubService {
        HubService {
            app,
            connection,
            linger,
        }
    }
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for HubService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: Request<Incoming>) -> ResponseFuture {
        let abandoned = Abandoned::default();
        let version = req.version();
        let mut req =
            req.map(|body| Body::new(LingeringBody::new(body, self.linger, abandoned.clone())));
        req.extensions_mut().insert(self.connection.clone());
        let answer = self.app.clone().oneshot(req);
        Box::pin(async move {
            let mut response = answer.await?;
            // An HTTP/1.1 client refused for its body's size is told the connection ends once
            // the rest of that body is discarded, so that its pool does not reuse a connection
            // the cap may cut. (HTTP/2 forbids the header; the stream reset says it there.)
            if response.status() == StatusCode::PAYLOAD_TOO_LARGE
                && abandoned.is_set()
                && version <= Version::HTTP_11
            {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        })
    }
}
