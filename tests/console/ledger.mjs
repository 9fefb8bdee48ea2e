// Ledger and keys, the grant watchlist and who can see one record, in headless Chromium, for
// tests/api/console_ledger.rs (which sets the hub up, runs this script in two phases and checks
// on the hub's side what the browser showed). One JSON object per step on stdout; exits
// non-zero on the first failed check, naming it.
//
// Environment: HUB, SCREENS, DPO_USER/DPO_PASSWORD, WORKER_USER/WORKER_PASSWORD, PHASE
// (`intact`: every page in both languages and a verify that passes; `tampered`: a verify that
// must fail, and the watchlist after the clock moved), RECORD (a record id), CHUNK (entries
// per verify range).
import { HUB, env, report, check, session, login, accessible, shoot, run } from "./lib.mjs";

const PHASE = env("PHASE");
const CHUNK = env("CHUNK");

// Click "verify", wait for its outcome, and return what the page says.
async function verify(page) {
  await page.click("[data-verify-start]");
  await page.waitForFunction(() => {
    const r = document.querySelector("[data-verify]").dataset.result;
    return r === "verified" || r === "failed" || r === "error";
  });
  return page.$eval("[data-verify]", (s) => ({
    result: s.dataset.result,
    checked: s.dataset.checked === undefined ? null : Number(s.dataset.checked),
    bad_index: s.dataset.badIndex === undefined ? null : s.dataset.badIndex,
    ranges: Number(s.dataset.ranges),
    progress: Number(s.querySelector("progress").value),
    max: Number(s.querySelector("progress").max),
    status: s.querySelector("[data-verify-status]").textContent,
    live: s.querySelector("[data-verify-status]").getAttribute("aria-live"),
  }));
}

async function ledgerPage(page) {
  await page.goto(`${HUB}/console/ledger?chunk=${CHUNK}`);
  const checkpoint = await page.$eval("#checkpoint", (d) => ({
    size: Number(d.dataset.size),
    root: d.dataset.root,
    age_minutes: Number(d.querySelector("#checkpoint-age").textContent),
  }));
  const keys = await page.$$eval("table.keys tbody tr", (rows) =>
    rows.map((r) => ({
      category: r.dataset.category,
      version: Number(r.dataset.version),
      current: r.dataset.current === "true",
      deks: Number(r.dataset.deks),
    })),
  );
  return { checkpoint, keys };
}

async function watchlist(page) {
  await page.goto(`${HUB}/console/watchlist`);
  const lists = {};
  for (const key of ["expiring", "cases_closed", "unused"]) {
    lists[key] = await page.$$eval(`section[data-list="${key}"] tbody tr`, (rows) =>
      rows.map((r) => ({
        grant: r.dataset.grant,
        days_left: Number(r.dataset.daysLeft),
        idle_days: Number(r.dataset.idleDays),
        link: r.querySelector("a").getAttribute("href"),
      })),
    );
  }
  return lists;
}

async function recordVisibility(page) {
  await page.goto(`${HUB}/console/visibility`);
  await page.fill("#record", env("RECORD"));
  await Promise.all([page.waitForNavigation(), page.click("section.reach button[type=submit]")]);
  const rows = await page.$$eval("table.reach tbody tr", (trs) =>
    trs.map((r) => ({
      department: r.dataset.department,
      purpose: r.dataset.purpose,
      case: r.dataset.case,
      fields: Array.from(r.querySelectorAll("li[data-field]"), (li) => ({
        field: li.dataset.field,
        level: li.dataset.level,
        grant: li.dataset.grant,
      })),
    })),
  );
  const text = await page.textContent("main");
  return { rows, text };
}

await run(async () => {
  if (PHASE === "intact") {
    // --- A grid worker: a 403 page on each page of this part (audited by the hub).
    {
      const { context, page } = await session("zh");
      await login(page, env("WORKER_USER"), env("WORKER_PASSWORD"));
      const statuses = {};
      for (const path of ["/console/ledger", "/console/watchlist", `/console/visibility?record=${env("RECORD")}`]) {
        const response = await page.goto(`${HUB}${path}`);
        statuses[path] = response.status();
        check(response.status() === 403, `worker on ${path}: HTTP ${response.status()}`);
        check((await page.textContent("main")).includes("无权访问"), `worker on ${path}: no 403 page`);
      }
      report("worker_forbidden", { statuses });
      await context.close();
    }

    // --- The DPO, in both languages: every page, screenshots, accessibility, the actions.
    for (const lang of ["zh", "en"]) {
      const { context, page } = await session(lang);
      await login(page, env("DPO_USER"), env("DPO_PASSWORD"));
      const nav = await page.$$eval("header nav a", (as) => as.map((a) => a.getAttribute("href")));
      check(nav.includes("/console/ledger") && nav.includes("/console/watchlist"), `navigation: ${nav}`);
      const { checkpoint, keys } = await ledgerPage(page);
      await shoot(page, "ledger", lang);
      await accessible(page, `ledger.${lang}`);
      const outcome = await verify(page);
      check(outcome.result === "verified", `verify: ${JSON.stringify(outcome)}`);
      check(outcome.progress === outcome.max, `progress at 100 %: ${outcome.progress}/${outcome.max}`);
      check(outcome.live === "polite", "the outcome is in a live region");
      check(outcome.status.includes(String(outcome.checked)), `the count is shown: ${outcome.status}`);
      check(outcome.ranges > 1, `verified in several ranges: ${outcome.ranges}`);
      await shoot(page, "ledger-verified", lang);
      await accessible(page, `ledger-verified.${lang}`);
      report("ledger", { lang, checkpoint, keys, verify: outcome });

      const lists = await watchlist(page);
      await shoot(page, "watchlist", lang);
      await accessible(page, `watchlist.${lang}`);
      for (const rows of Object.values(lists)) {
        for (const row of rows) check(row.link === `/console/grants/${row.grant}`, `link of ${row.grant}`);
      }
      report("watchlist", { lang, lists });
      // Each row leads to the grant's page, where the DPO can act on it.
      const first = lists.expiring[0];
      check(first, "something expires soon");
      await Promise.all([page.waitForNavigation(), page.click(`section[data-list="expiring"] a[href="${first.link}"]`)]);
      check(page.url().endsWith(first.link), `grant page: ${page.url()}`);

      const seen = await recordVisibility(page);
      await shoot(page, "visibility-record", lang);
      await accessible(page, `visibility-record.${lang}`);
      report("record_visibility", { lang, rows: seen.rows });
      await context.close();
    }
  } else {
    // --- After the test altered one stored entry and moved the clock 31 days.
    const { context, page } = await session("zh");
    await login(page, env("DPO_USER"), env("DPO_PASSWORD"));
    const { checkpoint } = await ledgerPage(page);
    const outcome = await verify(page);
    check(outcome.result === "failed", `verify after tampering: ${JSON.stringify(outcome)}`);
    await shoot(page, "ledger-tampered", "zh");
    await accessible(page, "ledger-tampered.zh");
    report("tampered", { checkpoint, verify: outcome });
    const lists = await watchlist(page);
    await shoot(page, "watchlist-later", "zh");
    report("watchlist_later", { lists });
    await context.close();
  }
});
