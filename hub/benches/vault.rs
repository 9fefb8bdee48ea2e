//! Field encryption + decryption of one full default-catalog person record, against the raw
//! ceiling measured in the same run: ring AES-256-GCM doing the same number of seal/open
//! operations on buffers of the same sizes (one per encrypted field, plus the DEK wrap), with a
//! key schedule built once and nothing else. Run: `cargo bench -p gridhub-hub --bench vault`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark binary: failing loudly is the point"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use gridhub::records::{self, RecordDraft};
use gridhub::vault::Vault;
use gridhub::vault::keyring::KeyringFile;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde_json::json;

/// The same allocator as the `gridhub` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 7;

/// Median ops/s of `f` over `ROUNDS` rounds of about 300 ms each.
fn measure(mut f: impl FnMut()) -> f64 {
    let mut n = 1usize;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        if t.elapsed() > Duration::from_millis(50) {
            break;
        }
        n *= 2;
    }
    let per_round = n * 6;
    let mut rates: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_round {
                f();
            }
            per_round as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[ROUNDS / 2]
}

fn main() {
    if std::env::var_os("VAULT_PROBE").is_some() {
        probe();
    }
    let catalog = policy::Catalog::default_catalog();
    let person = catalog.category("person").expect("person category");
    let fields = json!({
        "name": "欧阳明月",
        "id_number": "330102199001011234",
        "gender": "male",
        "birth_date": "1990-01-01",
        "phone": "13812345678",
        "address": "临江市滨河区望江街道春晓社区12幢3单元502室",
        "household_id": "H3301100010020030070012",
        "residence": "registered",
        "tags": ["elderly_alone", "low_income"],
        "worker_notes": "独居老人，每周上门走访一次，子女在外地工作。"
    });
    let fields = fields.as_object().expect("object").clone();
    let values = match person.parse_fields(&fields) {
        Ok(v) => v,
        Err(p) => panic!("bench record invalid: {p:?}"),
    };
    // The encrypted fields' plaintext, exactly as the hub encodes them.
    let plain: Vec<(String, Vec<u8>)> = values
        .iter()
        .filter(|(name, _)| person.field(name).is_some_and(|f| f.encrypted))
        .map(|(name, v)| {
            (
                name.clone(),
                serde_json::to_vec(&v.to_json()).expect("json"),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = plain
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let bytes: usize = plain.iter().map(|(_, b)| b.len()).sum();
    let vault = Vault::from_keyring(&KeyringFile::generate(["person"], 0).expect("keyring"))
        .expect("vault");

    // Ceiling: the same AES-GCM seal+open count and sizes, precomputed key, fixed nonce.
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).expect("key"));
    let mut sizes: Vec<usize> = plain.iter().map(|(_, b)| b.len()).collect();
    sizes.push(32); // the DEK wrap
    let mut bufs: Vec<Vec<u8>> = sizes.iter().map(|s| vec![0u8; *s + 16]).collect();
    let ceiling = measure(|| {
        for (buf, size) in bufs.iter_mut().zip(&sizes) {
            buf.truncate(*size);
            key.seal_in_place_append_tag(
                Nonce::assume_unique_for_key([1; 12]),
                Aad::from(b"ad"),
                buf,
            )
            .expect("seal");
            let opened = key
                .open_in_place(Nonce::assume_unique_for_key([1; 12]), Aad::from(b"ad"), buf)
                .expect("open")
                .len();
            black_box(opened);
        }
    });

    // Gridhub's vault: fresh DEK and random nonces from the OS, associated data binding record,
    // field and key version, DEK wrapped under the KEK; then unwrap and open every field.
    let ids: Vec<String> = (0..1024)
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    let mut i = 0usize;
    let ours = measure(|| {
        i = (i + 1) % ids.len();
        let id = &ids[i];
        let (wrapped, sealed) = vault.seal_new_record("person", id, &refs).expect("seal");
        let key = vault.record_key("person", id, &wrapped).expect("unwrap");
        for f in &sealed {
            black_box(key.open_field(f).expect("open"));
        }
    });

    // The whole record path of the API: JSON encoding, blind index, sealing; then opening,
    // decoding and re-validating every field.
    let full = measure(|| {
        let draft = RecordDraft {
            category: person,
            grid: policy::GridCode::parse("330110.001.002.003.004").expect("grid"),
            purpose: "population-registration".to_owned(),
            legal_basis: None,
            retention_until: None,
            collector: "bench".to_owned(),
            values: values.clone(),
        };
        let new = records::seal(&vault, draft).expect("seal");
        let stored = gridhub::storage::StoredRecord {
            id: new.id,
            category: new.category,
            grid: new.grid,
            version: 1,
            purpose: new.purpose,
            legal_basis: None,
            collector: new.collector,
            plain_fields: new.plain_fields,
            wrapped: new.wrapped,
            sealed: new.sealed,
            created_at: 0,
            updated_at: 0,
            retention_until: None,
        };
        black_box(records::open_all(&vault, person, &stored).expect("open"));
    });

    if std::env::var_os("VAULT_PROBE").is_some() {
        let (wrapped, sealed) = vault
            .seal_new_record("person", "0193f1d2-0000-7000-8000-000000000001", &refs)
            .expect("seal");
        let seal_only = measure(|| {
            black_box(
                vault
                    .seal_new_record("person", "0193f1d2-0000-7000-8000-000000000001", &refs)
                    .expect("seal"),
            );
        });
        let unwrap_only = measure(|| {
            black_box(
                vault
                    .record_key("person", "0193f1d2-0000-7000-8000-000000000001", &wrapped)
                    .expect("unwrap"),
            );
        });
        let key = vault
            .record_key("person", "0193f1d2-0000-7000-8000-000000000001", &wrapped)
            .expect("unwrap");
        let open_only = measure(|| {
            for f in &sealed {
                black_box(key.open_field(f).expect("open"));
            }
        });
        println!(
            "probe: seal {:.2} µs, unwrap {:.2} µs, open all {:.2} µs",
            1e6 / seal_only,
            1e6 / unwrap_only,
            1e6 / open_only
        );
    }
    let ops = 2 * sizes.len();
    println!(
        "person record: {} encrypted fields, {bytes} plaintext bytes; {ops} AES-GCM operations per seal+open",
        plain.len()
    );
    println!(
        "{:<44} {:>12} {:>10} {:>9}",
        "", "records/s", "µs/record", "% ceiling"
    );
    for (label, rate) in [
        ("ceiling: ring AES-256-GCM, same ops & sizes", ceiling),
        ("vault: seal_new_record + record_key + open", ours),
        ("full path: records::seal + records::open_all", full),
    ] {
        println!(
            "{label:<44} {rate:>12.0} {:>10.2} {:>8.1}%",
            1e6 / rate,
            100.0 * rate / ceiling
        );
    }
}

#[allow(dead_code)]
fn probe() {
    let rng = ring::rand::SystemRandom::new();
    let key_sched = measure(|| {
        black_box(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, black_box(&[7u8; 32])).expect("key"),
        ));
    });
    let rand = measure(|| {
        let mut b = [0u8; 140];
        ring::rand::SecureRandom::fill(&rng, &mut b).expect("rand");
        black_box(b);
    });
    println!(
        "probe: key schedule {:.2} µs, getrandom(140) {:.2} µs",
        1e6 / key_sched,
        1e6 / rand
    );
}
