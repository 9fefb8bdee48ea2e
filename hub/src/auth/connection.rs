//! What the transport knows about a caller: its address and, when it presented one, the client
//! certificate rustls verified during the handshake. The accept loop attaches one `Connection`
//! to every request of the connection; handlers read it from the request extensions (the
//! extractor is in `crate::extract`).

use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Connection {
    pub peer: SocketAddr,
    /// The verified leaf certificate's RFC 8705 thumbprint; `None` without a certificate
    /// (console users, or the `--insecure-http` dev listener).
    pub client_cert: Option<Arc<str>>,
}

impl Connection {
    /// From a finished TLS handshake: the first peer certificate is the client's leaf.
    pub fn from_tls(peer: SocketAddr, tls: &rustls::ServerConnection) -> Connection {
        let client_cert = tls
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| Arc::from(crate::tls::pki::thumbprint(leaf)));
        Connection { peer, client_cert }
    }

    pub fn plain(peer: SocketAddr) -> Connection {
        Connection {
            peer,
            client_cert: None,
        }
    }
}
