//! Bulk import throughput (`gridhub import`, issue 21) on SQLite and PostgreSQL: N synthetic
//! residents from the demo generator written to a CSV and an XLSX with Chinese headers, imported
//! by the real binary (a child process, release build) into a stopped hub's data directory;
//! records/s and the child's peak RSS (VmHWM, polled from /proc). Beside it, in the same run:
//! the batch API's rate (`POST /v1/records/batch`, as the ingest bench) and the raw ceiling of
//! `records::seal` + `Store::insert_records` (no validation, no ledger).
//!
//! Run: `cargo bench -p gridhub-tests --bench import` (IMPORT_BENCH_ROWS, default 1 000 000;
//! PostgreSQL as for the tests).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark binary: failing loudly is the point"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gridhub::demo::{SEED, synth};
use gridhub_tests::{Backend, TestApp, spawn_app};
use serde_json::{Value, json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");
/// Rows generated per call of the demo generator (its output is held in memory).
const CHUNK: usize = 50_000;
const HEADERS: [&str; 10] = [
    "姓名",
    "公民身份号码",
    "性别",
    "出生日期",
    "联系电话",
    "现住址",
    "户号",
    "户籍类型",
    "网格编码",
    "备注",
];
const FIELDS: [&str; 9] = [
    "name",
    "id_number",
    "gender",
    "birth_date",
    "phone",
    "address",
    "household_id",
    "residence",
    "worker_notes",
];

/// Whether part `name` (`sqlite-csv`, `postgres-api`, …) runs: all unless IMPORT_BENCH_ONLY
/// names a comma-separated few.
fn wanted(name: &str) -> bool {
    std::env::var("IMPORT_BENCH_ONLY").map_or(true, |only| only.split(',').any(|p| p == name))
}

fn rows_wanted() -> usize {
    std::env::var("IMPORT_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// The cells of one synthetic person in `HEADERS` order, Chinese spellings for enumerations.
fn cells(r: &synth::SyntheticRecord) -> Vec<String> {
    let text = |f: &str| {
        r.fields
            .get(f)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let mut out: Vec<String> = FIELDS.iter().map(|f| text(f)).collect();
    out[2] = if out[2] == "male" { "男" } else { "女" }.to_owned();
    out[3] = out[3].replace('-', "/");
    out[7] = if out[7] == "floating" {
        "流动"
    } else {
        "户籍"
    }
    .to_owned();
    out.insert(8, r.grid.clone());
    out
}

/// `n` distinct persons (by identity number) in chunks from differently seeded generators: a
/// repeat across chunks is skipped, so every imported row creates a record.
fn for_each_person(
    n: usize,
    grids: &[synth::DemoGrid],
    mut each: impl FnMut(&synth::SyntheticRecord),
) {
    let mut seen = std::collections::HashSet::new();
    let mut k = 0;
    while seen.len() < n {
        for r in synth::population(SEED + k, CHUNK, grids)
            .iter()
            .filter(|r| r.category == "person")
        {
            let id = r
                .fields
                .get("id_number")
                .and_then(Value::as_str)
                .unwrap_or("");
            if seen.len() < n && seen.insert(id.to_owned()) {
                each(r);
            }
        }
        k += 1;
    }
}

fn write_files(n: usize, grids: &[synth::DemoGrid], dir: &Path) -> (PathBuf, PathBuf) {
    let csv = dir.join("people.csv");
    let xlsx = dir.join("people.xlsx");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    writeln!(out, "{}", HEADERS.join(",")).unwrap();
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet_with_constant_memory();
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    let mut row = 1_u32;
    for_each_person(n, grids, |r| {
        let cells = cells(r);
        let quoted: Vec<String> = cells
            .iter()
            .map(|c| {
                if c.contains([',', '"', '\n']) {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c.clone()
                }
            })
            .collect();
        writeln!(out, "{}", quoted.join(",")).unwrap();
        for (c, v) in cells.iter().enumerate() {
            if !v.is_empty() {
                sheet.write_string(row, c as u16, v).unwrap();
            }
        }
        row += 1;
    });
    out.flush().unwrap();
    book.save(&xlsx).unwrap();
    (csv, xlsx)
}

async fn app_with_grids(backend: Backend, grids: &[synth::DemoGrid]) -> TestApp {
    let app = spawn_app(backend).await;
    for g in grids.iter().filter(|g| !g.code.starts_with("L.")) {
        // The test app pre-creates a few grids of the same city; those answer 409.
        let _ = app
            .post(
                &app.admin_token,
                "/v1/grids",
                &json!({"code": g.code, "name": g.name, "kind": "physical"}),
            )
            .await;
    }
    app
}

/// (VmHWM, RssAnon) of process `pid` now (kB), from /proc: the peak resident set, which counts
/// the SQLite database pages the hub maps (`mmap_size`), and the anonymous (heap) part.
fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((kb("VmHWM:")?, kb("RssAnon:")?))
}

/// Import `file` into the stopped hub's data directory: (summary line, seconds, peak RSS MB,
/// peak anonymous RSS MB).
fn import(dir: &Path, database_url: &Option<String>, file: &Path) -> (String, f64, f64, f64) {
    let mut progress = file.as_os_str().to_owned();
    progress.push(".import-progress");
    let _ = std::fs::remove_file(&progress);
    // IMPORT_BENCH_BIN: another build of the binary (a baseline to compare with).
    let bin = std::env::var("IMPORT_BENCH_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| BIN.to_owned());
    let mut cmd = Command::new(bin);
    cmd.arg("import")
        .arg("--data-dir")
        .arg(dir)
        .arg("--file")
        .arg(file)
        .env_remove("GRIDHUB_DATABASE_URL")
        .env("GRIDHUB_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(url) = database_url {
        cmd.arg("--database-url").arg(url);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let (mut peak, mut anon) = (0, 0);
    loop {
        if let Some((hwm, heap)) = memory(child.id()) {
            peak = peak.max(hwm);
            anon = anon.max(heap);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "import failed");
    let secs = started.elapsed().as_secs_f64();
    let said = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    (said, secs, peak as f64 / 1024.0, anon as f64 / 1024.0)
}

/// The batch API's rate on `people` (batches of 500, 2 clients), as the ingest bench.
async fn batch_api(backend: Backend, people: &[Value], grids: &[synth::DemoGrid]) -> f64 {
    let app = std::sync::Arc::new(app_with_grids(backend, grids).await);
    let batches: Vec<Value> = people
        .chunks(500)
        .map(|c| json!({ "records": c }))
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..2 {
        let app = app.clone();
        let mine: Vec<Value> = batches.iter().skip(k).step_by(2).cloned().collect();
        tasks.push(tokio::spawn(async move {
            for body in mine {
                let resp = app.post(&app.admin_token, "/v1/records/batch", &body).await;
                assert_eq!(resp.status(), 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rate = people.len() as f64 / started.elapsed().as_secs_f64();
    std::sync::Arc::into_inner(app).unwrap().stop().await;
    rate
}

/// `records::seal` + `Store::insert_records` in batches of 1 000: no validation timed (values
/// parsed beforehand), no ledger, no role check.
async fn ceiling(backend: Backend, people: &[Value], grids: &[synth::DemoGrid]) -> f64 {
    let app = app_with_grids(backend, grids).await;
    let vault = gridhub::vault::Vault::unlock(&gridhub::vault::keyring::AgeFileStore::in_dir(
        app.data_dir.path(),
    ))
    .unwrap();
    let location = match &app.database_url {
        Some(url) => gridhub::config::DatabaseLocation::Postgres(url.clone().into()),
        None => gridhub::config::DatabaseLocation::Sqlite(app.sqlite_path()),
    };
    let store = gridhub::storage::Store::open(&location).await.unwrap();
    let category = policy::Catalog::default_catalog()
        .category("person")
        .unwrap();
    let parsed: Vec<_> = people
        .iter()
        .map(|p| {
            let fields = p["fields"].as_object().unwrap();
            let grid = policy::GridCode::parse(p["grid"].as_str().unwrap()).unwrap();
            (grid, category.parse_fields(fields).unwrap())
        })
        .collect();
    let started = Instant::now();
    for chunk in parsed.chunks(1000) {
        let sealed: Vec<_> = chunk
            .iter()
            .map(|(grid, values)| {
                let draft = gridhub::records::RecordDraft {
                    category,
                    grid: grid.clone(),
                    purpose: "population-registration".into(),
                    legal_basis: None,
                    retention_until: None,
                    collector: "bench".into(),
                    values: values.clone(),
                };
                gridhub::records::seal(&vault, draft).unwrap()
            })
            .collect();
        store.insert_records(&sealed, 0).await.unwrap();
    }
    let rate = people.len() as f64 / started.elapsed().as_secs_f64();
    store.close().await;
    app.stop().await;
    rate
}

#[tokio::main]
async fn main() {
    let n = rows_wanted();
    let grids = synth::grid_tree(SEED);
    let work = tempfile::tempdir().unwrap();
    let generated = Instant::now();
    let (csv, xlsx) = write_files(n, &grids, work.path());
    if let Ok(keep) = std::env::var("IMPORT_BENCH_KEEP") {
        std::fs::copy(&csv, Path::new(&keep).join("people.csv")).unwrap();
        std::fs::copy(&xlsx, Path::new(&keep).join("people.xlsx")).unwrap();
    }
    let size = |p: &Path| std::fs::metadata(p).unwrap().len() as f64 / 1e6;
    println!(
        "import: {n} person rows; CSV {:.0} MB, XLSX {:.0} MB (generated in {:.0} s)",
        size(&csv),
        size(&xlsx),
        generated.elapsed().as_secs_f64()
    );
    let sample: Vec<Value> = synth::population(SEED, 20_000, &grids)
        .into_iter()
        .filter(|r| r.category == "person")
        .map(|r| json!({"category": r.category, "grid": r.grid, "purpose": "population-registration", "fields": r.fields}))
        .collect();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let name = format!("{backend:?}").to_lowercase();
        for file in [&csv, &xlsx] {
            let kind = if file == &csv { "CSV " } else { "XLSX" };
            if !wanted(&format!("{name}-{}", kind.trim().to_lowercase())) {
                continue;
            }
            let app = app_with_grids(backend, &grids).await;
            let dir = app.data_dir.path().to_path_buf();
            let url = app.database_url.clone();
            let result = std::sync::Arc::new(std::sync::Mutex::new(None));
            let noted = result.clone();
            let file = file.clone();
            let app = app
                .restart_after(move || {
                    *noted.lock().unwrap() = Some(import(&dir, &url, &file));
                })
                .await;
            let (said, secs, rss, anon) = result.lock().unwrap().take().unwrap();
            println!(
                "{backend:?} {kind}: {:>7.0} rows/s, peak RSS {rss:.0} MB (anonymous {anon:.0} MB) ({said}; wall {secs:.1} s)",
                n as f64 / secs
            );
            app.stop().await;
        }
        if wanted(&format!("{name}-api")) {
            let api = batch_api(backend, &sample, &grids).await;
            println!("{backend:?} batch API (20 000 rows, 2 clients): {api:>7.0} records/s");
        }
        if wanted(&format!("{name}-ceiling")) {
            let raw = ceiling(backend, &sample, &grids).await;
            println!("{backend:?} seal + insert ceiling (20 000 rows): {raw:>7.0} records/s");
        }
    }
}
