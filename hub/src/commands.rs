//! What each CLI subcommand does, in terms of the library. Output for humans goes to stdout;
//! logs go to stderr.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use anyhow::Context;

use crate::config::{Overrides, Settings};
use crate::init::{InitOptions, init as init_dir, is_initialised};
use crate::ledger::keychain::KeyChain;
use crate::ledger::note::{NoteSigner, Verifier};
use crate::ledger::sources::{HttpSource, StoreSource};
use crate::ledger::verify::{LedgerSource, verify};
use crate::ledger::witnessed;
use crate::recover::RecoverOptions;
use crate::startup::ledger_origin;
use crate::startup::{Application, shutdown_signal};
use crate::storage::Store;
use crate::time::now_ms;
use crate::vault::Vault;
use crate::vault::keyring::{AgeFileStore, KeyringStore};
use crate::{demo, telemetry};

#[derive(Args)]
pub struct ServeArgs {
    #[arg(long, env = "GRIDHUB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Config file (default: DATA_DIR/gridhub.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8443).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    #[arg(long, env = "GRIDHUB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Serve plain HTTP instead of HTTPS. Development only: no TLS, so no client
    /// certificates and no department access; logged loudly at start.
    #[arg(long)]
    pub insecure_http: bool,
}

#[derive(Args)]
#[group(required = true, multiple = false, id = "source")]
pub struct VerifySource {
    /// Verify the database of this data directory (SQLite, or its configured PostgreSQL).
    #[arg(long, env = "GRIDHUB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Verify a running hub over HTTPS (needs a DPO or admin token).
    #[arg(long)]
    pub url: Option<String>,
    /// Verify an evidence bundle offline (the console's "evidence bundle" export): the
    /// checkpoint's signature, then every entry's inclusion proof. Pin the key with --vkey.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub source: VerifySource,
    #[arg(long, env = "GRIDHUB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// CA certificate to trust for --url.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Bearer token for --url.
    #[arg(long, env = "GRIDHUB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The ledger's verifier key (C2SP vkey); default: from the keyring (--data-dir) or the
    /// hub's /v1/audit/public-key (--url, trusted on first use).
    #[arg(long)]
    pub vkey: Option<String>,
    /// A witness's cosigner key (C2SP tlog-cosignature/v1 vkey, `name+hash+base64(0x04‖key)`);
    /// repeat for several. The newest checkpoint carrying their cosignatures must verify.
    #[arg(long = "witness", value_name = "VKEY")]
    pub witnesses: Vec<String>,
    /// How many of the --witness keys must have cosigned (default: all of them).
    #[arg(long, value_name = "K", requires = "witnesses")]
    pub min_witnesses: Option<usize>,
}

#[derive(Args)]
pub struct RecoverArgs {
    #[arg(long, env = "GRIDHUB_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The database, if not the one the data directory's config names.
    #[arg(long, env = "GRIDHUB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The account to restore (created if it does not exist).
    #[arg(long, default_value = "admin")]
    pub username: String,
    /// Its new password (12–256 characters); generated and printed once if neither this nor
    /// --password-file is given.
    #[arg(
        long,
        env = "GRIDHUB_ADMIN_PASSWORD",
        hide_env_values = true,
        conflicts_with = "password_file"
    )]
    pub admin_password: Option<String>,
    /// Read the new password from this file (its first line).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Erase every record whose retention date has passed, a batch per transaction, each batch
    /// named by one `record.expire` ledger entry written before its keys are destroyed. The
    /// hub does this itself every `retention_sweep_secs`; this runs it now.
    Run {
        #[arg(long, env = "GRIDHUB_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(long, env = "GRIDHUB_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// List what would be erased (record id, category, retention date) and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Records per transaction and ledger entry (1–5000).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=5000))]
        batch: u16,
    },
}

pub async fn retention(command: RetentionCommand) -> anyhow::Result<()> {
    let RetentionCommand::Run {
        data_dir,
        database_url,
        dry_run,
        batch,
    } = command;
    let settings = Settings::load(
        None,
        Overrides {
            data_dir: Some(data_dir.clone()),
            listen: None,
            database_url,
        },
    )?;
    let store = Store::open(&settings.database()?).await?;
    if dry_run {
        let due = crate::retention::due(&store, now_ms(), usize::MAX).await?;
        println!("{:<36}  {:<14}  retention date", "record", "category");
        for r in &due {
            println!(
                "{:<36}  {:<14}  {}",
                r.id,
                r.category,
                crate::time::rfc3339(r.retention_until)
            );
        }
        println!(
            "{} record(s) past their retention date; nothing was changed (dry run)",
            due.len()
        );
        store.close().await;
        return Ok(());
    }
    let vault = AgeFileStore::in_dir(&data_dir).load()?;
    let vault = Vault::from_keyring(&vault)?;
    let ledger = crate::startup::open_ledger(&vault, store.clone(), &settings.instance).await?;
    let holder = format!("cli-{}", uuid::Uuid::now_v7());
    let swept =
        crate::retention::sweep(&store, &ledger, &holder, now_ms, usize::from(batch)).await?;
    store.checkpoint_wal().await.ok();
    store.close().await;
    match swept {
        None => {
            anyhow::bail!("another process is running the retention sweep now; try again later")
        }
        Some(s) => {
            println!(
                "{} record(s) erased in {} batch(es) (ledger entries {}); {} left as they were \
                 (given a later date or erased meanwhile)",
                s.erased,
                s.entries.len(),
                if s.entries.is_empty() {
                    "none".to_owned()
                } else {
                    s.entries
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                s.skipped
            );
            Ok(())
        }
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Rotate a category's KEK (`--category`; a new version wraps new data keys at once, then
    /// every data key of the old version is rewrapped here, with a progress bar, and the old
    /// version retired), the token-signing key (`--token-key`: a new key signs after the
    /// next (re)start; earlier keys stay in the JWKS until the tokens they signed expire), or
    /// the ledger's signing key (`--ledger-key`).
    Rotate {
        #[arg(long, env = "GRIDHUB_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(long, env = "GRIDHUB_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// The key category whose KEK to rotate (a catalog category, or `case-texts`).
        #[arg(long, conflicts_with_all = ["token_key", "ledger_key"])]
        category: Option<String>,
        /// Rotate the JWT signing key.
        #[arg(long, conflicts_with = "ledger_key")]
        token_key: bool,
        /// Rotate the ledger's signing key: the old key and the new one sign a transition
        /// statement that verifiers follow; the old key signs nothing after (running hubs
        /// follow within 5 s).
        #[arg(long)]
        ledger_key: bool,
        /// Leave the rewrap to the running hub's background job instead of running it here.
        #[arg(long, requires = "category")]
        no_rewrap: bool,
        /// Data keys rewrapped per second at most (default: the `rewrap_rate` setting; 0: no
        /// limit).
        #[arg(long)]
        rate: Option<u32>,
    },
    /// Rewrap the data keys of superseded KEK versions now (resumes where a killed run
    /// stopped), and retire the versions left unused.
    Rewrap {
        #[arg(long, env = "GRIDHUB_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(long, env = "GRIDHUB_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Data keys per second at most (default: the `rewrap_rate` setting; 0: no limit).
        #[arg(long)]
        rate: Option<u32>,
    },
    /// Show KEK versions per category: state, data keys, wraps and the rewrap's progress.
    Status {
        #[arg(long, env = "GRIDHUB_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(long, env = "GRIDHUB_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Export the whole keyring sealed with age to an offline recipient (the recovery drill:
    /// docs/OPERATIONS.md "Keyring recovery drill"). Audited as `keys.export`.
    Export {
        #[arg(long, env = "GRIDHUB_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(long, env = "GRIDHUB_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// The age X25519 recipient (`age1…`) the export is sealed to.
        #[arg(long)]
        to: String,
        /// Where to write the export (a new file).
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore an exported keyring into a data directory, opened with the recipient's age
    /// identity and sealed again to the directory's own identity.
    Import {
        #[arg(long, env = "GRIDHUB_DATA_DIR")]
        data_dir: PathBuf,
        /// The export (`gridhub keys export --out`).
        #[arg(long)]
        from: PathBuf,
        /// The file holding the age identity (`AGE-SECRET-KEY-…`) the export was sealed to.
        #[arg(long)]
        identity: PathBuf,
        /// Replace a keyring that holds key versions the export lacks.
        #[arg(long)]
        force: bool,
    },
}

pub async fn init(
    data_dir: PathBuf,
    admin_password: Option<String>,
    database_url: Option<String>,
    force: bool,
    instance: String,
) -> anyhow::Result<()> {
    let report = init_dir(InitOptions {
        data_dir: data_dir.clone(),
        admin_password: admin_password.map(SecretString::from),
        database_url: database_url.map(SecretString::from),
        force,
        instance,
    })
    .await?;
    println!("initialised {}", data_dir.display());
    println!("  config      {}", data_dir.join("gridhub.toml").display());
    println!("  CA cert     {}", data_dir.join("pki/ca.pem").display());
    println!(
        "  keyring     {} (sealed with age to keyring.identity — keep that file secret)",
        data_dir.join("keyring.age").display()
    );
    match report.generated_password {
        Some(pw) => println!(
            "  admin       {} / {}   (shown once; store it now)",
            report.admin_username,
            pw.expose_secret()
        ),
        None => println!(
            "  admin       {} (password as given)",
            report.admin_username
        ),
    }
    println!("next: gridhub serve --data-dir {}", data_dir.display());
    Ok(())
}

pub async fn admin_recover(args: RecoverArgs) -> anyhow::Result<()> {
    let password = match (args.admin_password, args.password_file) {
        (Some(pw), _) => Some(SecretString::from(pw)),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            Some(SecretString::from(
                text.lines().next().unwrap_or_default().to_owned(),
            ))
        }
        (None, None) => None,
    };
    let report = crate::recover::recover(RecoverOptions {
        data_dir: args.data_dir,
        database_url: args.database_url,
        username: args.username,
        password,
    })
    .await?;
    println!(
        "recovered: shipped roles restored ({})",
        report.roles.join(", ")
    );
    let how = if report.created { "created" } else { "enabled" };
    match report.generated_password {
        Some(pw) => println!(
            "  admin       {} / {}   ({how}, id {}; shown once; store it now)",
            report.username,
            pw.expose_secret(),
            report.user_id
        ),
        None => println!(
            "  admin       {} ({how}, id {}; password as given)",
            report.username, report.user_id
        ),
    }
    println!("the recovery is in the audit ledger as `admin.recover`");
    Ok(())
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::load(
        args.config.as_deref(),
        Overrides {
            data_dir: args.data_dir,
            listen: args.listen,
            database_url: args.database_url,
        },
    )?;
    telemetry::init(settings.log_format);
    let mut app = Application::build(settings).await?;
    if args.insecure_http {
        app = app.insecure_http();
    }
    app.run_until(shutdown_signal()).await;
    Ok(())
}

pub async fn demo(
    data_dir: PathBuf,
    residents: usize,
    listen: Option<SocketAddr>,
    database_url: Option<String>,
    no_serve: bool,
) -> anyhow::Result<()> {
    let mut admin_password = None;
    if !is_initialised(&data_dir) {
        let pw = crate::init::generate_password()?;
        init_dir(InitOptions {
            data_dir: data_dir.clone(),
            admin_password: Some(pw.clone()),
            database_url: database_url.clone().map(SecretString::from),
            force: false,
            instance: "gridhub-demo".to_owned(),
        })
        .await?;
        admin_password = Some(pw);
    }
    let settings = Settings::load(
        None,
        Overrides {
            data_dir: Some(data_dir.clone()),
            listen,
            database_url,
        },
    )?;
    telemetry::init(settings.log_format);
    let started = std::time::Instant::now();
    let report = demo::seed(&settings, residents, admin_password).await?;
    if report.seeded {
        println!(
            "seeded {} residents and {} households, places and organisations in {:.1} s",
            report.residents,
            report.other_records,
            started.elapsed().as_secs_f64()
        );
    } else {
        println!(
            "{} already holds demo data; not seeding again",
            data_dir.display()
        );
    }
    if no_serve {
        // The address `gridhub serve` will listen on, as configured.
        let url = format!("https://localhost:{}", settings.listen.port());
        print_tour(&report, &data_dir, &url);
        println!(
            "\nnot serving (--no-serve); start the hub with: gridhub serve --data-dir {}",
            data_dir.display()
        );
        return Ok(());
    }
    let app = Application::build(settings).await?;
    let url = format!("https://localhost:{}", app.port());
    print_tour(&report, &data_dir, &url);
    println!("\nCtrl-C stops the hub.");
    app.run_until(shutdown_signal()).await;
    Ok(())
}

/// The demo's accounts and the commands to try it against `url`.
fn print_tour(report: &demo::SeedReport, data_dir: &std::path::Path, url: &str) {
    let ca = data_dir.join("pki/ca.pem");
    println!("\nGridhub demo at {url}  (API: {url}/openapi.json)");
    println!(
        "console: {url}/console/  (log in as dpo or admin; the browser must trust {})",
        ca.display()
    );
    println!(
        "accounts (also in {}):",
        data_dir.join(demo::CREDENTIALS_FILE).display()
    );
    for u in &report.users {
        println!(
            "  {:<8} {:<22} {}",
            u.username,
            u.password.expose_secret(),
            u.roles
        );
    }
    if let Some(worker) = report.users.iter().find(|u| u.username == "worker") {
        println!("\ntry:");
        println!(
            "  TOKEN=$(curl -s --cacert {ca} {url}/v1/auth/login -H 'content-type: application/json' \\\n      -d '{{\"username\":\"worker\",\"password\":\"{}\"}}' | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')",
            worker.password.expose_secret(),
            ca = ca.display()
        );
        println!(
            "  curl -s --cacert {} -H \"authorization: Bearer $TOKEN\" {url}/v1/catalog",
            ca.display()
        );
        println!(
            "  curl -s --cacert {} -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' {url}/v1/records \\\n      -d '{{\"category\":\"person\",\"grid\":\"{}\",\"purpose\":\"population-registration\",\"fields\":{{\"name\":\"张三\",\"gender\":\"male\",\"phone\":\"13812345678\"}}}}'",
            ca.display(),
            report.worker_grid
        );
    }
    if let Some(client) = report
        .clients
        .iter()
        .find(|c| c.department == "civil-affairs")
        .or(report.clients.first())
    {
        println!(
            "\ndepartment systems ({} clients; certificates, keys and age identities under {}):",
            report.clients.len(),
            data_dir.join(demo::departments::CLIENTS_DIR).display()
        );
        let mtls = format!(
            "--cacert {} --cert {} --key {}",
            ca.display(),
            client.cert().display(),
            client.key().display()
        );
        println!(
            "  CTOKEN=$(curl -s {mtls} {url}/v1/oauth/token -d grant_type=client_credentials | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')"
        );
        println!("  curl -s {mtls} -H \"authorization: Bearer $CTOKEN\" {url}/v1/clients/me");
        if let Some(story) = &report.story {
            println!(
                "\nwhat civil affairs may see of elderly residents living alone, and why (grant {}):",
                story.elderly_care_grant
            );
            println!(
                "  curl -s {mtls} -H \"authorization: Bearer $CTOKEN\" -H 'content-type: application/json' {url}/v1/decisions/explain \\\n      -d '{{\"category\":\"person\",\"purpose\":\"elderly-care\"}}'"
            );
            if let Some(case) = &report.case {
                println!(
                    "public security holds a case-bound grant ({}); case {} is assigned to it, with record {} as its subject",
                    story.case_grant, case.id, case.subject
                );
            }
        }
        if let Some(exchange) = &report.exchange {
            println!(
                "\nthe exchange runs both ways: health publishes `home_care` ({} records); civil affairs' grant on it ({}) has the DPO's approval and health's consent:",
                exchange.care_records, exchange.care_grant
            );
            println!(
                "  curl -s {mtls} -H \"authorization: Bearer $CTOKEN\" \"{url}/v1/data/home_care?purpose=elderly-care&limit=5\""
            );
            println!(
                "counts, never people (statistics grant {}): elderly residents living alone per community",
                exchange.statistics_grant
            );
            println!(
                "  curl -s {mtls} -H \"authorization: Bearer $CTOKEN\" -H 'content-type: application/json' {url}/v1/data/person/statistics \\\n      -d '{{\"purpose\":\"elderly-care\",\"group_by\":[\"grid.community\"],\"filter\":\"tags has \\\"elderly_alone\\\"\"}}'"
            );
        }
    }
}

pub async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate {
            data_dir,
            database_url,
            category: Some(category),
            rate,
            no_rewrap,
            ..
        } => {
            let settings = settings_of(&data_dir, database_url)?;
            let keys = crate::keys::command::open(&settings).await?;
            let rate = rate.unwrap_or(settings.rewrap_rate);
            let done = crate::keys::command::rotate(&keys, &category, rate, !no_rewrap).await;
            keys.store().close().await;
            done
        }
        KeysCommand::Rewrap {
            data_dir,
            database_url,
            rate,
        } => {
            let settings = settings_of(&data_dir, database_url)?;
            let keys = crate::keys::command::open(&settings).await?;
            let done =
                crate::keys::command::rewrap_with_bar(&keys, rate.unwrap_or(settings.rewrap_rate))
                    .await;
            keys.store().close().await;
            done
        }
        KeysCommand::Export {
            data_dir,
            database_url,
            to,
            out,
        } => {
            let settings = settings_of(&data_dir, database_url)?;
            crate::keys::command::export(&settings, &to, &out).await
        }
        KeysCommand::Import {
            data_dir,
            from,
            identity,
            force,
        } => crate::keys::command::import(&data_dir, &from, &identity, force),
        KeysCommand::Rotate {
            data_dir,
            database_url,
            ledger_key: true,
            ..
        } => {
            let settings = settings_of(&data_dir, database_url)?;
            let keys = crate::keys::command::open(&settings).await?;
            let done = crate::keys::command::rotate_ledger_key(&keys).await;
            keys.store().close().await;
            done
        }
        KeysCommand::Rotate {
            data_dir,
            database_url,
            token_key,
            ..
        } => {
            if !token_key {
                anyhow::bail!(
                    "say what to rotate: --category C (a KEK), --token-key or --ledger-key"
                );
            }
            let settings = Settings::load(
                None,
                Overrides {
                    data_dir: Some(data_dir.clone()),
                    listen: None,
                    database_url,
                },
            )?;
            let keyring_store = AgeFileStore::in_dir(&data_dir);
            let mut keyring = keyring_store.load()?;
            // Keep superseded keys for the longest token lifetime (1 h) plus margin.
            let (kid, dropped) = keyring.rotate_signing_key(now_ms(), 2 * 3600 * 1000)?;
            let vault = crate::vault::Vault::from_keyring(&keyring)?;
            let store = Store::open(&settings.database()?).await?;
            let ledger =
                crate::startup::open_ledger(&vault, store.clone(), &settings.instance).await?;
            // Audit first: if the ledger cannot record the rotation, the keyring is not changed.
            ledger
                .append(
                    crate::ledger::EntryDraft::new(
                        crate::ledger::Actor::system(),
                        "keys.rotate",
                        crate::ledger::Decision::Allow,
                        "cli".to_owned(),
                    )
                    .reason(&format!(
                        "token signing key {kid}; dropped: {}",
                        if dropped.is_empty() {
                            "none".to_owned()
                        } else {
                            dropped.join(",")
                        }
                    )),
                )
                .await?;
            keyring_store.save(&keyring)?;
            store.close().await;
            println!("new token signing key {kid}; it signs after the hub restarts");
            println!(
                "published keys: {}",
                keyring
                    .signing_keys
                    .iter()
                    .map(|k| k.kid.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if !dropped.is_empty() {
                println!("dropped (superseded over 2 h ago): {}", dropped.join(", "));
            }
            Ok(())
        }
        KeysCommand::Status {
            data_dir,
            database_url,
        } => {
            let settings = settings_of(&data_dir, database_url)?;
            let keys = crate::keys::command::open(&settings).await?;
            let done = crate::keys::command::status(&keys).await;
            keys.store().close().await;
            done
        }
    }
}

/// The settings of `data_dir` (its config file, the environment, `database_url` if given).
fn settings_of(
    data_dir: &std::path::Path,
    database_url: Option<String>,
) -> anyhow::Result<Settings> {
    Ok(Settings::load(
        None,
        Overrides {
            data_dir: Some(data_dir.to_path_buf()),
            listen: None,
            database_url,
        },
    )?)
}

pub async fn audit_verify(args: VerifyArgs) -> anyhow::Result<()> {
    if let Some(file) = &args.source.bundle {
        return verify_bundle(file, args.vkey.as_deref());
    }
    let witnesses = witnessed::parse_witnesses(&args.witnesses).map_err(|e| anyhow::anyhow!(e))?;
    let required = args.min_witnesses.unwrap_or(witnesses.len());
    if required > witnesses.len() {
        anyhow::bail!(
            "--min-witnesses {required} is more than the {} --witness keys given",
            witnesses.len()
        );
    }
    if let Some(dir) = args.source.data_dir {
        let settings = Settings::load(
            None,
            Overrides {
                data_dir: Some(dir.clone()),
                listen: None,
                database_url: args.database_url,
            },
        )?;
        let origin = ledger_origin(&settings.instance);
        let vkey = match args.vkey {
            Some(v) => v,
            None => {
                let vault = Vault::unlock(&AgeFileStore::in_dir(&dir))?;
                let key = vault
                    .ledger_key()
                    .ok_or_else(|| anyhow::anyhow!("the keyring has no ledger key"))?;
                NoteSigner::new(&origin, key)
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .verifier_key()
            }
        };
        let store = Store::open(&settings.database()?).await?;
        let keys = match key_chain(&mut StoreSource::new(&store), &vkey).await {
            Ok(keys) => keys,
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        };
        if !witnesses.is_empty() {
            let note = witnessed::from_store(&store, required).await;
            let checked =
                note.and_then(|n| witnessed::check(n.as_deref(), &keys, &witnesses, required));
            if let Err(e) = checked {
                store.close().await;
                anyhow::bail!(e);
            }
            println!(
                "witnessed: {required} of {} witness keys cosigned a stored checkpoint",
                witnesses.len()
            );
        }
        let total = store.ledger_size().await?;
        let result = run_verify(&mut StoreSource::new(&store), &keys, &origin, total).await;
        store.close().await;
        result
    } else if let Some(url) = args.source.url {
        let source = HttpSource::new(&url, args.ca.as_deref(), args.token)?;
        let vkey = match args.vkey {
            Some(v) => v,
            None => {
                let v = source
                    .verifier_key()
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
                eprintln!("note: trusting the key the hub publishes ({v}); pass --vkey to pin it");
                v
            }
        };
        let origin = vkey.split('+').next().unwrap_or_default().to_owned();
        let mut source = source;
        let keys = key_chain(&mut source, &vkey).await?;
        if !witnesses.is_empty() {
            let note = witnessed::from_hub(&source, required)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            let text = witnessed::check(note.as_deref(), &keys, &witnesses, required)
                .map_err(|e| anyhow::anyhow!(e))?;
            println!(
                "witnessed: {required} of {} witness keys cosigned checkpoint {}",
                witnesses.len(),
                text.lines().nth(1).unwrap_or_default()
            );
            // The witnessed checkpoint is checked against the entries with the newest one.
            source.also_check(note.unwrap_or_default());
        }
        run_verify(&mut source, &keys, &origin, 0).await
    } else {
        anyhow::bail!("give --data-dir DIR or --url URL")
    }
}

/// `gridhub audit verify --bundle FILE`: offline, nothing but the file (and the pinned key).
fn verify_bundle(file: &std::path::Path, vkey: Option<&str>) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let bundle: crate::ledger::bundle::EvidenceBundle = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an evidence bundle", file.display()))?;
    if vkey.is_none() {
        eprintln!(
            "note: checking under the key the bundle names ({}); pass --vkey to pin it",
            bundle.verifier_key
        );
    }
    let report = bundle
        .verify(vkey)
        .map_err(|e| anyhow::anyhow!("the bundle does NOT verify: {e}"))?;
    println!(
        "verified: {} entries included in checkpoint {} of size {} signed by {}",
        report.entries, report.origin, report.checkpoint_size, report.verifier_key
    );
    Ok(())
}

/// The ledger's keys as `source` states their transitions, trusted because `vkey` (pinned, or
/// the keyring's) is one of them.
async fn key_chain(source: &mut impl LedgerSource, vkey: &str) -> anyhow::Result<KeyChain> {
    let verifier =
        Verifier::from_vkey(vkey).map_err(|e| anyhow::anyhow!("bad verifier key: {e}"))?;
    let transitions = source
        .key_transitions()
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let keys = KeyChain::new(verifier, &transitions)
        .map_err(|e| anyhow::anyhow!("ledger verification failed: {e}"))?;
    if !transitions.is_empty() {
        println!(
            "ledger key rotated {} time(s); each checkpoint is checked under the key of its \
             span, the newest being {}",
            transitions.len(),
            keys.current().verifier_key()
        );
    }
    Ok(keys)
}

async fn run_verify(
    source: &mut impl LedgerSource,
    keys: &KeyChain,
    origin: &str,
    total: u64,
) -> anyhow::Result<()> {
    let bar = if total > 0 {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::new_spinner()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "verifying [{bar:40}] {pos}/{len} entries ({per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let outcome = verify(source, keys, origin, |done| bar.set_position(done)).await;
    bar.finish_and_clear();
    match outcome {
        Ok(report) => {
            println!(
                "ledger intact: {} entries, {} signed checkpoints verified, root {} ({:.0} entries/s)",
                report.entries,
                report.checkpoints,
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, report.root),
                report.entries as f64 / report.seconds.max(1e-9)
            );
            Ok(())
        }
        Err(failure) => anyhow::bail!("ledger verification failed: {failure}"),
    }
}
