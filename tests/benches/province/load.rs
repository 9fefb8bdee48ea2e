//! The province's records: synthetic residents from the demo generator (`demo::synth`, chunks
//! of 50 000 persons with different seeds), their households, and the places and organisations
//! the generator puts beside them. The generator numbers identity numbers and households per
//! call, so across chunks they are made distinct here: identity numbers keep the area, birth
//! date and sex and get the next free sequence number of that day (`IdBook`), household
//! numbers get the chunk's number. Sealed with the hub's own vault
//! (`records::seal`: field encryption and blind-index tokens) on one thread while
//! `Store::insert_records` writes the previous batch on the runtime: the two overlap, which is
//! as parallel as two cores allow with the database writer taking the other one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use gridhub::config::DatabaseLocation;
use gridhub::demo::{SEED, synth};
use gridhub::storage::{NewRecord, Store, Workload};
use gridhub::vault::Vault;
use serde_json::Value;

/// Persons asked of the generator per call (its output is held in memory).
const CHUNK: usize = 50_000;
/// Identity numbers kept for lookups.
const LOOKUP_SAMPLE: usize = 5_000;
/// Person records kept as case subjects.
const SUBJECT_SAMPLE: usize = 100_000;
/// Sealed batches waiting for the writer.
const QUEUE: usize = 4;

/// What the load kept for later steps.
#[derive(Default)]
pub struct Sample {
    /// Identity numbers of loaded persons (spread over the whole load).
    pub id_numbers: Vec<String>,
    /// (record id, grid) of loaded persons.
    pub persons: Vec<(String, String)>,
}

pub struct Loaded {
    /// Records written, by category.
    pub counts: BTreeMap<&'static str, u64>,
    pub secs: f64,
    pub sample: Sample,
}

impl Loaded {
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// Sequence numbers given out per (area and birth date, sex), across the whole load.
#[derive(Default)]
struct IdBook(HashMap<u64, u16>);

impl IdBook {
    /// A distinct identity number with `id`'s area, birth date and sex (the generator's own
    /// numbering, `demo::synth`, continued across chunks); `None` once that day has its 500.
    fn reissue(&mut self, id: &str) -> Option<String> {
        let head = id.get(..14)?;
        let male = id.as_bytes().get(16)? % 2 == 1;
        let count = self
            .0
            .entry(head.parse::<u64>().ok()? * 2 + u64::from(male))
            .or_insert(0);
        if *count >= 500 {
            return None;
        }
        let seq = (u32::from(*count) * 37 + 11) % 500 * 2 + u32::from(male);
        *count += 1;
        Some(gridhub_tests::id_number(&format!("{head}{seq:03}")))
    }
}

/// `H<code><seq>` → `H<chunk><code><seq>`: distinct across chunks (the generator numbers
/// households per call).
fn renumber(fields: &mut serde_json::Map<String, Value>, key: &str, chunk: u64) {
    if let Some(Value::String(n)) = fields.get_mut(key)
        && let Some(rest) = n.strip_prefix('H')
    {
        *n = format!("H{chunk:04}{rest}");
    }
}

/// Generate, parse and seal `persons` persons with their households, places and
/// organisations, in batches of `batch`, onto `out`.
fn produce(
    persons: usize,
    batch: usize,
    vault: &Vault,
    out: tokio::sync::mpsc::Sender<Vec<NewRecord>>,
) -> (BTreeMap<&'static str, u64>, Sample) {
    let grids = synth::grid_tree(SEED);
    let catalog = policy::Catalog::default_catalog();
    let mut ids = IdBook::default();
    let mut counts = BTreeMap::new();
    let mut sample = Sample::default();
    let lookup_every = (persons / LOOKUP_SAMPLE).max(1);
    let subject_every = (persons / SUBJECT_SAMPLE).max(1);
    let mut pending = Vec::with_capacity(batch);
    let mut chunk = 0_u64;
    let mut taken = 0_usize;
    while taken < persons {
        let n = CHUNK.min(persons - taken);
        let seed = SEED + chunk;
        let mut generated = synth::population(seed, n, &grids);
        generated.extend(synth::places_and_organizations(seed, n, &grids));
        for mut r in generated {
            if r.category == "person" {
                let given = r.fields["id_number"].as_str().unwrap();
                let Some(id) = ids.reissue(given).filter(|_| taken < persons) else {
                    continue;
                };
                if taken.is_multiple_of(lookup_every) {
                    sample.id_numbers.push(id.clone());
                }
                r.fields.insert("id_number".to_owned(), Value::String(id));
                taken += 1;
            }
            renumber(&mut r.fields, "household_number", chunk);
            renumber(&mut r.fields, "household_id", chunk);
            let category = catalog.category(r.category).unwrap();
            let draft = gridhub::records::RecordDraft {
                category,
                grid: policy::GridCode::parse(&r.grid).unwrap(),
                purpose: "population-registration".into(),
                legal_basis: None,
                retention_until: None,
                collector: "province-bench".into(),
                values: category.parse_fields(&r.fields).unwrap(),
            };
            let sealed = gridhub::records::seal(vault, draft).unwrap();
            if r.category == "person" && taken.is_multiple_of(subject_every) {
                sample.persons.push((sealed.id.clone(), r.grid.clone()));
            }
            *counts.entry(r.category).or_insert(0) += 1;
            pending.push(sealed);
            if pending.len() == batch {
                let full = std::mem::replace(&mut pending, Vec::with_capacity(batch));
                out.blocking_send(full).unwrap();
            }
        }
        chunk += 1;
    }
    if !pending.is_empty() {
        out.blocking_send(pending).unwrap();
    }
    (counts, sample)
}

/// Load the province into the (stopped) hub's database: `persons` persons and what comes
/// with them, `batch` records per write transaction.
pub async fn load(
    location: &DatabaseLocation,
    vault: Arc<Vault>,
    persons: usize,
    batch: usize,
) -> Loaded {
    // What `gridhub import` opens: no memory map, a long WAL between checkpoints (SQLite).
    let store = Store::open_for(location, Workload::Bulk).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(QUEUE);
    let started = Instant::now();
    let producer = std::thread::spawn(move || produce(persons, batch, &vault, tx));
    let (mut written, mut told) = (0_usize, 0_usize);
    while let Some(records) = rx.recv().await {
        store
            .insert_records(&records, gridhub::time::now_ms())
            .await
            .unwrap();
        written += records.len();
        if written >= told + 1_000_000 {
            told = written;
            println!(
                "    {written:>9} records written, {:.0} records/s so far",
                written as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    let (counts, sample) = producer.join().unwrap();
    let secs = started.elapsed().as_secs_f64();
    store.close().await;
    Loaded {
        counts,
        secs,
        sample,
    }
}
