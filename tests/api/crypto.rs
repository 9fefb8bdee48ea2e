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
    app.raw_execute(format!(
        "UPDATE record_fields SET sealed = (SELECT sealed FROM record_fields WHERE record_id = '{b}' AND field = 'name') \
         WHERE record_id = '{a}' AND field = 'name'"
    ))
    .await;
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
    app.raw_execute(format!(
        "UPDATE record_fields SET sealed = (SELECT sealed FROM record_fields WHERE record_id = '{a}' AND field = 'phone') \
         WHERE record_id = '{a}' AND field = 'address'"
    ))
    .await;
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
    app.raw_execute(format!(
        "UPDATE record_fields SET kek_version = 2 WHERE record_id = '{b}' AND field = 'name'"
    ))
    .await;
    let (status, _, _) = error_code(
        app.get(&app.worker_token, &format!("/v1/records/{b}"))
            .await,
    )
    .await;
    assert_eq!(status, 500);
    app.stop().await;
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
    let sealed = app
        .raw_bytes(format!(
            "SELECT sealed FROM record_fields WHERE record_id = '{a}'"
        ))
        .await;
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
    let left = app
        .raw_bytes(format!(
            "SELECT sealed FROM record_fields WHERE record_id = '{a}'"
        ))
        .await;
    assert!(left.is_empty(), "sealed fields deleted");
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
