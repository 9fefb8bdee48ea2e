//! Moving staged subject rows (SQLite) into a sorted run a slice at a time.
//!
//! Every commit of the ledger writer stages its entries' subject rows in index order (the right
//! edge of a small B-tree). Once `threshold` rows wait, they become one run of
//! `ledger_subject_runs`, sorted by record, so that a lookup by record seeks once per run. Done
//! in one transaction, that move took ~35 ms for 50 000 rows (a Python `sqlite3` model), and
//! every append queued behind it waited as long: without it the SQLite pull's p99 was 18–22
//! ms instead of 54–58 (docs/PERFORMANCE.md). Here it is done in steps, one after each commit
//! of the writer (times from the same model):
//!
//! 1. the rows of the entries committed so far (`0..=through`) are sorted into a temporary
//!    table of the writer's connection (~11 ms for 50 000 rows; nothing is written to the file);
//! 2. they are appended to a new run, `SLICE_ROWS` per transaction (~1.5 ms each);
//! 3. the last slice's transaction also removes the staged rows `0..=through`.
//!
//! In between, a row may be both staged and in the unfinished run; lookups take entry indexes
//! as a set. A run cut short (crash, failed slice) is removed before the next merge
//! (`Store::drop_unfinished_subject_run`) and its rows, still staged, are copied again.

use crate::storage::Store;

/// Rows appended per transaction: ~1.5 ms on the development machine.
const SLICE_ROWS: u64 = 5_000;
/// After a failure, commits of the writer before the merge is tried again (a failing sort
/// would otherwise cost every commit ~11 ms).
const RETRY_AFTER_COMMITS: u32 = 100;

enum State {
    Idle,
    Copying {
        run: i64,
        through: i64,
        sorted: u64,
        copied: u64,
    },
}

/// The writer's merge in progress, if any. Owned by the writer task; `step` runs between its
/// commits.
pub(super) struct SubjectMerge {
    threshold: u64,
    state: State,
    /// A run may have been left unfinished: check before the next merge.
    check_unfinished: bool,
    /// Commits to let pass before starting again after a failure.
    back_off: u32,
}

impl SubjectMerge {
    /// `threshold`: staged rows that start a merge. A run may be left unfinished by an earlier
    /// process, so the first merge checks for one.
    pub(super) fn new(threshold: u64) -> SubjectMerge {
        SubjectMerge {
            threshold,
            state: State::Idle,
            check_unfinished: true,
            back_off: 0,
        }
    }

    /// Is a merge under way?
    #[cfg(test)]
    pub(super) fn busy(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    /// One step, after a commit of the writer: `staged` rows wait, and entries up to
    /// `last_index` are committed. Returns the staged rows a finished merge removed (0 until
    /// then). Failures are logged and the merge starts again `RETRY_AFTER_COMMITS` commits
    /// later; lookups read the staged rows too, so nothing is missing meanwhile.
    pub(super) async fn step(&mut self, store: &Store, staged: u64, last_index: i64) -> u64 {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle if self.back_off > 0 => {
                self.back_off -= 1;
                0
            }
            State::Idle => {
                if staged >= self.threshold && last_index >= 0 {
                    self.start(store, last_index).await;
                }
                0
            }
            State::Copying {
                run,
                through,
                sorted,
                copied,
            } => {
                let end = sorted.min(copied + SLICE_ROWS);
                let last = end == sorted;
                match store
                    .append_subject_run(run, copied..end, last.then_some(through))
                    .await
                {
                    Ok(()) if last => {
                        tracing::debug!(run, rows = sorted, "staged ledger subjects merged");
                        sorted
                    }
                    Ok(()) => {
                        self.state = State::Copying {
                            run,
                            through,
                            sorted,
                            copied: end,
                        };
                        0
                    }
                    Err(e) => {
                        tracing::error!(error = %e, run, "cannot copy ledger subjects into their run; will start again");
                        self.check_unfinished = true;
                        self.back_off = RETRY_AFTER_COMMITS;
                        0
                    }
                }
            }
        }
    }

    /// Sort the rows of entries `0..=through` and number their run.
    async fn start(&mut self, store: &Store, through: i64) {
        if self.check_unfinished {
            match store.drop_unfinished_subject_run().await {
                Ok(Some(run)) => {
                    tracing::warn!(
                        run,
                        "removed an unfinished ledger subject run; its rows are copied again"
                    );
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot check for an unfinished ledger subject run; will retry");
                    self.back_off = RETRY_AFTER_COMMITS;
                    return;
                }
            }
            self.check_unfinished = false;
        }
        let numbered = async {
            let sorted = store.sort_staged_subjects(through).await?;
            let run = store.next_subject_run().await?;
            Ok::<_, sqlx::Error>((sorted, run))
        };
        match numbered.await {
            Ok((sorted, run)) => {
                self.state = State::Copying {
                    run,
                    through,
                    sorted,
                    copied: 0,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot sort staged ledger subjects; will retry");
                self.back_off = RETRY_AFTER_COMMITS;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseLocation;
    use crate::storage::LedgerRow;

    fn row(index: i64, subjects: Vec<String>) -> LedgerRow {
        LedgerRow::naming(index, subjects)
    }

    fn indexes(rows: Vec<(i64, String)>) -> Vec<i64> {
        rows.into_iter().map(|(i, _)| i).collect()
    }

    /// A merge of more rows than one slice takes several steps while entries keep arriving;
    /// after every step each record's lookup is exactly its entries (none lost while rows are
    /// in two places, none doubled), and at the end the staged rows of the merged entries are
    /// gone and the later ones remain.
    #[tokio::test]
    async fn a_merge_in_slices_never_loses_or_doubles_a_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&DatabaseLocation::Sqlite(dir.path().join("m.db")))
            .await
            .unwrap();
        let records: Vec<String> = (0..300).map(|r| format!("rec-{r:04}")).collect();
        // Entry i names 100 records starting at (7 i) mod 300: every record in many entries.
        let subjects = |i: i64| -> Vec<String> {
            (0..100)
                .map(|k| records[((7 * i + k) % 300) as usize].clone())
                .collect()
        };
        let expected = |record: &str, upto: i64| -> Vec<i64> {
            (0..=upto)
                .filter(|&i| subjects(i).iter().any(|s| s == record))
                .collect()
        };
        // 130 entries: 13 000 staged rows, three slices' worth.
        let rows: Vec<LedgerRow> = (0..130).map(|i| row(i, subjects(i))).collect();
        store.append_ledger(&rows, &[]).await.unwrap();
        let mut merge = SubjectMerge::new(10_000);
        let mut last = 129;
        let mut moved = 0;
        let mut steps = 0;
        assert_eq!(merge.step(&store, 13_000, last).await, 0);
        assert!(merge.busy());
        while merge.busy() {
            // The writer goes on committing between steps.
            last += 1;
            store
                .append_ledger(&[row(last, subjects(last))], &[])
                .await
                .unwrap();
            moved += merge.step(&store, 0, last).await;
            steps += 1;
            for record in ["rec-0000", "rec-0123", "rec-0299"] {
                assert_eq!(
                    indexes(
                        store
                            .ledger_entries_for_subject(record, 10_000)
                            .await
                            .unwrap()
                    ),
                    expected(record, last),
                    "{record} after step {steps}"
                );
            }
            assert!(steps < 10_000, "the merge never finishes");
        }
        assert_eq!(moved, 13_000);
        assert_eq!(steps, 3, "three slices");
        let left = store.staged_subject_rows().await.unwrap();
        assert_eq!(left, (last - 129) as u64 * 100);
        assert_eq!(store.next_subject_run().await.unwrap(), 1);
        // A second merge takes what was staged meanwhile into run 1.
        let mut second = SubjectMerge::new(1);
        assert_eq!(second.step(&store, left, last).await, 0);
        let mut moved = 0;
        while second.busy() {
            moved += second.step(&store, 0, last).await;
        }
        assert_eq!(moved, left);
        assert_eq!(store.staged_subject_rows().await.unwrap(), 0);
        assert_eq!(
            indexes(
                store
                    .ledger_entries_for_subject("rec-0123", 10_000)
                    .await
                    .unwrap()
            ),
            expected("rec-0123", last)
        );
    }

    /// A slice that fails (its sorted copy gone with the connection) ends the merge with
    /// nothing removed; the writer lets `RETRY_AFTER_COMMITS` commits pass, then merges again
    /// from the start, and every lookup stays exact throughout.
    #[tokio::test]
    async fn a_failed_slice_backs_off_then_merges_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&DatabaseLocation::Sqlite(dir.path().join("f.db")))
            .await
            .unwrap();
        let rows: Vec<LedgerRow> = (0..70)
            .map(|i| row(i, (0..100).map(|k| format!("r{}", (i + k) % 150)).collect()))
            .collect();
        store.append_ledger(&rows, &[]).await.unwrap();
        let expected: Vec<i64> = (0..70)
            .filter(|i| (0..100).any(|k| (i + k) % 150 == 0))
            .collect();
        let mut merge = SubjectMerge::new(1);
        merge.step(&store, 7_000, 69).await;
        assert_eq!(merge.step(&store, 7_000, 69).await, 0);
        assert!(merge.busy(), "one slice of two copied");
        store.forget_sorted_subjects().await;
        assert_eq!(merge.step(&store, 7_000, 69).await, 0);
        assert!(!merge.busy(), "the failed slice ends the merge");
        for _ in 0..RETRY_AFTER_COMMITS {
            assert_eq!(merge.step(&store, 7_000, 69).await, 0);
            assert!(!merge.busy(), "backing off");
        }
        assert_eq!(store.staged_subject_rows().await.unwrap(), 7_000);
        assert_eq!(
            indexes(store.ledger_entries_for_subject("r0", 1_000).await.unwrap()),
            expected
        );
        let mut moved = merge.step(&store, 7_000, 69).await;
        assert!(merge.busy(), "started again");
        while merge.busy() {
            moved += merge.step(&store, 0, 69).await;
        }
        assert_eq!(moved, 7_000);
        assert_eq!(store.staged_subject_rows().await.unwrap(), 0);
        // The half-copied run was removed first: one run holds everything.
        assert_eq!(store.next_subject_run().await.unwrap(), 1);
        assert_eq!(
            indexes(store.ledger_entries_for_subject("r0", 1_000).await.unwrap()),
            expected
        );
    }

    /// A run cut short after its first slice (the process stopped) is removed by the next
    /// merge and its rows copied again: one run in the end, every lookup exact. A finished run
    /// is left alone.
    #[tokio::test]
    async fn an_unfinished_run_is_removed_and_copied_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&DatabaseLocation::Sqlite(dir.path().join("u.db")))
            .await
            .unwrap();
        let rows: Vec<LedgerRow> = (0..3)
            .map(|i| row(i, vec![format!("a{i}"), "b".to_owned()]))
            .collect();
        store.append_ledger(&rows, &[]).await.unwrap();
        // A finished run: nothing to remove.
        let sorted = store.sort_staged_subjects(0).await.unwrap();
        store
            .append_subject_run(0, 0..sorted, Some(0))
            .await
            .unwrap();
        assert_eq!(store.drop_unfinished_subject_run().await.unwrap(), None);
        // An unfinished one: entries 1 and 2, only its first row copied.
        assert_eq!(store.sort_staged_subjects(2).await.unwrap(), 4);
        store.append_subject_run(1, 0..1, None).await.unwrap();
        assert_eq!(
            indexes(store.ledger_entries_for_subject("b", 10).await.unwrap()),
            [0, 1, 2]
        );
        let mut merge = SubjectMerge::new(1);
        merge.step(&store, 4, 2).await;
        let mut moved = 0;
        while merge.busy() {
            moved += merge.step(&store, 0, 2).await;
        }
        assert_eq!(moved, 4);
        assert_eq!(store.next_subject_run().await.unwrap(), 2);
        assert_eq!(store.staged_subject_rows().await.unwrap(), 0);
        for (record, want) in [("b", vec![0, 1, 2]), ("a1", vec![1]), ("a0", vec![0])] {
            assert_eq!(
                indexes(store.ledger_entries_for_subject(record, 10).await.unwrap()),
                want,
                "{record}"
            );
        }
    }
}
