//! The development PKI written by `gridhub init`: a CA and a server certificate for
//! `localhost`/`127.0.0.1`/`::1` signed by it. Private keys are written mode 0600 and never
//! logged. Production deployments put their own certificate and key at the same paths.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::vault::keyring::write_private;

pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca-key.pem";
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
    Ok(())
}

fn write_public(path: &Path, text: &str) -> Result<(), PkiError> {
    std::fs::write(path, text).map_err(|e| PkiError::Write {
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
