//! Department systems in tests: key pairs and CSRs made here, certificates issued by the hub
//! through `POST /v1/admin/clients`, HTTPS clients that present them, and certificates the hub
//! must refuse (unknown CA, expired, no clientAuth EKU) made with the hub CA key or a stranger's.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use serde_json::{Value, json};

use crate::TestApp;

/// A registered department client with its credentials and an mTLS HTTPS client.
pub struct DeptClient {
    pub id: String,
    pub department: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub thumbprint: String,
    pub http: reqwest::Client,
}

/// A fresh key pair and a CSR for `cn`.
pub fn key_and_csr(cn: &str) -> (KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    (key, csr)
}

/// An HTTPS client trusting the hub CA and presenting `cert_pem`/`key_pem`.
pub fn mtls_client(app: &TestApp, cert_pem: &str, key_pem: &str) -> reqwest::Client {
    client_with(&app.data_dir.path().join("pki/ca.pem"), cert_pem, key_pem)
}

/// An HTTPS client for a client whose `cert.pem`/`key.pem` sit in `client_dir`, trusting the
/// hub CA of `data_dir` (the layout `gridhub demo` writes).
pub fn mtls_client_for_dir(
    data_dir: &std::path::Path,
    client_dir: &std::path::Path,
) -> reqwest::Client {
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap();
    client_with(
        &data_dir.join("pki/ca.pem"),
        &read(client_dir.join("cert.pem")),
        &read(client_dir.join("key.pem")),
    )
}

pub fn client_with(ca: &std::path::Path, cert_pem: &str, key_pem: &str) -> reqwest::Client {
    crate::https_client(ca, Some((cert_pem, key_pem)))
}

impl TestApp {
    /// Create a department (admin) with `jurisdiction`.
    pub async fn create_department(&self, id: &str, jurisdiction: &[&str]) {
        let resp = self
            .post(
                &self.admin_token,
                "/v1/admin/departments",
                &json!({"id": id, "name": format!("{id} department"), "jurisdiction": jurisdiction}),
            )
            .await;
        assert_eq!(resp.status(), 201, "create department {id}");
    }

    /// Register client `id` of `department` from a CSR made here; returns it with its mTLS client.
    pub async fn register_client(&self, id: &str, department: &str) -> DeptClient {
        self.register(id, department, None).await
    }

    /// As `register_client`, with an age recipient for sealed responses; returns the identity
    /// that opens them too.
    pub async fn register_sealed_client(
        &self,
        id: &str,
        department: &str,
    ) -> (DeptClient, age::x25519::Identity) {
        let identity = age::x25519::Identity::generate();
        let client = self
            .register(id, department, Some(identity.to_public().to_string()))
            .await;
        (client, identity)
    }

    async fn register(
        &self,
        id: &str,
        department: &str,
        age_recipient: Option<String>,
    ) -> DeptClient {
        let (key, csr) = key_and_csr(id);
        let mut request = json!({"id": id, "department": department, "csr_pem": csr});
        if let Some(recipient) = age_recipient {
            request["age_recipient"] = json!(recipient);
        }
        let resp = self
            .post(&self.admin_token, "/v1/admin/clients", &request)
            .await;
        assert_eq!(resp.status(), 201, "register client {id}");
        let body: Value = resp.json().await.unwrap();
        let cert_pem = body["certificate_pem"].as_str().unwrap().to_owned();
        let key_pem = key.serialize_pem();
        DeptClient {
            id: id.to_owned(),
            department: department.to_owned(),
            thumbprint: body["thumbprint"].as_str().unwrap().to_owned(),
            http: mtls_client(self, &cert_pem, &key_pem),
            cert_pem,
            key_pem,
        }
    }

    /// `POST /v1/oauth/token` over `http` (whatever certificate it presents).
    pub async fn client_token_response(&self, http: &reqwest::Client) -> reqwest::Response {
        http.post(self.url("/v1/oauth/token"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
    }

    /// Request grant `request` as `client`, approve it as the DPO; returns the grant id.
    pub async fn approved_grant(&self, client: &DeptClient, request: &Value) -> String {
        let token = self.client_token(client).await;
        let resp = client
            .http
            .post(self.url("/v1/grants"))
            .bearer_auth(token)
            .json(request)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
        let id = resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let resp = self
            .post(
                &self.dpo_token,
                &format!("/v1/grants/{id}/approve"),
                &json!({}),
            )
            .await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        id
    }

    pub async fn client_token(&self, client: &DeptClient) -> String {
        let resp = self.client_token_response(&client.http).await;
        assert_eq!(resp.status(), 200, "token for {}", client.id);
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Certificates the hub must refuse at the handshake, each with its key (PEM):
    /// `(what, cert_pem, key_pem)`.
    pub fn refused_certificates(&self) -> Vec<(&'static str, String, String)> {
        let pki = self.data_dir.path().join("pki");
        let ca_key =
            KeyPair::from_pem(&std::fs::read_to_string(pki.join("ca-key.pem")).unwrap()).unwrap();
        let hub_ca = Issuer::from_ca_cert_pem(
            &std::fs::read_to_string(pki.join("ca.pem")).unwrap(),
            ca_key,
        )
        .unwrap();
        let leaf = |eku: ExtendedKeyUsagePurpose, days_from_now: (i64, i64)| {
            let mut p = CertificateParams::new(vec!["stranger".to_owned()]).unwrap();
            let now = time::OffsetDateTime::now_utc();
            p.not_before = now + time::Duration::days(days_from_now.0);
            p.not_after = now + time::Duration::days(days_from_now.1);
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![eku];
            p
        };
        let mut out = Vec::new();
        // Signed by a CA the hub has never heard of.
        let stranger_key = KeyPair::generate().unwrap();
        let mut stranger = CertificateParams::new(Vec::<String>::new()).unwrap();
        stranger.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        stranger.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let stranger_ca = Issuer::new(stranger, stranger_key);
        let key = KeyPair::generate().unwrap();
        let cert = leaf(ExtendedKeyUsagePurpose::ClientAuth, (-1, 30))
            .signed_by(&key, &stranger_ca)
            .unwrap();
        out.push(("unknown CA", cert.pem(), key.serialize_pem()));
        // Hub CA, but expired.
        let key = KeyPair::generate().unwrap();
        let cert = leaf(ExtendedKeyUsagePurpose::ClientAuth, (-30, -1))
            .signed_by(&key, &hub_ca)
            .unwrap();
        out.push(("expired", cert.pem(), key.serialize_pem()));
        // Hub CA, valid, but only for servers.
        let key = KeyPair::generate().unwrap();
        let cert = leaf(ExtendedKeyUsagePurpose::ServerAuth, (-1, 30))
            .signed_by(&key, &hub_ca)
            .unwrap();
        out.push(("no clientAuth EKU", cert.pem(), key.serialize_pem()));
        out
    }
}
