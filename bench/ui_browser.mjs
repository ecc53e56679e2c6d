// The web UI's timings in headless Chromium (--disable-gpu), driven by playwright-core from
// services/ui (bench/ui.py runs it). Prints one JSON line:
//   first_card_ms[]  navigation start to the first pipeline card rendered, a cold page each time
//   first_rows_ms[]  navigation start to the first rows of the executions table (the big stage)
//   first_rows_frame_ms[]  navigation start to the animation frame that paints those rows
//   scroll_frames    the longest frame and how many exceeded 50 ms while scrolling and paging
//   floor_ms[]       navigation start to the first paint of a tiny text page of the same server
//                    (a missing asset's 404), a cold page each time: what no app can beat here
//   profile          (UI_BENCH_PROFILE=1) where the time of one cold first-rows load goes
// Environment: UI_BENCH_URL, UI_BENCH_PIPELINE, UI_BENCH_STAGE, UI_BENCH_RUNS,
//   UI_BENCH_VARIANTS  A/B: a JSON list of {"name", "html"}; before each measurement the
//                      variant's index.html is copied over UI_BENCH_INDEX (the served one), and
//                      the variants take turns, so each sees the same machine; the answer is then
//                      {"variants": {name: figures}}
//   UI_BENCH_FRAME_RUNS  how many times the scroll/paging sequence runs (per variant), default 1
import { copyFileSync } from "node:fs";
import { launchChromium } from "../services/ui/e2e/chromium.mjs";

const base = process.env.UI_BENCH_URL;
const pipeline = process.env.UI_BENCH_PIPELINE;
const stage = process.env.UI_BENCH_STAGE;
const runs = Number(process.env.UI_BENCH_RUNS ?? 5);
const frameRuns = Number(process.env.UI_BENCH_FRAME_RUNS ?? 1);
const profile = process.env.UI_BENCH_PROFILE === "1";
const variants = process.env.UI_BENCH_VARIANTS ? JSON.parse(process.env.UI_BENCH_VARIANTS) : [{ name: "", html: null }];
const servedIndex = process.env.UI_BENCH_INDEX;
const rowsUrl = `/ui/p/${encodeURIComponent(pipeline)}/executions?stage=${encodeURIComponent(stage)}`;

const browser = await launchChromium();

function use(variant) {
  if (variant.html) copyFileSync(variant.html, servedIndex);
}

// The first animation frame whose document holds a table row with cells: that frame paints
// them. A check per frame (rAF runs before the frame's style, layout and paint), the same for any
// build of the app, whatever its framework runs its effects before or after painting. The time
// is taken when the callback runs (the callback's argument is the frame's vsync time, which
// precedes a long task that delayed the frame).
function watchRowsFrame() {
  const tick = () => {
    if (document.querySelector("[data-testid=row] [role=gridcell]")) window.__cmfRowsFrame = performance.now();
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

async function coldPage() {
  const context = await browser.newContext({ baseURL: base, viewport: { width: 1440, height: 900 } });
  await context.addInitScript(watchRowsFrame);
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  return { context, page };
}

async function markTime(page, name) {
  await page.waitForFunction((n) => performance.getEntriesByName(n).length > 0, name, { polling: 5 });
  return page.evaluate((n) => performance.getEntriesByName(n)[0].startTime, name);
}

async function paintTime(page) {
  await page.waitForFunction(() => performance.getEntriesByType("paint").length > 0, null, { polling: 5 });
  return page.evaluate(() => performance.getEntriesByType("paint")[0].startTime);
}

async function cold(url, measure) {
  const { context, page } = await coldPage();
  await page.goto(url);
  const value = await measure(page);
  await context.close();
  return value;
}

// One warm-up of each page first: the figures are of a cold browser, not of a server process
// that has not yet read its tables.
for (const variant of variants) {
  use(variant);
  const { context, page } = await coldPage();
  await page.goto("/ui/");
  await markTime(page, "cmf:first-card");
  await page.goto(rowsUrl);
  await markTime(page, "cmf:first-rows");
  await context.close();
}

const figures = Object.fromEntries(
  variants.map((v) => [v.name, { first_card_ms: [], first_rows_ms: [], first_rows_frame_ms: [], floor_ms: [], frames: [] }]),
);
for (let i = 0; i < runs; i += 1) {
  // Alternate the order, so neither variant is always the one measured first.
  const order = i % 2 === 0 ? variants : [...variants].reverse();
  for (const variant of order) {
    use(variant);
    const f = figures[variant.name];
    f.first_card_ms.push(await cold("/ui/", (page) => markTime(page, "cmf:first-card")));
    const [rows, frame] = await cold(rowsUrl, async (page) => {
      const mark = await markTime(page, "cmf:first-rows");
      await page.waitForFunction(() => window.__cmfRowsFrame !== undefined, null, { polling: 5 });
      return [mark, await page.evaluate(() => window.__cmfRowsFrame)];
    });
    f.first_rows_ms.push(rows);
    f.first_rows_frame_ms.push(frame);
    f.floor_ms.push(await cold("/ui/assets/none.txt", paintTime));
  }
}

// Scrolling and paging: frames are timed in the page (requestAnimationFrame deltas, and the
// long-animation-frame entries where Chromium has them) while the grid is scrolled by wheel
// steps, paged with the buttons and the keyboard, and jumped to the end.
async function scrollFrames() {
  const { context, page } = await coldPage();
  await page.goto(rowsUrl);
  await markTime(page, "cmf:first-rows");
  await page.evaluate(() => {
    window.__frames = [];
    window.__loaf = [];
    window.__phase = "idle";
    let last = performance.now();
    const tick = (now) => {
      window.__frames.push([now - last, window.__phase]);
      last = now;
      if (!window.__stop) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    try {
      new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
          window.__loaf.push({
            phase: window.__phase,
            duration: entry.duration,
            blocking: entry.blockingDuration,
            render: entry.renderStart ? entry.startTime + entry.duration - entry.renderStart : 0,
            layout: entry.styleAndLayoutStart ? entry.startTime + entry.duration - entry.styleAndLayoutStart : 0,
            scripts: entry.scripts.map((s) => ({
              invoker: s.invoker,
              source: `${(s.sourceURL || "").split("/").pop()}:${s.sourceFunctionName || ""}`,
              duration: Math.round(s.duration),
              forcedLayout: Math.round(s.forcedStyleAndLayoutDuration),
            })),
          });
        }
      }).observe({ type: "long-animation-frame", buffered: false });
    } catch {
      // not in this Chromium: the rAF deltas alone
    }
  });
  const phase = (name) => page.evaluate((n) => (window.__phase = n), name);
  // First 1.5 s of nothing: the frames of an idle page on this machine now (the floor of the
  // frame budget; kept apart from the figures).
  await page.waitForTimeout(1500);
  await phase("wheel");
  const grid = page.getByTestId("grid");
  const box = await grid.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  for (let i = 0; i < 80; i += 1) {
    await page.mouse.wheel(0, 400);
    await page.waitForTimeout(16);
  }
  await phase("next-page");
  for (let i = 0; i < 15; i += 1) {
    await page.getByRole("button", { name: "Next page" }).click();
    await page.waitForTimeout(30);
  }
  await grid.focus();
  await phase("page-down");
  for (let i = 0; i < 20; i += 1) {
    await page.keyboard.press("PageDown");
    await page.waitForTimeout(16);
  }
  await phase("end");
  await page.keyboard.press("End");
  await page.waitForFunction(() => document.querySelector("[data-testid=table-foot]").innerText.includes("–"));
  await page.waitForTimeout(500);
  await phase("home");
  await page.keyboard.press("Home");
  await page.waitForTimeout(500);
  const frames = await page.evaluate(() => {
    window.__stop = true;
    // The first delta is from before the observer; skip it.
    return { raf: window.__frames.slice(1), loaf: window.__loaf };
  });
  await context.close();
  return frames;
}

for (let i = 0; i < frameRuns; i += 1) {
  const order = i % 2 === 0 ? variants : [...variants].reverse();
  for (const variant of order) {
    use(variant);
    figures[variant.name].frames.push(await scrollFrames());
  }
}

// Where the time of a cold first-rows load goes: the Performance API's navigation, resource,
// paint and long-animation-frame entries, and a Chromium trace of the page's main thread (each
// kind of work's own time from navigation start to the first-rows mark, and its longest tasks).
async function profileLoad() {
  const { context, page } = await coldPage();
  await page.evaluate(() => {}); // the renderer exists before tracing starts
  await browser.startTracing(page, {
    categories: [
      "devtools.timeline",
      "disabled-by-default-devtools.timeline",
      "blink.user_timing",
      "loading",
      "v8.execute",
      "toplevel",
    ],
  });
  await page.goto(rowsUrl, { waitUntil: "commit" });
  await markTime(page, "cmf:first-rows");
  await page.waitForTimeout(300);
  const api = await page.evaluate(() => {
    const round = (x) => Math.round(x * 10) / 10;
    const nav = performance.getEntriesByType("navigation")[0];
    const short = (name) => name.replace(location.origin, "").replace(/\?.*/, "").slice(0, 70);
    return {
      navigation: {
        requestStart: round(nav.requestStart),
        responseStart: round(nav.responseStart),
        responseEnd: round(nav.responseEnd),
        domInteractive: round(nav.domInteractive),
        domContentLoaded: round(nav.domContentLoadedEventEnd),
      },
      resources: performance.getEntriesByType("resource").map((r) => ({
        name: short(r.name),
        start: round(r.startTime),
        responseStart: round(r.responseStart),
        end: round(r.responseEnd),
        bytes: r.encodedBodySize,
      })),
      paint: performance.getEntriesByType("paint").map((p) => [p.name, round(p.startTime)]),
      marks: performance.getEntriesByType("mark").map((m) => [m.name, round(m.startTime)]),
      loaf: performance.getEntriesByType("long-animation-frame").map((e) => ({
        start: round(e.startTime),
        duration: round(e.duration),
        scripts: e.scripts.map((s) => `${s.invoker} ${Math.round(s.duration)}ms`),
      })),
    };
  });
  const trace = JSON.parse((await browser.stopTracing()).toString("utf8"));
  await context.close();
  return { ...api, trace: summarise(trace.traceEvents ?? trace) };
}

// Exclusive (self) time per event name on the renderer main thread that marked first rows,
// between navigation start and that mark; and the top-level tasks over 4 ms.
function summarise(events) {
  const mark = events.find((e) => e.name === "cmf:first-rows");
  if (!mark) return { error: "no first-rows mark in the trace" };
  const pid = mark.pid;
  const threadNames = new Map(
    events.filter((e) => e.ph === "M" && e.name === "thread_name" && e.pid === pid).map((e) => [e.tid, e.args.name]),
  );
  const main = [...threadNames].find(([, name]) => name === "CrRendererMain")?.[0];
  const navStart =
    events.find((e) => e.pid === pid && e.name === "navigationStart")?.ts ??
    Math.min(...events.filter((e) => e.pid === pid && e.ts > 0).map((e) => e.ts));
  const end = mark.ts;
  const slices = events
    .filter((e) => e.pid === pid && e.tid === main && e.ph === "X" && e.ts >= navStart - 50_000 && e.ts <= end)
    .sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const self = new Map();
  const stack = [];
  const tasks = [];
  for (const e of slices) {
    while (stack.length && stack[stack.length - 1].ts + stack[stack.length - 1].dur <= e.ts) stack.pop();
    const parent = stack[stack.length - 1];
    const dur = e.dur ?? 0;
    if (parent) self.set(parent.name, (self.get(parent.name) ?? 0) - dur);
    self.set(e.name, (self.get(e.name) ?? 0) + dur);
    if (!parent && dur > 4000) tasks.push({ at: Math.round((e.ts - navStart) / 1000), ms: Math.round(dur / 1000), name: e.name, children: [] });
    else if (stack.length === 1 && dur > 2000 && tasks.length && tasks[tasks.length - 1].at === Math.round((stack[0].ts - navStart) / 1000)) {
      tasks[tasks.length - 1].children.push(`${e.name} ${Math.round(dur / 1000)}`);
    }
    stack.push(e);
  }
  const byName = [...self]
    .map(([name, us]) => [name, Math.round(us / 100) / 10])
    .filter(([, ms]) => ms >= 1)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25);
  return { first_rows_ms: Math.round((end - navStart) / 1000), self_ms: byName, tasks };
}

const profiles = {};
if (profile) {
  for (const variant of variants) {
    use(variant);
    profiles[variant.name] = await profileLoad();
  }
}
await browser.close();

const over = (list) => list.filter((d) => d > 50).length;
function framesSummary(all) {
  const idle = all.flatMap((f) => f.raf).filter(([, p]) => p === "idle").map(([d]) => d);
  const raf = all.flatMap((f) => f.raf).filter(([, p]) => p !== "idle");
  const loaf = all.flatMap((f) => f.loaf).filter((l) => l.phase !== "idle");
  const durations = raf.map(([d]) => d);
  return {
    runs: all.length,
    idle_frames: idle.length,
    idle_max_frame_ms: idle.length ? Math.max(...idle) : 0,
    idle_over_50ms: over(idle),
    frames: raf.length,
    max_frame_ms: Math.max(...durations),
    over_50ms: over(durations),
    over_50ms_by_phase: raf.filter(([d]) => d > 50).map(([d, p]) => `${p} ${Math.round(d)}`),
    long_animation_frames: loaf.length,
    max_long_animation_frame_ms: loaf.length ? Math.max(...loaf.map((l) => l.duration)) : 0,
    long_animation_frames_detail: loaf.filter((l) => l.duration > 50),
  };
}
const answer = Object.fromEntries(
  variants.map((v) => {
    const f = figures[v.name];
    return [
      v.name,
      {
        first_card_ms: f.first_card_ms,
        first_rows_ms: f.first_rows_ms,
        first_rows_frame_ms: f.first_rows_frame_ms,
        floor_ms: f.floor_ms,
        scroll_frames: framesSummary(f.frames),
        ...(profile ? { profile: profiles[v.name] } : {}),
      },
    ];
  }),
);
console.log(JSON.stringify(variants.length === 1 && !variants[0].name ? answer[""] : { variants: answer }));
