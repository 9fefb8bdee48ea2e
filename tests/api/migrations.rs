//! PostgreSQL migration 0012 moves `record_fields` rows into `records.sealed_fields` in SQL:
//! a database written before it keeps every sealed field, byte for byte in the format the hub
//! reads (`storage::sealed_fields`). (The SQLite migration has a unit test in the hub.)

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
async fn postgres_sealed_fields_move_into_their_records() {
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
    check.close().await;
    store.close().await;
}
