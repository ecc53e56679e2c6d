// End-to-end tests of the web UI in real headless Chromium (Debian's /usr/bin/chromium), driven
// by playwright-core. Run by tests/integration/test_ui_e2e.py against a `cmf-server up` the
// real cmf client loaded; see docs/ui.md. Environment:
//   CMF_UI_BASE_URL  the server, e.g. http://127.0.0.1:PORT
//   CMF_UI_FIXTURE   JSON the test wrote: {"pipelines": {...}} (names, stages, counts)
//   CMF_UI_OUT       where screenshots go (git-ignored)
//   CMF_UI_ONLY      a substring: run only the scenarios whose name holds it
//   CMF_UI_SCENARIOS the module of scenarios (default ./scenarios.mjs)
// Every scenario runs in a fresh page; any console error or page error fails it, except the
// ones a scenario provokes on purpose (it says which with `expectErrors`).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchChromium } from "./chromium.mjs";

const base = process.env.CMF_UI_BASE_URL;
const out = process.env.CMF_UI_OUT ?? "test-output";
const fixture = JSON.parse(process.env.CMF_UI_FIXTURE ?? "{}");
const only = process.env.CMF_UI_ONLY ?? "";
// CMF_UI_SCENARIOS: another module of scenarios (e.g. ./auth.mjs, against a server with auth on).
const { scenarios } = await import(process.env.CMF_UI_SCENARIOS ?? "./scenarios.mjs");
if (!base) {
  console.error("CMF_UI_BASE_URL is not set");
  process.exit(2);
}
mkdirSync(out, { recursive: true });

const browser = await launchChromium();

let failed = 0;
let passed = 0;
const started = Date.now();
const jobs = [];
for (const [name, scenario] of Object.entries(scenarios)) {
  if (only && !name.includes(only)) continue;
  for (const scheme of scenario.schemes ?? ["light"]) jobs.push({ name, scenario, scheme });
}

async function runJob({ name, scenario, scheme }) {
  const context = await browser.newContext({
    baseURL: base,
    viewport: { width: 1440, height: 900 },
    colorScheme: scheme,
    deviceScaleFactor: 1,
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  let expected = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  const t0 = Date.now();
  const label = scenario.schemes ? `${name} (${scheme})` : name;
  const suffix = scheme === "dark" ? "-dark" : "";
  try {
    await scenario.run({
      page,
      base,
      fixture,
      scheme,
      expectErrors: (...patterns) => {
        expected = expected.concat(patterns);
      },
      shot: async (file) => {
        await page.waitForTimeout(150);
        await page.screenshot({ path: join(out, `${file}${suffix}.png`) });
      },
    });
    const unexpected = errors.filter((e) => !expected.some((p) => p.test(e)));
    if (unexpected.length) throw new Error(`errors in the page:\n  ${unexpected.join("\n  ")}`);
    passed += 1;
    console.log(`ok   ${label} (${Date.now() - t0} ms)`);
  } catch (error) {
    failed += 1;
    const text = String(error?.stack ?? error).split("\n").slice(0, 6).join("\n  ");
    console.log(`FAIL ${label} (${Date.now() - t0} ms)\n  ${text}`);
    await page.screenshot({ path: join(out, `FAILED-${name.replace(/\W+/g, "-")}${suffix}.png`) }).catch(() => {});
  }
  await context.close();
}

// Two pages at a time: the machine has two cores, and a page mostly waits on the server.
const WORKERS = Number(process.env.CMF_UI_WORKERS ?? 2);
await Promise.all(
  Array.from({ length: WORKERS }, async () => {
    for (let job = jobs.shift(); job; job = jobs.shift()) await runJob(job);
  }),
);
await browser.close();
console.log(`ui e2e: ${passed} passed, ${failed} failed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
