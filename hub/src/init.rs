//! `gridhub init`: a new data directory with config, sealed keyring, development PKI, database
//! and an admin user. Refuses to touch an initialised directory unless `force` is given.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};

use crate::auth::password;
use crate::config::{CONFIG_FILE, DatabaseLocation, initial_config_text};
use crate::ledger::{Actor, Decision, EntryDraft};
use crate::startup::open_ledger;
use crate::storage::{NewUser, Store};
use crate::time::now_ms;
use crate::tls::pki;
use crate::vault::Vault;
use crate::vault::keyring::{
    self, AgeFileStore, KEYRING_IDENTITY, KeyringFile, KeyringStore, SEALED_KEYRING,
};

pub struct InitOptions {
    pub data_dir: PathBuf,
    pub admin_password: Option<SecretString>,
    pub database_url: Option<SecretString>,
    pub force: bool,
    pub instance: String,
}

pub struct InitReport {
    pub admin_username: String,
    /// Set when the password was generated (shown once to the operator).
    pub generated_password: Option<SecretString>,
}

/// Files `init` creates; `--force` removes exactly these.
const OWNED: [&str; 6] = [
    CONFIG_FILE,
    SEALED_KEYRING,
    KEYRING_IDENTITY,
    "gridhub.db",
    "gridhub.db-wal",
    "gridhub.db-shm",
];

/// A random password of 20 characters from an unambiguous alphabet.
pub fn generate_password() -> anyhow::Result<SecretString> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("random number generator failed"))?;
    let text: String = bytes
        .iter()
        .filter_map(|b| ALPHABET.get(usize::from(*b) % ALPHABET.len()))
        .map(|b| char::from(*b))
        .collect();
    Ok(SecretString::from(text))
}

pub fn is_initialised(dir: &Path) -> bool {
    dir.join(CONFIG_FILE).exists()
}

pub async fn init(opts: InitOptions) -> anyhow::Result<InitReport> {
    let dir = &opts.data_dir;
    if is_initialised(dir) {
        if !opts.force {
            bail!(
                "`{}` is already initialised; use --force to replace its keys, certificates and database",
                dir.display()
            );
        }
        for name in OWNED {
            let path = dir.join(name);
            if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        let pki_dir = dir.join("pki");
        if pki_dir.exists() {
            std::fs::remove_dir_all(&pki_dir)?;
        }
    }
    create_private_dir(dir)?;

    let mut config = initial_config_text(&opts.instance);
    if let Some(url) = &opts.database_url {
        config.push_str(&format!("database_url = \"{}\"\n", url.expose_secret()));
    }
    keyring::write_public(&dir.join(CONFIG_FILE), config.as_bytes())
        .context("cannot write the config file")?;

    let store = AgeFileStore::in_dir(dir);
    store.create_identity()?;
    let categories = policy::Catalog::default_catalog()
        .categories()
        .iter()
        .map(|c| c.name.as_str())
        .chain([crate::vault::CASE_TEXTS]);
    store.save(&KeyringFile::generate(categories, now_ms())?)?;

    pki::create_dev_pki(&dir.join("pki"), &opts.instance, &[])?;

    let location = match &opts.database_url {
        Some(url) => DatabaseLocation::Postgres(url.clone()),
        None => DatabaseLocation::Sqlite(dir.join("gridhub.db")),
    };
    let db = Store::open(&location).await?;
    let (password, generated) = match opts.admin_password {
        Some(pw) => (pw, None),
        None => {
            let pw = generate_password()?;
            (pw.clone(), Some(pw))
        }
    };
    let pw = password.expose_secret().to_owned();
    let hash = tokio::task::spawn_blocking(move || password::hash(&pw)).await??;
    let admin = NewUser {
        id: uuid::Uuid::now_v7().to_string(),
        username: "admin".to_owned(),
        password_hash: hash,
        department: None,
        roles: vec!["admin".to_owned()],
        grids: Vec::new(),
    };
    if !db.insert_user(&admin, now_ms()).await? {
        bail!(
            "the database already has an `admin` user; point --database-url at a fresh database or use --force on it"
        );
    }
    // The ledger's first entries: the keys this hub was born with and its first admin.
    let vault = Vault::unlock(&store)?;
    let ledger = open_ledger(&vault, db.clone(), &opts.instance).await?;
    let mut keys = EntryDraft::new(
        Actor::system(),
        "keys.create",
        Decision::Allow,
        "init".to_owned(),
    );
    keys.reason = Some(
        "keyring created: KEK v1 for every catalog category, token and ledger signing keys"
            .to_owned(),
    );
    ledger.append(keys).await?;
    let mut user = EntryDraft::new(
        Actor::system(),
        "user.create",
        Decision::Allow,
        "init".to_owned(),
    );
    user.reason = Some(format!("user {} with roles admin", admin.id));
    ledger.append(user).await?;
    ledger.checkpoint().await?;
    db.close().await;
    // Every file and directory entry made above is on disk before `init` reports success.
    keyring::sync_dir(dir)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        keyring::sync_dir(parent)?;
    }
    Ok(InitReport {
        admin_username: admin.username,
        generated_password: generated,
    })
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
