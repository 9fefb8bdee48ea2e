//! What every subcommand shares: the connection options (flags before the subcommand,
//! `GRIDHUB_CLIENT_*` variables, or a `--profile` TOML file, in that order of precedence;
//! not global, so that `lookup --key` and `witness --key` keep their own `--key`), the SDK client built from them,
//! and the one failure type with its exit code. Invariant: no failure message carries a
//! record's field value (the SDK's errors do not, and nothing here adds one).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use connectors::{Client, Config, Error};
use serde::Deserialize;

/// The connection options.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// A TOML file with any of the options below (`url`, `ca`, `cert`, `key`, `age_identity`,
    /// `vkey`, `state_file`, `witness = [..]`, `min_witnesses`); flags and variables win.
    #[arg(long, env = "GRIDHUB_CLIENT_PROFILE")]
    pub profile: Option<PathBuf>,
    /// The hub, e.g. `https://hub.example:8443`.
    #[arg(long, env = "GRIDHUB_CLIENT_URL")]
    pub url: Option<String>,
    /// The hub's CA certificate (PEM file).
    #[arg(long, env = "GRIDHUB_CLIENT_CA")]
    pub ca: Option<PathBuf>,
    /// The client certificate (PEM file).
    #[arg(long, env = "GRIDHUB_CLIENT_CERT")]
    pub cert: Option<PathBuf>,
    /// The client certificate's key (PEM file).
    #[arg(long, env = "GRIDHUB_CLIENT_KEY")]
    pub key: Option<PathBuf>,
    /// An age identity file (an x25519 identity as `age-keygen` writes it): ask for sealed answers and open them.
    #[arg(long, env = "GRIDHUB_CLIENT_AGE_IDENTITY")]
    pub age_identity: Option<PathBuf>,
    /// The ledger's C2SP verifier key; without it the hub's key is pinned on first use. Either
    /// way the hub's key transitions are followed from it.
    #[arg(long, env = "GRIDHUB_CLIENT_VKEY")]
    pub vkey: Option<String>,
    /// The state file (pinned key, key transitions followed, last verified checkpoint). Default:
    /// `$XDG_STATE_HOME/gridhub-client/<host>_<port>.json` (`~/.local/state/…`).
    #[arg(long, env = "GRIDHUB_CLIENT_STATE_FILE")]
    pub state_file: Option<PathBuf>,
    /// A witness's C2SP cosignature verifier key (repeatable; with `--min-witnesses`).
    #[arg(
        long = "witness",
        env = "GRIDHUB_CLIENT_WITNESS",
        value_delimiter = ','
    )]
    pub witnesses: Vec<String>,
    /// Accept only checkpoints cosigned by at least this many of the `--witness` keys
    /// (default: all of them).
    #[arg(long, env = "GRIDHUB_CLIENT_MIN_WITNESSES")]
    pub min_witnesses: Option<usize>,
    /// Write the two signed notes of an inconsistency here instead of to stderr.
    #[arg(long, env = "GRIDHUB_CLIENT_EVIDENCE")]
    pub evidence: Option<PathBuf>,
}

/// The `--profile` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    url: Option<String>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    age_identity: Option<PathBuf>,
    vkey: Option<String>,
    state_file: Option<PathBuf>,
    #[serde(default)]
    witness: Vec<String>,
    min_witnesses: Option<usize>,
}

fn read(what: &str, path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("cannot read the {what} `{}`: {e}", path.display())))
}

fn required<T>(value: Option<T>, flag: &str) -> Result<T, Failure> {
    value.ok_or_else(|| {
        Failure::Usage(format!(
            "`--{flag}` is required (or GRIDHUB_CLIENT_{}, or `{}` in the profile)",
            flag.to_uppercase().replace('-', "_"),
            flag.replace('-', "_")
        ))
    })
}

impl Common {
    /// The options with the profile's values filling the gaps.
    fn merged(&self) -> Result<Common, Failure> {
        let profile = match &self.profile {
            Some(path) => toml::from_str::<Profile>(&read("profile", path)?)
                .map_err(|e| Failure::Usage(format!("the profile `{}`: {e}", path.display())))?,
            None => Profile::default(),
        };
        let mut merged = self.clone();
        merged.url = merged.url.or(profile.url);
        merged.ca = merged.ca.or(profile.ca);
        merged.cert = merged.cert.or(profile.cert);
        merged.key = merged.key.or(profile.key);
        merged.age_identity = merged.age_identity.or(profile.age_identity);
        merged.vkey = merged.vkey.or(profile.vkey);
        merged.state_file = merged.state_file.or(profile.state_file);
        if merged.witnesses.is_empty() {
            merged.witnesses = profile.witness;
        }
        merged.min_witnesses = merged.min_witnesses.or(profile.min_witnesses);
        Ok(merged)
    }

    /// The SDK client these options describe.
    pub fn client(&self) -> Result<Client, Failure> {
        let o = self.merged()?;
        let url = required(o.url, "url")?;
        let ca = read("CA certificate", &required(o.ca, "ca")?)?;
        let cert = read("client certificate", &required(o.cert, "cert")?)?;
        let key = read("client key", &required(o.key, "key")?)?;
        let state_file = match o.state_file {
            Some(path) => path,
            None => default_state_file(&url)?,
        };
        let mut config = Config::new(url, ca, cert, key).state_file(state_file);
        if let Some(path) = &o.age_identity {
            config = config.age_identity(read("age identity", path)?);
        }
        if let Some(vkey) = o.vkey {
            config = config.ledger_vkey(vkey);
        }
        if !o.witnesses.is_empty() {
            let k = o.min_witnesses.unwrap_or(o.witnesses.len());
            config = config.require_witnesses(o.witnesses, k);
        } else if o.min_witnesses.is_some() {
            return Err(Failure::Usage(
                "`--min-witnesses` needs at least one `--witness`".to_owned(),
            ));
        }
        Client::new(config).map_err(Failure::from)
    }
}

/// `$XDG_STATE_HOME/gridhub-client/<host>_<port>.json`, else under `~/.local/state`.
fn default_state_file(url: &str) -> Result<PathBuf, Failure> {
    let host: String = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = match (std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME")) {
        (Some(state), _) if !state.is_empty() => PathBuf::from(state),
        (_, Some(home)) if !home.is_empty() => PathBuf::from(home).join(".local/state"),
        _ => {
            return Err(Failure::Usage(
                "no HOME to keep the state file in: pass `--state-file`".to_owned(),
            ));
        }
    };
    let dir = base.join("gridhub-client");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::Usage(format!("cannot create `{}`: {e}", dir.display())))?;
    Ok(dir.join(format!("{host}.json")))
}

/// Why a command failed; each kind has its exit code.
#[derive(Debug)]
pub enum Failure {
    /// 1: what the hub showed does not verify (a bad receipt, proof, checkpoint or witness, or
    /// a ledger key the pinned key did not endorse).
    Verification(String),
    /// 1: the hub's log is not an extension of a checkpoint verified before.
    Inconsistent {
        message: String,
        trusted: String,
        presented: String,
    },
    /// 2: bad usage or configuration, or a local file that cannot be used.
    Usage(String),
    /// 3: the hub refused (an error body, with its code and request id) or could not be
    /// reached or understood.
    Api(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        match e {
            Error::Inconsistent { .. } | Error::Rollback { .. } => {
                let message = e.to_string();
                let (trusted, presented) = match e {
                    Error::Inconsistent { trusted, presented }
                    | Error::Rollback {
                        trusted, presented, ..
                    } => (trusted, presented),
                    _ => (String::new(), String::new()),
                };
                Failure::Inconsistent {
                    message,
                    trusted,
                    presented,
                }
            }
            Error::BadReceiptSignature { .. }
            | Error::UnknownReceiptKey { .. }
            | Error::UnendorsedKey { .. }
            | Error::BadCheckpoint(_)
            | Error::ProofFailed(_)
            | Error::Unseal(_) => Failure::Verification(e.to_string()),
            Error::Config(_) | Error::StateFile(_) => Failure::Usage(e.to_string()),
            other => Failure::Api(other),
        }
    }
}

impl Failure {
    /// Print the failure to stderr (the evidence to `evidence` if given) and return its code.
    pub fn report(self, evidence: Option<&Path>) -> ExitCode {
        match self {
            Failure::Verification(message) => {
                eprintln!("gridhub-client: verification failed: {message}");
                ExitCode::from(1)
            }
            Failure::Inconsistent {
                message,
                trusted,
                presented,
            } => {
                eprintln!("gridhub-client: INCONSISTENT: {message}");
                let notes = format!(
                    "-- checkpoint verified before (trusted) --\n{trusted}\n\
                     -- checkpoint the hub presented --\n{presented}"
                );
                match evidence {
                    Some(path) => match std::fs::write(path, &notes) {
                        Ok(()) => eprintln!("both signed notes written to `{}`", path.display()),
                        Err(e) => {
                            eprintln!(
                                "cannot write `{}` ({e}); the notes:\n{notes}",
                                path.display()
                            )
                        }
                    },
                    None => eprintln!("{notes}"),
                }
                ExitCode::from(1)
            }
            Failure::Usage(message) => {
                eprintln!("gridhub-client: {message}");
                ExitCode::from(2)
            }
            Failure::Api(e) => {
                match &e {
                    Error::Api {
                        status,
                        code,
                        message,
                        request_id,
                        details,
                    } => {
                        eprintln!(
                            "gridhub-client: the hub answered {status} code={} request_id={}: {message}",
                            code.as_str(),
                            request_id.as_deref().unwrap_or("-")
                        );
                        for d in details {
                            eprintln!("  {}: {}", d.field, d.problem);
                        }
                    }
                    other => eprintln!("gridhub-client: {other}"),
                }
                ExitCode::from(3)
            }
        }
    }
}

/// Print `value` as pretty JSON on stdout.
pub fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Usage(format!("cannot encode the answer: {e}")))?;
    println!("{text}");
    Ok(())
}

/// The value of a `--category`/`--purpose`/`--case` style group shared by disclosures.
#[derive(Debug, Clone, clap::Args)]
pub struct Scope {
    /// The category (`person`, …).
    #[arg(long)]
    pub category: String,
    /// The registered purpose.
    #[arg(long)]
    pub purpose: String,
    /// A case assigned to the department (for case-bound grants).
    #[arg(long)]
    pub case: Option<String>,
}

/// A verified page as JSON: its records, receipt and the verified checkpoint size.
pub fn page_json(page: &connectors::Page) -> serde_json::Value {
    serde_json::json!({
        "records": page.records.iter().map(record_json).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
        "complete": page.complete,
        "receipt": page.receipt,
        "checkpoint_size": page.checkpoint_size,
    })
}

/// One record as JSON (`{id, grid, fields}`).
pub fn record_json(record: &connectors::Record) -> serde_json::Value {
    serde_json::json!({"id": record.id, "grid": record.grid, "fields": record.fields})
}
