//! `gridhub-client`: the command line for department operators, built on the client SDK only
//! (`connectors::Client`; no HTTP of its own). Every disclosure it prints or writes was
//! verified by the SDK first. Exit codes: 0 ok, 1 verification failure or inconsistency,
//! 2 usage or configuration, 3 API or transport error. See `docs/SDK.md`.

mod checkpoint;
mod common;
mod explain;
mod grants;
mod lookup;
mod pull;
mod witness;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use common::Failure;

/// Gridhub's command line for department systems: pull, look up, explain, grants,
/// checkpoints and witnessing, every disclosure verified against the hub's transparency log.
#[derive(Debug, Parser)]
#[command(name = "gridhub-client", version)]
struct Cli {
    #[command(flatten)]
    common: common::Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pull every record of a category to a JSONL file (resumable), each page verified.
    Pull(pull::Args),
    /// Look subjects up by one indexed field; prints the verified page as JSON.
    Lookup(lookup::Args),
    /// Why this department gets what it gets; prints the explanation as JSON.
    Explain(explain::Args),
    /// Ask for a grant, or read one's status.
    #[command(subcommand)]
    Grants(grants::Command),
    /// Verify the hub's current checkpoint against the state file.
    #[command(subcommand)]
    Checkpoint(checkpoint::Command),
    /// Verify and cosign the hub's current checkpoint as a witness, or make a witness key.
    Witness(witness::Args),
}

/// The entry point (also run by the black-box tests as `gridhub-client-under-test`).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return Failure::Usage(format!("cannot start the runtime: {e}")).report(None),
    };
    let evidence = cli.common.evidence.clone();
    let outcome = runtime.block_on(async move {
        match cli.command {
            // Key generation needs no hub, hence no configuration.
            Command::Witness(args) if args.is_keygen() => witness::keygen(args),
            command => {
                let client = cli.common.client()?;
                match command {
                    Command::Pull(args) => pull::run(&client, args).await,
                    Command::Lookup(args) => lookup::run(&client, args).await,
                    Command::Explain(args) => explain::run(&client, args).await,
                    Command::Grants(command) => grants::run(&client, command).await,
                    Command::Checkpoint(command) => checkpoint::run(&client, command).await,
                    Command::Witness(args) => witness::run(&client, args).await,
                }
            }
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(evidence.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
