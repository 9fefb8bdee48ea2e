//! TLS for the listener: rustls with the ring provider, TLS 1.2 and 1.3, ALPN h2 and
//! http/1.1. Client certificates are requested on every connection and verified (chain to a
//! trusted client CA, validity, clientAuth EKU) when presented; a connection without one is
//! accepted for console users, and department routes refuse it. Mapping a verified
//! certificate to a registered, unrevoked client is the auth layer's job (PITFALLS: rustls
//! checks the chain only). `pki` makes the development CA and certificates.

pub mod pki;

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate `{path}`: {why}")]
    Certificate { path: String, why: String },
    #[error("cannot read private key `{path}`: {why}")]
    Key { path: String, why: String },
    #[error("invalid TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("invalid client CA configuration: {0}")]
    ClientCa(String),
}

/// Trust anchors for client certificates: the hub CA plus any configured external CAs.
pub fn client_roots(paths: &[&Path]) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for path in paths {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| TlsError::Certificate {
                path: path.display().to_string(),
                why: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::Certificate {
                path: path.display().to_string(),
                why: "no certificate in file".to_owned(),
            });
        }
        for cert in certs {
            roots.add(cert).map_err(|e| TlsError::Certificate {
                path: path.display().to_string(),
                why: e.to_string(),
            })?;
        }
    }
    Ok(roots)
}

/// Server configuration from PEM files (certificate chain and its key), verifying client
/// certificates against `client_roots` when a client presents one.
pub fn server_config(
    cert_path: &Path,
    key_path: &Path,
    client_roots: rustls::RootCertStore,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate {
            path: cert_path.display().to_string(),
            why: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: cert_path.display().to_string(),
            why: "no certificate in file".to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::Key {
        path: key_path.display().to_string(),
        why: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::ClientCa(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
