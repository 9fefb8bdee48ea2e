//! HTTPS to the hub: the mTLS `reqwest` client (rustls with the ring provider, the hub's CA,
//! the client certificate), URLs, and turning error answers into `Error::Api`.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::error::{Error, Result};

/// The hub, as reached over mTLS.
#[derive(Debug, Clone)]
pub(crate) struct Hub {
    pub(crate) http: reqwest::Client,
    /// Invariant: no trailing slash.
    base: String,
    pub(crate) timeout: Duration,
}

fn tls_config(config: &Config) -> Result<rustls::ClientConfig> {
    fn bad(what: &str, e: impl std::fmt::Display) -> Error {
        Error::Config(format!("{what}: {e}"))
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(config.ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| bad("the CA certificate is not PEM", e))?;
        roots
            .add(cert)
            .map_err(|e| bad("the CA certificate is unusable", e))?;
    }
    if roots.is_empty() {
        return Err(Error::Config("no CA certificate given".to_owned()));
    }
    let certs = CertificateDer::pem_slice_iter(config.cert_pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad("the client certificate is not PEM", e))?;
    if certs.is_empty() {
        return Err(Error::Config("no client certificate given".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(config.key_pem.as_bytes())
        .map_err(|_| Error::Config("the client key is not a PEM private key".to_owned()))?;
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("TLS", e))?
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, key)
    .map_err(|e| bad("the client certificate and key do not match", e))?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

impl Hub {
    pub(crate) fn new(config: &Config) -> Result<Hub> {
        let base = reqwest::Url::parse(&config.hub_url)
            .map_err(|e| Error::Config(format!("the hub URL `{}`: {e}", config.hub_url)))?;
        if base.scheme() != "https" {
            return Err(Error::Config("the hub URL must be https".to_owned()));
        }
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(config)?)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Hub {
            http,
            base: config.hub_url.trim_end_matches('/').to_owned(),
            timeout: config.timeout,
        })
    }

    /// The URL of `path` (which starts with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path?query` without a token (the ledger's public endpoints); the answer as text.
    pub(crate) async fn get_text<Q: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<String> {
        let resp = self
            .http
            .get(self.url(path))
            .query(query)
            .timeout(self.timeout)
            .send()
            .await?;
        Ok(checked(resp).await?.text().await?)
    }

    /// As `get_text`, parsed as JSON.
    pub(crate) async fn get_json<T: DeserializeOwned, Q: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<T> {
        let text = self.get_text(path, query).await?;
        parse(text.as_bytes())
    }
}

/// Parse a JSON answer; the error names the problem, not the content.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        Error::Malformed(format!(
            "unexpected JSON at line {} column {} ({:?})",
            e.line(),
            e.column(),
            e.classify()
        ))
    })
}

/// The response if it is a success, else its `Error::Api`.
pub(crate) async fn checked(resp: reqwest::Response) -> Result<reqwest::Response> {
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(error_of(resp).await)
    }
}

/// The `Error::Api` of a non-success answer.
pub(crate) async fn error_of(resp: reqwest::Response) -> Error {
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match resp.bytes().await {
        Ok(body) => Error::from_answer(status, &body, request_id),
        Err(e) => e.into(),
    }
}

/// A path segment, percent-encoded (categories and ids are plain, but need not be trusted).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
