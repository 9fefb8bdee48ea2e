// Drives the console in Debian's headless Chromium for tests/api/console.rs, which sets the
// hub up, runs this script, and checks on the hub's side what the browser did. This script
// checks what the browser sees; it prints one JSON object per step on stdout ({"step": …}) and
// exits non-zero on the first failure, naming it.
//
// Environment: HUB (https://localhost:PORT), DPO_USER/DPO_PASSWORD, ADMIN_USER/ADMIN_PASSWORD,
// WORKER_USER/WORKER_PASSWORD, DEPARTMENT (to filter by), SINCE/UNTIL (datetime-local,
// Beijing time), APPROVE_GRANT, REJECT_GRANT, SCREENS (directory for screenshots).
import { readFileSync } from "node:fs";
import { HUB, SCREENS, env, report, check, browser, session, login, accessible, shoot } from "./lib.mjs";

try {
  // --- A grid worker can open no DPO or admin page: a 403 page each time (audited by the hub).
  {
    const { context, page } = await session("zh");
    await login(page, env("WORKER_USER"), env("WORKER_PASSWORD"));
    const statuses = {};
    for (const path of ["/console/audit", "/console/grants", "/console/roles"]) {
      const response = await page.goto(`${HUB}${path}`);
      statuses[path] = response.status();
      check(response.status() === 403, `worker on ${path}: HTTP ${response.status()}`);
      check((await page.textContent("main")).includes("无权访问"), `worker on ${path}: no 403 page`);
    }
    report("worker_forbidden", { statuses });
    await context.close();
  }

  // --- The DPO, in both languages: pages, screenshots, accessibility.
  for (const lang of ["zh", "en"]) {
    const { context, page } = await session(lang);
    await login(page, env("DPO_USER"), env("DPO_PASSWORD"));
    check(page.url().endsWith("/console/"), `after login: ${page.url()}`);
    check((await page.getAttribute("html", "lang")) === (lang === "zh" ? "zh-CN" : "en"), "page language");
    await shoot(page, "overview", lang);
    await accessible(page, `overview.${lang}`);
    await page.goto(`${HUB}/console/audit`);
    await shoot(page, "audit", lang);
    await accessible(page, `audit.${lang}`);
    await page.goto(`${HUB}/console/grants`);
    await shoot(page, "grants", lang);
    await accessible(page, `grants.${lang}`);
    await context.close();
  }

  // --- The DPO filters the ledger, opens a disclosure, checks its proof, exports the view.
  const { context, page } = await session("zh");
  await login(page, env("DPO_USER"), env("DPO_PASSWORD"));
  await page.goto(`${HUB}/console/audit`);
  await page.fill("#department", env("DEPARTMENT"));
  await page.fill("#since", env("SINCE"));
  await page.fill("#until", env("UNTIL"));
  await Promise.all([page.waitForNavigation(), page.click("form.filters button[type=submit]")]);
  const filtered = [];
  for (;;) {
    filtered.push(
      ...(await page.$$eval("table.entries tbody tr", (rows) => rows.map((r) => Number(r.dataset.index)))),
    );
    const next = await page.$("a[rel=next]");
    if (!next) break;
    await Promise.all([page.waitForNavigation(), next.click()]);
  }
  report("filtered", { indices: filtered });
  check(filtered.length > 0, "the filter matched nothing");
  const filterUrl = page.url();

  // Exports follow the active filter.
  for (const format of ["jsonl", "csv"]) {
    await page.goto(filterUrl);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.click(`a[href*="format=${format}"]`),
    ]);
    const text = readFileSync(await download.path(), "utf8");
    const lines = text.split("\n").filter(Boolean);
    const indices =
      format === "jsonl"
        ? lines.map((l) => JSON.parse(l).index)
        : lines.slice(1).map((l) => Number(l.split(",")[0]));
    report("export", { format, indices });
  }

  // The evidence bundle of the view, for `gridhub audit verify --bundle` (the test runs it).
  {
    await page.goto(filterUrl);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.click('a[href^="/console/audit/bundle"]'),
    ]);
    const path = `${SCREENS}/evidence.json`;
    await download.saveAs(path);
    const bundle = JSON.parse(readFileSync(path, "utf8"));
    report("bundle", { path, indices: bundle.entries.map((e) => e.index) });
  }

  // A disclosure: its inclusion proof verifies in the browser…
  await page.goto(filterUrl);
  const link = await page.$("table.entries tbody tr:has(code:text-is('data.read')):has(span.allow) a");
  check(link, "no data.read entry in the filtered view");
  const entryUrl = HUB + (await link.getAttribute("href"));
  await page.goto(entryUrl);
  await page.waitForSelector("[data-proof][data-result=verified], [data-proof][data-result=failed]");
  const verified = await page.getAttribute("[data-proof]", "data-result");
  report("proof", { url: entryUrl, result: verified, shown: await page.textContent("[data-proof-status]") });
  check(verified === "verified", `proof of a genuine entry: ${verified}`);
  await shoot(page, "entry", "zh");
  await accessible(page, "entry.zh");

  // Lineage: from the disclosure to its grant, its approval and its signed artefact.
  await Promise.all([page.waitForNavigation(), page.click('main a[href^="/console/grants/"]')]);
  const history = await page.$$eval("table.history tbody tr", (rows) =>
    rows.map((r) => Array.from(r.cells, (c) => c.textContent.trim())),
  );
  const artefact = await page.$$eval("pre.canonical", (p) => p.map((x) => x.textContent));
  report("lineage", { url: page.url(), history, artefact_shown: artefact.length > 0 });
  check(history.some((row) => row[2] === "approve"), `no approval in ${JSON.stringify(history)}`);
  check(artefact.length > 0 && artefact[0].includes('"grantee"'), "the artefact's payload");
  await shoot(page, "grant", "zh");
  await accessible(page, "grant.zh");

  // …and the proof check fails when the proof is tampered with in transit.
  await page.route("**/v1/audit/proofs/inclusion**", async (route) => {
    const response = await route.fetch();
    const proof = await response.json();
    const first = Buffer.from(proof.proof[0], "base64");
    first[0] ^= 0x01;
    proof.proof[0] = first.toString("base64");
    await route.fulfill({ response, json: proof });
  });
  await page.goto(entryUrl);
  await page.waitForSelector("[data-proof][data-result=verified], [data-proof][data-result=failed]");
  const tampered = await page.getAttribute("[data-proof]", "data-result");
  report("tampered_proof", { result: tampered, shown: await page.textContent("[data-proof-status]") });
  check(tampered === "failed", `tampered proof: ${tampered}`);
  await page.unroute("**/v1/audit/proofs/inclusion**");

  // The ledger key rotates (an administrator, over the API). The key this browser pinned at the
  // first proof is followed through the transition statement (signed by the old key and the
  // new) to the new key: the proof verifies again and the pin moves…
  const pinned = await page.evaluate(() => localStorage.getItem("gridhub.ledger-key"));
  check(pinned, "no ledger key pinned after a verified proof");
  const rotation = await page.request.post(`${HUB}/v1/admin/ledger-key/rotate`, {
    headers: { authorization: `Bearer ${env("ADMIN_TOKEN")}` },
    data: {},
  });
  check(rotation.ok(), `ledger key rotation: HTTP ${rotation.status()}`);
  const newKey = (await rotation.json()).verifier;
  check(newKey && newKey !== pinned, `a new ledger key: ${newKey}`);
  await page.goto(entryUrl);
  await page.waitForSelector("[data-proof][data-result=verified], [data-proof][data-result=failed]");
  const followed = await page.getAttribute("[data-proof]", "data-result");
  const repinned = await page.evaluate(() => localStorage.getItem("gridhub.ledger-key"));
  report("rotated_key", {
    result: followed,
    shown: await page.textContent("[data-proof-status]"),
    pinned_before: pinned,
    pinned_after: repinned,
  });
  check(followed === "verified", `proof after a ledger key rotation: ${followed}`);
  check(repinned === newKey, `the pin moved to the new key: ${repinned}`);
  // …while a pinned key that no statement leads from fails it.
  await page.evaluate(() => localStorage.setItem("gridhub.ledger-key", "gridhub/other+00000000+AQ=="));
  await page.goto(entryUrl);
  await page.waitForSelector("[data-proof][data-result=verified], [data-proof][data-result=failed]");
  const foreign = await page.getAttribute("[data-proof]", "data-result");
  report("foreign_pin", { result: foreign });
  check(foreign === "failed", `a pin no transition leads from: ${foreign}`);
  await page.evaluate((key) => localStorage.setItem("gridhub.ledger-key", key), newKey);

  // --- The subject access report of one record, on screen and as printed.
  await page.goto(`${HUB}/console/subjects`);
  await page.fill("#record", env("RECORD"));
  await Promise.all([page.waitForNavigation(), page.click("form.filters button")]);
  const subject = await page.$$eval("table.disclosures tbody tr td:last-child a", (links) =>
    links.map((a) => Number(a.textContent)),
  );
  report("subject", { indices: subject });
  await shoot(page, "subject", "zh");
  await accessible(page, "subject.zh");
  await page.emulateMedia({ media: "print" });
  await shoot(page, "subject-print", "zh");
  await page.emulateMedia({ media: "screen" });

  // --- The grant queue: approve one; reject one without a reason (refused).
  await page.goto(`${HUB}/console/grants`);
  const approveForm = `section[data-grant="${env("APPROVE_GRANT")}"] form[action$="/approve"] button`;
  await Promise.all([page.waitForNavigation(), page.click(approveForm)]);
  check(page.url().includes("done=approved"), `after approve: ${page.url()}`);
  report("approved", { grant: env("APPROVE_GRANT") });

  // Who can see persons' names now: both grants in force, at their levels.
  await page.goto(`${HUB}/console/visibility?category=person&field=name`);
  const visible = await page.$$eval("table.visibility tbody tr", (rows) =>
    rows.map((r) => ({
      department: r.cells[0].textContent.trim(),
      level: r.cells[2].textContent.trim(),
      grant: r.cells[6].textContent.trim(),
    })),
  );
  report("visibility", { rows: visible });
  await shoot(page, "visibility", "zh");
  await accessible(page, "visibility.zh");
  await page.goto(`${HUB}/console/grants`);

  const reject = `section[data-grant="${env("REJECT_GRANT")}"]`;
  // The browser would not send an empty required box; take the attribute away as a hand-made
  // request would, so that the hub's own refusal is what is tested.
  await page.$eval(`${reject} textarea`, (t) => t.removeAttribute("required"));
  const [rejected] = await Promise.all([
    page.waitForNavigation(),
    page.click(`${reject} form[action$="/reject"] button`),
  ]);
  report("reject_without_reason", { status: rejected.status() });
  check(rejected.status() === 422, `reject without a reason: HTTP ${rejected.status()}`);

  // --- CSRF: a form post without the token, or from another origin, is refused.
  const noToken = await page.request.post(`${HUB}/console/grants/${env("REJECT_GRANT")}/approve`, {
    form: { reason: "" },
    headers: { origin: HUB },
  });
  const csrf = await page.evaluate(() => document.querySelector("input[name=csrf]")?.value);
  const otherOrigin = await page.request.post(`${HUB}/console/grants/${env("REJECT_GRANT")}/approve`, {
    form: { csrf: csrf || "" },
    headers: { origin: "https://evil.example" },
  });
  report("csrf", { without_token: noToken.status(), other_origin: otherOrigin.status() });
  check(noToken.status() === 403 && otherOrigin.status() === 403, "CSRF refusals");
  await context.close();

  // --- The admin ticks `audit:read` for grid workers in the matrix.
  {
    const { context, page } = await session("zh");
    await login(page, env("ADMIN_USER"), env("ADMIN_PASSWORD"));
    await page.goto(`${HUB}/console/roles`);
    await shoot(page, "roles", "zh");
    await accessible(page, "roles.zh");
    await page.check('input[form="role-grid_worker"][value="audit:read"]');
    await Promise.all([page.waitForNavigation(), page.click('button[form="role-grid_worker"]')]);
    check(page.url().includes("saved=grid_worker"), `after save: ${page.url()}`);
    check(
      await page.isChecked('input[form="role-grid_worker"][value="audit:read"]'),
      "the tick is kept",
    );
    report("role_saved", { role: "grid_worker", permission: "audit:read" });
    await context.close();
  }
  {
    const { context, page } = await session("en");
    await login(page, env("ADMIN_USER"), env("ADMIN_PASSWORD"));
    await page.goto(`${HUB}/console/roles`);
    await shoot(page, "roles", "en");
    await context.close();
  }
  report("done");
} catch (e) {
  console.error(e.stack || String(e));
  await browser.close();
  process.exit(1);
}
await browser.close();
