//! `grants request` (from a JSON file or flags) and `grants status ID`: the grant's id and
//! status as JSON on stdout.

use std::path::PathBuf;

use connectors::{Client, GrantRequest, GrantStatus};
use serde_json::{Map, Value};

use super::common::{Failure, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Ask for a grant (a DPO approves it); prints its id and status.
    Request(Box<RequestArgs>),
    /// A grant of this department and its status.
    Status {
        /// The grant id.
        id: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// The request as JSON (API.md "Grants"); the flags below are then not allowed.
    #[arg(long, conflicts_with_all = ["grantee", "purpose", "category", "fields", "scope"])]
    file: Option<PathBuf>,
    /// The department asking (the caller's own).
    #[arg(long, required_unless_present = "file")]
    grantee: Option<String>,
    /// The registered purpose.
    #[arg(long, required_unless_present = "file")]
    purpose: Option<String>,
    /// The category.
    #[arg(long, required_unless_present = "file")]
    category: Option<String>,
    /// A field and its level, `name=clear|pseudonym|masked|generalized` (repeatable).
    #[arg(long = "field", required_unless_present = "file")]
    fields: Vec<String>,
    /// A grid code in scope (repeatable).
    #[arg(long = "scope", required_unless_present = "file")]
    scope: Vec<String>,
    /// A row filter (`tags has "elderly_alone"`).
    #[arg(long)]
    row_filter: Option<String>,
    /// Only for assigned cases.
    #[arg(long)]
    case_bound: bool,
    /// RFC 3339.
    #[arg(long, required_unless_present = "file")]
    valid_from: Option<String>,
    /// RFC 3339.
    #[arg(long, required_unless_present = "file")]
    valid_until: Option<String>,
    /// Records a day.
    #[arg(long)]
    daily_quota: Option<u32>,
    /// Required for sensitive fields.
    #[arg(long)]
    legal_basis: Option<String>,
}

fn from_flags(args: RequestArgs) -> Result<GrantRequest, Failure> {
    let mut fields = Map::new();
    for field in &args.fields {
        let Some((name, level)) = field.split_once('=') else {
            return Err(Failure::Usage(format!(
                "`--field {field}` must be `name=level`"
            )));
        };
        fields.insert(name.to_owned(), Value::String(level.to_owned()));
    }
    let missing = |flag: &str| Failure::Usage(format!("`--{flag}` is required"));
    Ok(GrantRequest {
        grantee: args.grantee.ok_or_else(|| missing("grantee"))?,
        purpose: args.purpose.ok_or_else(|| missing("purpose"))?,
        category: args.category.ok_or_else(|| missing("category"))?,
        fields,
        scope: args.scope,
        row_filter: args.row_filter,
        case_bound: args.case_bound,
        valid_from: args.valid_from.ok_or_else(|| missing("valid-from"))?,
        valid_until: args.valid_until.ok_or_else(|| missing("valid-until"))?,
        daily_quota: args.daily_quota,
        legal_basis: args.legal_basis,
    })
}

fn status_json(status: GrantStatus) -> Value {
    let mut out = status.extra;
    out.insert("id".to_owned(), Value::String(status.id));
    out.insert("status".to_owned(), Value::String(status.status));
    Value::Object(out)
}

pub async fn run(client: &Client, command: Command) -> Result<(), Failure> {
    match command {
        Command::Request(args) => {
            let request = match &args.file {
                Some(path) => {
                    let text = std::fs::read(path).map_err(|e| {
                        Failure::Usage(format!("cannot read `{}`: {e}", path.display()))
                    })?;
                    serde_json::from_slice(&text).map_err(|e| {
                        Failure::Usage(format!("`{}` is not a grant request: {e}", path.display()))
                    })?
                }
                None => from_flags(*args)?,
            };
            let status = client.request_grant(&request).await?;
            print_json(&serde_json::json!({"id": status.id, "status": status.status}))
        }
        Command::Status { id } => print_json(&status_json(client.grant(&id).await?)),
    }
}
