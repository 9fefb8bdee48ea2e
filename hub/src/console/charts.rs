//! The charts page (`/console/charts`): disclosures per department per Beijing day and denials
//! per day over the last 14 days, the top consumers by records disclosed, and open and overdue
//! cases per department now — the figures of `Oversight::activity`, the method behind
//! `GET /v1/audit/activity` (same check, same `audit.activity` entry). Each chart is inline SVG
//! drawn here (no library, no CDN; no `style` attribute: colours are CSS classes), named with
//! `role="img"`, a title and a description, with the same figures in a table below it for
//! screen readers and for anyone who would rather read. Bars carry their figure in
//! `data-value`. Departments and clients by id only.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};

use super::i18n::{Lang, Text};
use super::layout::{ConsoleError, InLang, Shell, ok};
use super::session::ConsoleUser;
use crate::oversight::Activity;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/charts", get(page))
}

/// Days the charts cover.
const DAYS: u32 = 14;
/// Colour classes (`assets/console.css`, "Oversight: charts"); series beyond repeat them.
const SERIES: usize = 8;

async fn page(State(state): State<AppState>, user: ConsoleUser) -> Result<Response, ConsoleError> {
    let lang = user.lang;
    state
        .oversight
        .admit(&user.principal, "audit.activity")
        .await
        .in_lang(lang)?;
    let now = state.clock.now_ms();
    let activity = state
        .oversight
        .activity(&user.principal, DAYS, now)
        .await
        .in_lang(lang)?;
    let shell = Shell::of(&state, &user, "/console/charts").await;
    let body = html! {
        p { (lang.t(Text::ChartExplained)) }
        @if activity.truncated { p.notice { (lang.t(Text::ChartTruncated)) } }
        (disclosures(lang, &activity))
        (denials(lang, &activity))
        (consumers(lang, &activity))
        (cases(lang, &activity))
    };
    Ok(ok(shell.page(lang.t(Text::ChartTitle), body)))
}

/// A bar: its series (colour), figure and what the figure is of (for `data-*`).
struct Bar {
    series: usize,
    value: u64,
    label: String,
}

/// A column of bars, stacked or side by side, under one label.
struct Column {
    label: String,
    bars: Vec<Bar>,
}

const WIDTH: u64 = 720;
const HEIGHT: u64 = 220;
const LEFT: u64 = 44;
const BOTTOM: u64 = 36;
const TOP: u64 = 12;

/// An SVG column chart named by `title` and `desc` (ids `<id>-title`, `<id>-desc`).
fn column_chart(id: &str, title: &str, desc: &str, columns: &[Column], stacked: bool) -> Markup {
    let height_of = |c: &Column| -> u64 {
        if stacked {
            c.bars.iter().map(|b| b.value).sum()
        } else {
            c.bars.iter().map(|b| b.value).max().unwrap_or(0)
        }
    };
    let max = columns.iter().map(height_of).max().unwrap_or(0).max(1);
    let plot_h = HEIGHT - BOTTOM - TOP;
    let base = HEIGHT - BOTTOM;
    let n = u64::try_from(columns.len()).unwrap_or(1).max(1);
    let slot = (WIDTH - LEFT - 8) / n;
    let scale = |v: u64| v * plot_h / max;
    html! {
        svg.chart id=(id) viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
            aria-labelledby={ (id) "-title " (id) "-desc" } data-max=(max) {
            title id={ (id) "-title" } { (title) }
            desc id={ (id) "-desc" } { (desc) }
            line.axis x1=(LEFT) y1=(base) x2=(WIDTH - 4) y2=(base) {}
            line.grid x1=(LEFT) y1=(TOP) x2=(WIDTH - 4) y2=(TOP) {}
            text.tick x=(LEFT - 6) y=(TOP + 4) text-anchor="end" { (max) }
            text.tick x=(LEFT - 6) y=(base) text-anchor="end" { "0" }
            @for (i, column) in columns.iter().enumerate() {
                @let x0 = LEFT + u64::try_from(i).unwrap_or(0) * slot;
                @let inner = slot * 7 / 10;
                @let pad = (slot - inner) / 2;
                g.column data-label=(column.label) {
                    @if stacked {
                        @for (bar, top, h) in stack(&column.bars, base, &scale) {
                            rect class={ "bar s" (bar.series % SERIES) } x=(x0 + pad) y=(top)
                                width=(inner.max(1)) height=(h) data-series=(bar.label)
                                data-value=(bar.value) {
                                title { (column.label) " · " (bar.label) ": " (bar.value) }
                            }
                        }
                    } @else {
                        @let k = u64::try_from(column.bars.len()).unwrap_or(1).max(1);
                        @let w = (inner / k).max(1);
                        @for (j, bar) in column.bars.iter().enumerate() {
                            @let h = if bar.value > 0 { scale(bar.value).max(1) } else { 0 };
                            rect class={ "bar s" (bar.series % SERIES) }
                                x=(x0 + pad + u64::try_from(j).unwrap_or(0) * w) y=(base - h)
                                width=(w) height=(h) data-series=(bar.label) data-value=(bar.value) {
                                title { (column.label) " · " (bar.label) ": " (bar.value) }
                            }
                        }
                    }
                    text.label x=(x0 + slot / 2) y=(base + 16) text-anchor="middle" {
                        (short(&column.label))
                    }
                }
            }
        }
    }
}

/// The bars of a stacked column with a figure, bottom up: each with its top and height (at
/// least 1, so a small figure stays visible).
fn stack<'a>(bars: &'a [Bar], base: u64, scale: &dyn Fn(u64) -> u64) -> Vec<(&'a Bar, u64, u64)> {
    let mut y = base;
    bars.iter()
        .filter(|b| b.value > 0)
        .map(|bar| {
            let h = scale(bar.value).max(1);
            let top = y.saturating_sub(h);
            y = top;
            (bar, top, h)
        })
        .collect()
}

/// A label short enough to sit under a column (`MM-DD` of a day; ids cut at 12 characters).
fn short(label: &str) -> String {
    if label.len() == 10 && label.as_bytes().get(4) == Some(&b'-') {
        return label.get(5..).unwrap_or(label).to_owned();
    }
    let mut s: String = label.chars().take(12).collect();
    if label.chars().count() > 12 {
        s.push('…');
    }
    s
}

/// The legend of a chart's series (colour swatches are CSS classes).
fn legend(names: &[(usize, String)]) -> Markup {
    html! {
        ul.legend {
            @for (series, name) in names {
                li { span class={ "swatch s" (series % SERIES) } aria-hidden="true" {} (name) }
            }
        }
    }
}

fn disclosures(lang: Lang, a: &Activity) -> Markup {
    let columns: Vec<Column> = a
        .days
        .iter()
        .enumerate()
        .map(|(i, day)| Column {
            label: day.clone(),
            bars: a
                .departments
                .iter()
                .enumerate()
                .map(|(s, d)| Bar {
                    series: s,
                    value: d.disclosures.get(i).copied().unwrap_or(0),
                    label: d.department.clone(),
                })
                .collect(),
        })
        .collect();
    let total: u64 = a
        .departments
        .iter()
        .flat_map(|d| d.disclosures.iter())
        .sum();
    let names: Vec<(usize, String)> = a
        .departments
        .iter()
        .enumerate()
        .map(|(s, d)| (s, d.department.clone()))
        .collect();
    html! {
        section.chart-block aria-labelledby="disclosures-h" {
            h2 #disclosures-h { (lang.t(Text::ChartDisclosures)) }
            (column_chart("disclosures-chart", lang.t(Text::ChartDisclosures),
                &format!("{} {} – {}: {} {}", lang.t(Text::ChartTotal), first(&a.days), last(&a.days), total, lang.t(Text::ChartDisclosureCount)),
                &columns, true))
            (legend(&names))
            details {
                summary { (lang.t(Text::ChartFigures)) }
                table.figures #disclosures-table {
                    caption { (lang.t(Text::ChartDisclosures)) }
                    thead { tr {
                        th scope="col" { (lang.t(Text::ChartDay)) }
                        @for d in &a.departments { th scope="col" { (d.department) } }
                        th scope="col" { (lang.t(Text::ChartTotal)) }
                    } }
                    tbody {
                        @for (i, day) in a.days.iter().enumerate() {
                            tr data-day=(day) {
                                th scope="row" { (day) }
                                @for d in &a.departments {
                                    @let v = d.disclosures.get(i).copied().unwrap_or(0);
                                    td data-department=(d.department) data-value=(v) { (v) }
                                }
                                td { (a.departments.iter().map(|d| d.disclosures.get(i).copied().unwrap_or(0)).sum::<u64>()) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn first(days: &[String]) -> &str {
    days.first().map_or("", String::as_str)
}

fn last(days: &[String]) -> &str {
    days.last().map_or("", String::as_str)
}

fn denials(lang: Lang, a: &Activity) -> Markup {
    let columns: Vec<Column> = a
        .days
        .iter()
        .zip(&a.denials)
        .map(|(day, v)| Column {
            label: day.clone(),
            bars: vec![Bar {
                series: 3,
                value: *v,
                label: lang.t(Text::Deny).to_owned(),
            }],
        })
        .collect();
    let total: u64 = a.denials.iter().sum();
    html! {
        section.chart-block aria-labelledby="denials-h" {
            h2 #denials-h { (lang.t(Text::ChartDenials)) }
            (column_chart("denials-chart", lang.t(Text::ChartDenials),
                &format!("{} {} – {}: {}", lang.t(Text::ChartTotal), first(&a.days), last(&a.days), total),
                &columns, true))
            details {
                summary { (lang.t(Text::ChartFigures)) }
                table.figures #denials-table {
                    caption { (lang.t(Text::ChartDenials)) }
                    thead { tr {
                        th scope="col" { (lang.t(Text::ChartDay)) }
                        th scope="col" { (lang.t(Text::Deny)) }
                    } }
                    tbody {
                        @for (day, v) in a.days.iter().zip(&a.denials) {
                            tr data-day=(day) { th scope="row" { (day) } td data-value=(v) { (v) } }
                        }
                    }
                }
            }
        }
    }
}

fn consumers(lang: Lang, a: &Activity) -> Markup {
    let columns: Vec<Column> = a
        .top_consumers
        .iter()
        .map(|c| Column {
            // `client:` is every consumer's prefix but a user's: the id alone fits under a bar.
            label: c
                .actor
                .strip_prefix("client:")
                .unwrap_or(&c.actor)
                .to_owned(),
            bars: vec![Bar {
                series: 0,
                value: c.records,
                label: lang.t(Text::Records).to_owned(),
            }],
        })
        .collect();
    html! {
        section.chart-block aria-labelledby="consumers-h" {
            h2 #consumers-h { (lang.t(Text::ChartTopConsumers)) }
            @if columns.is_empty() {
                p { (lang.t(Text::ChartNoData)) }
            } @else {
                (column_chart("consumers-chart", lang.t(Text::ChartTopConsumers),
                    &a.top_consumers.iter().map(|c| format!("{}: {}", c.actor, c.records)).collect::<Vec<_>>().join("; "),
                    &columns, true))
            }
            details {
                summary { (lang.t(Text::ChartFigures)) }
                table.figures #consumers-table {
                    caption { (lang.t(Text::ChartTopConsumers)) }
                    thead { tr {
                        th scope="col" { (lang.t(Text::ChartClient)) }
                        th scope="col" { (lang.t(Text::Department)) }
                        th scope="col" { (lang.t(Text::Records)) }
                        th scope="col" { (lang.t(Text::ChartDisclosureCount)) }
                    } }
                    tbody {
                        @for c in &a.top_consumers {
                            tr data-actor=(c.actor) {
                                th scope="row" { code { (c.actor) } }
                                td { (c.department.as_deref().unwrap_or("")) }
                                td data-records=(c.records) { (c.records) }
                                td data-disclosures=(c.disclosures) { (c.disclosures) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn cases(lang: Lang, a: &Activity) -> Markup {
    let columns: Vec<Column> = a
        .cases
        .iter()
        .map(|c| Column {
            label: c.department.clone(),
            bars: vec![
                Bar {
                    series: 1,
                    value: c.open,
                    label: lang.t(Text::ChartOpen).to_owned(),
                },
                Bar {
                    series: 3,
                    value: c.overdue,
                    label: lang.t(Text::ChartOverdue).to_owned(),
                },
            ],
        })
        .collect();
    html! {
        section.chart-block aria-labelledby="cases-h" {
            h2 #cases-h { (lang.t(Text::ChartCases)) }
            @if columns.is_empty() {
                p { (lang.t(Text::ChartNoData)) }
            } @else {
                (column_chart("cases-chart", lang.t(Text::ChartCases),
                    &a.cases.iter().map(|c| format!("{}: {} / {}", c.department, c.open, c.overdue)).collect::<Vec<_>>().join("; "),
                    &columns, false))
                (legend(&[(1, lang.t(Text::ChartOpen).to_owned()), (3, lang.t(Text::ChartOverdue).to_owned())]))
            }
            details {
                summary { (lang.t(Text::ChartFigures)) }
                table.figures #cases-table {
                    caption { (lang.t(Text::ChartCases)) }
                    thead { tr {
                        th scope="col" { (lang.t(Text::Department)) }
                        th scope="col" { (lang.t(Text::ChartOpen)) }
                        th scope="col" { (lang.t(Text::ChartOverdue)) }
                    } }
                    tbody {
                        @for c in &a.cases {
                            tr data-department=(c.department) {
                                th scope="row" { (c.department) }
                                td data-open=(c.open) { (c.open) }
                                td data-overdue=(c.overdue) { (c.overdue) }
                            }
                        }
                    }
                }
            }
        }
    }
}
