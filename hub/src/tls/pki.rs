//! The development PKI written by `gridhub init`: a CA and a server certificate for
//! `localhost`/`127.0.0.1`/`::1` signed by it. Private keys are written mode 0600 and never
//! logged. Production deployments put their own certificate and key at the same paths.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::vault::client_ca::ClientCa;
use crate::vault::keyring::write_private;

pub use crate::vault::client_ca::{CA_CERT, CA_KEY};
pub const SERVER_CERT: &str = "server.pem";
pub const SERVER_KEY: &str = "server-key.pem";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write `{path}`: {why}")]
    Write { path: PathBuf, why: String },
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
}

/// Create `dir/{ca,ca-key,server,server-key}.pem`. `hosts` are extra server names.
pub fn create_dev_pki(dir: &Path, instance: &str, hosts: &[String]) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir).map_err(|e| PkiError::Write {
        path: dir.to_path_buf(),
        why: e.to_string(),
    })?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Gridhub");
    dn.push(
        DnType::CommonName,
        format!("Gridhub development CA ({instance})"),
    );
    ca.distinguished_name = dn;
    validity(&mut ca, 3650);
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    names.extend(hosts.iter().cloned());
    let mut server = CertificateParams::new(names)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    server.distinguished_name = dn;
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut server, 825);
    let server_key = KeyPair::generate()?;
    let issuer = Issuer::new(ca, ca_key);
    let server_cert = server.signed_by(&server_key, &issuer)?;

    write_public(&dir.join(CA_CERT), &ca_cert.pem())?;
    write_secret(&dir.join(CA_KEY), &issuer.key().serialize_pem())?;
    write_public(&dir.join(SERVER_CERT), &server_cert.pem())?;
    write_secret(&dir.join(SERVER_KEY), &server_key.serialize_pem())?;
    crate::vault::keyring::sync_dir(dir).map_err(|e| PkiError::Write {
        path: dir.to_path_buf(),
        why: e.to_string(),
    })
}

fn write_public(path: &Path, text: &str) -> Result<(), PkiError> {
    crate::vault::keyring::write_public(path, text.as_bytes()).map_err(|e| PkiError::Write {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

fn write_secret(path: &Path, text: &str) -> Result<(), PkiError> {
    write_private(path, text.as_bytes()).map_err(|e| PkiError::Write {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

/// A client certificate the hub CA issued.
pub struct IssuedCertificate {
    pub pem: String,
    pub der: Vec<u8>,
    /// RFC 8705 `x5t#S256` of the certificate.
    pub thumbprint: String,
    pub not_after: time::OffsetDateTime,
}

/// Why a CSR or a registered certificate was refused. Messages name the problem, never echo
/// the submitted bytes.
#[derive(Debug, thiserror::Error)]
pub enum CertificateRequestError {
    #[error("not a PEM certificate signing request with a valid signature")]
    BadCsr,
    #[error("not a PEM X.509 certificate")]
    BadCertificate,
    #[error("certificate is expired or not yet valid")]
    NotValidNow,
    #[error("certificate does not allow TLS client authentication (extended key usage clientAuth)")]
    NoClientAuth,
    #[error("the hub CA cannot be loaded: {0}")]
    Ca(String),
}

/// base64url(SHA-256(DER)) — the RFC 8705 certificate thumbprint `x5t#S256`.
pub fn thumbprint(der: &[u8]) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Sign `csr_pem` with the hub CA (`ca`, held by the vault; `None` when this hub has no CA
/// key). Only the CSR's public key (proved by its signature) is taken: subject, names, key
/// usages and validity are the hub's — CN and a `urn:gridhub:client:<id>` URI name carry the
/// client id, the only EKU is clientAuth.
pub fn issue_client_certificate(
    ca: Option<&ClientCa>,
    csr_pem: &str,
    client_id: &str,
    days: i64,
) -> Result<IssuedCertificate, CertificateRequestError> {
    let mut csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(|_| CertificateRequestError::BadCsr)?;
    let ca = ca.ok_or_else(|| {
        CertificateRequestError::Ca(format!("this hub has no CA key (`{CA_KEY}`)"))
    })?;

    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Gridhub clients");
    dn.push(DnType::CommonName, client_id);
    params.distinguished_name = dn;
    let uri = rcgen::string::Ia5String::try_from(format!("urn:gridhub:client:{client_id}"))
        .map_err(|_| CertificateRequestError::BadCsr)?;
    params.subject_alt_names = vec![rcgen::SanType::URI(uri)];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
        .map_err(|_| CertificateRequestError::Ca("no randomness".to_owned()))?;
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    validity(&mut params, days);
    let not_after = params.not_after;
    csr.params = params;
    let cert = ca
        .sign(csr)
        .map_err(|e| CertificateRequestError::Ca(e.to_string()))?;
    Ok(IssuedCertificate {
        pem: cert.pem(),
        der: cert.der().to_vec(),
        thumbprint: thumbprint(cert.der()),
        not_after,
    })
}

/// Check a certificate issued by an external CA before registering it: it parses, is valid
/// now and allows client authentication. Chain validation happens at every TLS handshake
/// against the configured client CAs.
pub fn inspect_client_certificate(pem: &str) -> Result<IssuedCertificate, CertificateRequestError> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| CertificateRequestError::BadCertificate)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| CertificateRequestError::BadCertificate)?;
    if !cert.validity().is_valid() {
        return Err(CertificateRequestError::NotValidNow);
    }
    let client_auth = cert
        .extended_key_usage()
        .ok()
        .flatten()
        .is_some_and(|eku| eku.value.client_auth || eku.value.any);
    if !client_auth {
        return Err(CertificateRequestError::NoClientAuth);
    }
    let not_after =
        time::OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp())
            .map_err(|_| CertificateRequestError::BadCertificate)?;
    Ok(IssuedCertificate {
        pem: pem.to_owned(),
        thumbprint: thumbprint(&der),
        der: der.to_vec(),
        not_after,
    })
}
