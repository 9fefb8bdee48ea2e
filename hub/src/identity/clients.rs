//! Department systems (clients): registered from a CSR that the hub CA signs in the vault (CN
//! and a `urn:gridhub:client:<id>` name carry the client id; only the CSR's proven public key is
//! used) or from a certificate of a configured external CA, registered as is; revoked by
//! flipping their status. A new client holds the `department` role. Storage bumps the policy
//! version with every client change, so a revoked certificate and every token issued over it
//! stop working on the next request.

use std::str::FromStr;

use super::{ID_RULE, Identity, problem, valid_id};
use crate::auth::{Caller, Principal, Role};
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft};
use crate::storage::{ClientRow, Inserted, NewClient};
use crate::time::now_ms;
use crate::tls::pki::{self, IssuedCertificate};

/// Lifetime of certificates the hub CA issues to clients.
pub const CLIENT_CERT_DAYS: i64 = 365;

/// A client as asked for: nothing checked yet. Exactly one of `csr_pem` and
/// `certificate_pem` must be given.
pub struct ClientDraft {
    pub id: String,
    pub department: String,
    /// PKCS#10 request (PEM) for the hub CA to sign.
    pub csr_pem: Option<String>,
    /// A certificate of a configured external CA (PEM).
    pub certificate_pem: Option<String>,
    /// age X25519 recipient (`age1…`) for sealed delivery.
    pub age_recipient: Option<String>,
}

/// The calling department system, as its certificate-bound token and its department say.
pub struct CallingClient {
    pub client: String,
    pub department: String,
    pub jurisdiction: Vec<String>,
    pub roles: Vec<String>,
    /// The certificate the token is bound to (`cnf.x5t#S256`).
    pub thumbprint: String,
}

impl Identity {
    /// Register a client (role permission `clients:write`; audited before it is stored). With a
    /// CSR the hub CA issues its certificate; the stored row is returned.
    pub async fn create_client(
        &self,
        who: &Principal,
        draft: ClientDraft,
    ) -> Result<ClientRow, Error> {
        self.access
            .authorize(who, "clients", "write", None, "client.create")
            .await?;
        let client = self.checked_client(draft).await?;
        if self.store.client(&client.id).await?.is_some() {
            return Err(Error::Conflict("a client with this id exists".to_owned()));
        }
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "client.create",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!(
                    "client {} of department {} ({} certificate {})",
                    client.id, client.department, client.issuer, client.thumbprint
                )),
            )
            .await?;
        match self.store.insert_client(&client, now_ms()).await? {
            Inserted::Created => {}
            Inserted::AlreadyExists => {
                return Err(Error::Conflict(
                    "a client with this id or certificate exists".to_owned(),
                ));
            }
        }
        tracing::info!(client_id = %client.id, department = %client.department, "client registered");
        self.store
            .client(&client.id)
            .await?
            .ok_or(Error::NotFound("client"))
    }

    /// One client (role permission `clients:read`).
    pub async fn client(&self, who: &Principal, id: &str) -> Result<ClientRow, Error> {
        self.access
            .authorize(who, "clients", "read", None, "client.read")
            .await?;
        self.store
            .client(id)
            .await?
            .ok_or(Error::NotFound("client"))
    }

    /// Every client, by id, with its roles (role permission `clients:read`).
    pub async fn clients(&self, who: &Principal) -> Result<Vec<ClientRow>, Error> {
        self.access
            .authorize(who, "clients", "read", None, "client.list")
            .await?;
        Ok(self.store.clients().await?)
    }

    /// Revoke a client (role permission `clients:write`; audited before it is stored).
    pub async fn revoke_client(&self, who: &Principal, id: &str) -> Result<(), Error> {
        self.access
            .authorize(who, "clients", "write", None, "client.revoke")
            .await?;
        if self.store.client(id).await?.is_none() {
            return Err(Error::NotFound("client"));
        }
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "client.revoke",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!("client {id}")),
            )
            .await?;
        if !self.store.revoke_client(id, now_ms()).await? {
            return Err(Error::NotFound("client"));
        }
        tracing::info!(client_id = %id, by = %who.id(), "client revoked");
        Ok(())
    }

    /// Who a department system is (any client caller; nothing to authorize or audit beyond
    /// its authentication). A user caller is `Unauthenticated`.
    pub async fn calling_client(&self, who: &Principal) -> Result<CallingClient, Error> {
        let Caller::Client { id, thumbprint } = &who.caller else {
            return Err(Error::Unauthenticated);
        };
        let department = who.department.clone().unwrap_or_default();
        let jurisdiction = self
            .store
            .department(&department)
            .await?
            .map(|d| d.jurisdiction)
            .unwrap_or_default();
        Ok(CallingClient {
            client: id.clone(),
            department,
            jurisdiction,
            roles: who.roles.clone(),
            thumbprint: thumbprint.clone(),
        })
    }

    /// The client a draft describes, its certificate issued or inspected, or every field
    /// problem it has. The hub CA signs only when every other field is valid.
    async fn checked_client(&self, draft: ClientDraft) -> Result<NewClient, Error> {
        let mut problems = Vec::new();
        if !valid_id(&draft.id) {
            problems.push(problem("id", ID_RULE));
        }
        if self.store.department(&draft.department).await?.is_none() {
            problems.push(problem("department", "unknown department"));
        }
        if let Some(r) = &draft.age_recipient
            && age::x25519::Recipient::from_str(r).is_err()
        {
            problems.push(problem(
                "age_recipient",
                "not an age X25519 recipient (age1…)",
            ));
        }
        let certificate: Option<(IssuedCertificate, &'static str)> =
            match (&draft.csr_pem, &draft.certificate_pem) {
                (Some(_), Some(_)) | (None, None) => {
                    problems.push(problem(
                        "csr_pem",
                        "give exactly one of `csr_pem` and `certificate_pem`",
                    ));
                    None
                }
                (Some(csr), None) if problems.is_empty() => {
                    match pki::issue_client_certificate(
                        self.vault.client_ca(),
                        csr,
                        &draft.id,
                        CLIENT_CERT_DAYS,
                    ) {
                        Ok(c) => Some((c, "hub")),
                        Err(pki::CertificateRequestError::Ca(why)) => {
                            return Err(Error::Internal(format!("client CA: {why}")));
                        }
                        Err(e) => {
                            problems.push(problem("csr_pem", &e.to_string()));
                            None
                        }
                    }
                }
                (None, Some(pem)) => match pki::inspect_client_certificate(pem) {
                    Ok(c) => Some((c, "external")),
                    Err(e) => {
                        problems.push(problem("certificate_pem", &e.to_string()));
                        None
                    }
                },
                (Some(_), None) => None,
            };
        let Some((certificate, issuer)) = certificate.filter(|_| problems.is_empty()) else {
            return Err(Error::Validation(problems));
        };
        Ok(NewClient {
            id: draft.id,
            department: draft.department,
            thumbprint: certificate.thumbprint,
            certificate_pem: certificate.pem,
            issuer,
            not_after: certificate.not_after.unix_timestamp() * 1000,
            age_recipient: draft.age_recipient,
            roles: vec![Role::Department.as_str().to_owned()],
        })
    }
}
