//! `lookup`: subjects by one indexed field (`--key field=value`), the verified page as JSON on
//! stdout. The key travels in the request body and is never part of an error message.

use connectors::Client;
use serde_json::{Map, Value};

use super::common::{Failure, Scope, page_json, print_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    scope: Scope,
    /// The indexed field and its value, `field=value`.
    #[arg(long)]
    key: String,
}

pub async fn run(client: &Client, args: Args) -> Result<(), Failure> {
    let Some((field, value)) = args.key.split_once('=') else {
        return Err(Failure::Usage("`--key` must be `field=value`".to_owned()));
    };
    let mut key = Map::new();
    key.insert(field.to_owned(), Value::String(value.to_owned()));
    let page = client
        .lookup(
            &args.scope.category,
            &args.scope.purpose,
            args.scope.case.as_deref(),
            &key,
        )
        .await?;
    print_json(&page_json(&page))
}
