//! `GET /metrics` (issue 22): the Prometheus text a scraper gets, read by a real parser of the
//! format (`prometheus-parse`), counts what the hub did — requests by route and status, what the
//! ledger committed, the records and fields disclosed — and is refused (and audited) without
//! the configured token.

use gridhub_tests::{
    Backend, SpawnOptions, TestApp, WORKER_GRID, error_code, id_number, on_both_backends, person,
    spawn_app_with,
};
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

on_both_backends!(metrics_count_what_the_hub_did_and_need_the_token);

const TOKEN: &str = "metrics-token-for-the-scraper-0123456789";

async fn scrape(app: &TestApp) -> Scrape {
    let resp = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The one sample of `metric` whose labels include `labels`.
fn sample<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> &'a Sample {
    let found: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one sample of {metric} with {labels:?}; have: {:?}",
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == metric)
            .map(|s| &s.labels)
            .collect::<Vec<_>>()
    );
    found[0]
}

fn number(sample: &Sample) -> f64 {
    match &sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{} is not a number: {other:?}", sample.metric),
    }
}

async fn metrics_count_what_the_hub_did_and_need_the_token(backend: Backend) {
    let app = spawn_app_with(
        backend,
        SpawnOptions {
            extra_config: Some(format!("metrics_token = \"{TOKEN}\"")),
            ..SpawnOptions::default()
        },
    )
    .await;

    // Without the token, or with another: 401, and each refusal is in the ledger.
    let denied_before = app
        .raw_count("SELECT COUNT(*) AS n FROM ledger_entries WHERE action = 'metrics.read'")
        .await;
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    let (status, code, _) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (401, "unauthenticated"));
    let resp = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("metrics-token-for-the-scraper-0123456788")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let denied_after = app
        .raw_count("SELECT COUNT(*) AS n FROM ledger_entries WHERE action = 'metrics.read'")
        .await;
    assert!(
        denied_after > denied_before,
        "the refused scrape is audited ({denied_before} → {denied_after})"
    );

    // One record written, three in a batch, one pull by a department.
    let write = app
        .post(
            &app.worker_token,
            "/v1/records",
            &person(
                WORKER_GRID,
                "王芳",
                &id_number("33010219700101551"),
                "13712345678",
            ),
        )
        .await;
    assert_eq!(write.status(), 201);
    let batch: Vec<_> = (0..3)
        .map(|i| {
            person(
                WORKER_GRID,
                "赵强",
                &id_number(&format!("3301021970010156{i}")),
                "13712345678",
            )
        })
        .collect();
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records/batch",
            &json!({ "records": batch }),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let before_pull = scrape(&app).await;
    let dept = crate::faults::puller(&app).await;
    let token = app.client_token(&dept).await;
    let page: serde_json::Value = dept
        .http
        .get(app.url("/v1/data/person?purpose=elderly-care&limit=100"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pulled = page["records"].as_array().unwrap();
    assert_eq!(pulled.len(), 4, "{page}");
    let fields_pulled: usize = pulled
        .iter()
        .map(|r| r["fields"].as_object().unwrap().len())
        .sum();

    let size_before = app.raw_count("SELECT size AS n FROM ledger_head").await;
    let after = scrape(&app).await;
    let size_after = app.raw_count("SELECT size AS n FROM ledger_head").await;

    // Requests by route template (never a path with an id), method and status.
    let created = sample(
        &after,
        "gridhub_http_requests_total",
        &[
            ("route", "/v1/records"),
            ("method", "POST"),
            ("status", "201"),
        ],
    );
    assert_eq!(number(created), 1.0);
    let unauthenticated = sample(
        &after,
        "gridhub_http_requests_total",
        &[("route", "/metrics"), ("method", "GET"), ("status", "401")],
    );
    assert_eq!(number(unauthenticated), 2.0);
    assert!(
        after
            .samples
            .iter()
            .filter_map(|s| s.labels.get("route"))
            .all(|route| route == "-"
                || route
                    .split('/')
                    .all(|seg| seg == "v1" || !seg.contains(|c: char| c.is_ascii_digit()))),
        "route labels are templates, never a path with a grid code or an id in it"
    );
    let latency = sample(
        &after,
        "gridhub_http_request_duration_seconds",
        &[("route", "/v1/records/batch"), ("method", "POST")],
    );
    let Value::Histogram(buckets) = &latency.value else {
        panic!("a histogram: {latency:?}")
    };
    assert_eq!(
        buckets.last().map(|b| (b.less_than, b.count)),
        Some((f64::INFINITY, 1.0)),
        "one batch request observed"
    );

    // What the ledger committed: this page's records and fields, exactly.
    let disclosed = |s: &Scrape, what: &str| number(sample(s, what, &[]));
    assert_eq!(
        disclosed(&after, "gridhub_disclosed_records_total")
            - disclosed(&before_pull, "gridhub_disclosed_records_total"),
        4.0
    );
    assert_eq!(
        disclosed(&after, "gridhub_disclosed_fields_total")
            - disclosed(&before_pull, "gridhub_disclosed_fields_total"),
        fields_pulled as f64
    );
    let allowed = sample(
        &after,
        "gridhub_ledger_appended_entries_total",
        &[("stream", "disclosure"), ("decision", "allow")],
    );
    assert!(number(allowed) >= 1.0);
    let committed = number(sample(&after, "gridhub_ledger_committed_size", &[]));
    assert!(
        (size_before as f64..=size_after as f64).contains(&committed),
        "{committed} within {size_before}..={size_after}"
    );
    assert_eq!(number(sample(&after, "gridhub_ledger_writable", &[])), 1.0);
    let commits = number(sample(&after, "gridhub_ledger_commits_total", &[]));
    let entries = number(sample(
        &after,
        "gridhub_ledger_committed_entries_total",
        &[],
    ));
    assert!(commits >= 1.0 && entries >= commits);
    let pool = match backend {
        Backend::Sqlite => "write",
        Backend::Postgres => "postgres",
    };
    assert!(
        number(sample(
            &after,
            "gridhub_db_pool_connections",
            &[("pool", pool), ("state", "max")]
        )) >= 1.0
    );
    assert_eq!(
        number(sample(
            &after,
            "gridhub_outbox_backlog",
            &[("sink", "webhook")]
        )),
        0.0,
        "no webhook endpoint, no backlog"
    );
    drop(app.stop().await);
}
