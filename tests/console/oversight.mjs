// The console's anomalies and charts pages (issue 20, item 7), for tests/api/console_oversight.rs,
// which sets the hub up, runs this script, and checks on the hub's side what the browser did.
// This script checks what the browser sees and reports what the charts' tables show; it prints
// one JSON object per step and exits non-zero on the first failed check.
//
// Environment (besides lib.mjs's): ANOMALY (the id of an open anomaly), NOTE (to resolve it with).
import { HUB, env, report, check, session, login, accessible, shoot, run } from "./lib.mjs";

const ANOMALY = env("ANOMALY");
const NOTE = env("NOTE");
const card = `section.anomaly[data-anomaly="${ANOMALY}"]`;

await run(async () => {
  // --- Both pages in both languages: screenshots and accessibility.
  for (const lang of ["zh", "en"]) {
    const { context, page } = await session(lang);
    await login(page, env("DPO_USER"), env("DPO_PASSWORD"));
    let response = await page.goto(`${HUB}/console/anomalies`);
    check(response.status() === 200, `anomalies ${lang}: HTTP ${response.status()}`);
    check((await page.getAttribute("html", "lang")) === (lang === "zh" ? "zh-CN" : "en"), "page language");
    check((await page.textContent("h1")).includes(lang === "zh" ? "异常情况" : "Anomalies"), `anomalies ${lang}: title`);
    check((await page.getAttribute(card, "data-state")) === "open", `anomalies ${lang}: the anomaly is open`);
    check((await page.$$(`${card} ul.entries a[href^="/console/audit/entries/"]`)).length === 5, "five entry links");
    await shoot(page, "anomalies", lang);
    await accessible(page, `anomalies.${lang}`);
    response = await page.goto(`${HUB}/console/charts`);
    check(response.status() === 200, `charts ${lang}: HTTP ${response.status()}`);
    for (const id of ["disclosures-chart", "denials-chart", "consumers-chart"]) {
      check((await page.getAttribute(`svg#${id}`, "role")) === "img", `${id} is an image`);
      check((await page.textContent(`svg#${id} > title`)).length > 0, `${id} has a title`);
    }
    await page.$$eval("details", (all) => all.forEach((d) => (d.open = true)));
    await shoot(page, "charts", lang);
    await accessible(page, `charts.${lang}`);
    await context.close();
  }

  // --- The charts' figures, as the tables and the SVG show them.
  const { context, page } = await session("zh");
  await login(page, env("DPO_USER"), env("DPO_PASSWORD"));
  await page.goto(`${HUB}/console/charts`);
  const cells = await page.$$eval("#disclosures-table tbody tr", (rows) =>
    rows.flatMap((tr) =>
      [...tr.querySelectorAll("td[data-department]")].map((td) => ({
        day: tr.dataset.day,
        department: td.dataset.department,
        value: Number(td.dataset.value),
      })),
    ),
  );
  const bars = await page.$$eval("svg#disclosures-chart rect.bar", (rects) =>
    rects.reduce((sum, r) => sum + Number(r.dataset.value), 0),
  );
  report("chart_disclosures", { cells, bars });
  const values = await page.$$eval("#denials-table tbody td", (tds) => tds.map((td) => Number(td.dataset.value)));
  const denialBars = await page.$$eval("svg#denials-chart rect.bar", (rects) =>
    rects.reduce((sum, r) => sum + Number(r.dataset.value), 0),
  );
  check(denialBars === values.reduce((a, b) => a + b, 0), "the denial bars add up to the table");
  report("chart_denials", { values });
  const rows = await page.$$eval("#consumers-table tbody tr", (trs) =>
    trs.map((tr) => ({ actor: tr.dataset.actor, records: Number(tr.querySelector("td[data-records]").dataset.records) })),
  );
  report("chart_consumers", { rows });
  const cases = await page.$$eval("#cases-table tbody tr", (trs) =>
    trs.map((tr) => ({
      department: tr.dataset.department,
      open: Number(tr.querySelector("td[data-open]").dataset.open),
      overdue: Number(tr.querySelector("td[data-overdue]").dataset.overdue),
    })),
  );
  check((await page.getAttribute("svg#cases-chart", "role")) === "img", "the cases chart is an image");
  report("chart_cases", { rows: cases });

  // --- Acknowledge, then resolve: without a note (refused, the page says so), then with one.
  await page.goto(`${HUB}/console/anomalies`);
  await Promise.all([page.waitForNavigation(), page.click(`${card} form.acknowledge button`)]);
  check(page.url().includes("done=acknowledged"), `after acknowledging: ${page.url()}`);
  check((await page.getAttribute(card, "data-state")) === "acknowledged", "acknowledged");
  check((await page.textContent("p.notice[role=status]")).includes("已确认"), "the acknowledgement notice");
  check((await page.$(`${card} form.acknowledge`)) === null, "no second acknowledgement");

  // The browser would not send an empty required box; take the attribute away as a hand-made
  // request would.
  await page.$eval(`${card} form.resolve textarea`, (t) => t.removeAttribute("required"));
  const [refused] = await Promise.all([
    page.waitForNavigation(),
    page.click(`${card} form.resolve button`),
  ]);
  const alert = await page.textContent("p.notice[role=alert]");
  const stateAfter = await page.getAttribute(card, "data-state");
  report("resolve_without_note", { status: refused.status(), alert, state: stateAfter });
  check(refused.status() === 422, `resolve without a note: HTTP ${refused.status()}`);
  check(alert.includes("必须填写处理说明"), `the page says why: ${alert}`);
  check(stateAfter === "acknowledged", "nothing changed");

  await page.fill(`${card} form.resolve textarea`, NOTE);
  await Promise.all([page.waitForNavigation(), page.click(`${card} form.resolve button`)]);
  check(page.url().includes("done=resolved"), `after resolving: ${page.url()}`);
  check((await page.getAttribute(card, "data-state")) === "resolved", "resolved");
  const history = await page.$$eval(`${card} table.history tbody tr`, (trs) =>
    trs.map((tr) => ({ step: tr.dataset.step, text: tr.textContent })),
  );
  report("review_history", { history });
  check(history.length === 2 && history[1].text.includes(NOTE), "the history shows both steps and the note");
  check((await page.$(`${card} form`)) === null, "no forms once resolved");
  await shoot(page, "anomaly-resolved", "zh");
  await accessible(page, "anomaly-resolved.zh");
  await context.close();
});
