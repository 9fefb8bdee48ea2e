//! Records API behaviour, the same on both backends.

use std::collections::BTreeSet;
use std::path::Path;

use gridhub_tests::process::{signal, start_server, wait_bounded};
use gridhub_tests::{
    Backend, OTHER_GRID, WORKER_GRID, WORKER_PASSWORD, client_for, error_code, id_number, login_at,
    on_both_backends, person, spawn_app,
};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");

on_both_backends!(
    created_record_reads_back_in_clear,
    batch_is_all_or_nothing,
    patch_changes_fields_and_version,
    patch_that_breaks_consistency_is_refused,
    stale_expected_version_is_a_conflict,
    erased_record_is_gone_and_only_admin_or_dpo_may_erase,
    worker_outside_own_grids_is_forbidden_and_nothing_written,
    a_retried_create_is_one_write,
    a_retried_batch_is_one_write,
    a_claim_whose_request_died_does_not_block_its_key,
    sigkill_during_keyed_writes_then_retries_leave_each_key_written_once,
);

async fn records_count(app: &gridhub_tests::TestApp) -> i64 {
    app.raw_count("SELECT COUNT(*) AS n FROM records").await
}

async fn created_record_reads_back_in_clear(backend: Backend) {
    let app = spawn_app(backend).await;
    let idn = id_number("33010219900101123");
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records",
            &person(WORKER_GRID, "张三丰", &idn, "13812345678"),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["version"], 1);
    let id = created["id"].as_str().unwrap();
    let resp = app
        .get(&app.worker_token, &format!("/v1/records/{id}"))
        .await;
    assert_eq!(resp.status(), 200);
    let record: Value = resp.json().await.unwrap();
    assert_eq!(record["fields"]["name"], "张三丰");
    assert_eq!(record["fields"]["id_number"], idn.as_str());
    assert_eq!(record["fields"]["phone"], "13812345678");
    assert_eq!(record["fields"]["tags"], json!(["elderly_alone"]));
    assert_eq!(record["grid"], WORKER_GRID);
    // The admin reads it too; a DPO is not a grid-side reader.
    assert_eq!(
        app.get(&app.admin_token, &format!("/v1/records/{id}"))
            .await
            .status(),
        200
    );
    let (status, code, _) =
        error_code(app.get(&app.dpo_token, &format!("/v1/records/{id}")).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    app.stop().await;
}

async fn batch_is_all_or_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let good1 = person(
        WORKER_GRID,
        "李四",
        &id_number("33010219850203456"),
        "13900001111",
    );
    let mut bad = person(
        WORKER_GRID,
        "王五",
        &id_number("33010219850203457"),
        "13900002222",
    );
    bad["fields"]["id_number"] = json!("330102198502034571"); // wrong check character
    let good2 = person(
        WORKER_GRID,
        "赵六",
        &id_number("33010219700304567"),
        "13900003333",
    );
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records/batch",
            &json!({"records": [good1, bad, good2]}),
        )
        .await;
    let (status, code, body) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (422, "validation_failed"));
    let details = body["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{details:?}");
    assert_eq!(details[0]["field"], "records[1].fields.id_number");
    assert!(
        !body.to_string().contains("330102198502034571"),
        "value echoed"
    );
    assert_eq!(records_count(&app).await, 0, "nothing written");

    let ok = json!({"records": [
        person(WORKER_GRID, "李四", &id_number("33010219850203456"), "13900001111"),
        person(WORKER_GRID, "赵六", &id_number("33010219700304567"), "13900003333"),
    ]});
    let resp = app.post(&app.worker_token, "/v1/records/batch", &ok).await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["records"].as_array().unwrap().len(), 2);
    assert_eq!(records_count(&app).await, 2);
    app.stop().await;
}

async fn create(app: &gridhub_tests::TestApp, name: &str, first17: &str, phone: &str) -> String {
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records",
            &person(WORKER_GRID, name, &id_number(first17), phone),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

async fn patch_changes_fields_and_version(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = create(&app, "孙七", "33010219600505678", "13700001111").await;
    let resp = app
        .patch(
            &app.worker_token,
            &format!("/v1/records/{id}"),
            &json!({"fields": {"phone": "13700009999", "tags": null}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["version"], 2);
    let record: Value = app
        .get(&app.worker_token, &format!("/v1/records/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(record["fields"]["phone"], "13700009999");
    assert!(
        record["fields"].get("tags").is_none(),
        "removed field is gone"
    );
    assert_eq!(record["fields"]["name"], "孙七", "untouched field kept");
    assert_eq!(record["version"], 2);
    app.stop().await;
}

async fn patch_that_breaks_consistency_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = create(&app, "周八", "33010219900101123", "13600001111").await;
    // The identity number says 1990-01-01; a different birth date contradicts it.
    let resp = app
        .patch(
            &app.worker_token,
            &format!("/v1/records/{id}"),
            &json!({"fields": {"birth_date": "1991-02-03"}}),
        )
        .await;
    let (status, code, body) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (422, "validation_failed"));
    assert!(body.to_string().contains("birth_date"));
    // Removing a required field is refused too.
    let resp = app
        .patch(
            &app.worker_token,
            &format!("/v1/records/{id}"),
            &json!({"fields": {"name": null}}),
        )
        .await;
    assert_eq!(resp.status(), 422);
    let record: Value = app
        .get(&app.worker_token, &format!("/v1/records/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(record["version"], 1, "nothing changed");
    assert_eq!(record["fields"]["birth_date"], "1990-01-01");
    app.stop().await;
}

async fn stale_expected_version_is_a_conflict(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = create(&app, "吴九", "33010219800808888", "13500001111").await;
    let path = format!("/v1/records/{id}");
    let ok = app
        .patch(
            &app.worker_token,
            &path,
            &json!({"fields": {"phone": "13500002222"}, "expected_version": 1}),
        )
        .await;
    assert_eq!(ok.status(), 200);
    let stale = app
        .patch(
            &app.worker_token,
            &path,
            &json!({"fields": {"phone": "13500003333"}, "expected_version": 1}),
        )
        .await;
    let (status, code, _) = error_code(stale).await;
    assert_eq!((status, code.as_str()), (409, "conflict"));
    let record: Value = app
        .get(&app.worker_token, &path)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(record["fields"]["phone"], "13500002222");
    app.stop().await;
}

async fn erased_record_is_gone_and_only_admin_or_dpo_may_erase(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = create(&app, "郑十", "33010219750707777", "13400001111").await;
    let path = format!("/v1/records/{id}");
    let (status, code, _) = error_code(app.delete(&app.worker_token, &path).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    assert_eq!(
        app.get(&app.worker_token, &path).await.status(),
        200,
        "still there after a refused erase"
    );
    assert_eq!(app.delete(&app.dpo_token, &path).await.status(), 204);
    let (status, code, _) = error_code(app.get(&app.worker_token, &path).await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    assert_eq!(
        app.delete(&app.admin_token, &path).await.status(),
        404,
        "second erase finds nothing"
    );
    let patch = app
        .patch(
            &app.worker_token,
            &path,
            &json!({"fields": {"phone": "13400002222"}}),
        )
        .await;
    assert_eq!(patch.status(), 404);
    app.stop().await;
}

async fn worker_outside_own_grids_is_forbidden_and_nothing_written(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = person(
        OTHER_GRID,
        "钱一",
        &id_number("33010219880808123"),
        "13300001111",
    );
    let (status, code, _) =
        error_code(app.post(&app.worker_token, "/v1/records", &body).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    let batch = json!({"records": [
        person(WORKER_GRID, "钱二", &id_number("33010219880808124"), "13300002222"),
        person(OTHER_GRID, "钱三", &id_number("33010219880808125"), "13300003333"),
    ]});
    let (status, _, _) = error_code(
        app.post(&app.worker_token, "/v1/records/batch", &batch)
            .await,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(records_count(&app).await, 0);
    // The admin may write anywhere; the worker cannot read what lies outside its grids.
    let resp = app.post(&app.admin_token, "/v1/records", &body).await;
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, code, _) = error_code(
        app.get(&app.worker_token, &format!("/v1/records/{id}"))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    app.stop().await;
}

// Idempotency keys of record writes (issue 16, item 4).

async fn ledger_size(app: &gridhub_tests::TestApp) -> i64 {
    app.raw_count("SELECT COUNT(*) AS n FROM ledger_entries")
        .await
}

async fn post_with_key(
    app: &gridhub_tests::TestApp,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn created_with_key(
    app: &gridhub_tests::TestApp,
    path: &str,
    key: &str,
    body: &Value,
) -> Value {
    let resp = post_with_key(app, &app.worker_token, path, key, body).await;
    assert_eq!(resp.status(), 201, "{key}");
    resp.json().await.unwrap()
}

async fn a_retried_create_is_one_write(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = person(
        WORKER_GRID,
        "冯一",
        &id_number("33010219910101111"),
        "13811110000",
    );
    let first = created_with_key(&app, "/v1/records", "create-1", &body).await;
    let (records, entries) = (records_count(&app).await, ledger_size(&app).await);
    assert_eq!(records, 1);

    // The same key and body: the first answer (same id, same receipt), nothing written or audited.
    let again = created_with_key(&app, "/v1/records", "create-1", &body).await;
    assert_eq!(again, first, "same id, same receipt");
    // The same body encoded otherwise (keys in reverse order, other spacing) is the same request.
    let fields = body["fields"].as_object().unwrap();
    let reordered_fields: Vec<String> = fields
        .iter()
        .rev()
        .map(|(k, v)| format!("{} : {v}", Value::String(k.clone())))
        .collect();
    let reordered = format!(
        r#"{{ "purpose": {}, "fields": {{ {} }}, "grid": {}, "category": {} }}"#,
        body["purpose"],
        reordered_fields.join(" , "),
        body["grid"],
        body["category"],
    );
    let resp = app
        .client
        .post(app.url("/v1/records"))
        .bearer_auth(&app.worker_token)
        .header("idempotency-key", "create-1")
        .header("content-type", "application/json")
        .body(reordered)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.json::<Value>().await.unwrap(), first);
    assert_eq!(records_count(&app).await, records, "no second record");
    assert_eq!(ledger_size(&app).await, entries, "no second ledger entry");
    let receipt_index = first["receipt"]["index"].as_i64().unwrap();
    assert!(receipt_index < entries, "the receipt names a stored entry");

    // The same key with another body is refused, as on pulls, and writes nothing.
    let mut other = body.clone();
    other["fields"]["phone"] = json!("13811119999");
    let (status, code, err) =
        error_code(post_with_key(&app, &app.worker_token, "/v1/records", "create-1", &other).await)
            .await;
    assert_eq!((status, code.as_str()), (422, "validation_failed"));
    assert_eq!(err["error"]["details"][0]["field"], "idempotency-key");
    // So is the same key on the batch route with the same record.
    let batch = json!({"records": [body.clone()]});
    let (status, _, _) = error_code(
        post_with_key(
            &app,
            &app.worker_token,
            "/v1/records/batch",
            "create-1",
            &batch,
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    // Malformed keys are refused before anything happens (pulls answer the same).
    let long = "k".repeat(65);
    for bad in ["not a key!", long.as_str(), "", "ключ"] {
        // Raw bytes: a non-ASCII value is not a `&str` header for reqwest.
        let value = reqwest::header::HeaderValue::from_bytes(bad.as_bytes()).unwrap();
        let resp = app
            .client
            .post(app.url("/v1/records"))
            .bearer_auth(&app.worker_token)
            .header("idempotency-key", value)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, code, err) = error_code(resp).await;
        assert_eq!((status, code.as_str()), (422, "validation_failed"), "{bad}");
        assert_eq!(err["error"]["details"][0]["field"], "idempotency-key");
    }
    assert_eq!(records_count(&app).await, records);
    assert_eq!(ledger_size(&app).await, entries);

    // Keys belong to their principal: the admin's `create-1` is another key.
    let resp = post_with_key(&app, &app.admin_token, "/v1/records", "create-1", &body).await;
    assert_eq!(resp.status(), 201);
    let admins: Value = resp.json().await.unwrap();
    assert_ne!(admins["id"], first["id"]);
    assert_eq!(records_count(&app).await, 2);

    // Without a key, two identical writes are two records.
    for _ in 0..2 {
        let resp = app.post(&app.worker_token, "/v1/records", &body).await;
        assert_eq!(resp.status(), 201);
    }
    assert_eq!(records_count(&app).await, 4);

    // A write that failed leaves its key free: the corrected request under it is written.
    let mut invalid = body.clone();
    invalid["fields"]["id_number"] = json!("330102199101011110"); // wrong check character
    let (status, _, _) = error_code(
        post_with_key(&app, &app.worker_token, "/v1/records", "create-2", &invalid).await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(records_count(&app).await, 4);
    let fixed = created_with_key(&app, "/v1/records", "create-2", &body).await;
    assert_eq!(records_count(&app).await, 5);
    assert_eq!(
        created_with_key(&app, "/v1/records", "create-2", &body).await,
        fixed
    );

    // The replayed id is a record that reads back; the key survives a restart.
    let id = first["id"].as_str().unwrap().to_owned();
    let app = app.restart().await;
    assert_eq!(
        created_with_key(&app, "/v1/records", "create-1", &body).await,
        first
    );
    assert_eq!(
        app.get(&app.worker_token, &format!("/v1/records/{id}"))
            .await
            .status(),
        200
    );
    assert_eq!(records_count(&app).await, 5);
    app.stop().await;
}

async fn a_retried_batch_is_one_write(backend: Backend) {
    let app = spawn_app(backend).await;
    // Both write routes document the header.
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in ["/v1/records", "/v1/records/batch"] {
        let params = doc["paths"][path]["post"]["parameters"].as_array().unwrap();
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "idempotency-key" && p["in"] == "header"),
            "{path}: {params:?}"
        );
    }
    let batch = json!({"records": [
        person(WORKER_GRID, "陈二", &id_number("33010219920202222"), "13822220000"),
        person(WORKER_GRID, "褚三", &id_number("33010219930303333"), "13833330000"),
        person(WORKER_GRID, "卫四", &id_number("33010219940404444"), "13844440000"),
    ]});
    let first = created_with_key(&app, "/v1/records/batch", "batch-1", &batch).await;
    assert_eq!(first["records"].as_array().unwrap().len(), 3);
    let (records, entries) = (records_count(&app).await, ledger_size(&app).await);
    assert_eq!(records, 3);
    let again = created_with_key(&app, "/v1/records/batch", "batch-1", &batch).await;
    assert_eq!(again, first, "same ids in the same order, same receipt");
    assert_eq!(records_count(&app).await, records);
    assert_eq!(ledger_size(&app).await, entries);
    // One record fewer is another request.
    let mut shorter = batch.clone();
    shorter["records"].as_array_mut().unwrap().pop();
    let (status, code, _) = error_code(
        post_with_key(
            &app,
            &app.worker_token,
            "/v1/records/batch",
            "batch-1",
            &shorter,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (422, "validation_failed"));
    // Without a key the same batch is written again.
    let resp = app
        .post(&app.worker_token, "/v1/records/batch", &batch)
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(records_count(&app).await, 6);
    app.stop().await;
}

/// What a killed request leaves behind, made by hand: a claim without an answer. Made by this
/// process (same boot id, recent), it is a request still being answered: 409. Older than the
/// request timeout, or made by another process (a killed hub), a retry takes it over and writes.
async fn a_claim_whose_request_died_does_not_block_its_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = person(
        WORKER_GRID,
        "蒋五",
        &id_number("33010219950505555"),
        "13855550000",
    );
    created_with_key(&app, "/v1/records", "seen", &body).await;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    // A pending claim for the same request as `seen` (same principal and fingerprint).
    let pending = |key: &str, boot: &str, claimed_at: i64| {
        format!(
            "INSERT INTO record_write_keys (principal, idem_key, fingerprint, attempt, boot_id, \
             claimed_at, ledger_index, record_ids, created_at) \
             SELECT principal, '{key}', fingerprint, 'a-request-that-died', {boot}, {claimed_at}, \
             NULL, NULL, {claimed_at} FROM record_write_keys WHERE idem_key = 'seen'"
        )
    };
    app.raw_execute(pending("live", "boot_id", now)).await;
    let (status, code, _) =
        error_code(post_with_key(&app, &app.worker_token, "/v1/records", "live", &body).await)
            .await;
    assert_eq!((status, code.as_str()), (409, "conflict"));
    assert_eq!(records_count(&app).await, 1, "nothing written meanwhile");
    // The same claim an hour old: its request was cancelled long ago.
    app.raw_execute(format!(
        "UPDATE record_write_keys SET claimed_at = {} WHERE idem_key = 'live'",
        now - 3_600_000
    ))
    .await;
    let taken = created_with_key(&app, "/v1/records", "live", &body).await;
    assert_eq!(records_count(&app).await, 2);
    assert_eq!(
        created_with_key(&app, "/v1/records", "live", &body).await,
        taken
    );
    // A fresh claim of a killed process (another boot id) is taken over at once.
    app.raw_execute(pending("killed", "'a-killed-hub'", now))
        .await;
    let taken = created_with_key(&app, "/v1/records", "killed", &body).await;
    assert_eq!(records_count(&app).await, 3);
    assert_eq!(
        created_with_key(&app, "/v1/records", "killed", &body).await,
        taken
    );
    app.stop().await;
}

/// The ids of every record in a hub's database (read outside the hub).
async fn stored_record_ids(dir: &Path, database_url: Option<&str>) -> BTreeSet<String> {
    use sqlx::Connection;
    let query = "SELECT id FROM records";
    let ids: Vec<String> = match database_url {
        None => {
            let url = format!("sqlite://{}", dir.join("gridhub.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let ids = sqlx::query_scalar(query)
                .fetch_all(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
            ids
        }
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let ids = sqlx::query_scalar(query)
                .fetch_all(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
            ids
        }
    };
    let count = ids.len();
    let ids: BTreeSet<String> = ids.into_iter().collect();
    assert_eq!(ids.len(), count);
    ids
}

/// SIGKILLs in a row, each during its own burst (a kill lands between a write's commit and its
/// answer only now and then; the issue saw 10–13 such writes in 20 kills).
const KILLS: u32 = 3;

/// One keyed write of the burst and the answer its client saw (`None`: an error, or no answer).
struct Sent {
    key: String,
    body: Value,
    answer: Option<Value>,
}

/// The SIGKILL pattern of `audit_cli::sigkill_during_a_burst_loses_no_acknowledged_entry`, with
/// an idempotency key on every write: the real binary is killed during a burst (`KILLS` times,
/// each on a fresh start), started again, and every write is sent again with its key. A write whose client saw an error or no answer may
/// have been saved or not; its retry must return the saved answer if it was, and write it once
/// if it was not. Afterwards each key has exactly one record and the database holds exactly the
/// records the answers name; every acknowledged write replays its first answer byte for byte.
async fn sigkill_during_keyed_writes_then_retries_leave_each_key_written_once(backend: Backend) {
    let mut app = spawn_app(backend).await;
    // Keep the PostgreSQL database past `stop`: the binary runs on it next.
    let database_url = app.database_url.take();
    let dir = app.stop().await;
    let client = client_for(&dir.path().join("pki/ca.pem"));
    let mut sent = Vec::new();
    for round in 0..KILLS {
        sent.extend(burst_then_sigkill(dir.path(), &client, round).await);
    }
    let before = stored_record_ids(dir.path(), database_url.as_deref()).await;
    let acknowledged: BTreeSet<String> = sent
        .iter()
        .filter_map(|s| s.answer.as_ref())
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        acknowledged.is_subset(&before),
        "an acknowledged write was lost"
    );

    // Restart, and send every write again under its key.
    let server = start_server(BIN, dir.path());
    let base = format!("https://localhost:{}", server.port);
    let token = login_at(&client, &base, "worker", WORKER_PASSWORD).await;
    let mut answered = BTreeSet::new();
    let mut replayed_unacknowledged = BTreeSet::new();
    for s in &sent {
        let resp = client
            .post(format!("{base}/v1/records"))
            .bearer_auth(&token)
            .header("idempotency-key", &s.key)
            .json(&s.body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "retry of {}", s.key);
        let again: Value = resp.json().await.unwrap();
        let id = again["id"].as_str().unwrap().to_owned();
        match &s.answer {
            Some(first) => assert_eq!(&again, first, "{}: the first answer again", s.key),
            // Saved before the kill although its client never heard: replayed, not written again.
            None if before.contains(&id) => {
                replayed_unacknowledged.insert(id.clone());
            }
            None => {}
        }
        assert!(
            answered.insert(id),
            "{}: an id answered for two keys",
            s.key
        );
    }
    // Every record saved before the kill belongs to a key whose retry answered it.
    let saved_unacknowledged: BTreeSet<String> =
        before.difference(&acknowledged).cloned().collect();
    assert_eq!(
        saved_unacknowledged, replayed_unacknowledged,
        "records saved without an acknowledgement are exactly those their retries replayed"
    );
    // One record per key, and no other record.
    assert_eq!(answered.len(), sent.len());
    let after = stored_record_ids(dir.path(), database_url.as_deref()).await;
    assert_eq!(after, answered, "each key's record exists exactly once");
    eprintln!(
        "{} keyed writes, {} acknowledged before the kill, {} saved without an answer \
         (replayed on retry), {} written on retry",
        sent.len(),
        acknowledged.len(),
        saved_unacknowledged.len(),
        sent.len() - before.len()
    );
    signal(&server.child, "TERM");
    assert!(wait_bounded(server.child).success());
    if let Some(url) = database_url {
        drop_pg_database(&url).await;
    }
}

async fn drop_pg_database(url: &str) {
    use sqlx::Connection;
    let (_, name) = url.rsplit_once('/').unwrap();
    let mut conn = sqlx::PgConnection::connect(&gridhub_tests::pg_admin_url())
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

/// Start the binary on `dir`, write from 8 clients with a key per write, and SIGKILL it once
/// 100 writes were acknowledged, while the others are in flight. Each client stops at its
/// first write that got no 201.
async fn burst_then_sigkill(dir: &Path, client: &reqwest::Client, round: u32) -> Vec<Sent> {
    let server = start_server(BIN, dir);
    let base = format!("https://localhost:{}", server.port);
    let token = login_at(client, &base, "worker", WORKER_PASSWORD).await;
    let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut writers = Vec::new();
    for w in 0..8u32 {
        let (client, base, token, acks) =
            (client.clone(), base.clone(), token.clone(), acks.clone());
        writers.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for i in 0..9_000u32 {
                // A distinct identity number per write (birth year by round and client).
                let first17 = format!(
                    "330102{}{:02}01{:03}",
                    1950 + round * 8 + w,
                    1 + i / 1000,
                    i % 1000
                );
                let body = person(WORKER_GRID, "沈六", &id_number(&first17), "13466667777");
                let key = format!("burst-{round}-{w}-{i}");
                let answer = match client
                    .post(format!("{base}/v1/records"))
                    .bearer_auth(&token)
                    .header("idempotency-key", &key)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(resp) if resp.status() == 201 => resp.json::<Value>().await.ok(),
                    _ => None,
                };
                let failed = answer.is_none();
                sent.push(Sent { key, body, answer });
                if failed {
                    break; // the server is gone (or refused): retried after the restart
                }
                let _ = acks.send(());
            }
            sent
        }));
    }
    drop(acks);
    for _ in 0..100 {
        acked.recv().await.expect("writes are acknowledged");
    }
    signal(&server.child, "KILL");
    let _ = wait_bounded(server.child);
    let mut sent = Vec::new();
    for w in writers {
        sent.extend(w.await.unwrap());
    }
    sent
}
