//! Pull every `person` record a department may see for a purpose, resuming from a saved
//! cursor, with every page's receipt verified.
//!
//! `cargo run -p gridhub-connectors --example pull -- HUB_URL CA CERT KEY PURPOSE [AGE_IDENTITY]`

use connectors::{Client, Config, Error, PullRequest};
use futures::TryStreamExt;

fn read(path: &str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::Config(format!("`{path}`: {e}")))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [hub, ca, cert, key, purpose, rest @ ..] = args.as_slice() else {
        return Err(Error::Config(
            "usage: pull HUB_URL CA CERT KEY PURPOSE [AGE_IDENTITY]".to_owned(),
        ));
    };
    let mut config =
        Config::new(hub, read(ca)?, read(cert)?, read(key)?).state_file("gridhub-state.json");
    if let Some(identity) = rest.first() {
        config = config.age_identity(read(identity)?);
    }
    let client = Client::new(config)?;
    let cursor_file = "gridhub-cursor.txt";
    let mut request = PullRequest::new(purpose.as_str());
    request.cursor = std::fs::read_to_string(cursor_file).ok();
    let mut pages = std::pin::pin!(client.pull_all("person", request));
    let mut total = 0usize;
    while let Some(page) = pages.try_next().await? {
        total += page.records.len();
        match &page.next_cursor {
            Some(cursor) => std::fs::write(cursor_file, cursor),
            None => std::fs::remove_file(cursor_file).or(Ok(())),
        }
        .map_err(|e| Error::Config(format!("cursor file: {e}")))?;
        println!(
            "{} records, receipt {} proved in checkpoint of size {}",
            page.records.len(),
            page.receipt.index,
            page.checkpoint_size
        );
    }
    println!(
        "{total} records in all; {} token fetches",
        client.token_fetches()
    );
    Ok(())
}
