//! The ceiling: a bare axum route answering every pull with a captured real page, over the
//! hub's own TLS configuration, behind the hub's own accept loop, and (what-if) behind a minimal
//! accept loop that sets `TCP_NODELAY`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use gridhub::server::Transport;
use gridhub::tls::pki;
use tokio::sync::oneshot;

use crate::setup::Fixture;

/// A bare axum endpoint answering every pull with `body`, and the hub's own TLS configuration
/// (its certificate, client certificates requested and verified against its CA).
fn bare_endpoint(fx: &Fixture, body: Vec<u8>) -> (Arc<rustls::ServerConfig>, Router) {
    let dir = fx.app.data_dir.path().join("pki");
    let ca = dir.join(pki::CA_CERT);
    let tls = gridhub::tls::server_config(
        &dir.join(pki::SERVER_CERT),
        &dir.join(pki::SERVER_KEY),
        gridhub::tls::client_roots(&[ca.as_path()]).unwrap(),
    )
    .unwrap();
    let body = Bytes::from(body);
    let router = Router::new().route(
        "/v1/data/{category}",
        get(move || {
            let body = body.clone();
            async move { ([(CONTENT_TYPE, "application/json")], body) }
        }),
    );
    (tls, router)
}

/// The ceiling: the bare endpoint behind the hub's own accept loop (`gridhub::server::serve`).
/// Returns its address and the switch that stops it.
pub async fn ceiling(fx: &Fixture, body: Vec<u8>) -> (SocketAddr, oneshot::Sender<()>) {
    let (tls, router) = bare_endpoint(fx, body);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(gridhub::server::serve(
        listener,
        Transport::Tls(tls),
        router,
        gridhub::server::Linger {
            cap: 32 * 1024 * 1024,
            deadline: Duration::from_secs(5),
        },
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));
    (addr, stop)
}
