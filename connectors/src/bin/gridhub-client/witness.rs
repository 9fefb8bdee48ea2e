//! `witness --key FILE`: verify the hub's current checkpoint fully (signature, consistency with
//! the state file) and only then cosign it (C2SP tlog-cosignature/v1) and hand the cosignature
//! in. `witness keygen --name N --out FILE`: a new Ed25519 witness key (PKCS#8 PEM, mode 0600)
//! and its verifier key (printed, and written to `FILE.vkey`) for the hub's admin to register.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use connectors::Client;
use connectors::tlog::cosignature::Cosigner;
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

use super::common::{Failure, print_json};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    keygen: Option<Keygen>,
    /// The witness key (PKCS#8 Ed25519, PEM or DER).
    #[arg(long, env = "GRIDHUB_CLIENT_WITNESS_KEY")]
    key: Option<PathBuf>,
    /// The witness key's name (default: the name in `<key>.vkey`).
    #[arg(long)]
    name: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Keygen {
    /// Make a witness key and print its verifier key.
    Keygen {
        /// The key's name, e.g. `civil-affairs.example/witness`.
        #[arg(long)]
        name: String,
        /// Where to write the key (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
}

impl Args {
    pub fn is_keygen(&self) -> bool {
        self.keygen.is_some()
    }
}

fn vkey_path(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".vkey");
    PathBuf::from(name)
}

fn pem(der: &[u8]) -> String {
    let body = B64.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    // RFC 7468 label of a PKCS#8 document.
    const LABEL: &str = concat!("PRIVATE", " KEY");
    format!(
        "-----BEGIN {LABEL}-----\n{}\n-----END {LABEL}-----\n",
        lines.join("\n")
    )
}

pub fn keygen(args: Args) -> Result<(), Failure> {
    let Some(Keygen::Keygen { name, out }) = args.keygen else {
        return Err(Failure::Usage("`witness keygen` expected".to_owned()));
    };
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| Failure::Usage("cannot generate a key".to_owned()))?;
    let cosigner = Cosigner::from_pkcs8(&name, pkcs8.as_ref())
        .map_err(|e| Failure::Usage(format!("witness name `{name}`: {e}")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let io = |e: std::io::Error| Failure::Usage(format!("cannot write `{}`: {e}", out.display()));
    let mut file = options.open(&out).map_err(io)?;
    file.write_all(pem(pkcs8.as_ref()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    let vkey = cosigner.vkey();
    std::fs::write(vkey_path(&out), format!("{vkey}\n")).map_err(io)?;
    println!("{vkey}");
    Ok(())
}

fn cosigner(key: &Path, name: Option<String>) -> Result<Cosigner, Failure> {
    let bytes = std::fs::read(key)
        .map_err(|e| Failure::Usage(format!("cannot read `{}`: {e}", key.display())))?;
    let der = match PrivatePkcs8KeyDer::from_pem_slice(&bytes) {
        Ok(der) => der.secret_pkcs8_der().to_vec(),
        Err(_) => bytes,
    };
    let name = match name {
        Some(name) => name,
        None => {
            let path = vkey_path(key);
            let vkey = std::fs::read_to_string(&path).map_err(|e| {
                Failure::Usage(format!(
                    "no `--name` and cannot read `{}`: {e}",
                    path.display()
                ))
            })?;
            // A key name has no '+'; the key's base64 may.
            vkey.trim()
                .split_once('+')
                .map(|(name, _)| name.to_owned())
                .ok_or_else(|| Failure::Usage(format!("`{}` is not a vkey", path.display())))?
        }
    };
    Cosigner::from_pkcs8(&name, &der)
        .map_err(|e| Failure::Usage(format!("the witness key `{}`: {e}", key.display())))
}

pub async fn run(client: &Client, args: Args) -> Result<(), Failure> {
    let Some(key) = &args.key else {
        return Err(Failure::Usage(
            "`witness` needs `--key FILE` (or `witness keygen`)".to_owned(),
        ));
    };
    let cosigner = cosigner(key, args.name.clone())?;
    let witnessed = client.witness(&cosigner).await?;
    print_json(&serde_json::json!({
        "size": witnessed.size,
        "key_name": witnessed.key_name,
        "timestamp": witnessed.timestamp,
    }))
}
