//! The `gridhub` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use gridhub::cli::{Cli, Command};
use gridhub::commands;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
