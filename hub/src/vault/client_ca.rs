//! The hub CA's private key, which signs department clients' certificates. Invariant: the key
//! is read from `pki/ca-key.pem` once, at start, and only ever used here to sign; no other code
//! reads that file or holds the key. The certificate profile (names, usages, validity) is
//! `tls::pki`'s; this module only signs what it is handed.

use std::path::Path;

use rcgen::{Certificate, CertificateSigningRequestParams, Issuer, KeyPair};

/// The CA certificate and key file names in the PKI directory.
pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca-key.pem";

/// The hub CA, able to sign.
pub struct ClientCa {
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCa").finish_non_exhaustive()
    }
}

/// Why the CA cannot sign; never quotes key material.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("`{file}`: {why}")]
    Load { file: &'static str, why: String },
    #[error("signing failed: {0}")]
    Sign(String),
}

impl ClientCa {
    /// The CA of `pki_dir`, or `None` when it holds no CA key (a deployment whose client
    /// certificates all come from an external CA).
    pub fn load(pki_dir: &Path) -> Result<Option<ClientCa>, CaError> {
        let key_path = pki_dir.join(CA_KEY);
        if !key_path.exists() {
            return Ok(None);
        }
        let load = |file: &'static str, why: String| CaError::Load { file, why };
        let cert = std::fs::read_to_string(pki_dir.join(CA_CERT))
            .map_err(|e| load(CA_CERT, e.to_string()))?;
        let key = std::fs::read_to_string(&key_path).map_err(|e| load(CA_KEY, e.to_string()))?;
        let key = KeyPair::from_pem(&key).map_err(|_| load(CA_KEY, "not a PEM key".to_owned()))?;
        let issuer = Issuer::from_ca_cert_pem(&cert, key)
            .map_err(|e| load(CA_CERT, format!("not a CA certificate for the key: {e}")))?;
        Ok(Some(ClientCa { issuer }))
    }

    /// Sign `csr` (its params already set to the hub's profile) with the CA key.
    pub fn sign(&self, csr: CertificateSigningRequestParams) -> Result<Certificate, CaError> {
        csr.signed_by(&self.issuer)
            .map_err(|e| CaError::Sign(e.to_string()))
    }
}
