//! The console's admin pages for department systems and the catalog (issue 20, item 8) in a
//! real browser: `tests/console/systems.mjs` drives headless Chromium; this test sets the hub
//! up and checks on the hub's side that what the browser did happened, through the API and the
//! ledger: the client registered from an uploaded CSR works over mTLS with the certificate the
//! page showed, the list shows the API's thumbprints and expiries, a revocation in the console
//! locks the client out, the category created and evolved in the console is the API's catalog,
//! and refusals (roles, CSRF, changes the records cannot survive) changed nothing and are in
//! the ledger.

use gridhub_tests::mtls::{key_and_csr, mtls_client};
use gridhub_tests::{Backend, TestApp, WORKER_GRID, WORKER_PASSWORD, id_number, person, spawn_app};
use serde_json::{Value, json};

use crate::console::{Browserless, csrf_of, run_browser};
use crate::grants::entries_of;

const DEPARTMENT: &str = "civil-affairs";
const CLIENT_ID: &str = "console-sys";
const EXTERNAL_ID: &str = "external-sys";
const CATEGORY: &str = "home_care";

fn field(name: &str) -> Value {
    json!({"name": name, "type": "enum", "values": ["none", "light", "full"],
        "sensitivity": "sensitive", "share": "conditional", "encrypted": true, "indexed": true})
}

/// A self-signed client certificate (clientAuth) that ends `days` from now: what an external
/// CA would issue, as far as registration looks.
fn external_certificate(days: i64) -> String {
    use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
    let mut params = CertificateParams::new(vec!["external-sys".to_owned()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

async fn api_clients(app: &TestApp) -> Vec<Value> {
    let resp = app.get(&app.admin_token, "/v1/admin/clients").await;
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["clients"]
        .as_array()
        .unwrap()
        .clone()
}

async fn category(app: &TestApp, name: &str) -> Option<Value> {
    let catalog: Value = app
        .get(&app.admin_token, "/v1/catalog")
        .await
        .json()
        .await
        .unwrap();
    catalog["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
}

fn field_names(category: &Value) -> Vec<String> {
    category["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn me(app: &TestApp, http: &reqwest::Client) -> reqwest::Response {
    let token = app.client_token_response(http).await;
    assert_eq!(
        token.status(),
        200,
        "a token over the console's certificate"
    );
    let token = token.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    http.get(app.url("/v1/clients/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_register_and_revoke_clients_and_evolve_the_catalog_in_a_browser() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_department(DEPARTMENT, &["330110.001"]).await;
    // `person` holds a record, so removing one of its fields must be refused.
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records",
            &person(
                WORKER_GRID,
                "测试甲",
                &id_number("33010219500101001"),
                "13800000001",
            ),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let person_fields = field_names(&category(&app, "person").await.unwrap());

    // The CSR is made here; its key never leaves the test.
    let dir = tempfile::tempdir().unwrap();
    let (key, csr) = key_and_csr(CLIENT_ID);
    let csr_path = dir.path().join("console-sys.csr");
    std::fs::write(&csr_path, &csr).unwrap();
    // A client certificate of another CA, ending in 10 days (so: marked in the list).
    let external_pem = external_certificate(10);
    let external_path = dir.path().join("external.pem");
    std::fs::write(&external_path, &external_pem).unwrap();

    let env = |phase: &str| {
        vec![
            ("PHASE", phase.to_owned()),
            ("DEPARTMENT", DEPARTMENT.to_owned()),
            ("CLIENT_ID", CLIENT_ID.to_owned()),
            ("CSR_PATH", csr_path.display().to_string()),
            ("EXTERNAL_ID", EXTERNAL_ID.to_owned()),
            ("EXTERNAL_CERT_PATH", external_path.display().to_string()),
            ("CATEGORY", CATEGORY.to_owned()),
            ("FIELDS_FIRST", field("care_level").to_string()),
            ("FIELD_ADDED", field("visit_need").to_string()),
        ]
    };
    let steps = run_browser(&app, "systems.mjs", &env("register"));

    // The certificate the page issued works for mTLS, with the test's own key.
    let registered = &steps["registered"][0];
    let pem = registered["pem"].as_str().unwrap();
    let http = mtls_client(&app, pem, &key.serialize_pem());
    let resp = me(&app, &http).await;
    assert_eq!(resp.status(), 200);
    let who: Value = resp.json().await.unwrap();
    assert_eq!(who["client"], CLIENT_ID);
    assert_eq!(who["department"], DEPARTMENT);
    assert_eq!(who["thumbprint"], registered["thumbprint"]);

    // The list shows the API's thumbprints and expiries (Beijing time to the minute).
    let api = api_clients(&app).await;
    let shown = steps["list"][0]["rows"].as_array().unwrap();
    let ids = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(shown), ids(&api), "every client, by id");
    for (row, client) in shown.iter().zip(&api) {
        assert_eq!(row["thumbprint"], client["thumbprint"]);
        assert_eq!(row["not_after"], client["not_after"]);
        assert_eq!(row["status"], client["status"]);
        let not_after =
            gridhub::time::parse_rfc3339(client["not_after"].as_str().unwrap()).unwrap();
        assert_eq!(row["shown"], gridhub::time::cst_minutes(not_after).as_str());
    }
    let row = |id: &str| shown.iter().find(|r| r["id"] == id).unwrap().clone();
    let issued = row(CLIENT_ID);
    assert!(issued["days_left"].as_i64().unwrap() >= 364);
    assert_eq!(issued["expiry_mark"], Value::Null);
    let external = row(EXTERNAL_ID);
    assert_eq!(external["expiry_mark"], "soon", "{external}");
    assert!((9..=10).contains(&external["days_left"].as_i64().unwrap()));
    let by_api = |id: &str| api.iter().find(|c| c["id"] == id).unwrap().clone();
    assert_eq!(by_api(CLIENT_ID)["issuer"], "hub");
    assert_eq!(by_api(EXTERNAL_ID)["issuer"], "external");
    assert_eq!(
        by_api(EXTERNAL_ID)["certificate_pem"],
        external_pem.as_str()
    );
    assert!(
        api.iter().all(|c| c["id"] != "bad-csr-sys"),
        "a refused form registered nothing"
    );
    let creations = entries_of(&app, "client.create").await;
    for id in [CLIENT_ID, EXTERNAL_ID] {
        assert!(
            creations.iter().any(|e| e["decision"] == "allow"
                && e["actor"]["user"].is_string()
                && e["reason"].as_str().unwrap().contains(id)),
            "no client.create entry for {id}: {creations:?}"
        );
    }

    // The category the admin created and evolved is the API's catalog.
    let home_care = category(&app, CATEGORY).await.expect("the category exists");
    assert_eq!(home_care["owner"], DEPARTMENT);
    assert_eq!(field_names(&home_care), ["care_level", "visit_need"]);
    let catalog = &steps["catalog"][0];
    assert_eq!(catalog["created"]["owner"], DEPARTMENT);
    assert_eq!(catalog["created"]["fields"], json!(["care_level"]));
    assert_eq!(
        catalog["changed"]["fields"],
        json!(["care_level", "visit_need"])
    );
    let puts: Vec<String> = entries_of(&app, "catalog.put")
        .await
        .iter()
        .filter(|e| e["decision"] == "allow" && e["category"] == CATEGORY)
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        puts,
        [
            format!("category created, published by {DEPARTMENT}"),
            "category changed; fields added: visit_need".to_owned(),
        ]
    );
    // Refused changes changed nothing.
    assert_eq!(steps["refused_change"][0]["status"], 409);
    assert_eq!(
        field_names(&category(&app, "person").await.unwrap()),
        person_fields,
        "the refused change left `person` as it was"
    );
    assert!(category(&app, "broken_category").await.is_none());
    assert!(category(&app, "csrf_probe").await.is_none());
    assert!(
        api_clients(&app)
            .await
            .iter()
            .all(|c| c["id"] != "csrf-probe")
    );

    // Refusals are in the ledger: CSRF, and the worker's and DPO's attempts.
    let csrf = entries_of(&app, "console.csrf").await;
    assert!(
        csrf.len() >= 3 && csrf.iter().all(|e| e["decision"] == "deny"),
        "{csrf:?}"
    );
    let denied_by_user = |entries: &[Value]| {
        entries
            .iter()
            .any(|e| e["decision"] == "deny" && e["actor"]["user"].is_string())
    };
    assert!(denied_by_user(&entries_of(&app, "client.list").await));
    assert!(denied_by_user(&entries_of(&app, "client.create").await));
    assert!(denied_by_user(&entries_of(&app, "catalog.put").await));

    // Without the role, a form with a valid token is still refused (403) and changes nothing.
    let mut worker = Browserless::new(&app);
    worker.login("worker", WORKER_PASSWORD).await;
    let token = csrf_of(worker.get("/console/catalog").await).await;
    let fields = field("x").to_string();
    let resp = worker
        .post(
            "/console/catalog",
            &[
                ("csrf", &token),
                ("category", "worker_category"),
                ("fields", &fields),
            ],
        )
        .await;
    assert_eq!(resp.status(), 403);
    assert!(category(&app, "worker_category").await.is_none());

    // A revoke form without the token is refused; the client still works.
    let mut admin = Browserless::new(&app);
    admin.login("admin", gridhub_tests::ADMIN_PASSWORD).await;
    let resp = admin
        .post(&format!("/console/clients/{CLIENT_ID}/revoke"), &[])
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(me(&app, &http).await.status(), 200, "still active");

    // Revoked through the confirm step: the API refuses the client from then on.
    let steps = run_browser(&app, "systems.mjs", &env("revoke"));
    assert_eq!(steps["revoked"][0]["status"], "revoked");
    assert_eq!(
        app.client_token_response(&http).await.status(),
        401,
        "no token for a revoked client"
    );
    let client: Value = app
        .get(&app.admin_token, &format!("/v1/admin/clients/{CLIENT_ID}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(client["status"], "revoked");
    assert!(
        entries_of(&app, "client.revoke")
            .await
            .iter()
            .any(|e| e["decision"] == "allow"
                && e["actor"]["user"].is_string()
                && e["reason"] == format!("client {CLIENT_ID}")),
        "the revocation is in the ledger under the admin"
    );

    // Screenshots of every page in both languages.
    let screens =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screens");
    for page in [
        "clients",
        "client-new",
        "client",
        "client-revoke",
        "catalog",
        "catalog-new",
        "catalog-edit",
    ] {
        for lang in ["zh", "en"] {
            let shot = screens.join(format!("{page}.{lang}.png"));
            assert!(shot.exists(), "{}", shot.display());
        }
    }
    drop(app.stop().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_list_api_is_for_those_who_read_clients() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_department(DEPARTMENT, &["330110.001"]).await;
    let client = app.register_client("list-sys", DEPARTMENT).await;
    for token in [&app.admin_token, &app.dpo_token] {
        let resp = app.get(token, "/v1/admin/clients").await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let listed = &body["clients"][0];
        assert_eq!(listed["id"], "list-sys");
        assert_eq!(listed["thumbprint"], client.thumbprint.as_str());
        assert_eq!(listed["status"], "active");
        assert_eq!(listed["roles"], json!(["department"]));
    }
    let (status, code, _) =
        gridhub_tests::error_code(app.get(&app.worker_token, "/v1/admin/clients").await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    assert!(
        entries_of(&app, "client.list")
            .await
            .iter()
            .any(|e| e["decision"] == "deny")
    );
    drop(app.stop().await);
}
