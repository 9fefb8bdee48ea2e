//! `gridhub demo`: initialise a data directory if needed, seed a synthetic city (grids,
//! households, residents, places, organisations; all invented) through the same sealing path as
//! the API, create demo users, and print how to try it. Seeding shows a progress bar.

mod acting;
pub mod case;
pub mod departments;
pub mod exchange;
pub mod grants;
pub mod synth;

use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use secrecy::{ExposeSecret, SecretString};

use crate::auth::password;
use crate::config::Settings;
use crate::ledger::{Actor, Decision, EntryDraft, RecordRef};
use crate::records::{self, RecordDraft};
use crate::startup::open_ledger;
use crate::storage::{GridRow, NewUser, Store};
use crate::time::now_ms;
use crate::vault::Vault;
use crate::vault::keyring::{AgeFileStore, write_private};

/// Where the demo keeps the passwords it generated, so a second run can print them again.
pub const CREDENTIALS_FILE: &str = "demo-credentials.txt";
/// Seed for the synthetic data: the same city every time.
pub const SEED: u64 = 20_261_124;
/// Records sealed and written per transaction.
const BATCH: usize = 1000;

pub struct DemoUser {
    pub username: &'static str,
    pub password: SecretString,
    pub roles: &'static str,
}

pub struct SeedReport {
    pub seeded: bool,
    pub residents: usize,
    pub other_records: usize,
    pub users: Vec<DemoUser>,
    pub worker_grid: String,
    pub clients: Vec<departments::DemoClient>,
    /// The demo grants (a fresh seed only).
    pub story: Option<grants::DemoStory>,
    /// The demo case (a fresh seed with a resident in the worker's community only).
    pub case: Option<case::DemoCase>,
    /// The two-way exchange: health's `home_care` category and civil affairs' grants on it and
    /// on counts (a fresh seed only).
    pub exchange: Option<exchange::ExchangeStory>,
}

/// Seed the database of an initialised data directory, unless it holds grids already.
pub async fn seed(
    settings: &Settings,
    residents: usize,
    admin_password: Option<SecretString>,
) -> anyhow::Result<SeedReport> {
    let store = Store::open(&settings.database()?).await?;
    let vault = Vault::unlock(&AgeFileStore::in_dir(&settings.data_dir))
        .context("cannot unlock the keyring")?
        .with_client_ca(&settings.pki_dir())
        .context("cannot load the hub CA")?;
    let vault = std::sync::Arc::new(vault);
    let grids = synth::grid_tree(SEED);
    let worker_grid = grids
        .iter()
        .find(|g| matches!(g.level, synth::GridLevel::Community))
        .map(|g| g.code.clone())
        .context("demo grid tree has no community")?;
    if !store.grids().await?.is_empty() {
        let users = read_credentials(&settings.data_dir);
        store.close().await;
        return Ok(SeedReport {
            seeded: false,
            residents: 0,
            other_records: 0,
            users,
            worker_grid,
            clients: departments::existing(&settings.data_dir),
            story: None,
            case: None,
            exchange: None,
        });
    }
    let rows: Vec<GridRow> = grids
        .iter()
        .map(|g| GridRow {
            code: g.code.clone(),
            name: g.name.clone(),
            kind: if g.code.starts_with("L.") {
                "logical".into()
            } else {
                "physical".into()
            },
        })
        .collect();
    // The demo writes through the same audit rule as the API: ledger entry first.
    let ledger = open_ledger(&vault, store.clone(), &settings.instance).await?;
    let mut entry = EntryDraft::new(
        Actor::system(),
        "grid.create",
        Decision::Allow,
        "demo".to_owned(),
    );
    entry.reason = Some(format!("{} demo grids", rows.len()));
    ledger.append(entry).await?;
    store.insert_grids(&rows, now_ms()).await?;

    let mut users = Vec::new();
    let mut user_ids = std::collections::HashMap::new();
    if let Some(pw) = admin_password {
        users.push(DemoUser {
            username: "admin",
            password: pw,
            roles: "admin",
        });
    }
    for (username, roles, user_grids) in [
        ("dpo", "dpo", Vec::new()),
        ("worker", "grid_worker", vec![worker_grid.clone()]),
    ] {
        let pw = crate::init::generate_password()?;
        let p = pw.expose_secret().to_owned();
        let hash = tokio::task::spawn_blocking(move || password::hash(&p)).await??;
        let user = NewUser {
            id: uuid::Uuid::now_v7().to_string(),
            username: username.to_owned(),
            password_hash: hash,
            department: None,
            roles: vec![roles.to_owned()],
            grids: user_grids,
        };
        let mut entry = EntryDraft::new(
            Actor::system(),
            "user.create",
            Decision::Allow,
            "demo".to_owned(),
        );
        entry.reason = Some(format!("user {} with roles {roles}", user.id));
        ledger.append(entry).await?;
        store.insert_user(&user, now_ms()).await?;
        user_ids.insert(username, user.id.clone());
        users.push(DemoUser {
            username,
            password: pw,
            roles,
        });
    }
    write_credentials(&settings.data_dir, &users)?;
    let city = grids
        .first()
        .map(|g| g.code.clone())
        .context("demo grid tree is empty")?;
    let clients = departments::seed(
        &store,
        &ledger,
        &settings.data_dir,
        vault.client_ca(),
        &city,
    )
    .await?;

    let people = synth::population(SEED, residents, &grids);
    let others = synth::places_and_organizations(SEED, residents, &grids);
    let total = people.len() + others.len();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {pos}/{len} records ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message("seeding");
    let collector = "demo-seed".to_owned();
    let all: Vec<synth::SyntheticRecord> = people.into_iter().chain(others).collect();
    let catalog = policy::Catalog::default_catalog();
    let worker_area = policy::GridCode::parse(&worker_grid)?;
    let mut case_subject = None;
    for chunk in all.chunks(BATCH) {
        let mut sealed = Vec::with_capacity(chunk.len());
        for r in chunk {
            let category = catalog
                .category(r.category)
                .context("demo record of unknown category")?;
            let values = category.parse_fields(&r.fields).map_err(|p| {
                anyhow::anyhow!(
                    "demo generator produced an invalid {} record: {:?}",
                    r.category,
                    p
                )
            })?;
            let purpose = match r.category {
                "place" | "organization" => "rental-registration",
                _ => "population-registration",
            };
            sealed.push(records::seal(
                &vault,
                RecordDraft {
                    category,
                    grid: policy::GridCode::parse(&r.grid)?,
                    purpose: purpose.to_owned(),
                    legal_basis: None,
                    retention_until: None,
                    collector: collector.clone(),
                    values,
                },
            )?);
        }
        if case_subject.is_none() {
            case_subject = sealed
                .iter()
                .find(|r| {
                    r.category == "person"
                        && policy::GridCode::parse(&r.grid).is_ok_and(|g| worker_area.contains(&g))
                })
                .map(|r| r.id.clone());
        }
        let refs = sealed
            .iter()
            .map(|r| {
                let fields = r.sealed.iter().map(|f| (f.field.clone(), "written"));
                RecordRef::new(&r.id, fields)
            })
            .collect();
        let entry = EntryDraft::new(
            Actor::system(),
            "record.import",
            Decision::Allow,
            "demo".to_owned(),
        )
        .reason("synthetic demo data")
        .records(refs);
        ledger.append(entry).await?;
        store.insert_records(&sealed, now_ms()).await?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_with_message("seeded");
    let tokens = crate::auth::tokens::TokenIssuer::new(
        &vault,
        crate::startup::token_issuer(&settings.instance),
        settings.token_ttl_secs,
    )
    .map_err(|e| anyhow::anyhow!("cannot set up signing: {e}"))?;
    let services = acting::Services::build(
        &store,
        &ledger,
        std::sync::Arc::clone(&vault),
        tokens,
        &settings.working_calendar,
        &settings.data_dir,
    )
    .await?;
    let story = match user_ids.get("dpo") {
        Some(dpo) => Some(
            grants::seed(
                &store,
                &services.grants,
                &grants::Accounts {
                    dpo,
                    calendar: &settings.working_calendar,
                },
                &city,
            )
            .await?,
        ),
        _ => None,
    };
    let case = match (user_ids.get("worker"), case_subject) {
        (Some(worker), Some(subject)) => {
            Some(case::seed(&store, &services.cases, worker, &worker_grid, &subject).await?)
        }
        _ => None,
    };
    let admin = store.user_by_username("admin").await?.map(|u| u.id);
    let exchange = match (admin, user_ids.get("dpo")) {
        (Some(admin), Some(dpo)) => Some(
            exchange::seed(&store, &services, &all, &admin, dpo, &format!("{city}.001")).await?,
        ),
        _ => None,
    };
    ledger.checkpoint().await?;
    store.close().await;
    Ok(SeedReport {
        exchange,
        seeded: true,
        residents,
        other_records: total - residents,
        users,
        worker_grid,
        clients,
        story,
        case,
    })
}

fn write_credentials(dir: &Path, users: &[DemoUser]) -> anyhow::Result<()> {
    let mut text =
        String::from("# Demo accounts generated by `gridhub demo` (username password roles)\n");
    for u in users {
        text.push_str(&format!(
            "{} {} {}\n",
            u.username,
            u.password.expose_secret(),
            u.roles
        ));
    }
    write_private(&dir.join(CREDENTIALS_FILE), text.as_bytes())?;
    Ok(())
}

fn read_credentials(dir: &Path) -> Vec<DemoUser> {
    let Ok(text) = std::fs::read_to_string(dir.join(CREDENTIALS_FILE)) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (name, pw, roles) = (parts.next()?, parts.next()?, parts.next()?);
            let username: &'static str = match name {
                "admin" => "admin",
                "dpo" => "dpo",
                "worker" => "worker",
                _ => return None,
            };
            let roles: &'static str = match roles {
                "admin" => "admin",
                "dpo" => "dpo",
                _ => "grid_worker",
            };
            Some(DemoUser {
                username,
                password: SecretString::from(pw.to_owned()),
                roles,
            })
        })
        .collect()
}
