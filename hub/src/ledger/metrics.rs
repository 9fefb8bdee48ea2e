//! What the ledger writer counts for `/metrics` (`crate::metrics` registers these handles):
//! every committed entry by stream and decision (decisions by result are the `disclosure`
//! stream's), the records and fields disclosures released, how long each append transaction
//! took and how many entries it carried (the group-commit size), and how often a batch first
//! caught up with entries other processes appended. Everything is counted after its commit, so
//! no metric counts what the database does not hold. Names and counts only: no record id, no
//! field value.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use super::{EntryDraft, Stream};

/// The labels of a committed entry.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EntryLabels {
    pub stream: &'static str,
    pub decision: &'static str,
}

/// Handles on the ledger's metrics; clones count into the same metrics.
#[derive(Clone, Debug)]
pub struct LedgerMetrics {
    pub entries: Family<EntryLabels, Counter>,
    pub disclosed_records: Counter,
    pub disclosed_fields: Counter,
    /// Seconds from taking the coordination row to the commit.
    pub append_seconds: Histogram,
    pub batch_entries: Histogram,
    pub catch_ups: Counter,
    /// Transactions and entries committed (their ratio is the group-commit size).
    pub commits: Counter,
    pub committed_entries: Counter,
}

impl Default for LedgerMetrics {
    fn default() -> LedgerMetrics {
        LedgerMetrics {
            entries: Family::default(),
            disclosed_records: Counter::default(),
            disclosed_fields: Counter::default(),
            // 0.25 ms … ~4 s.
            append_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 15)),
            // 1 … 4 096 (`MAX_BATCH`).
            batch_entries: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            catch_ups: Counter::default(),
            commits: Counter::default(),
            committed_entries: Counter::default(),
        }
    }
}

impl LedgerMetrics {
    /// One committed transaction of `drafts`, `seconds` long.
    pub(super) fn committed<'a>(&self, drafts: impl Iterator<Item = &'a EntryDraft>, seconds: f64) {
        let mut entries = 0u64;
        for draft in drafts {
            entries += 1;
            let stream = Stream::of(&draft.action);
            self.entries
                .get_or_create(&EntryLabels {
                    stream: stream.as_str(),
                    decision: draft.decision.as_str(),
                })
                .inc();
            if stream == Stream::Disclosure && draft.decision == super::Decision::Allow {
                self.disclosed_records.inc_by(draft.records.len() as u64);
                self.disclosed_fields
                    .inc_by(draft.records.iter().map(|r| r.fields.len() as u64).sum());
            }
        }
        self.append_seconds.observe(seconds);
        self.batch_entries.observe(entries as f64);
        self.commits.inc();
        self.committed_entries.inc_by(entries);
    }
}
