// The web UI's timings in headless Chromium (--disable-gpu), driven by playwright-core from
// services/ui (bench/ui.py runs it). Prints one JSON line:
//   first_card_ms[]  navigation start to the first pipeline card rendered, a cold page each time
//   first_rows_ms[]  navigation start to the first rows of the executions table (the big stage)
//   scroll_frames    the longest frame and how many exceeded 50 ms while scrolling and paging
// Environment: UI_BENCH_URL, UI_BENCH_PIPELINE, UI_BENCH_STAGE, UI_BENCH_RUNS.
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.env.UI_DIR, "package.json"));
const { chromium } = require("playwright-core");

const base = process.env.UI_BENCH_URL;
const pipeline = process.env.UI_BENCH_PIPELINE;
const stage = process.env.UI_BENCH_STAGE;
const runs = Number(process.env.UI_BENCH_RUNS ?? 5);
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ARGS, headless: true });

async function coldPage() {
  const context = await browser.newContext({ baseURL: base, viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  return { context, page };
}

async function markTime(page, name) {
  await page.waitForFunction((n) => performance.getEntriesByName(n).length > 0, name, { polling: 5 });
  return page.evaluate((n) => performance.getEntriesByName(n)[0].startTime, name);
}

// One warm-up of each page first: the figures are of a cold browser, not of a server process
// that has not yet read its tables.
{
  const { context, page } = await coldPage();
  await page.goto("/ui/");
  await markTime(page, "cmf:first-card");
  await page.goto(`/ui/p/${encodeURIComponent(pipeline)}/executions?stage=${encodeURIComponent(stage)}`);
  await markTime(page, "cmf:first-rows");
  await context.close();
}

const firstCard = [];
const firstRows = [];
for (let i = 0; i < runs; i += 1) {
  {
    const { context, page } = await coldPage();
    await page.goto("/ui/");
    firstCard.push(await markTime(page, "cmf:first-card"));
    await context.close();
  }
  {
    const { context, page } = await coldPage();
    await page.goto(`/ui/p/${encodeURIComponent(pipeline)}/executions?stage=${encodeURIComponent(stage)}`);
    firstRows.push(await markTime(page, "cmf:first-rows"));
    await context.close();
  }
}

// Scrolling and paging: frames are timed in the page (requestAnimationFrame deltas, and the
// long-animation-frame entries where Chromium has them) while the grid is scrolled by wheel
// steps, paged with the buttons and the keyboard, and jumped to the end.
const { context, page } = await coldPage();
await page.goto(`/ui/p/${encodeURIComponent(pipeline)}/executions?stage=${encodeURIComponent(stage)}`);
await markTime(page, "cmf:first-rows");
await page.evaluate(() => {
  window.__frames = [];
  window.__loaf = [];
  let last = performance.now();
  const tick = (now) => {
    window.__frames.push(now - last);
    last = now;
    if (!window.__stop) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  try {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__loaf.push(entry.duration);
    }).observe({ type: "long-animation-frame", buffered: false });
  } catch {
    // not in this Chromium: the rAF deltas alone
  }
});
const grid = page.getByTestId("grid");
const box = await grid.boundingBox();
await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
for (let i = 0; i < 80; i += 1) {
  await page.mouse.wheel(0, 400);
  await page.waitForTimeout(16);
}
for (let i = 0; i < 15; i += 1) {
  await page.getByRole("button", { name: "Next page" }).click();
  await page.waitForTimeout(30);
}
await grid.focus();
for (let i = 0; i < 20; i += 1) {
  await page.keyboard.press("PageDown");
  await page.waitForTimeout(16);
}
await page.keyboard.press("End");
await page.waitForFunction(() => document.querySelector("[data-testid=table-foot]").innerText.includes("–"));
await page.waitForTimeout(500);
await page.keyboard.press("Home");
await page.waitForTimeout(500);
const frames = await page.evaluate(() => {
  window.__stop = true;
  // The first delta is from before the observer; skip it.
  return { raf: window.__frames.slice(1), loaf: window.__loaf };
});
await context.close();
await browser.close();

const over = (list) => list.filter((d) => d > 50).length;
console.log(
  JSON.stringify({
    first_card_ms: firstCard,
    first_rows_ms: firstRows,
    scroll_frames: {
      frames: frames.raf.length,
      max_frame_ms: Math.max(...frames.raf),
      over_50ms: over(frames.raf),
      long_animation_frames: frames.loaf.length,
      max_long_animation_frame_ms: frames.loaf.length ? Math.max(...frames.loaf) : 0,
    },
  }),
);
