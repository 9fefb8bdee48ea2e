//! Field encryption at rest: ciphertext is bound to its record and field, and an erased record
//! cannot be recovered.

use gridhub_tests::{
    Backend, TestApp, WORKER_GRID, error_code, id_number, on_both_backends, person, spawn_app,
};
use serde_json::Value;

on_both_backends!(
    ciphertext_swapped_between_records_fails_closed,
    ciphertext_swapped_between_fields_fails_closed,
    wrapped_key_swapped_between_records_fails_closed,
    erased_record_leaves_no_key_or_ciphertext,
);

async fn create(app: &TestApp, name: &str, first17: &str, phone: &str) -> String {
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records",
            &person(WORKER_GRID, name, &id_number(first17), phone),
        )
        .await;
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn assert_integrity_failure(app: &TestApp, id: &str, must_not_contain: &[&str]) {
    let (status, code, body) = error_code(
        app.get(&app.worker_token, &format!("/v1/records/{id}"))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (500, "integrity_failed"), "{body}");
    for s in must_not_contain {
        assert!(!body.to_string().contains(s), "leaked {s}");
    }
}

async fn ciphertext_swapped_between_records_fails_closed(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = create(&app, "张三", "33010219900101123", "13811110000").await;
    let b = create(&app, "李四", "33010219910202234", "13922220000").await;
    let name_of_b = sealed_field(&app.raw_sealed_fields(&b).await, "name");
    let mut fields_of_a = app.raw_sealed_fields(&a).await;
    for f in &mut fields_of_a {
        if f.field == "name" {
            f.sealed = name_of_b.sealed.clone();
        }
    }
    app.raw_set_sealed_fields(&a, &fields_of_a).await;
    assert_integrity_failure(&app, &a, &["李四", "张三"]).await;
    // The untouched record still reads.
    assert_eq!(
        app.get(&app.worker_token, &format!("/v1/records/{b}"))
            .await
            .status(),
        200
    );
    app.stop().await;
}

async fn ciphertext_swapped_between_fields_fails_closed(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = create(&app, "王五", "33010219800303345", "13733330000").await;
    let mut fields = app.raw_sealed_fields(&a).await;
    let phone = sealed_field(&fields, "phone");
    for f in &mut fields {
        if f.field == "address" {
            f.sealed = phone.sealed.clone();
        }
    }
    app.raw_set_sealed_fields(&a, &fields).await;
    assert_integrity_failure(&app, &a, &["13733330000"]).await;
    app.stop().await;
}

async fn wrapped_key_swapped_between_records_fails_closed(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = create(&app, "赵六", "33010219700404456", "13644440000").await;
    let b = create(&app, "孙七", "33010219710505567", "13555550000").await;
    app.raw_execute(format!(
        "UPDATE records SET wrapped_dek = (SELECT wrapped_dek FROM records WHERE id = '{b}') WHERE id = '{a}'"
    ))
    .await;
    assert_integrity_failure(&app, &a, &["孙七", "13555550000"]).await;
    // Relabelling a field with another key version is caught too.
    let mut fields = app.raw_sealed_fields(&b).await;
    for f in &mut fields {
        if f.field == "name" {
            f.kek_version = 2;
        }
    }
    app.raw_set_sealed_fields(&b, &fields).await;
    let (status, _, _) = error_code(
        app.get(&app.worker_token, &format!("/v1/records/{b}"))
            .await,
    )
    .await;
    assert_eq!(status, 500);
    app.stop().await;
}

/// The stored field `name` of a record (it must be there).
fn sealed_field(fields: &[gridhub::vault::SealedField], name: &str) -> gridhub::vault::SealedField {
    fields
        .iter()
        .find(|f| f.field == name)
        .cloned()
        .unwrap_or_else(|| panic!("no stored field {name}"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

async fn erased_record_leaves_no_key_or_ciphertext(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = create(&app, "周八", "33010219650606678", "13466660000").await;
    let keep = create(&app, "吴九", "33010219660707789", "13377770000").await;
    let wrapped = app
        .raw_bytes(format!("SELECT wrapped_dek FROM records WHERE id = '{a}'"))
        .await;
    let sealed: Vec<Vec<u8>> = app
        .raw_sealed_fields(&a)
        .await
        .into_iter()
        .map(|f| f.sealed)
        .collect();
    assert_eq!(wrapped.len(), 1);
    assert!(sealed.len() >= 8);

    assert_eq!(
        app.delete(&app.admin_token, &format!("/v1/records/{a}"))
            .await
            .status(),
        204
    );

    assert_eq!(
        app.raw_count("SELECT COUNT(*) AS n FROM records WHERE wrapped_dek IS NOT NULL")
            .await,
        1
    );
    assert!(
        app.raw_sealed_fields(&a).await.is_empty(),
        "sealed fields deleted"
    );
    let tokens = app
        .raw_bytes(format!(
            "SELECT token FROM blind_index WHERE record_id = '{a}'"
        ))
        .await;
    assert!(tokens.is_empty(), "blind-index tokens deleted");
    assert_eq!(
        app.get(&app.worker_token, &format!("/v1/records/{keep}"))
            .await
            .status(),
        200
    );

    let dir = app.stop().await;
    if backend == Backend::Sqlite {
        // With the hub stopped, not one byte of the old wrapped key or of any ciphertext is left
        // in the database files (secure_delete + WAL checkpoint), so holding the keyring does
        // not help: there is nothing left to unwrap.
        for suffix in ["", "-wal", "-shm"] {
            let path = dir.path().join(format!("gridhub.db{suffix}"));
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            assert!(
                !contains(&bytes, &wrapped[0]),
                "wrapped DEK survives in {}",
                path.display()
            );
            for s in &sealed {
                assert!(
                    !contains(&bytes, s),
                    "ciphertext survives in {}",
                    path.display()
                );
            }
        }
    }
}
