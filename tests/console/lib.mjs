// Shared by the console's browser scripts (scenario.mjs and the others beside it): the
// browser, sessions in either language, login, the axe-core check and screenshots. Every
// script prints one JSON object per step on stdout ({"step": …}) and exits non-zero on the
// first failed check, naming it; tests/api/console.rs (`run_browser`) reads those lines.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
export const HUB = env("HUB");
export const SCREENS = env("SCREENS");
mkdirSync(SCREENS, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export const report = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));
export function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

export const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

export async function session(lang) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
  if (lang === "en") {
    const url = new URL(HUB);
    await context.addCookies([
      { name: "gridhub_lang", value: "en", domain: url.hostname, path: "/console", secure: true },
    ]);
  }
  const page = await context.newPage();
  return { context, page };
}

export async function login(page, user, password) {
  await page.goto(`${HUB}/console/login`);
  await page.fill("#username", user);
  await page.fill("#password", password);
  await Promise.all([page.waitForNavigation(), page.click("form.login button")]);
}

// No serious or critical axe-core violations on the page now shown.
export async function accessible(page, name) {
  const result = await page.evaluate(async (source) => {
    // eslint-disable-next-line no-eval
    (0, eval)(source);
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
  }, axeSource);
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  report("axe", { page: name, violations: result.length, serious: bad });
  check(bad.length === 0, `${name}: serious accessibility violations ${JSON.stringify(bad)}`);
}

export async function shoot(page, name, lang) {
  await page.screenshot({ path: `${SCREENS}/${name}.${lang}.png`, fullPage: true });
}

// Runs `steps` and exits: 0 when every check held, 1 (naming the failure) otherwise.
export async function run(steps) {
  try {
    await steps();
    report("done");
  } catch (e) {
    console.error(e && e.stack ? e.stack : String(e));
    await browser.close();
    process.exit(1);
  }
  await browser.close();
}
