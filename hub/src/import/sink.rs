//! Where an import writes: the records service of a data directory (as the operator) or a
//! running hub's `POST /v1/records/batch` with `upsert_by` (as the logged-in user). Both answer
//! a batch the same way: written (created, updated) or refused with per-item problems, which
//! the run sends to the reject file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Map, Value, json};

use crate::auth::Principal;
use crate::auth::permissions::Permissions;
use crate::auth::refusals::Refusals;
use crate::auth::{Access, Role};
use crate::config::{Overrides, Settings};
use crate::decisions::Decisions;
use crate::error::Error;
use crate::records::{RecordInput, Records};
use crate::startup::{open_ledger, shipped_role_rows};
use crate::storage::{Store, Workload};
use crate::time::{SystemClock, now_ms};
use crate::vault::Vault;
use crate::vault::keyring::AgeFileStore;

/// One record to submit.
pub struct Item {
    pub category: String,
    pub grid: String,
    pub fields: Map<String, Value>,
    pub purpose: String,
}

/// How a batch went.
pub enum Outcome {
    Written {
        created: u64,
        updated: u64,
    },
    /// Nothing written; (item index, field, problem) for every problem.
    Refused(Vec<(usize, String, String)>),
}

pub enum Sink {
    Local {
        store: Store,
        records: Box<Records>,
        who: Box<Principal>,
    },
    Remote {
        client: reqwest::Client,
        base: String,
        token: String,
    },
}

/// Where `gridhub import` and `gridhub connector run` write: a data directory (as the
/// operator) or a running hub's API (as a logged-in user).
#[derive(clap::Args, Clone, Debug)]
pub struct HubTarget {
    /// Write into this data directory directly (as the operator; best with the hub stopped).
    #[arg(long, env = "GRIDHUB_DATA_DIR", conflicts_with = "url")]
    pub data_dir: Option<PathBuf>,
    #[arg(long, env = "GRIDHUB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Write through a running hub's API instead (needs --username and a password).
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long)]
    pub username: Option<String>,
    /// A file whose first line is the password (else GRIDHUB_PASSWORD).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// CA certificate to trust for --url.
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

impl Sink {
    pub async fn open(args: &HubTarget) -> anyhow::Result<Sink> {
        match (&args.data_dir, &args.url) {
            (Some(dir), None) => local(dir, args.database_url.clone()).await,
            (None, Some(url)) => remote(url, args).await,
            _ => bail!("give --data-dir or --url"),
        }
    }

    pub async fn close(&self) {
        if let Sink::Local { store, .. } = self {
            // The bulk workload lets the WAL grow to 64 MB: fold it back now.
            if let Err(e) = store.checkpoint_wal().await {
                tracing::warn!(error = %e, "cannot checkpoint the WAL after the import");
            }
            store.close().await;
        }
    }

    /// The field names of `category` in the catalog in force.
    pub async fn fields(&self, category: &str) -> anyhow::Result<Vec<String>> {
        let names = |c: &policy::CategoryDef| c.fields.iter().map(|f| f.name.clone()).collect();
        match self {
            Sink::Local { records, .. } => records
                .category_fields(category)
                .with_context(|| format!("--category: no category `{category}`")),
            Sink::Remote { .. } => policy::Catalog::default_catalog()
                .category(category)
                .map(names)
                .with_context(|| format!("--category: no default category `{category}`")),
        }
    }

    /// Upsert a batch by `key` (or only check it, for a dry run): `prepare`, then `commit`.
    pub async fn write(
        &self,
        items: Vec<Item>,
        key: &str,
        dry_run: bool,
    ) -> anyhow::Result<Outcome> {
        let prepared = self.prepare(items, key, dry_run).await?;
        self.commit(prepared).await
    }

    /// The part of a write that needs no database state beyond the catalog, grids and
    /// purposes: locally, checking and sealing every item (so that it can run while the
    /// previous batch commits); through the API, nothing (the hub does it).
    pub async fn prepare(
        &self,
        items: Vec<Item>,
        key: &str,
        dry_run: bool,
    ) -> anyhow::Result<Prepared> {
        match self {
            Sink::Local { records, who, .. } => {
                let inputs = items.into_iter().map(input).collect();
                let sealed = if dry_run {
                    records.check_batch(who, inputs).await.map(|()| None)
                } else {
                    records.seal_upsert_batch(who, inputs, key).await.map(Some)
                };
                match sealed {
                    Ok(Some(batch)) => Ok(Prepared::Sealed(batch)),
                    Ok(None) => Ok(Prepared::Checked),
                    Err(e) => refusal(e).map(Prepared::Refused),
                }
            }
            Sink::Remote { .. } if dry_run => {
                bail!("--dry-run needs --data-dir (the API has no dry run)")
            }
            Sink::Remote { .. } => Ok(Prepared::ToPost {
                items,
                key: key.to_owned(),
            }),
        }
    }

    /// Write a prepared batch. Batches commit in the order of their rows.
    pub async fn commit(&self, prepared: Prepared) -> anyhow::Result<Outcome> {
        match (self, prepared) {
            (_, Prepared::Refused(problems)) => Ok(Outcome::Refused(problems)),
            (_, Prepared::Checked) => Ok(Outcome::Written {
                created: 0,
                updated: 0,
            }),
            (Sink::Local { records, who, .. }, Prepared::Sealed(batch)) => {
                match records.commit_upsert_batch(who, batch).await {
                    Ok(u) => Ok(Outcome::Written {
                        created: u.created as u64,
                        updated: u.updated as u64,
                    }),
                    Err(e) => refusal(e).map(Outcome::Refused),
                }
            }
            (
                Sink::Remote {
                    client,
                    base,
                    token,
                },
                Prepared::ToPost { items, key },
            ) => post_batch(client, base, token, items, &key).await,
            _ => bail!("a batch prepared for another kind of hub"),
        }
    }
}

/// A batch between `Sink::prepare` and `Sink::commit`.
pub enum Prepared {
    /// Checked and sealed here, to be written.
    Sealed(crate::records::SealedBatch),
    /// To post to the running hub, which checks and seals.
    ToPost { items: Vec<Item>, key: String },
    /// Checked, nothing to write (a dry run).
    Checked,
    /// Refused before writing: (item index, field, problem).
    Refused(Vec<(usize, String, String)>),
}

/// The per-item problems of a refused batch; any other error stops the import.
fn refusal(error: Error) -> anyhow::Result<Vec<(usize, String, String)>> {
    match error {
        Error::Validation(problems) => {
            per_item(problems.into_iter().map(|p| (p.field, p.problem)).collect())
        }
        e => bail!("the batch was not written: {e}"),
    }
}

fn input(item: Item) -> RecordInput {
    RecordInput {
        category: item.category,
        grid: item.grid,
        fields: item.fields,
        purpose: item.purpose,
        legal_basis: None,
        retention_until: None,
    }
}

/// Problems named `records[i].…` as (i, field, problem); any other problem concerns the whole
/// batch and stops the import.
fn per_item(problems: Vec<(String, String)>) -> anyhow::Result<Vec<(usize, String, String)>> {
    let mut out = Vec::new();
    for (path, problem) in problems {
        let Some(rest) = path.strip_prefix("records[") else {
            bail!("the batch was refused: `{path}`: {problem}");
        };
        let Some((index, field)) = rest.split_once("].") else {
            bail!("the batch was refused: `{path}`: {problem}");
        };
        let index: usize = index.parse().context("a malformed problem path")?;
        let field = field.strip_prefix("fields.").unwrap_or(field).to_owned();
        out.push((index, field, problem));
    }
    Ok(out)
}

async fn local(dir: &Path, database_url: Option<String>) -> anyhow::Result<Sink> {
    if !crate::init::is_initialised(dir) {
        bail!("`{}` is not an initialised data directory", dir.display());
    }
    let settings = Settings::load(
        None,
        Overrides {
            data_dir: Some(dir.to_owned()),
            listen: None,
            database_url,
        },
    )?;
    let vault =
        Arc::new(Vault::unlock(&AgeFileStore::in_dir(dir)).context("cannot unlock the keyring")?);
    let store = Store::open_for(&settings.database()?, Workload::Bulk)
        .await
        .context("cannot open the database")?;
    let ledger = open_ledger(&vault, store.clone(), &settings.instance).await?;
    store
        .seed_roles(&shipped_role_rows(), now_ms())
        .await
        .context("cannot seed the shipped roles")?;
    let permissions = Permissions::load(store.clone())
        .await
        .context("cannot load role permissions")?;
    let decisions = Decisions::load(store.clone(), Arc::clone(&vault))
        .await
        .map_err(|e| anyhow::anyhow!("cannot build the decision index: {e}"))?;
    let refusals = Arc::new(Refusals::new(Arc::new(SystemClock), ledger.clone()));
    let access = Access::new(ledger, Arc::new(permissions), refusals);
    let records = Records::new(
        access,
        store.clone(),
        vault,
        Arc::new(decisions),
        std::time::Duration::from_secs(30),
    );
    let who = Principal::operator(store.versions().await?);
    debug_assert_eq!(who.roles, [Role::Admin.as_str()]);
    Ok(Sink::Local {
        store,
        records: Box::new(records),
        who: Box::new(who),
    })
}

async fn remote(url: &str, args: &HubTarget) -> anyhow::Result<Sink> {
    let username = args.username.clone().context("--url needs --username")?;
    let password = match &args.password_file {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        None => std::env::var("GRIDHUB_PASSWORD")
            .context("--url needs --password-file or GRIDHUB_PASSWORD")?,
    };
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &args.ca {
        for cert in CertificateDer::pem_file_iter(ca)? {
            roots.add(cert?)?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()?;
    let base = url.trim_end_matches('/').to_owned();
    let resp = client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .context("cannot reach the hub")?;
    if !resp.status().is_success() {
        bail!("login refused: HTTP {}", resp.status());
    }
    let body: Value = resp.json().await?;
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .context("the login answer has no access_token")?
        .to_owned();
    Ok(Sink::Remote {
        client,
        base,
        token,
    })
}

async fn post_batch(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    items: Vec<Item>,
    key: &str,
) -> anyhow::Result<Outcome> {
    let records: Vec<Value> = items
        .into_iter()
        .map(|i| {
            json!({"category": i.category, "grid": i.grid, "fields": i.fields,
                   "purpose": i.purpose})
        })
        .collect();
    let resp = client
        .post(format!("{base}/v1/records/batch"))
        .bearer_auth(token)
        .json(&json!({"records": records, "upsert_by": key}))
        .send()
        .await
        .context("cannot reach the hub")?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let count = |name: &str| body.get(name).and_then(Value::as_u64).unwrap_or(0);
    if status.is_success() {
        return Ok(Outcome::Written {
            created: count("created"),
            updated: count("updated"),
        });
    }
    let error = body.get("error");
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if code == "validation_failed" {
        let details = error
            .and_then(|e| e.get("details"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let text = |d: &Value, k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        return per_item(
            details
                .iter()
                .map(|d| (text(d, "field"), text(d, "problem")))
                .collect(),
        )
        .map(Outcome::Refused);
    }
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("");
    bail!("the hub refused the batch: HTTP {status} {code}: {message}")
}
