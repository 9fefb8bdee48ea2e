//! Records API behaviour, the same on both backends.

use gridhub_tests::{
    Backend, OTHER_GRID, WORKER_GRID, error_code, id_number, on_both_backends, person, spawn_app,
};
use serde_json::{Value, json};

on_both_backends!(
    created_record_reads_back_in_clear,
    batch_is_all_or_nothing,
    patch_changes_fields_and_version,
    patch_that_breaks_consistency_is_refused,
    stale_expected_version_is_a_conflict,
    erased_record_is_gone_and_only_admin_or_dpo_may_erase,
    worker_outside_own_grids_is_forbidden_and_nothing_written,
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
