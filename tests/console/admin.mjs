// Admin pages for people and places (users, departments, grids, purposes), driven in headless
// Chromium for tests/api/console_admin.rs, which sets the hub up, runs this script once per
// PHASE and checks on the hub's side (API and ledger) that what the browser did happened. This
// script checks what the browser sees; one JSON object per step on stdout, non-zero exit on the
// first failure, naming it.
//
// PHASE=pages: a grid worker and a DPO get 403 pages; the admin creates a grid, a purpose, a
// department with grids picked in the tree, changes another department's jurisdiction, creates
// a user and changes its roles and grids; rotates the case texts' key on the ledger page; every
// page in both languages (screenshots, axe).
// PHASE=disable / PHASE=enable: the admin disables / enables USER_ID on its page.
//
// Environment: HUB, SCREENS, the accounts (lib.mjs), PHASE, and for `pages`: NEW_GRID,
// NEW_GRID_NAME, NEW_PURPOSE, NEW_DEPARTMENT, PICK_GRIDS (comma-separated), EXISTING_DEPARTMENT,
// NEW_JURISDICTION (a grid code), NEW_USER, NEW_PASSWORD, USER_GRID, EXTRA_GRID, EXTRA_ROLE;
// for `disable` and `enable`: USER_ID.
import { HUB, env, report, check, session, login, accessible, shoot, run } from "./lib.mjs";

const PAGES = ["/console/users", "/console/departments", "/console/grids", "/console/purposes"];

// Submit the form holding `button` and wait for the page it leads to; returns its HTTP status.
async function submit(page, button) {
  const [response] = await Promise.all([page.waitForNavigation(), page.click(button)]);
  return response.status();
}

async function notice(page) {
  const el = await page.$("p.notice[role=status]");
  return el ? (await el.textContent()).trim() : null;
}

// Neither a grid worker nor a DPO opens an admin page of people and places.
async function forbidden() {
  for (const [who, lang, word] of [
    ["WORKER", "zh", "无权访问"],
    ["DPO", "en", "Forbidden"],
  ]) {
    const { context, page } = await session(lang);
    await login(page, env(`${who}_USER`), env(`${who}_PASSWORD`));
    const navigation = await page.$$eval("header nav a", (links) => links.map((a) => a.getAttribute("href")));
    const statuses = {};
    for (const path of PAGES) {
      check(!navigation.includes(path), `${who} sees ${path} in the navigation`);
      const response = await page.goto(`${HUB}${path}`);
      statuses[path] = response.status();
      check(response.status() === 403, `${who} on ${path}: HTTP ${response.status()}`);
      check((await page.textContent("main")).includes(word), `${who} on ${path}: no 403 page`);
    }
    report("forbidden", { who, statuses });
    await context.close();
  }
}

async function gridAndPurpose(page) {
  const code = env("NEW_GRID");
  await page.goto(`${HUB}/console/grids`);
  await page.fill("#code", code);
  await page.fill("#name", env("NEW_GRID_NAME"));
  await page.selectOption("#kind", "physical");
  check((await submit(page, "form.admin button[type=submit]")) === 200, "grid form");
  check((await notice(page))?.includes(code), `no notice for grid ${code}`);
  // The new grid hangs under the parent its code implies.
  const parent = code.split(".").slice(0, -1).join(".");
  const nested = await page.$(
    `li:has(> span.grid[data-code="${parent}"]) > ul.tree > li > span.grid[data-code="${code}"]`,
  );
  check(nested, `grid ${code} is not shown under ${parent}`);
  report("grid", { code, parent });

  const id = env("NEW_PURPOSE");
  await page.goto(`${HUB}/console/purposes`);
  await page.fill("#id", id);
  await page.fill("#description", "防汛救灾：优先救助需要帮助的人");
  await page.fill("#legal_basis", "《个人信息保护法》第十三条第一款第四项");
  check((await submit(page, "form.admin button[type=submit]")) === 200, "purpose form");
  check(await page.$(`tr[data-purpose="${id}"]`), `purpose ${id} is not listed`);
  report("purpose", { id, notice: await notice(page) });
}

async function departments(page) {
  // Without a grid ticked: refused (422), the reasons shown, nothing created.
  const id = env("NEW_DEPARTMENT");
  await page.goto(`${HUB}/console/departments`);
  await page.fill("#id", id);
  await page.fill("#name", "防汛指挥部");
  const refused = await submit(page, "form.admin button[type=submit]");
  const problems = await page.$$eval("div.error li code", (c) => c.map((x) => x.textContent));
  report("department_refused", { status: refused, problems });
  check(refused === 422 && problems.includes("jurisdiction"), `no grid picked: ${refused} ${problems}`);
  check(!(await page.$(`tr[data-department="${id}"]`)), "a refused department was created");

  // With grids picked in the tree.
  const picked = env("PICK_GRIDS").split(",");
  await page.fill("#id", id);
  await page.fill("#name", "防汛指挥部");
  for (const code of picked) await page.check(`#new-${code.replaceAll(".", "\\.")}`);
  check((await submit(page, "form.admin button[type=submit]")) === 200, "department form");
  const shown = await page.$$eval(`tr[data-department="${id}"] td.jurisdiction code`, (c) =>
    c.map((x) => x.textContent),
  );
  report("department", { id, picked, shown });
  check(JSON.stringify(shown) === JSON.stringify([...picked].sort()), `jurisdiction shown ${shown}`);

  // Another department's jurisdiction, changed on its page.
  const existing = env("EXISTING_DEPARTMENT");
  const target = env("NEW_JURISDICTION");
  await page.goto(`${HUB}/console/departments`);
  await Promise.all([page.waitForNavigation(), page.click(`tr[data-department="${existing}"] a`)]);
  for (const box of await page.$$("input[name=jurisdiction]:checked")) await box.uncheck();
  await page.check(`input[name=jurisdiction][value="${target}"]`);
  check((await submit(page, "form.admin button[type=submit]")) === 200, "jurisdiction form");
  const now = await page.$$eval("dd.jurisdiction code", (c) => c.map((x) => x.textContent));
  report("jurisdiction", { department: existing, shown: now, notice: await notice(page) });
  check(JSON.stringify(now) === JSON.stringify([target]), `jurisdiction now ${now}`);
}

async function users(page) {
  const username = env("NEW_USER");
  await page.goto(`${HUB}/console/users`);
  await page.fill("#username", username);
  await page.fill("#password", env("NEW_PASSWORD"));
  await page.check("#new-role-grid_worker");
  await page.check(`input[name=grids][value="${env("USER_GRID")}"]`);
  check((await submit(page, "form.admin button[type=submit]")) === 200, "user form");
  const row = await page.$(`tr[data-username="${username}"]`);
  check(row, `user ${username} is not listed`);
  const id = await row.getAttribute("data-user");
  check((await row.getAttribute("data-status")) === "active", "a new user is active");
  // The password appears nowhere on the page.
  check(!(await page.content()).includes(env("NEW_PASSWORD")), "the password is shown");
  report("user", { username, id, notice: await notice(page) });

  await Promise.all([page.waitForNavigation(), page.click(`tr[data-username="${username}"] a`)]);
  await page.check(`#edit-role-${env("EXTRA_ROLE")}`);
  check((await submit(page, "form.roles button[type=submit]")) === 200, "roles form");
  const roles = await page.$$eval("form.roles input[name=roles]:checked", (b) => b.map((x) => x.value));
  report("roles", { id, roles, notice: await notice(page) });
  check(roles.includes(env("EXTRA_ROLE")) && roles.includes("grid_worker"), `roles now ${roles}`);

  await page.check(`form.grids input[name=grids][value="${env("EXTRA_GRID")}"]`);
  check((await submit(page, "form.grids button[type=submit]")) === 200, "grids form");
  const grids = await page.$$eval("form.grids input[name=grids]:checked", (b) => b.map((x) => x.value));
  report("grids", { id, grids, notice: await notice(page) });
  check(grids.length === 2, `grids now ${grids}`);
  return id;
}

// Every page of the section in both languages: screenshots and axe-core.
async function tour(userId, department) {
  for (const lang of ["zh", "en"]) {
    const { context, page } = await session(lang);
    await login(page, env("ADMIN_USER"), env("ADMIN_PASSWORD"));
    const navigation = await page.$$eval("header nav a", (links) => links.map((a) => a.getAttribute("href")));
    for (const path of PAGES) check(navigation.includes(path), `${path} missing from the admin's navigation`);
    for (const [path, name] of [
      ["/console/users", "users"],
      [`/console/users/${userId}`, "user"],
      ["/console/departments", "departments"],
      [`/console/departments/${department}`, "department"],
      ["/console/grids", "grids"],
      ["/console/purposes", "purposes"],
    ]) {
      const response = await page.goto(`${HUB}${path}`);
      check(response.status() === 200, `${path} in ${lang}: HTTP ${response.status()}`);
      check((await page.getAttribute("html", "lang")) === (lang === "zh" ? "zh-CN" : "en"), "page language");
      await shoot(page, name, lang);
      await accessible(page, `${name}.${lang}`);
    }
    await context.close();
  }
}

// Disable or enable USER_ID on its page.
async function status(phase) {
  const id = env("USER_ID");
  const { context, page } = await session("zh");
  await login(page, env("ADMIN_USER"), env("ADMIN_PASSWORD"));
  await page.goto(`${HUB}/console/users/${id}`);
  const button = phase === "disable" ? "button.disable" : "button.enable";
  check((await submit(page, button)) === 200, `${phase} form`);
  const now = await page.getAttribute("dd.status", "data-status");
  report(phase, { id, status: now, notice: await notice(page) });
  check(now === (phase === "disable" ? "disabled" : "active"), `after ${phase}: ${now}`);
  await page.goto(`${HUB}/console/users`);
  const listed = await page.getAttribute(`tr[data-user="${id}"]`, "data-status");
  check(listed === now, `the list says ${listed}`);
  if (phase === "disable") {
    await shoot(page, "users-disabled", "zh");
    await accessible(page, "users-disabled.zh");
  }
  await context.close();
}

// The ledger page's rotate button (admins only): the case texts' KEK gets a new version.
async function rotateKey(page) {
  await page.goto(`${HUB}/console/ledger`);
  const button = 'tr[data-category="case-texts"][data-current="true"] form.rotate button';
  check(await page.$(button), "no rotate button for case-texts");
  check((await submit(page, button)) === 200, "rotate form");
  const shown = await page.$$eval('tr[data-category="case-texts"]', (rows) =>
    rows.map((r) => ({
      version: Number(r.dataset.version),
      current: r.dataset.current === "true",
      state: r.dataset.state,
    })),
  );
  const rotated = await page.$eval("p.notice[data-rotated]", (p) => p.dataset.rotated);
  check(rotated === "case-texts", `notice for ${rotated}`);
  await accessible(page, "ledger-rotated.zh");
  report("rotate", { shown, notice: await notice(page) });
}

await run(async () => {
  const phase = env("PHASE");
  if (phase === "pages") {
    await forbidden();
    const { context, page } = await session("zh");
    await login(page, env("ADMIN_USER"), env("ADMIN_PASSWORD"));
    await gridAndPurpose(page);
    await departments(page);
    const id = await users(page);
    await rotateKey(page);
    await context.close();
    await tour(id, env("NEW_DEPARTMENT"));
  } else {
    await status(phase);
  }
});
