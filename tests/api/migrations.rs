//! PostgreSQL migrations 0012 and 0013 move rows in SQL: `record_fields` into
//! `records.sealed_fields` (byte for byte in the format the hub reads, `storage::sealed_fields`)
//! and `ledger_subject_runs` into `ledger_subject_sets` (one array of record ids per entry). A
//! database written before them keeps every sealed field and finds every subject's entries.
//! (The SQLite migrations have a unit test in the hub.)

use gridhub::config::DatabaseLocation;
use gridhub::storage::{POSTGRES_MIGRATIONS, Store, sealed_fields};
use gridhub::vault::SealedField;
use gridhub_tests::fresh_pg_database;

fn field(name: &str, kek_version: u32, sealed: &[u8]) -> SealedField {
    SealedField {
        field: name.to_owned(),
        kek_version,
        sealed: sealed.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sealed_fields_and_subjects_keep_their_rows() {
    let (url, _) = fresh_pg_database().await;
    let old = sqlx::PgPool::connect(&url).await.unwrap();
    POSTGRES_MIGRATIONS.run_to(11, &old).await.unwrap();
    for sql in [
        "INSERT INTO grids (code, name, kind, created_at) VALUES ('g', 'G', 'physical', 0)",
        "INSERT INTO purposes (id, description, legal_basis, created_at) \
         VALUES ('p', 'P', 'consent', 0)",
        "INSERT INTO records (id, category, grid, version, purpose, collector, plain_fields, \
         kek_version, wrapped_dek, created_at, updated_at) \
         VALUES ('r1', 'resident', 'g', 1, 'p', 'w', '{}', 1, '\\x01', 0, 0), \
         ('r2', 'resident', 'g', 1, 'p', 'w', '{}', 1, '\\x02', 0, 0)",
        // Inserted out of name order; a ciphertext of 300 bytes needs both length bytes.
        "INSERT INTO record_fields (record_id, field, kek_version, sealed) \
         VALUES ('r1', 'phone', 2, '\\x0c'), ('r1', 'birth_date', 3, decode(repeat('ab', 300), 'hex')), \
         ('r1', 'name', 1, '\\x0a0b')",
        "INSERT INTO ledger_entries (idx, time_ms, actor, action, decision, canonical, \
         leaf_hash) VALUES (0, 0, 'a', 'data.read', 'allow', '{\"index\":0}', '\\x00'), \
         (1, 0, 'a', 'data.read', 'allow', '{\"index\":1}', '\\x00'), \
         (1500, 0, 'a', 'data.read', 'allow', '{\"index\":1500}', '\\x00')",
        "INSERT INTO ledger_subject_runs (run, record_id, idx) VALUES \
         (0, 'r1', 0), (0, 'r2', 0), (0, 'r1', 1), (1, 'r2', 1500), (1, 'r1', 1500)",
    ] {
        sqlx::query(sql).execute(&old).await.unwrap();
    }
    old.close().await;

    let store = Store::open(&DatabaseLocation::Postgres(url.clone().into()))
        .await
        .unwrap();
    let expected = vec![
        field("birth_date", 3, &[0xab; 300]),
        field("name", 1, &[0x0a, 0x0b]),
        field("phone", 2, &[0x0c]),
    ];
    let check = sqlx::PgPool::connect(&url).await.unwrap();
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT sealed_fields FROM records WHERE id = 'r1'")
            .fetch_one(&check)
            .await
            .unwrap();
    assert_eq!(stored, sealed_fields::encode(&expected).unwrap());
    assert_eq!(store.record("r1").await.unwrap().unwrap().sealed, expected);
    assert!(store.record("r2").await.unwrap().unwrap().sealed.is_empty());
    let left: Option<String> = sqlx::query_scalar("SELECT to_regclass('record_fields')::text")
        .fetch_one(&check)
        .await
        .unwrap();
    assert_eq!(left, None, "record_fields is dropped");
    let found = |rows: Vec<(i64, String)>| rows.into_iter().map(|(i, _)| i).collect::<Vec<_>>();
    assert_eq!(
        found(store.ledger_entries_for_subject("r1", 10).await.unwrap()),
        [0, 1, 1500]
    );
    assert_eq!(
        found(store.ledger_entries_for_subject("r2", 10).await.unwrap()),
        [0, 1500]
    );
    assert_eq!(
        found(store.ledger_entries_for_subject("r1", 2).await.unwrap()),
        [0, 1]
    );
    assert!(
        store
            .ledger_entries_for_subject("r3", 10)
            .await
            .unwrap()
            .is_empty()
    );
    check.close().await;
    store.close().await;
}
