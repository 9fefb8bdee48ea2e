// Admin pages for systems and the catalog (clients, catalog) in headless Chromium, for
// tests/api/console_systems.rs, which sets the hub up, runs this script twice and checks on the
// hub's side what the browser did. One JSON object per step on stdout; exits non-zero on the
// first failed check.
//
// PHASE=register: a grid worker and a DPO meet 403 pages (or read-only ones where their role
// reads); the admin registers a client from an uploaded CSR and one from an external
// certificate, reads the issued certificate off the page (and its download), reads the list,
// creates a department-owned category and adds a field in a second save, meets the refusals
// (bad CSR: 422; a change `person`'s records cannot survive: 409; a malformed field line: 422;
// posts without the CSRF token: 403); screenshots and axe on every page in both languages.
// PHASE=revoke: the admin revokes the client through the confirm step.
//
// Environment (besides lib.mjs's): PHASE, DEPARTMENT, CLIENT_ID, CSR_PATH, EXTERNAL_ID,
// EXTERNAL_CERT_PATH, CATEGORY, FIELDS_FIRST (field lines), FIELD_ADDED (one line).
import { readFileSync } from "node:fs";
import { HUB, env, report, check, session, login, accessible, shoot, run } from "./lib.mjs";

const PHASE = env("PHASE");
const CLIENT_ID = env("CLIENT_ID");
const CATEGORY = env("CATEGORY");

async function submit(page, selector) {
  const [response] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
  return response;
}

async function text(page, selector) {
  return ((await page.textContent(selector)) || "").trim();
}

async function forbiddenAndReadOnly() {
  // A grid worker: no clients page at all; the catalog (its role reads it) without forms.
  {
    const { context, page } = await session("zh");
    await login(page, env("WORKER_USER"), env("WORKER_PASSWORD"));
    const clients = await page.goto(`${HUB}/console/clients`);
    check(clients.status() === 403, `worker on clients: HTTP ${clients.status()}`);
    check((await text(page, "main")).includes("无权访问"), "worker on clients: no 403 page");
    const catalog = await page.goto(`${HUB}/console/catalog`);
    check(catalog.status() === 200, `worker on catalog: HTTP ${catalog.status()}`);
    const forms = await page.$$('a[href="/console/catalog/new"], a[href$="/edit"], main form');
    check(forms.length === 0, "the worker's catalog offers no changes");
    const edit = await page.goto(`${HUB}/console/catalog/person/edit`);
    check(edit.status() === 403, `worker on the edit form: HTTP ${edit.status()}`);
    report("worker", { clients: clients.status(), catalog: catalog.status(), edit: edit.status() });
    await context.close();
  }
  // A DPO reads the clients (its role does) but registers and revokes nothing.
  {
    const { context, page } = await session("zh");
    await login(page, env("DPO_USER"), env("DPO_PASSWORD"));
    const list = await page.goto(`${HUB}/console/clients`);
    check(list.status() === 200, `DPO on clients: HTTP ${list.status()}`);
    check((await page.$('a[href="/console/clients/new"]')) === null, "no register link for the DPO");
    const form = await page.goto(`${HUB}/console/clients/new`);
    check(form.status() === 403, `DPO on the register form: HTTP ${form.status()}`);
    const category = await page.goto(`${HUB}/console/catalog/new`);
    check(category.status() === 403, `DPO on the category form: HTTP ${category.status()}`);
    report("dpo", { list: list.status(), register: form.status(), category: category.status() });
    await context.close();
  }
}

async function registerClients(page) {
  await page.goto(`${HUB}/console/clients`);
  await submit(page, 'a[href="/console/clients/new"]');
  await page.fill("#client-id", CLIENT_ID);
  await page.selectOption("#client-department", env("DEPARTMENT"));
  await page.setInputFiles("#client-csr-file", env("CSR_PATH"));
  await shoot(page, "client-new", "zh");
  await accessible(page, "client-new.zh");
  await submit(page, "form.register button[type=submit]");
  check(page.url().endsWith(`/console/clients/${CLIENT_ID}?registered=1`), `after register: ${page.url()}`);
  const pem = await text(page, "#certificate-pem");
  check(pem.startsWith("-----BEGIN CERTIFICATE-----"), "the issued certificate is shown");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.click('a[href$="/certificate.pem"]'),
  ]);
  const downloaded = readFileSync(await download.path(), "utf8").trim();
  check(downloaded === pem, "the download is the certificate shown");
  check(!(await page.isHidden("button[data-copy]")), "the copy button is offered");
  report("registered", {
    pem,
    thumbprint: await text(page, "dl.client code.thumbprint"),
    notice: await text(page, "p.notice"),
  });
  await shoot(page, "client", "zh");
  await accessible(page, "client.zh");

  // From a certificate an external CA issued (registered as is).
  await page.goto(`${HUB}/console/clients/new`);
  await page.fill("#client-id", env("EXTERNAL_ID"));
  await page.selectOption("#client-department", env("DEPARTMENT"));
  await page.fill("#client-certificate-pem", readFileSync(env("EXTERNAL_CERT_PATH"), "utf8"));
  await submit(page, "form.register button[type=submit]");
  check(page.url().includes(`/console/clients/${env("EXTERNAL_ID")}?registered=1`), `external: ${page.url()}`);
  report("external", { issuer: await text(page, "dl.client dd:nth-of-type(4)") });

  // A CSR that is none: the form again, 422, naming the field; nothing registered.
  await page.goto(`${HUB}/console/clients/new`);
  await page.fill("#client-id", "bad-csr-sys");
  await page.fill("#client-csr-pem", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----");
  const refused = await submit(page, "form.register button[type=submit]");
  const problems = await text(page, "ul.problems");
  report("bad_csr", { status: refused.status(), problems });
  check(refused.status() === 422 && problems.includes("csr_pem"), `bad CSR: ${refused.status()} ${problems}`);
  check((await page.inputValue("#client-id")) === "bad-csr-sys", "the form keeps what was typed");
  await accessible(page, "client-refused.zh");

  // The list: thumbprint and expiry (Beijing time, with the instant in `datetime`).
  await page.goto(`${HUB}/console/clients`);
  const rows = await page.$$eval("table.clients tbody tr", (trs) =>
    trs.map((tr) => ({
      id: tr.dataset.client,
      status: tr.dataset.status,
      thumbprint: tr.querySelector("code.thumbprint").textContent.trim(),
      not_after: tr.querySelector("td.expires time").getAttribute("datetime"),
      shown: tr.querySelector("td.expires time").textContent.trim(),
      days_left: Number(tr.querySelector("td.expires .days-left")?.textContent ?? "NaN"),
      expiry_mark: tr.querySelector("td.expires [data-expiry]")?.dataset.expiry ?? null,
    })),
  );
  report("list", { rows });
  await shoot(page, "clients", "zh");
  await accessible(page, "clients.zh");
}

async function evolveCatalog(page) {
  await page.goto(`${HUB}/console/catalog`);
  await shoot(page, "catalog", "zh");
  await accessible(page, "catalog.zh");
  await submit(page, 'a[href="/console/catalog/new"]');
  await page.fill("#category-name", CATEGORY);
  await page.fill("#category-description", "居家照护状况（测试）");
  await page.selectOption("#category-owner", env("DEPARTMENT"));
  await page.fill("#category-fields", env("FIELDS_FIRST"));
  await shoot(page, "catalog-new", "zh");
  await accessible(page, "catalog-new.zh");
  await submit(page, "form.category button[type=submit]");
  check(page.url().includes(`saved=${CATEGORY}&outcome=created`), `after create: ${page.url()}`);
  const section = `section[data-category="${CATEGORY}"]`;
  const created = {
    owner: await page.getAttribute(`${section} dd[data-owner]`, "data-owner"),
    fields: await page.$$eval(`${section} tbody tr`, (trs) => trs.map((tr) => tr.dataset.field)),
  };

  // A second save adds a field to what the form opened with.
  await submit(page, `${section} a[href="/console/catalog/${CATEGORY}/edit"]`);
  check((await page.getAttribute("#category-name", "readonly")) !== null, "the name is fixed when editing");
  const current = await page.inputValue("#category-fields");
  await page.fill("#category-fields", `${current}\n${env("FIELD_ADDED")}`);
  await shoot(page, "catalog-edit", "zh");
  await accessible(page, "catalog-edit.zh");
  await submit(page, "form.category button[type=submit]");
  check(page.url().includes("outcome=changed"), `after the second save: ${page.url()}`);
  const changed = {
    notice: await text(page, "p.notice"),
    fields: await page.$$eval(`${section} tbody tr`, (trs) => trs.map((tr) => tr.dataset.field)),
  };
  report("catalog", { created, changed });

  // A change the stored records cannot survive (a field of `person` removed): 409, the API's code.
  await page.goto(`${HUB}/console/catalog/person/edit`);
  const lines = (await page.inputValue("#category-fields")).split("\n");
  await page.fill("#category-fields", lines.slice(0, -1).join("\n"));
  const conflict = await submit(page, "form.category button[type=submit]");
  const conflictPage = { status: conflict.status(), code: await text(page, ".error dd code"), message: await text(page, ".error p.message") };
  report("refused_change", conflictPage);
  check(conflict.status() === 409 && conflictPage.code === "conflict", `person change: ${JSON.stringify(conflictPage)}`);
  await shoot(page, "catalog-refused", "zh");
  await accessible(page, "catalog-refused.zh");

  // A malformed field line: the form again, 422, naming the line.
  await page.goto(`${HUB}/console/catalog/new`);
  await page.fill("#category-name", "broken_category");
  await page.fill("#category-fields", "name text");
  const malformed = await submit(page, "form.category button[type=submit]");
  const problems = await text(page, "ul.problems");
  report("malformed", { status: malformed.status(), problems });
  check(malformed.status() === 422 && problems.includes("line 1"), `malformed line: ${problems}`);
}

async function csrfRefusals(page) {
  const csrf = await page.evaluate(() => document.querySelector("input[name=csrf]")?.value);
  check(csrf, "a form with the CSRF token");
  const noToken = await page.request.post(`${HUB}/console/catalog`, {
    form: { category: "csrf_probe", owner: "", fields: env("FIELD_ADDED") },
    headers: { origin: HUB },
  });
  const clientNoToken = await page.request.post(`${HUB}/console/clients`, {
    multipart: { id: "csrf-probe", department: env("DEPARTMENT"), csr_pem: "x" },
    headers: { origin: HUB },
  });
  const otherOrigin = await page.request.post(`${HUB}/console/catalog`, {
    form: { csrf, category: "csrf_probe", owner: "", fields: env("FIELD_ADDED") },
    headers: { origin: "https://evil.example" },
  });
  const statuses = {
    catalog_without_token: noToken.status(),
    client_without_token: clientNoToken.status(),
    catalog_other_origin: otherOrigin.status(),
  };
  report("csrf", statuses);
  check(Object.values(statuses).every((s) => s === 403), `CSRF refusals ${JSON.stringify(statuses)}`);
}

// Every page once more in English (and the revoke confirm step, which is only looked at here).
async function english() {
  const { context, page } = await session("en");
  await login(page, env("ADMIN_USER"), env("ADMIN_PASSWORD"));
  const pages = [
    ["clients", "/console/clients"],
    ["client-new", "/console/clients/new"],
    ["client", `/console/clients/${CLIENT_ID}`],
    ["client-revoke", `/console/clients/${CLIENT_ID}/revoke`],
    ["catalog", "/console/catalog"],
    ["catalog-new", "/console/catalog/new"],
    ["catalog-edit", `/console/catalog/${CATEGORY}/edit`],
  ];
  for (const [name, path] of pages) {
    const response = await page.goto(`${HUB}${path}`);
    check(response.status() === 200, `${name} in English: HTTP ${response.status()}`);
    check((await page.getAttribute("html", "lang")) === "en", `${name}: page language`);
    await shoot(page, name, "en");
    await accessible(page, `${name}.en`);
  }
  await context.close();
}

async function revoke() {
  const { context, page } = await session("zh");
  await login(page, env("ADMIN_USER"), env("ADMIN_PASSWORD"));
  await page.goto(`${HUB}/console/clients/${CLIENT_ID}`);
  await submit(page, `a[href="/console/clients/${CLIENT_ID}/revoke"]`);
  await shoot(page, "client-revoke", "zh");
  await accessible(page, "client-revoke.zh");
  await submit(page, "form.confirm button[type=submit]");
  check(page.url().includes(`/console/clients?revoked=${CLIENT_ID}`), `after revoke: ${page.url()}`);
  const status = await page.getAttribute(`tr[data-client="${CLIENT_ID}"]`, "data-status");
  report("revoked", { status, notice: await text(page, "p.notice") });
  check(status === "revoked", `the list shows ${status}`);
  await context.close();
}

await run(async () => {
  if (PHASE === "register") {
    await forbiddenAndReadOnly();
    const { context, page } = await session("zh");
    await login(page, env("ADMIN_USER"), env("ADMIN_PASSWORD"));
    await registerClients(page);
    await evolveCatalog(page);
    await csrfRefusals(page);
    await context.close();
    await english();
  } else if (PHASE === "revoke") {
    await revoke();
  } else {
    throw new Error(`unknown PHASE ${PHASE}`);
  }
});
