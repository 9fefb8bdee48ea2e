//! Printing: the table rows of the load phases and the profile's steps.

use crate::loadgen::Outcome;
use crate::profile::{Kind, Step};
use crate::queries;

pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn print_header() {
    println!(
        "  {:<34} {:>4} {:>8} {:>9} {:>10} {:>6} {:>7} {:>7} {:>7} {:>9} {:>9} {:>5} {:>5}",
        "",
        "conc",
        "pages/s",
        "records/s",
        "fields/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "% ceil",
        "hub µs/pg",
        "gen µs/pg",
        "PG",
        "other"
    );
}

pub fn print_row(label: &str, conc: usize, o: &Outcome, ceiling: Option<f64>) {
    let (hub, gen_) = o.cpu_per_page_us();
    let other = (o.cpu.machine - o.cpu.process - o.cpu.postgres) / o.secs;
    println!(
        "  {label:<34} {conc:>4} {:>8.0} {:>9.0} {:>10.0} {:>6.1} {:>7.2} {:>7.2} {:>7} \
         {hub:>9.0} {gen_:>9.0} {:>5.2} {other:>5.2}",
        o.rate(o.pages),
        o.rate(o.records),
        o.rate(o.fields),
        o.rate(o.bytes) / 1e6,
        o.percentile_ms(0.5),
        o.percentile_ms(0.99),
        ceiling.map_or("—".to_owned(), |c| format!(
            "{:.1}",
            100.0 * o.rate(o.pages) / c
        )),
        o.cpu.postgres / o.secs,
    );
    let mut threads: Vec<(&String, &f64)> = o.cpu.threads.iter().collect();
    threads.sort_by(|a, b| b.1.total_cmp(a.1));
    let threads: Vec<String> = threads
        .iter()
        .filter(|(_, t)| **t / o.secs >= 0.02)
        .map(|(name, t)| format!("{name} {:.2}", **t / o.secs))
        .collect();
    println!("      cores by thread: {}", threads.join(", "));
}

pub fn print_split(s: &queries::Split) {
    println!(
        "  read 100 records, by statement (own connection, median µs): the hub's page statement \
         {:.0} ({} rows with their sealed fields); for comparison, the rows alone {:.0}, and \
         every token of the page (read only for a row filter) {:.0} ({} rows)",
        s.page_us, s.rows[0], s.bare_us, s.tokens_us, s.rows[1]
    );
    for line in &s.plan {
        println!("    plan: {line}");
    }
}

pub fn print_steps(steps: &[Step]) {
    println!(
        "  {:<46} {:>6} {:>10} {:>10} {:>10}",
        "step (in-process, one call at a time)", "/page", "median µs", "p99 µs", "µs/page"
    );
    let mut hub = 0.0;
    for s in steps {
        println!(
            "  {:<46} {:>6.0} {:>10.1} {:>10.1} {:>10.1}",
            s.label,
            s.per_page,
            s.median_us,
            s.p99_us,
            s.page_us()
        );
        if s.kind == Kind::Hub {
            hub += s.page_us();
        }
    }
    println!(
        "  {:<46} {:>6} {:>10} {:>10} {hub:>10.1}",
        "sum of the hub's steps, plain page", "", "", ""
    );
}
