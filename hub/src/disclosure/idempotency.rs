//! Disclosures once per idempotency key: a retry of the same request gets the same records and
//! the same receipt, with no second ledger entry and no second count against a quota. The key
//! is claimed before the entry is appended, so concurrent retries cannot both disclose; it then
//! holds only the entry's index, never a response body (personal data).

use super::{Decided, Delivery};
use crate::auth::Principal;
use crate::error::Error;
use crate::idempotency::IdempotencyKey;
use crate::ledger::{Ledger, Receipt};
use crate::storage::{Claim, Store};
use crate::time::now_ms;

/// What claiming the key decided.
pub(super) enum Claimed {
    /// First use: append, then `settle`.
    New,
    /// Answered before, as ledger entry `index`.
    Replay { index: u64 },
}

/// Claim `key` for `decided`'s request (its fingerprint), or say it was answered before. A key
/// used for another request is 422; one still being answered is 409.
pub(super) async fn claim(
    store: &Store,
    who: &Principal,
    key: &IdempotencyKey,
    decided: &Decided,
) -> Result<Claimed, Error> {
    let now = now_ms();
    let claim = store
        .claim_idempotency(
            who.id(),
            key.as_str(),
            &fingerprint(decided),
            now,
            now - Store::IDEMPOTENCY_TTL_MS,
        )
        .await?;
    match claim {
        Claim::New => Ok(Claimed::New),
        Claim::Replay { index } => Ok(Claimed::Replay {
            index: u64::try_from(index)
                .map_err(|_| Error::Integrity("an idempotency key has a bad index".to_owned()))?,
        }),
        Claim::Mismatch => Err(Error::validation(
            "idempotency-key",
            "already used for a different request",
        )),
        Claim::InProgress => Err(Error::Conflict(
            "a request with this idempotency key is still being answered".to_owned(),
        )),
    }
}

/// After the first answer's append: the key remembers the entry's index, or is released for a
/// retry if nothing was recorded.
pub(super) async fn settle(
    store: &Store,
    who: &Principal,
    key: &IdempotencyKey,
    receipt: Option<&Receipt>,
) -> Result<(), Error> {
    match receipt {
        Some(receipt) => {
            let index = i64::try_from(receipt.index).unwrap_or(i64::MAX);
            store
                .complete_idempotency(who.id(), key.as_str(), index)
                .await?;
        }
        None => store.release_idempotency(who.id(), key.as_str()).await?,
    }
    Ok(())
}

/// A retry: the page was planned again (so a grant revoked in between still stops it) and must
/// disclose exactly the records and levels ledger entry `index` recorded; the receipt is the
/// entry's. Nothing is written.
pub(super) async fn replay(
    ledger: &Ledger,
    index: u64,
    decided: &Decided,
) -> Result<Receipt, Error> {
    let (entry, receipt) = ledger.stored_receipt(index).await?;
    if entry.records != decided.page.refs {
        return Err(Error::Conflict(
            "the records changed since the first request with this idempotency key; use a new key"
                .to_owned(),
        ));
    }
    Ok(receipt)
}

/// What makes two requests the same request: SHA-256 over every input of the answer.
fn fingerprint(decided: &Decided) -> Vec<u8> {
    let ask = &decided.ask;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let none = "\u{0}none";
    for part in [
        ask.kind.action(),
        &ask.category.name,
        &ask.purpose,
        ask.case.as_deref().unwrap_or(none),
        ask.within.as_ref().map_or(none, |g| g.as_str()),
        ask.cursor.as_ref().map_or(none, |c| c.as_str()),
        &ask.limit.get().to_string(),
        ask.key.as_ref().map_or(none, |k| k.field.as_str()),
        match ask.delivery {
            Delivery::Sealed => "sealed",
            Delivery::Plain => "plain",
        },
    ] {
        ctx.update(part.as_bytes());
        ctx.update(&[0]);
    }
    if let Some(key) = &ask.key {
        ctx.update(&key.token);
    }
    ctx.finish().as_ref().to_vec()
}
