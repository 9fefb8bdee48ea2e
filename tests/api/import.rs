//! `gridhub import` through the real binary: workbooks, GB18030 CSV and JSON lines with Chinese
//! headers; rejects by line without values; resuming after SIGKILL without duplicates; dry run;
//! and `--url` mode as a grid worker (`POST /v1/records/batch` with `upsert_by`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gridhub_tests::process::{signal, wait_bounded};
use gridhub_tests::{
    Backend, TestApp, WORKER_GRID, WORKER_PASSWORD, id_number, on_both_backends, spawn_app,
};

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");

const HEADERS: [&str; 7] = [
    "姓名",
    "公民身份号码",
    "性别",
    "出生日期",
    "联系电话",
    "网格编码",
    "籍贯",
];

const COUNT_PERSONS: &str =
    "SELECT COUNT(*) AS n FROM records WHERE category = 'person' AND erased_at IS NULL";
const DUPLICATE_KEYS: &str = "SELECT COUNT(*) AS n FROM (SELECT token FROM blind_index \
     WHERE category = 'person' AND field = 'id_number' GROUP BY token HAVING COUNT(*) > 1) d";
const LEDGER: &str = "SELECT COUNT(*) AS n FROM ledger_entries";

/// Person `i` (< 40 000) as the cells of one row (`HEADERS` order): a distinct identity number
/// whose birth date and gender agree with the row's.
fn person_row(i: usize) -> Vec<String> {
    let (year, seq) = (50 + i / 1000, i % 1000);
    let id = id_number(&format!("33010219{year:02}0101{seq:03}"));
    vec![
        ["张伟", "王芳", "李娜", "刘洋", "陈静"][i % 5].to_owned(),
        id,
        if seq % 2 == 1 { "男" } else { "女" }.to_owned(),
        format!("19{year}/1/1"),
        format!("138{i:08}"),
        WORKER_GRID.to_owned(),
        "浙江".to_owned(),
    ]
}

/// `n` distinct good people.
fn people(n: usize) -> Vec<Vec<String>> {
    (0..n).map(person_row).collect()
}

fn write_xlsx(path: &Path, rows: &[Vec<String>]) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    // A title row above the header, as grid exports often have.
    sheet.write_string(0, 0, "望江街道人口登记表").unwrap();
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(1, c as u16, *h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if !v.is_empty() {
                sheet.write_string(r as u32 + 2, c as u16, v).unwrap();
            }
        }
    }
    book.save(path).unwrap();
}

fn csv_text(rows: &[Vec<String>]) -> String {
    let mut text = HEADERS.join(",") + "\n";
    for row in rows {
        text += &row.join(",");
        text += "\n";
    }
    text
}

fn write_gb18030_csv(path: &Path, rows: &[Vec<String>]) {
    let text = csv_text(rows);
    let (bytes, _, unmappable) = encoding_rs::GB18030.encode(&text);
    assert!(!unmappable);
    std::fs::write(path, &bytes).unwrap();
}

fn write_jsonl(path: &Path, rows: &[Vec<String>]) {
    let mut text = String::new();
    for row in rows {
        let object: serde_json::Map<String, serde_json::Value> = HEADERS
            .iter()
            .zip(row)
            .map(|(h, v)| ((*h).to_owned(), serde_json::Value::from(v.as_str())))
            .collect();
        text += &serde_json::Value::Object(object).to_string();
        text += "\n";
    }
    std::fs::write(path, text).unwrap();
}

/// The arguments that point `gridhub import` at the app's data directory (and its database).
fn data_dir_args(dir: &Path, database_url: &Option<String>) -> Vec<String> {
    let mut args = vec!["--data-dir".to_owned(), dir.display().to_string()];
    if let Some(url) = database_url {
        args.push("--database-url".to_owned());
        args.push(url.clone());
    }
    args
}

fn import_command(target: &[String], file: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("import")
        .args(target)
        .arg("--file")
        .arg(file)
        .args(extra)
        .env_remove("GRIDHUB_DATABASE_URL")
        .env_remove("GRIDHUB_DATA_DIR")
        .env("GRIDHUB_LOG", "warn");
    cmd
}

fn run_import(target: &[String], file: &Path, extra: &[&str]) -> Output {
    let out = import_command(target, file, extra).output().unwrap();
    assert!(
        out.status.success(),
        "gridhub import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The import's summary line.
fn summary(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stop the hub, run `between` on its data directory, start it again.
async fn offline(app: TestApp, between: impl FnOnce(&[String], &Path)) -> TestApp {
    let dir = app.data_dir.path().to_path_buf();
    let target = data_dir_args(&dir, &app.database_url);
    app.restart_after(move || between(&target, &dir)).await
}

async fn a_workbook_with_bad_rows_writes_the_good_and_rejects_the_bad(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.raw_count(COUNT_PERSONS).await;
    let mut rows = people(6);
    // Sheet rows: title 1, header 2, data from 3. Row 3+2=5: a bad check character.
    let good_id = rows[2][1].clone();
    let last = if good_id.ends_with('0') { '1' } else { '0' };
    let bad_id = format!("{}{last}", &good_id[..17]);
    rows[2][1] = bad_id.clone();
    rows[3][4] = "12345".to_owned(); // sheet row 6: a bad phone
    rows[4][5] = "330110.009.009".to_owned(); // sheet row 7: an unknown grid
    rows[5][0] = String::new(); // sheet row 8: no name
    let secrets = [
        bad_id,
        "12345".to_owned(),
        "330110.009.009".to_owned(),
        "浙江".to_owned(),
    ];
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("people.xlsx");
    write_xlsx(&file, &rows);
    let file_arg = file.clone();
    let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let said = std::sync::Arc::clone(&out);
    let app = offline(app, move |target, _| {
        let out = run_import(target, &file_arg, &[]);
        *said.lock().unwrap() = summary(&out);
        let warned = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            warned.contains("籍贯"),
            "the unknown column is named: {warned}"
        );
    })
    .await;
    let said = out.lock().unwrap().clone();
    assert!(said.contains("created 2,"), "{said}");
    assert!(said.contains("rejected 4"), "{said}");
    assert_eq!(app.raw_count(COUNT_PERSONS).await, before + 2);
    let rejects = std::fs::read(work.path().join("people.xlsx.rejects.csv")).unwrap();
    let text = String::from_utf8(rejects.clone()).unwrap();
    for (line, field) in [(5, "id_number"), (6, "phone"), (7, "grid"), (8, "name")] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{line},")) && l.contains(field)),
            "line {line} field {field} in:\n{text}"
        );
    }
    for secret in &secrets {
        let needle = secret.as_bytes();
        assert!(
            !rejects.windows(needle.len()).any(|w| w == needle),
            "the reject file holds an input value"
        );
    }
    for good in [&rows[0], &rows[1]] {
        for value in good {
            let needle = value.as_bytes();
            assert!(!rejects.windows(needle.len()).any(|w| w == needle));
        }
    }
}

async fn gb18030_csv_and_jsonl_import_the_same_people(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.raw_count(COUNT_PERSONS).await;
    let rows = people(30);
    let work = tempfile::tempdir().unwrap();
    let csv = work.path().join("people.csv");
    let jsonl = work.path().join("people.jsonl");
    write_gb18030_csv(&csv, &rows);
    write_jsonl(&jsonl, &rows);
    let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = std::sync::Arc::clone(&said);
    let app = offline(app, move |target, _| {
        for file in [&csv, &jsonl] {
            out.lock()
                .unwrap()
                .push(summary(&run_import(target, file, &[])));
        }
    })
    .await;
    let said = said.lock().unwrap().clone();
    assert!(
        said[0].contains("created 30, updated 0, rejected 0"),
        "{}",
        said[0]
    );
    assert!(
        said[1].contains("created 0, updated 30, rejected 0"),
        "{}",
        said[1]
    );
    assert_eq!(app.raw_count(COUNT_PERSONS).await, before + 30);
    assert_eq!(app.raw_count(DUPLICATE_KEYS).await, 0);
}

/// The committed line the progress file records, if it exists yet.
fn committed(progress: &Path) -> u64 {
    std::fs::read(progress)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["committed_line"].as_u64())
        .unwrap_or(0)
}

async fn a_rerun_after_sigkill_leaves_every_row_once(backend: Backend) {
    const N: usize = 6000;
    let app = spawn_app(backend).await;
    let before = app.raw_count(COUNT_PERSONS).await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("people.csv");
    std::fs::write(&file, csv_text(&people(N))).unwrap();
    let progress: PathBuf = work.path().join("people.csv.import-progress");
    let (file_arg, progress_arg) = (file.clone(), progress.clone());
    let killed_at = std::sync::Arc::new(std::sync::Mutex::new(0));
    let noted = std::sync::Arc::clone(&killed_at);
    let app = offline(app, move |target, _| {
        let child = import_command(target, &file_arg, &["--batch-size", "100"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while committed(&progress_arg) == 0 {
            assert!(Instant::now() < deadline, "no batch committed in time");
            std::thread::sleep(Duration::from_millis(5));
        }
        signal(&child, "KILL");
        let status = wait_bounded(child);
        assert!(!status.success(), "the import was killed mid-file");
        let at = committed(&progress_arg);
        *noted.lock().unwrap() = at;
        assert!(at < N as u64 + 1, "killed before the end");
        // Re-run: skips what the progress file says, upserts the rest.
        let said = summary(&run_import(target, &file_arg, &[]));
        assert!(said.contains("rejected 0"), "{said}");
        // Even with the progress file lost, nothing is created twice.
        std::fs::remove_file(&progress_arg).unwrap();
        let said = summary(&run_import(target, &file_arg, &[]));
        assert!(said.contains("created 0,"), "{said}");
    })
    .await;
    assert!(*killed_at.lock().unwrap() > 0);
    assert_eq!(app.raw_count(COUNT_PERSONS).await, before + N as i64);
    assert_eq!(app.raw_count(DUPLICATE_KEYS).await, 0);
}

async fn a_dry_run_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut rows = people(10);
    rows[3][4] = "12345".to_owned();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("people.xlsx");
    write_xlsx(&file, &rows);
    // A restart logs the test users in again (ledger entries of its own): measure what a
    // restart with nothing in between adds, and compare the dry run's restart with it.
    let (records, first) = (
        app.raw_count(COUNT_PERSONS).await,
        app.raw_count(LEDGER).await,
    );
    let app = offline(app, |_, _| {}).await;
    let entries = app.raw_count(LEDGER).await;
    let restart = entries - first;
    let file_arg = file.clone();
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let out = std::sync::Arc::clone(&said);
    let app = offline(app, move |target, _| {
        *out.lock().unwrap() = summary(&run_import(target, &file_arg, &["--dry-run"]));
    })
    .await;
    let said = said.lock().unwrap().clone();
    assert!(said.starts_with("dry run"), "{said}");
    assert!(said.contains("rejected 1"), "{said}");
    assert_eq!(app.raw_count(COUNT_PERSONS).await, records);
    assert_eq!(
        app.raw_count(LEDGER).await,
        entries + restart,
        "the dry run wrote no entry"
    );
    let rejects = std::fs::read_to_string(work.path().join("people.xlsx.rejects.csv")).unwrap();
    assert!(
        rejects
            .lines()
            .any(|l| l.starts_with("6,") && l.contains("phone")),
        "{rejects}"
    );
    assert!(!work.path().join("people.xlsx.import-progress").exists());
}

async fn a_grid_worker_imports_through_the_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.raw_count(COUNT_PERSONS).await;
    let mut rows = people(20);
    rows[7][4] = "12345".to_owned();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("people.jsonl");
    write_jsonl(&file, &rows);
    let password = work.path().join("password");
    std::fs::write(&password, format!("{WORKER_PASSWORD}\n")).unwrap();
    let target = vec![
        "--url".to_owned(),
        app.base.clone(),
        "--username".to_owned(),
        "worker".to_owned(),
        "--password-file".to_owned(),
        password.display().to_string(),
        "--ca".to_owned(),
        app.data_dir.path().join("pki/ca.pem").display().to_string(),
    ];
    let run = |target: Vec<String>, file: PathBuf| {
        tokio::task::spawn_blocking(move || summary(&run_import(&target, &file, &[])))
    };
    let said = run(target.clone(), file.clone()).await.unwrap();
    assert!(said.contains("created 19, updated 0, rejected 1"), "{said}");
    let said = run(target, file.clone()).await.unwrap();
    assert!(said.contains("skipped (already imported) 20"), "{said}");
    assert_eq!(app.raw_count(COUNT_PERSONS).await, before + 19);
    let rejects = std::fs::read_to_string(work.path().join("people.jsonl.rejects.csv")).unwrap();
    assert!(
        rejects
            .lines()
            .any(|l| l.starts_with("8,") && l.contains("phone")),
        "{rejects}"
    );
    // The API twin: the same batch again, as an upsert, updates and creates nothing.
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records/batch",
            &serde_json::json!({"upsert_by": "id_number", "records": [
                gridhub_tests::person(WORKER_GRID, "张三", &rows[0][1], "13800000000")]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["created"], 0);
    assert_eq!(body["updated"], 1);
    assert_eq!(body["records"][0]["version"], 2);
    assert_eq!(app.raw_count(COUNT_PERSONS).await, before + 19);
}

const VERSION_TWO: &str = "SELECT COUNT(*) AS n FROM records WHERE category = 'person' \
     AND erased_at IS NULL AND version = 2";

/// Batches are sealed ahead while the one before commits: a row that repeats a key of the
/// batch just before (still committing when the repeat was sealed) updates that record, in the
/// file's order, and rejected rows in either batch do not disturb the rest.
async fn repeated_keys_in_consecutive_batches_update_in_file_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let (before, before_v2) = (
        app.raw_count(COUNT_PERSONS).await,
        app.raw_count(VERSION_TWO).await,
    );
    let originals = people(40);
    let repeat = |i: usize| {
        let mut row = originals[i].clone();
        row[4] = format!("139{i:08}");
        row
    };
    // With batches of 10: [o0–9] [r0–4 o10–14] [o15–19 r10–14] [o20–29] [r20–24 o30–34] …
    let mut rows = Vec::new();
    for k in 0..4 {
        rows.extend(originals[10 * k..10 * k + 10].iter().cloned());
        rows.extend((10 * k..10 * k + 5).map(repeat));
    }
    let bad_original = rows.iter().position(|r| r == &originals[12]).unwrap();
    rows[bad_original][4] = "12345".to_owned();
    let bad_repeat = rows.iter().position(|r| r == &repeat(31)).unwrap();
    rows[bad_repeat][4] = "12345".to_owned();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("people.csv");
    std::fs::write(&file, csv_text(&rows)).unwrap();
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let out = std::sync::Arc::clone(&said);
    let app = offline(app, move |target, _| {
        *out.lock().unwrap() = summary(&run_import(target, &file, &["--batch-size", "10"]));
    })
    .await;
    let said = said.lock().unwrap().clone();
    // o12 is rejected, so its repeat creates; r31 is rejected; the other 18 repeats update.
    assert!(
        said.contains("created 40, updated 18, rejected 2"),
        "{said}"
    );
    assert_eq!(app.raw_count(COUNT_PERSONS).await, before + 40);
    assert_eq!(app.raw_count(VERSION_TWO).await, before_v2 + 18);
    assert_eq!(app.raw_count(DUPLICATE_KEYS).await, 0);
    let rejects = std::fs::read_to_string(work.path().join("people.csv.rejects.csv")).unwrap();
    for index in [bad_original, bad_repeat] {
        // Line 1 is the header.
        let line = index + 2;
        assert!(
            rejects
                .lines()
                .any(|l| l.starts_with(&format!("{line},")) && l.contains("phone")),
            "line {line} in {rejects}"
        );
    }
}

on_both_backends!(
    repeated_keys_in_consecutive_batches_update_in_file_order,
    a_workbook_with_bad_rows_writes_the_good_and_rejects_the_bad,
    gb18030_csv_and_jsonl_import_the_same_people,
    a_rerun_after_sigkill_leaves_every_row_once,
    a_dry_run_writes_nothing,
    a_grid_worker_imports_through_the_api,
);
