//! Demo departments and their systems: each department gets a client whose key pair and CSR
//! are made here, whose certificate the hub CA signs exactly as `POST /v1/admin/clients` does,
//! and whose TLS key and age identity are written under `DATA_DIR/clients/<client id>/`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use secrecy::ExposeSecret;

use crate::auth::Role;
use crate::identity::CLIENT_CERT_DAYS;
use crate::ledger::{Actor, Decision, EntryDraft, Ledger};
use crate::storage::{DepartmentRow, Inserted, NewClient, Store};
use crate::time::now_ms;
use crate::tls::pki;
use crate::vault::client_ca::ClientCa;
use crate::vault::keyring::write_private;

/// Folder (under the data dir) holding the demo clients' credentials.
pub const CLIENTS_DIR: &str = "clients";
pub const CLIENT_CERT: &str = "cert.pem";
pub const CLIENT_KEY: &str = "key.pem";
pub const CLIENT_AGE_IDENTITY: &str = "age-identity.txt";

/// (department id, name, jurisdiction as grid codes relative to the demo tree)
fn demo_departments(city: &str) -> Vec<(&'static str, &'static str, Vec<String>)> {
    vec![
        ("health", "卫生健康委员会", vec![city.to_owned()]),
        ("public-security", "公安局", vec![city.to_owned()]),
        // Civil affairs of the first district only: its pulls stop at the district's edge.
        ("civil-affairs", "民政局", vec![format!("{city}.001")]),
        ("housing", "住房和城乡建设局", vec![city.to_owned()]),
        (
            "urban-management",
            "城市管理局",
            vec![format!("{city}.002")],
        ),
        (
            "court-execution",
            "人民法院执行局",
            vec!["L.court-execution".to_owned()],
        ),
    ]
}

/// A demo client and where its credentials are.
pub struct DemoClient {
    pub id: String,
    pub department: String,
    pub dir: PathBuf,
}

impl DemoClient {
    pub fn cert(&self) -> PathBuf {
        self.dir.join(CLIENT_CERT)
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join(CLIENT_KEY)
    }
}

/// Create the demo departments with one client each (ledger entry before every write).
pub async fn seed(
    store: &Store,
    ledger: &Ledger,
    data_dir: &Path,
    ca: Option<&ClientCa>,
    city: &str,
) -> anyhow::Result<Vec<DemoClient>> {
    let mut clients = Vec::new();
    for (id, name, jurisdiction) in demo_departments(city) {
        let department = DepartmentRow {
            id: id.to_owned(),
            name: name.to_owned(),
            jurisdiction,
        };
        ledger
            .append(
                EntryDraft::new(
                    Actor::system(),
                    "department.create",
                    Decision::Allow,
                    "demo".to_owned(),
                )
                .reason(&format!(
                    "department {id} with jurisdiction {}",
                    department.jurisdiction.join(",")
                )),
            )
            .await?;
        if store.insert_department(&department, now_ms()).await? == Inserted::AlreadyExists {
            continue;
        }
        let client_id = format!("{id}-system");
        let dir = data_dir.join(CLIENTS_DIR).join(&client_id);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, client_id.as_str());
        params.distinguished_name = dn;
        let csr = params.serialize_request(&key)?.pem()?;
        let issued = pki::issue_client_certificate(ca, &csr, &client_id, CLIENT_CERT_DAYS)
            .map_err(|e| anyhow::anyhow!("demo client certificate: {e}"))?;
        let identity = age::x25519::Identity::generate();
        let recipient = identity.to_public().to_string();
        std::fs::write(dir.join(CLIENT_CERT), &issued.pem)?;
        write_private(&dir.join(CLIENT_KEY), key.serialize_pem().as_bytes())?;
        write_private(
            &dir.join(CLIENT_AGE_IDENTITY),
            format!(
                "# age identity of {client_id}: opens its sealed responses\n# public key: {recipient}\n{}\n",
                identity.to_string().expose_secret()
            )
            .as_bytes(),
        )?;
        ledger
            .append(
                EntryDraft::new(
                    Actor::system(),
                    "client.create",
                    Decision::Allow,
                    "demo".to_owned(),
                )
                .reason(&format!(
                    "client {client_id} of department {id} (hub certificate {})",
                    issued.thumbprint
                )),
            )
            .await?;
        store
            .insert_client(
                &NewClient {
                    id: client_id.clone(),
                    department: id.to_owned(),
                    thumbprint: issued.thumbprint,
                    certificate_pem: issued.pem,
                    issuer: "hub",
                    not_after: issued.not_after.unix_timestamp() * 1000,
                    age_recipient: Some(recipient),
                    roles: vec![Role::Department.as_str().to_owned()],
                },
                now_ms(),
            )
            .await?;
        clients.push(DemoClient {
            id: client_id,
            department: id.to_owned(),
            dir,
        });
    }
    Ok(clients)
}

/// The demo clients whose credentials exist under `data_dir` (for a second run's printout).
pub fn existing(data_dir: &Path) -> Vec<DemoClient> {
    demo_departments("")
        .into_iter()
        .filter_map(|(id, _, _)| {
            let client_id = format!("{id}-system");
            let dir = data_dir.join(CLIENTS_DIR).join(&client_id);
            dir.join(CLIENT_CERT).exists().then(|| DemoClient {
                id: client_id,
                department: id.to_owned(),
                dir,
            })
        })
        .collect()
}
