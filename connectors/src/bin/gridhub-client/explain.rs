//! `explain`: why this department gets what it gets for a category and purpose (optionally
//! for one record), as JSON on stdout.

use connectors::Client;
use serde_json::Value;

use super::common::{Failure, Scope, print_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    scope: Scope,
    /// Explain for this record id.
    #[arg(long)]
    record: Option<String>,
}

pub async fn run(client: &Client, args: Args) -> Result<(), Failure> {
    let explanation = client
        .explain(
            &args.scope.category,
            &args.scope.purpose,
            args.scope.case.as_deref(),
            args.record.as_deref(),
        )
        .await?;
    let mut out = explanation.extra.clone();
    out.insert("allowed".to_owned(), Value::Bool(explanation.allowed));
    out.insert(
        "reason".to_owned(),
        explanation
            .reason
            .clone()
            .map_or(Value::Null, Value::String),
    );
    out.insert(
        "grants".to_owned(),
        Value::Array(explanation.grants.clone()),
    );
    out.insert(
        "fields".to_owned(),
        Value::Object(explanation.fields.clone()),
    );
    print_json(&Value::Object(out))
}
