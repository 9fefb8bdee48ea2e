//! PostgreSQL migrations 0012 and 0013 move rows in SQL: `record_fields` into
//! `records.sealed_fields` (byte for byte in the format the hub reads, `storage::sealed_fields`)
//! and `ledger_subject_runs` into `ledger_subject_sets` (one array of record ids per entry). A
//! database written before them keeps every sealed field and finds every subject's entries.
//! Migration 0014 only changes how new ledger values are compressed (lz4).
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

/// Migration 0014: ledger text and subject arrays written after it are compressed with lz4;
/// those written before keep pglz and read back unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ledger_columns_compress_with_lz4_after_0014() {
    let (url, _) = fresh_pg_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    POSTGRES_MIGRATIONS.run_to(13, &pool).await.unwrap();
    // A page-sized entry: 100 record references, ~12 kB, compressible like the real ones.
    const INSERT: &str = "WITH refs AS (SELECT string_agg('{\"fields\":{\"address\":\"generalized\",\"birth_date\":\"generalized\",\"name\":\"clear\",\"phone\":\"masked\"},\"id\":\"' \
         || md5(g::text || $1::text) || '\"}', ',' ORDER BY g) AS t, \
         array_agg(md5(g::text || $1::text) ORDER BY g) AS ids FROM generate_series(1, 100) g), \
         e AS (INSERT INTO ledger_entries (idx, time_ms, actor, action, decision, canonical, \
         leaf_hash) SELECT $1, 0, 'a', 'data.pull', 'allow', '{\"records\":[' || t || ']}', \
         '\\x00' FROM refs) \
         INSERT INTO ledger_subject_sets (idx, record_ids) SELECT $1, ids FROM refs";
    let insert = |idx: i64| sqlx::query(INSERT).bind(idx);
    insert(0).execute(&pool).await.unwrap();
    let before: String = sqlx::query_scalar("SELECT canonical FROM ledger_entries WHERE idx = 0")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(before.len() > 10_000, "a page-sized entry");
    POSTGRES_MIGRATIONS.run(&pool).await.unwrap();
    insert(1).execute(&pool).await.unwrap();
    let methods: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT e.idx, pg_column_compression(e.canonical), pg_column_compression(s.record_ids) \
         FROM ledger_entries e JOIN ledger_subject_sets s USING (idx) ORDER BY e.idx",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let lz4 = Some("lz4".to_owned());
    let (old, new) = (&methods[0], &methods[1]);
    // Before: pglz (which gives up on arrays of hex ids and stores them as they are).
    assert_eq!(old.1.as_deref(), Some("pglz"));
    assert_ne!(old.2, lz4);
    assert_eq!(new, &(1, lz4.clone(), lz4), "new rows get lz4");
    let after: String = sqlx::query_scalar("SELECT canonical FROM ledger_entries WHERE idx = 0")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(after, before);
    pool.close().await;
}
