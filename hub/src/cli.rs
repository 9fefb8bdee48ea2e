//! The `gridhub` command line (API.md "CLI entry points"): parsing and dispatch. What each
//! subcommand takes and does is `crate::commands`; that module never names this one.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{self, KeysCommand, RecoverArgs, ServeArgs, VerifyArgs};

/// Parse the command line and run it; the `gridhub` binary is this function.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Init {
                data_dir,
                admin_password,
                database_url,
                force,
                instance,
            } => commands::init(data_dir, admin_password, database_url, force, instance).await,
            Command::Serve(args) => commands::serve(args).await,
            Command::Demo {
                data_dir,
                residents,
                listen,
                database_url,
                no_serve,
            } => commands::demo(data_dir, residents, listen, database_url, no_serve).await,
            Command::Keys { command } => commands::keys(command).await,
            Command::Retention { command } => commands::retention(command).await,
            Command::Audit {
                command: AuditCommand::Verify(args),
            } => commands::audit_verify(args).await,
            Command::Admin {
                command: AdminCommand::Recover(args),
            } => commands::admin_recover(args).await,
            Command::Webhooks {
                command: WebhooksCommand::Replay(args),
            } => crate::webhooks::replay_command(args).await,
            Command::Import(args) => crate::import::run(*args).await,
            Command::Connector { command } => crate::connector::command(command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Parser)]
#[command(
    name = "gridhub",
    version,
    about = "Privacy-preserving data exchange hub for grid-based community governance"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create a data directory: config, sealed keyring, dev CA and server certificate, database, admin user.
    Init {
        #[arg(long, env = "GRIDHUB_DATA_DIR")]
        data_dir: PathBuf,
        /// Admin password (at least 12 characters); generated and printed once if absent.
        #[arg(long, env = "GRIDHUB_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
        /// Use PostgreSQL instead of the embedded SQLite file (written to the config).
        #[arg(long, env = "GRIDHUB_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Replace the keys, certificates and SQLite database of an initialised directory.
        #[arg(long)]
        force: bool,
        /// Instance name (token issuer, certificate subject).
        #[arg(long, default_value = "gridhub-dev")]
        instance: String,
    },
    /// Serve the API over HTTPS.
    Serve(ServeArgs),
    /// Initialise (if needed), seed synthetic demo data, and serve.
    Demo {
        #[arg(long, env = "GRIDHUB_DATA_DIR", default_value = "gridhub-demo")]
        data_dir: PathBuf,
        /// Number of synthetic residents.
        #[arg(long, default_value_t = 10_000)]
        residents: usize,
        #[arg(long)]
        listen: Option<SocketAddr>,
        #[arg(long, env = "GRIDHUB_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Seed and exit without serving.
        #[arg(long)]
        no_serve: bool,
    },
    /// Audit ledger tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Retention: erase (crypto-shred) the records whose retention date has passed.
    Retention {
        #[command(subcommand)]
        command: crate::commands::RetentionCommand,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Bulk import of a workbook, CSV or JSON-lines file into one category (create or update
    /// by the key field; resumable; rejects listed by line without values).
    Import(Box<crate::import::ImportArgs>),
    /// Source connectors: keep a category in step with a PostgreSQL or MySQL/MariaDB table
    /// (incremental by updated_at and key; upserts by the key field; rejects without values).
    Connector {
        #[command(subcommand)]
        command: crate::connector::ConnectorCommand,
    },
    /// Operator tools that work on the data directory and database directly.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Webhook and NATS outbox tools.
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCommand,
    },
}

/// The outbox of webhooks and the NATS publisher (issue 21).
#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Set matching outbox rows (by --id, --dead, --since; optionally --destination) back to
    /// pending, due now; audited; prints how many. Meant for a stopped hub (it appends to the
    /// ledger).
    Replay(crate::webhooks::ReplayArgs),
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Recover from an admin lock-out: restore the shipped roles' permissions and make sure an
    /// enabled admin account exists, with a new password (generated and shown once if not
    /// given). Audited; meant for a stopped hub (a running one follows on its next request).
    Recover(RecoverArgs),
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recompute every leaf and the root from the stored entries, check every checkpoint's
    /// signature; exit 1 naming the first bad index.
    Verify(VerifyArgs),
}
