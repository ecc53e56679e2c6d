// The lineage explorer's timings in headless Chromium (--disable-gpu), driven by playwright-core
// from services/ui (bench/explorer.py runs it). Prints one JSON line:
//   sizes[n]     for a lineage-shaped graph of n nodes (explorer_graph.mjs, answered in place of
//                the graph route): per cold page, the answer's arrival to the graph on screen
//                (layout in the worker + drawing + the next frame), and navigation start to it;
//                the engine (ELK / layered) and the drawing (SVG / canvas)
//   frames[n]    rAF intervals during a scripted 3 s pan and zoom (d3-zoom's own transforms, one
//                step a frame), and Chromium's long animation frames
//   click[n]     a click on a node to its inspector on screen
//   expand       on the 1,000,000-edge graph: the click on "Expand upstream" to the new nodes on
//                screen (the neighbourhood read from PostgreSQL uncached, merged, laid out, drawn)
// Environment: EXPLORER_BENCH_URL, EXPLORER_BENCH_SIZES, EXPLORER_BENCH_RUNS,
// EXPLORER_BENCH_TARGETS (JSON [{pipeline, focus, expand}]).
import { launchChromium } from "../services/ui/e2e/chromium.mjs";
import { lineageGraph } from "./explorer_graph.mjs";

const base = process.env.EXPLORER_BENCH_URL;
const sizes = (process.env.EXPLORER_BENCH_SIZES ?? "2000,10000").split(",").map(Number);
const runs = Number(process.env.EXPLORER_BENCH_RUNS ?? 5);
const targets = JSON.parse(process.env.EXPLORER_BENCH_TARGETS ?? "[]");
const PIPELINE = "bench-explorer";

const browser = await launchChromium();

async function coldPage() {
  const context = await browser.newContext({ baseURL: base, viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  page.on("pageerror", (e) => console.error(`pageerror: ${e.message}`));
  return { context, page };
}

async function renders(page) {
  return page.evaluate(() => window.__explorer?.renders ?? 0);
}

// The time (page clock) of the first explorer render mark after `after` renders, and its detail.
async function renderedMark(page, after) {
  await page.waitForFunction((n) => (window.__explorer?.renders ?? 0) > n, after, { polling: 5 });
  await page.waitForFunction(
    (n) => performance.getEntriesByName("cmf:explorer-rendered").length > n,
    after,
    { polling: 5 },
  );
  return page.evaluate((n) => {
    const mark = performance.getEntriesByName("cmf:explorer-rendered")[n];
    return { at: mark.startTime, ...mark.detail };
  }, after);
}

async function serveGraph(page, body) {
  await page.route("**/api/native/v1/lineage/graph/**", (route) =>
    route.fulfill({ status: 200, contentType: "application/json", body }),
  );
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
}

const results = { sizes: {}, frames: {}, click: {}, expand: [] };

// Warm-up: the server's first answers and the browser's first compile are not the figures.
{
  const { context, page } = await coldPage();
  await serveGraph(page, JSON.stringify(lineageGraph(500, { pipeline: PIPELINE })));
  await page.goto(`/ui/p/${PIPELINE}/explorer`);
  await renderedMark(page, 0);
  await context.close();
}

for (const n of sizes) {
  const body = JSON.stringify(lineageGraph(n, { pipeline: PIPELINE }));
  const one = { toScreen: [], fromNavigation: [], engine: null, mode: null, layout: [], nodes: n };
  for (let r = 0; r < runs; r += 1) {
    const { context, page } = await coldPage();
    await serveGraph(page, body);
    await page.goto(`/ui/p/${PIPELINE}/explorer?max=${n}`);
    const mark = await renderedMark(page, 0);
    const answered = await page.evaluate(() => {
      const entry = performance.getEntriesByType("resource").find((e) => e.name.includes("/lineage/graph/"));
      return entry ? entry.responseEnd : null;
    });
    one.toScreen.push(mark.at - answered);
    one.fromNavigation.push(mark.at);
    one.layout.push(mark.layoutMs);
    one.engine = mark.engine;
    one.mode = mark.mode;
    if (r === runs - 1) {
      // A scripted 3 s of pan and zoom, one step a frame.
      results.frames[n] = await page.evaluate(async () => {
        const v = window.__explorer.view;
        const loaf = [];
        try {
          new PerformanceObserver((list) => loaf.push(...list.getEntries().map((e) => e.duration))).observe({
            type: "long-animation-frame",
          });
        } catch {
          /* not in this Chromium */
        }
        const frames = [];
        await new Promise((resolve) => {
          let last = performance.now();
          const start = last;
          const tick = (now) => {
            frames.push(now - last);
            last = now;
            const t = now - start;
            if (t > 3000) return resolve();
            const phase = Math.floor(t / 375) % 4;
            if (phase === 0) v.panBy(14, 5);
            else if (phase === 1) v.zoomBy(1.025);
            else if (phase === 2) v.panBy(-14, -5);
            else v.zoomBy(1 / 1.025);
            requestAnimationFrame(tick);
          };
          requestAnimationFrame(tick);
        });
        frames.shift();
        const sorted = [...frames].sort((a, b) => a - b);
        return {
          frames: frames.length,
          median_ms: sorted[Math.floor(sorted.length / 2)],
          p95_ms: sorted[Math.floor(sorted.length * 0.95)],
          max_ms: sorted[sorted.length - 1],
          over_50ms: frames.filter((f) => f > 50).length,
          long_animation_frames: loaf.length,
          max_long_animation_frame_ms: loaf.length ? Math.max(...loaf) : 0,
          scale_after: v.scale,
        };
      });
      // A click on a node to its inspector on screen.
      await page.evaluate(() => window.__explorer.view.centerOn("execution:3", 1));
      await page.waitForTimeout(400);
      const at = await page.evaluate(() => window.__explorer.view.screenPosition("execution:3"));
      await page.evaluate(() => {
        window.__clickAt = null;
        document.addEventListener("click", () => (window.__clickAt = performance.now()), { capture: true, once: true });
      });
      await page.mouse.click(at.x, at.y);
      await page.getByTestId("inspector").waitFor();
      results.click[n] = await page.evaluate(
        () =>
          new Promise((resolve) =>
            requestAnimationFrame(() => resolve(performance.now() - window.__clickAt)),
          ),
      );
    }
    await context.close();
  }
  one.toScreenMedian = median(one.toScreen);
  one.toScreenMax = Math.max(...one.toScreen);
  one.fromNavigationMedian = median(one.fromNavigation);
  results.sizes[n] = one;
  console.error(`[explorer] ${n} nodes: to screen median ${one.toScreenMedian.toFixed(0)} ms (${one.engine}, ${one.mode})`);
}

// Expanding upstream on the 1,000,000-edge graph.
for (const target of targets) {
  const { context, page } = await coldPage();
  await page.goto(`/ui/p/${encodeURIComponent(target.pipeline)}/explorer?focus=${encodeURIComponent(target.focus)}&depth=1`);
  await renderedMark(page, 0);
  const before = await page.evaluate(() => window.__explorer.nodes);
  await page.evaluate((id) => window.__explorer.view.centerOn(id, 1), target.expand);
  await page.waitForTimeout(350);
  const at = await page.evaluate((id) => window.__explorer.view.screenPosition(id), target.expand);
  await page.mouse.click(at.x, at.y);
  await page.getByTestId("expand-upstream").waitFor();
  const count = await renders(page);
  await page.evaluate(() => {
    const button = document.querySelector("[data-testid=expand-upstream]");
    button.addEventListener("click", () => (window.__expandAt = performance.now()), { capture: true, once: true });
  });
  await page.getByTestId("expand-upstream").click();
  const mark = await renderedMark(page, count);
  const clickedAt = await page.evaluate(() => window.__expandAt);
  const after = await page.evaluate(() => window.__explorer.nodes);
  results.expand.push({ ms: mark.at - clickedAt, before, after, layoutMs: mark.layoutMs, engine: mark.engine });
  console.error(`[explorer] expand ${target.expand}: ${(mark.at - clickedAt).toFixed(0)} ms, ${before} -> ${after} nodes`);
  await context.close();
}

await browser.close();
console.log(JSON.stringify(results));
