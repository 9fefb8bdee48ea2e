//! The console in a real browser (issue 20): Debian's headless Chromium driven by
//! `tests/console/scenario.mjs` (playwright-core, axe-core). This test sets the hub up, runs
//! the script, and checks on the hub's side that what the browser did happened: the filtered
//! view and the exports hold exactly the API's entries for that filter, an approval in the queue
//! lets the department pull, a rejection without a reason changed nothing, refused forms and a
//! grid worker's attempts are in the ledger, and the role matrix changed the API's answer.
//! The browser side (proof verified, tampered proof reported, 403 pages, accessibility) is
//! checked by the script, which fails on the first miss. Screenshots of every main page in
//! both languages go to `target/console-screens/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use gridhub::time::Clock;
use gridhub_tests::mtls::DeptClient;
use gridhub_tests::{
    ADMIN_PASSWORD, Backend, DPO_PASSWORD, TestApp, WORKER_GRID, WORKER_PASSWORD, id_number,
    person, spawn_app,
};
use serde_json::{Value, json};

use crate::grants::{client_get, client_post, entries_of, grant_request};

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("console")
}

/// playwright-core and axe-core, from the npm registry the first time (`npm ci`: the versions
/// of `package-lock.json`).
fn ensure_node_modules() {
    let dir = console_dir();
    if dir.join("node_modules/playwright-core").exists()
        && dir.join("node_modules/axe-core").exists()
    {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .output()
        .expect("npm (Node.js) is needed for the console tests");
    assert!(
        out.status.success(),
        "npm ci in tests/console failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `tests/console/<script>` in headless Chromium against `app`, with the demo accounts'
/// names and passwords (`DPO_USER`, `ADMIN_USER`, `WORKER_USER` and their `_PASSWORD`s), `HUB`,
/// `SCREENS` (`target/console-screens/`) and `vars` in its environment. Fails the test, with
/// the script's output, unless the script ran to its end; returns its steps by name, in order.
pub(crate) fn run_browser(
    app: &TestApp,
    script: &str,
    vars: &[(&str, String)],
) -> HashMap<String, Vec<Value>> {
    ensure_node_modules();
    let screens = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screens");
    let mut command = Command::new("node");
    command
        .arg(script)
        .current_dir(console_dir())
        // Chromium runs on the real clock even when the suite runs under libfaketime.
        .env_remove("LD_PRELOAD")
        .env_remove("FAKETIME")
        .env("HUB", &app.base)
        .env("DPO_USER", "dpo")
        .env("DPO_PASSWORD", DPO_PASSWORD)
        .env("ADMIN_USER", "admin")
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("WORKER_USER", "worker")
        .env("WORKER_PASSWORD", WORKER_PASSWORD)
        .env("SCREENS", &screens);
    for (name, value) in vars {
        command.env(name, value);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("node runs tests/console/{script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser script {script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut steps: HashMap<String, Vec<Value>> = HashMap::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        steps
            .entry(v["step"].as_str().unwrap().to_owned())
            .or_default()
            .push(v);
    }
    assert!(
        steps.contains_key("done"),
        "{script} did not finish:\n{stdout}"
    );
    steps
}

/// Beijing time to the minute, as a `datetime-local` input takes it.
pub(crate) fn local_input(ms: i64) -> String {
    gridhub::time::cst_minutes(ms).replace(' ', "T")
}

async fn request_grant(app: &TestApp, client: &DeptClient, purpose: &str) -> String {
    let resp = client_post(
        app,
        client,
        "/v1/grants",
        &grant_request(
            "civil-affairs",
            purpose,
            json!({"name": "masked"}),
            &["330110.001"],
        ),
    )
    .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn grant_status(app: &TestApp, id: &str) -> String {
    let body: Value = app
        .get(&app.dpo_token, &format!("/v1/grants/{id}"))
        .await
        .json()
        .await
        .unwrap();
    body["status"].as_str().unwrap().to_owned()
}

/// Every entry index the API's `GET /v1/audit/entries` answers for `query`, in order.
async fn api_indices(app: &TestApp, query: &str) -> Vec<u64> {
    crate::audit_search::entries_matching(app, query)
        .await
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_and_admins_work_in_a_real_browser() {
    ensure_node_modules();
    let app = spawn_app(Backend::Sqlite).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let client = app.register_client("civil-sys", "civil-affairs").await;
    let mut records = Vec::new();
    for (i, name) in ["甲", "乙", "丙"].iter().enumerate() {
        let body = person(
            WORKER_GRID,
            &format!("测试{name}"),
            &id_number(&format!("33010219500101{i:03}")),
            &format!("1380000000{i}"),
        );
        let resp = app.post(&app.worker_token, "/v1/records", &body).await;
        assert_eq!(resp.status(), 201);
        let id = resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        records.push(id);
    }
    let elderly_care = app
        .approved_grant(
            &client,
            &grant_request(
                "civil-affairs",
                "elderly-care",
                json!({"name": "clear"}),
                &["330110.001"],
            ),
        )
        .await;
    for _ in 0..3 {
        let resp = client_get(&app, &client, "/v1/data/person?purpose=elderly-care").await;
        assert_eq!(resp.status(), 200);
    }
    let to_approve = request_grant(&app, &client, "population-registration").await;
    let to_reject = request_grant(&app, &client, "rental-registration").await;
    let before = client_get(
        &app,
        &client,
        "/v1/data/person?purpose=population-registration",
    )
    .await;
    assert_eq!(before.status(), 403, "no grant yet");
    let worker_audit = app.get(&app.worker_token, "/v1/audit/entries").await;
    assert_eq!(
        worker_audit.status(),
        403,
        "grid workers do not read the ledger"
    );

    let now = app.clock.now_ms();
    let (since, until) = (now - 3_600_000, now + 3_600_000);
    let steps = run_browser(
        &app,
        "scenario.mjs",
        &[
            ("DEPARTMENT", "civil-affairs".to_owned()),
            ("SINCE", local_input(since)),
            ("UNTIL", local_input(until)),
            ("APPROVE_GRANT", to_approve.clone()),
            ("REJECT_GRANT", to_reject.clone()),
            ("RECORD", records[0].clone()),
            ("ADMIN_TOKEN", app.admin_token.clone()),
        ],
    );

    // The filtered view, and both exports, hold exactly the API's entries for that filter. The
    // minute-wide inputs are what the API is asked too.
    let minute = |ms: i64| ms - ms.rem_euclid(60_000);
    let query = format!(
        "department=civil-affairs&since={}&until={}",
        gridhub::time::rfc3339(minute(since)),
        gridhub::time::rfc3339(minute(until))
    );
    let expected = api_indices(&app, &query).await;
    assert!(expected.len() >= 6, "the client's tokens, grants and pulls");
    let mut shown: Vec<u64> =
        serde_json::from_value(steps["filtered"][0]["indices"].clone()).unwrap();
    shown.reverse();
    assert_eq!(
        shown, expected,
        "the filtered view (newest first) is the API's answer"
    );
    for export in &steps["export"] {
        let indices: Vec<u64> = serde_json::from_value(export["indices"].clone()).unwrap();
        assert_eq!(indices, expected, "{} export", export["format"]);
    }

    // The evidence bundle holds the same entries and verifies offline; altered, it does not.
    let bundle = &steps["bundle"][0];
    let indices: Vec<u64> = serde_json::from_value(bundle["indices"].clone()).unwrap();
    assert_eq!(indices, expected, "the bundle follows the filter");
    let path = PathBuf::from(bundle["path"].as_str().unwrap());
    let verify = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_gridhub-under-test"))
            .args(["audit", "verify", "--bundle"])
            .arg(file)
            .output()
            .unwrap()
    };
    let out = verify(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("verified: {} entries", expected.len()))
    );
    let mut altered: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let text = altered["entries"][0]["canonical"]
        .as_str()
        .unwrap()
        .replace("civil-sys", "other-sys");
    altered["entries"][0]["canonical"] = Value::String(text);
    let altered_path = path.with_file_name("evidence-altered.json");
    std::fs::write(&altered_path, altered.to_string()).unwrap();
    let out = verify(&altered_path);
    assert!(!out.status.success(), "an altered entry must not verify");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("entry {}", expected[0])));

    // The subject access report on screen is the API's.
    let report: Value = app
        .get(
            &app.dpo_token,
            &format!("/v1/audit/subjects/{}/report", records[0]),
        )
        .await
        .json()
        .await
        .unwrap();
    let api_subject: Vec<u64> = report["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["ledger_index"].as_u64().unwrap())
        .collect();
    assert_eq!(api_subject.len(), 3, "three pulls touched the record");
    let shown: Vec<u64> = serde_json::from_value(steps["subject"][0]["indices"].clone()).unwrap();
    assert_eq!(shown, api_subject);

    // Lineage: the disclosure's grant page shows the approval by the DPO.
    let lineage = &steps["lineage"][0];
    let rows = lineage["history"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r[2] == "approve" && r[1].as_str().unwrap().starts_with("user:")),
        "{lineage}"
    );

    // Approved in the queue: the department's next pull gets data.
    assert_eq!(grant_status(&app, &to_approve).await, "approved");
    let after = client_get(
        &app,
        &client,
        "/v1/data/person?purpose=population-registration",
    )
    .await;
    assert_eq!(after.status(), 200, "the approval is in force");
    let approvals = entries_of(&app, "grant.approve").await;
    assert!(
        approvals
            .iter()
            .any(|e| e["grants"][0] == to_approve.as_str() && e["actor"]["user"].is_string()),
        "the approval is in the ledger under the DPO"
    );

    // Who can see persons' names: exactly the two grants in force, at their levels.
    let mut visible: Vec<(String, String, String)> = steps["visibility"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap().to_owned();
            (text("department"), text("level"), text("grant"))
        })
        .collect();
    visible.sort();
    let mut expected_visible = vec![
        (
            "civil-affairs".to_owned(),
            "clear".to_owned(),
            elderly_care.clone(),
        ),
        (
            "civil-affairs".to_owned(),
            "masked".to_owned(),
            to_approve.clone(),
        ),
    ];
    expected_visible.sort();
    assert_eq!(visible, expected_visible);

    // Rejected without a reason: refused, and nothing changed.
    assert_eq!(steps["reject_without_reason"][0]["status"], 422);
    // The browser's ledger-key rotation happened on the hub: one transition statement, to the
    // key the browser re-pinned.
    let pk: Value = app
        .get(&app.admin_token, "/v1/audit/public-key")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pk["transitions"].as_array().unwrap().len(), 1);
    assert_eq!(pk["verifier"], steps["rotated_key"][0]["pinned_after"]);
    assert_eq!(grant_status(&app, &to_reject).await, "requested");

    // Refused forms are in the ledger.
    let csrf = entries_of(&app, "console.csrf").await;
    assert!(csrf.len() >= 2, "{csrf:?}");
    assert!(csrf.iter().all(|e| e["decision"] == "deny"));

    // The grid worker's attempts on DPO and admin pages are in the ledger, as the API's would be.
    for action in ["audit.entries", "console.grants", "role.read"] {
        let denied = entries_of(&app, action).await;
        assert!(
            denied
                .iter()
                .any(|e| e["decision"] == "deny" && e["actor"]["user"].is_string()),
            "no refusal `{action}` in the ledger"
        );
    }

    // The role matrix: grid workers may now read the ledger, on their next API request.
    let worker_audit = app.get(&app.worker_token, "/v1/audit/entries").await;
    assert_eq!(worker_audit.status(), 200, "the matrix change is live");

    // Screenshots of the main pages in both languages.
    let screens = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screens");
    for page in ["overview", "audit", "grants", "roles"] {
        for lang in ["zh", "en"] {
            let shot = screens.join(format!("{page}.{lang}.png"));
            assert!(shot.exists(), "{}", shot.display());
        }
    }
    for shot in [
        "entry.zh.png",
        "grant.zh.png",
        "subject.zh.png",
        "subject-print.zh.png",
        "visibility.zh.png",
    ] {
        assert!(screens.join(shot).exists(), "{shot}");
    }
    drop(app.stop().await);
}

/// A console client that keeps the session cookie by hand and never follows redirects.
pub(crate) struct Browserless {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browserless {
    pub(crate) fn new(app: &TestApp) -> Browserless {
        Browserless {
            http: gridhub_tests::client_without_redirects(&app.data_dir.path().join("pki/ca.pem")),
            base: app.base.clone(),
            cookie: None,
        }
    }

    pub(crate) async fn login(&mut self, username: &str, password: &str) -> reqwest::Response {
        let resp = self
            .http
            .post(format!("{}/console/login", self.base))
            .header("origin", &self.base)
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .unwrap();
        if let Some(set) = resp.headers().get("set-cookie") {
            let set = set.to_str().unwrap();
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        resp
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .form(form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }
}

pub(crate) fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// The session's CSRF token, as the page's forms carry it.
pub(crate) async fn csrf_of(page: reqwest::Response) -> String {
    let html = page.text().await.unwrap();
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with the CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_end_when_idle_too_old_or_logged_out() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let mut browser = Browserless::new(&app);

    // No session: the login page, which brings the user back afterwards.
    let resp = browser.get("/console/audit").await;
    assert_eq!(resp.status(), 303);
    assert!(
        location(&resp).starts_with("/console/login?next=%2Fconsole%2Faudit"),
        "{}",
        location(&resp)
    );

    // A wrong password: the form again, 401, and nothing set.
    let resp = browser.login("dpo", "not-the-password").await;
    assert_eq!(resp.status(), 401);
    assert!(browser.cookie.is_none());

    let resp = browser.login("dpo", DPO_PASSWORD).await;
    assert_eq!(resp.status(), 303);
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(attribute), "{set}");
    }
    let page = browser.get("/console/").await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let logins = entries_of(&app, "auth.console_login").await;
    assert_eq!(
        logins
            .iter()
            .map(|e| e["decision"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["deny", "allow"],
        "both attempts are in the ledger"
    );

    // Idle for longer than `console_idle_secs` (30 minutes): over.
    app.clock.advance(std::time::Duration::from_secs(31 * 60));
    let resp = browser.get("/console/").await;
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).contains("expired=1"), "{}", location(&resp));

    // In use all day, it still ends `console_session_secs` (12 hours) after the login.
    browser.login("dpo", DPO_PASSWORD).await;
    for _ in 0..24 {
        app.clock.advance(std::time::Duration::from_secs(29 * 60));
        assert_eq!(browser.get("/console/").await.status(), 200, "still in use");
    }
    app.clock.advance(std::time::Duration::from_secs(29 * 60));
    let resp = browser.get("/console/").await;
    assert_eq!(resp.status(), 303, "12 h after the login");

    // Logging out needs the form's token; then the cookie opens nothing.
    browser.login("dpo", DPO_PASSWORD).await;
    let refused = browser.post("/console/logout", &[("csrf", "forged")]).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        browser.get("/console/").await.status(),
        200,
        "still logged in"
    );
    let csrf = csrf_of(browser.get("/console/").await).await;
    let resp = browser.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), 303);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(browser.get("/console/").await.status(), 303);
    // The API tokens from before the clock moved 12 hours have expired by the hub's clock.
    app.log_in_again().await;
    assert!(!entries_of(&app, "auth.console_logout").await.is_empty());

    // A login form from another site is refused before the password is looked at.
    let resp = browser
        .http
        .post(format!("{}/console/login", app.base))
        .header("origin", "https://evil.example")
        .form(&[("username", "dpo"), ("password", DPO_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("set-cookie").is_none());
    drop(app.stop().await);
}

/// Lineage of a case-bound disclosure: its entry's page names the case assignment that made
/// the department responsible at that moment (round, times), and says it is no longer in
/// force once the case is reassigned; an entry without a case has no such section.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_bound_disclosure_shows_the_assignment_behind_it() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_department("public-security", &["330110"]).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let police = app.register_client("police-sys", "public-security").await;
    let body = person(
        WORKER_GRID,
        "测试",
        &id_number("33010219800101001"),
        "13900000001",
    );
    let resp = app.post(&app.worker_token, "/v1/records", &body).await;
    assert_eq!(resp.status(), 201);
    let record = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bound = grant_request(
        "public-security",
        "case-investigation",
        json!({"name": "masked"}),
        &["330110.001"],
    );
    bound["case_bound"] = json!(true);
    bound["legal_basis"] = json!("Criminal Procedure Law art. 54");
    app.approved_grant(&police, &bound).await;
    let resp = app
        .post(
            &app.worker_token,
            "/v1/cases",
            &json!({"grid": WORKER_GRID, "kind": "dispute", "summary": "纠纷", "subjects": [record]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let case = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let assign = |departments: &'static str| {
        let path = format!("/v1/cases/{case}/assign");
        let app = &app;
        async move {
            let resp = app
                .post(
                    &app.admin_token,
                    &path,
                    &json!({"departments": [departments], "deadline": crate::grants::rfc3339(7 * 86_400)}),
                )
                .await;
            assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        }
    };
    assign("public-security").await;
    let resp = client_get(
        &app,
        &police,
        &format!("/v1/data/person?purpose=case-investigation&case={case}"),
    )
    .await;
    assert_eq!(resp.status(), 200, "the assignee pulls under its case");
    assign("civil-affairs").await;
    let pulled = entries_of(&app, "data.read").await;
    let index = pulled
        .iter()
        .find(|e| e["case"] == case.as_str() && e["decision"] == "allow")
        .expect("the case-bound pull is in the ledger")["index"]
        .as_u64()
        .unwrap();
    let view: Value = app
        .get(&app.admin_token, &format!("/v1/cases/{case}"))
        .await
        .json()
        .await
        .unwrap();
    let round = view["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["department"] == "public-security")
        .unwrap()["round"]
        .as_i64()
        .unwrap();

    let mut console = Browserless::new(&app);
    assert_eq!(console.login("dpo", DPO_PASSWORD).await.status(), 303);
    let page = console
        .get(&format!("/console/audit/entries/{index}"))
        .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("当时的案件指派"), "the section is there");
    assert!(
        html.contains(&format!("data-round=\"{round}\"")),
        "the round of the police's assignment"
    );
    assert!(
        html.contains("已改派或案件已结"),
        "reassigned since: no longer in force"
    );
    let token = entries_of(&app, "auth.client_token").await;
    let other = token[0]["index"].as_u64().unwrap();
    let html = console
        .get(&format!("/console/audit/entries/{other}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("当时的案件指派"), "no case, no assignment");
}
