//! The working calendar setting (`calendar_file`): the real binary started with a holiday file
//! counts grant answer deadlines and case deadlines in its working days, a bad file stops
//! start-up naming the key and the line, and the shipped 2026 file is the State Council's
//! schedule. Expectations are computed here, day by day, from the server's own timestamps, so
//! the tests hold whatever day and hour they run at.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use gridhub::config::{Overrides, Settings};
use gridhub_tests::process::{drain_to_end, signal, start_server, wait_bounded};
use gridhub_tests::{client_for, login_at};
use serde_json::{Value, json};
use time::macros::{date, offset};
use time::{Date, Duration, OffsetDateTime, Weekday};

use crate::grants::{grant_request, parse_time, weekdays_after};

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");
const ADMIN_PASSWORD: &str = "a-long-admin-password";

fn init(dir: &Path) {
    let out = Command::new(BIN)
        .args(["init", "--data-dir"])
        .arg(dir)
        .args(["--admin-password", ADMIN_PASSWORD])
        .output()
        .expect("run gridhub init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Write `calendar` next to the config and name it there as `calendar_file`.
fn configure_calendar(dir: &Path, calendar: &str) {
    let file = dir.join("calendar.toml");
    std::fs::write(&file, calendar).unwrap();
    let config = dir.join("gridhub.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("calendar_file = \"{}\"\n", file.display()));
    std::fs::write(&config, text).unwrap();
}

fn is_weekend(day: Date) -> bool {
    matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// The test's own working-day count: `n` working days after `from` (China Standard Time) with
/// these holidays and make-up days, at the same time of day.
fn working_days_after(
    from: OffsetDateTime,
    n: u32,
    holidays: &BTreeSet<Date>,
    workdays: &BTreeSet<Date>,
) -> OffsetDateTime {
    let mut at = from.to_offset(offset!(+8));
    let mut left = n;
    while left > 0 {
        at += Duration::days(1);
        let day = at.date();
        if !holidays.contains(&day) && (workdays.contains(&day) || !is_weekend(day)) {
            left -= 1;
        }
    }
    at
}

async fn get_json(client: &reqwest::Client, base: &str, token: &str, path: String) -> Value {
    let resp = client
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

fn list(days: &BTreeSet<Date>) -> String {
    days.iter()
        .map(|d| format!("\"{d}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_and_case_deadlines_count_the_configured_working_days() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path());
    // Relative to today in Beijing: the next three weekdays are holidays, the next Saturday is
    // worked. Should midnight pass before the requests, two holidays still lie ahead.
    let today = OffsetDateTime::now_utc().to_offset(offset!(+8)).date();
    let ahead = (1..=14).map(|n| today + Duration::days(n));
    let holidays: BTreeSet<Date> = ahead.clone().filter(|d| !is_weekend(*d)).take(3).collect();
    let workdays: BTreeSet<Date> = ahead
        .filter(|d| d.weekday() == Weekday::Saturday)
        .take(1)
        .collect();
    configure_calendar(
        tmp.path(),
        &format!(
            "# made by the test\nholidays = [{}]\nworkdays = [{}]\n",
            list(&holidays),
            list(&workdays)
        ),
    );
    let server = start_server(BIN, tmp.path());
    let base = format!("https://localhost:{}", server.port);
    let client = client_for(&tmp.path().join("pki/ca.pem"));
    let token = login_at(&client, &base, "admin", ADMIN_PASSWORD).await;
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let get = |path: String| get_json(&client, &base, &token, path);
    let resp = post(
        "/v1/grids",
        json!({"code": "330110", "name": "临江市", "kind": "physical"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = post(
        "/v1/admin/departments",
        json!({"id": "civil-affairs", "name": "民政局", "jurisdiction": ["330110"]}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);

    // A grant request: answer due in 5 working days of the file, not of plain Monday–Friday.
    let request = grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "clear"}),
        &["330110"],
    );
    let resp = post("/v1/grants", request).await.unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let grant = get(format!("/v1/grants/{}", created["id"].as_str().unwrap())).await;
    let requested_at = parse_time(grant["requested_at"].as_str().unwrap());
    let due = parse_time(grant["answer_due"].as_str().unwrap());
    assert_eq!(
        due,
        working_days_after(requested_at, 5, &holidays, &workdays),
        "requested at {requested_at}, holidays {holidays:?}, workdays {workdays:?}"
    );
    assert_ne!(
        due,
        weekdays_after(requested_at, 5),
        "the file made no difference"
    );

    // A case assigned with a deadline in working days.
    let resp = post(
        "/v1/cases",
        json!({"grid": "330110", "kind": "dispute", "summary": "楼上漏水"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let case = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let assign = format!("/v1/cases/{case}/assign");
    let refused = [
        (json!({"departments": ["civil-affairs"]}), "deadline"),
        (
            json!({"departments": ["civil-affairs"], "working_days": 3, "deadline": "2099-01-01T00:00:00Z"}),
            "working_days",
        ),
        (
            json!({"departments": ["civil-affairs"], "working_days": 0}),
            "working_days",
        ),
        (
            json!({"departments": ["civil-affairs"], "working_days": 61}),
            "working_days",
        ),
    ];
    for (body, field) in refused {
        let resp = post(&assign, body.clone()).await.unwrap();
        let (status, code, error) = gridhub_tests::error_code(resp).await;
        assert_eq!(
            (status, code.as_str()),
            (422, "validation_failed"),
            "{body}"
        );
        assert_eq!(error["error"]["details"][0]["field"], field, "{body}");
    }
    let resp = post(
        &assign,
        json!({"departments": ["civil-affairs"], "working_days": 4}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let shown = get(format!("/v1/cases/{case}")).await;
    let assignment = &shown["assignments"][0];
    let assigned_at = parse_time(assignment["assigned_at"].as_str().unwrap());
    assert_eq!(
        parse_time(assignment["deadline"].as_str().unwrap()),
        working_days_after(assigned_at, 4, &holidays, &workdays),
        "assigned at {assigned_at}"
    );
    assert_eq!(shown["overdue"], false);

    signal(&server.child, "TERM");
    let log = server.log;
    assert!(wait_bounded(server.child).success());
    drain_to_end(&log);
}

#[test]
fn a_bad_calendar_file_stops_start_up_naming_the_key_and_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path());
    configure_calendar(
        tmp.path(),
        "holidays = [\n  \"2026-10-01\",\n  \"2026-10-32\",\n]\n",
    );
    let mut child = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(tmp.path())
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let status = wait_bounded(child);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("`calendar_file` (`")
            && text.contains("calendar.toml`): line 3: `2026-10-32` is not a date (YYYY-MM-DD)"),
        "{text}"
    );
}

/// 国务院办公厅关于2026年部分节假日安排的通知: days off (ranges) and days worked in exchange.
const NOTICE_2026_OFF: [(Date, Date); 7] = [
    (date!(2026 - 01 - 01), date!(2026 - 01 - 03)),
    (date!(2026 - 02 - 15), date!(2026 - 02 - 23)),
    (date!(2026 - 04 - 04), date!(2026 - 04 - 06)),
    (date!(2026 - 05 - 01), date!(2026 - 05 - 05)),
    (date!(2026 - 06 - 19), date!(2026 - 06 - 21)),
    (date!(2026 - 09 - 25), date!(2026 - 09 - 27)),
    (date!(2026 - 10 - 01), date!(2026 - 10 - 07)),
];
const NOTICE_2026_WORKED: [Date; 6] = [
    date!(2026 - 01 - 04),
    date!(2026 - 02 - 14),
    date!(2026 - 02 - 28),
    date!(2026 - 05 - 09),
    date!(2026 - 09 - 20),
    date!(2026 - 10 - 10),
];

#[test]
fn the_shipped_2026_calendar_is_the_state_councils_schedule() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("gridhub.toml");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/calendar-2026.toml");
    std::fs::write(
        &config,
        format!("calendar_file = \"{}\"\n", shipped.display()),
    )
    .unwrap();
    let settings = Settings::load(Some(&config), Overrides::default()).unwrap();
    let calendar = &settings.working_calendar;
    assert_eq!(calendar.years(), [2026]);
    let mut day = date!(2026 - 01 - 01);
    let mut working = 0;
    while day.year() == 2026 {
        let off = NOTICE_2026_OFF
            .iter()
            .any(|(first, last)| (*first..=*last).contains(&day));
        let expected = !off && (NOTICE_2026_WORKED.contains(&day) || !is_weekend(day));
        assert_eq!(calendar.is_working_day(day), expected, "{day}");
        working += u32::from(expected);
        day = day.next_day().unwrap();
    }
    // 261 weekdays, 19 of them off, 6 weekend days worked.
    assert_eq!(working, 248);
}
