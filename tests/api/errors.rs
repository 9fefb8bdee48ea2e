//! Bad input: the documented status and code, nothing written, the value never echoed.

use gridhub_tests::{
    Backend, WORKER_GRID, error_code, id_number, on_both_backends, person, spawn_app,
};
use serde_json::json;

on_both_backends!(bad_input_is_refused_cleanly);

async fn bad_input_is_refused_cleanly(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret_phone = "13812345678";
    let secret_id = "330102199001011235"; // bad check character
    let good = person(
        WORKER_GRID,
        "张三",
        &id_number("33010219900101123"),
        secret_phone,
    );

    let mut cases = Vec::new();
    let mut wrong_type = good.clone();
    wrong_type["fields"]["name"] = json!(12345);
    cases.push((
        "wrong type",
        wrong_type,
        422,
        "validation_failed",
        "fields.name",
    ));
    let mut bad_checksum = good.clone();
    bad_checksum["fields"]["id_number"] = json!(secret_id);
    cases.push((
        "bad checksum",
        bad_checksum,
        422,
        "validation_failed",
        "fields.id_number",
    ));
    let mut bad_phone = good.clone();
    bad_phone["fields"]["phone"] = json!("23812345678");
    cases.push((
        "bad phone",
        bad_phone,
        422,
        "validation_failed",
        "fields.phone",
    ));
    let mut unknown_category = good.clone();
    unknown_category["category"] = json!("pets");
    cases.push((
        "unknown category",
        unknown_category,
        422,
        "validation_failed",
        "category",
    ));
    let mut unknown_field = good.clone();
    unknown_field["fields"]["shoe_size"] = json!("43");
    cases.push((
        "unknown field",
        unknown_field,
        422,
        "validation_failed",
        "fields.shoe_size",
    ));
    let mut unknown_grid = good.clone();
    unknown_grid["grid"] = json!("330110.009.009");
    cases.push((
        "unknown grid",
        unknown_grid,
        422,
        "validation_failed",
        "grid",
    ));
    let mut bad_grid = good.clone();
    bad_grid["grid"] = json!("330110..1");
    cases.push(("malformed grid", bad_grid, 422, "validation_failed", "grid"));
    let mut unknown_purpose = good.clone();
    unknown_purpose["purpose"] = json!("curiosity");
    cases.push((
        "unknown purpose",
        unknown_purpose,
        422,
        "validation_failed",
        "purpose",
    ));
    let mut bad_enum = good.clone();
    bad_enum["fields"]["residence"] = json!("nomadic-secret");
    cases.push((
        "bad enum",
        bad_enum,
        422,
        "validation_failed",
        "fields.residence",
    ));
    let mut extra_top = good.clone();
    extra_top["colour"] = json!("blue");
    cases.push((
        "unknown top-level key",
        extra_top,
        422,
        "validation_failed",
        "colour",
    ));
    let mut wrong_shape = good.clone();
    wrong_shape["fields"] = json!(["not", "an", "object", secret_phone]);
    cases.push((
        "fields not an object",
        wrong_shape,
        422,
        "validation_failed",
        "fields",
    ));

    for (what, body, status, code, field) in cases {
        let sent: Vec<String> = leaf_values(&body["fields"])
            .into_iter()
            .filter(|v| v.chars().count() >= 5)
            .collect();
        let (got_status, got_code, err) =
            error_code(app.post(&app.worker_token, "/v1/records", &body).await).await;
        assert_eq!(
            (got_status, got_code.as_str()),
            (status, code),
            "{what}: {err}"
        );
        let details = err["error"]["details"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: no details: {err}"));
        assert!(
            details.iter().any(|d| d["field"] == field),
            "{what}: {field} not named in {err}"
        );
        let text = err.to_string();
        for value in &sent {
            assert!(
                !text.contains(value.as_str()),
                "{what}: echoed a value: {text}"
            );
        }
    }

    // Malformed JSON, missing content type, oversize body.
    let resp = app
        .client
        .post(app.url("/v1/records"))
        .bearer_auth(&app.worker_token)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"category\": \"person\", \"fields\": {{\"phone\": \"{secret_phone}\""
        ))
        .send()
        .await
        .unwrap();
    let (status, code, err) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (400, "bad_request"));
    assert!(!err.to_string().contains(secret_phone));

    let resp = app
        .client
        .post(app.url("/v1/records"))
        .bearer_auth(&app.worker_token)
        .body(good.to_string())
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (415, "unsupported_media_type"));

    let mut huge = good.clone();
    huge["fields"]["worker_notes"] = json!("x".repeat(9 * 1024 * 1024));
    let resp = app
        .client
        .post(app.url("/v1/records"))
        .bearer_auth(&app.worker_token)
        .header("content-type", "application/json")
        .body(huge.to_string())
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));

    // The same oversize body streamed without a content-length is refused as well.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = huge
        .to_string()
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let resp = app
        .client
        .post(app.url("/v1/records"))
        .bearer_auth(&app.worker_token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));

    assert_eq!(
        app.raw_count("SELECT COUNT(*) AS n FROM records").await,
        0,
        "nothing written"
    );
    assert_eq!(
        app.raw_count("SELECT COUNT(*) AS n FROM blind_index").await,
        0
    );

    // Routing errors keep the JSON shape.
    let (status, code, _) = error_code(app.get(&app.worker_token, "/v1/nothing-here").await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let resp = app
        .client
        .put(app.url("/v1/records"))
        .bearer_auth(&app.worker_token)
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
    app.stop().await;
}

/// Every string or number inside `v`, as text.
fn leaf_values(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Number(n) => vec![n.to_string()],
        serde_json::Value::Array(a) => a.iter().flat_map(leaf_values).collect(),
        serde_json::Value::Object(o) => o.values().flat_map(leaf_values).collect(),
        _ => Vec::new(),
    }
}

on_both_backends!(malformed_query_strings_answer_the_json_error_body);

/// A query string that does not parse answers the JSON error body (400 `bad_request`, with the
/// request id), naming the parameter and never quoting its value, on every route family that
/// takes one: proofs, audit entries, anomalies, grants and data.
async fn malformed_query_strings_answer_the_json_error_body(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &[WORKER_GRID]).await;
    let client = app.register_client("civil-sys", "civil-affairs").await;
    let client_token = app.client_token(&client).await;
    let secret = "13812345678";
    let user_cases = [
        (
            format!("/v1/audit/proofs/inclusion?index={secret}x&size=1"),
            "index",
        ),
        (
            format!("/v1/audit/proofs/consistency?from=1&to={secret}x"),
            "to",
        ),
        (format!("/v1/audit/entries?start={secret}x"), "start"),
        (format!("/v1/audit/anomalies?{secret}=1"), secret),
        (format!("/v1/grants?status=1&{secret}=2"), secret),
    ];
    for (path, _) in &user_cases {
        let resp = app.get(&app.dpo_token, path).await;
        check_json_error(resp, path, secret).await;
    }
    let path = format!("/v1/data/person?purpose=elderly-care&limit={secret}x");
    let resp = client
        .http
        .get(app.url(&path))
        .bearer_auth(&client_token)
        .send()
        .await
        .unwrap();
    check_json_error(resp, &path, secret).await;
}

async fn check_json_error(resp: reqwest::Response, path: &str, secret: &str) {
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (status, code, body) = error_code(resp).await;
    assert_eq!(
        (status, code.as_str()),
        (400, "bad_request"),
        "{path}: {body}"
    );
    assert!(
        content_type.starts_with("application/json"),
        "{path}: {content_type}"
    );
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{path}: {body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains(&format!("{secret}x")),
        "{path}: the value is quoted: {message}"
    );
}

on_both_backends!(every_answer_carries_the_security_headers);

/// Success, refusal and unknown route alike carry HSTS, `nosniff`, `no-referrer` and
/// `no-store`.
async fn every_answer_carries_the_security_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    let answers = [
        app.get(&app.dpo_token, "/v1/catalog").await,
        app.get("not-a-token", "/v1/catalog").await,
        app.get(&app.dpo_token, "/v1/no-such-route").await,
        app.client.get(app.url("/healthz")).send().await.unwrap(),
    ];
    for resp in answers {
        let status = resp.status();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            header("strict-transport-security"),
            "max-age=31536000",
            "{status}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{status}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{status}");
        assert_eq!(header("cache-control"), "no-store", "{status}");
    }
}
