// The lineage explorer's scenarios (run.mjs with CMF_UI_SCENARIOS=./explorer.mjs, from
// tests/integration/test_ui_explorer_e2e.py): on pipelines the real cmf client pushed, open the
// explorer, switch levels, click a node, expand upstream, filter, search, highlight a path,
// collapse a stage, and export PNG (a valid image of the view's size), SVG (parsed) and JSON.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { inflateSync } from "node:zlib";

const explorerUrl = (pipeline, query = "") => `/ui/p/${encodeURIComponent(pipeline)}/explorer${query ? `?${query}` : ""}`;

async function rendered(page, before = 0) {
  // The explorer counts its renders (window.__explorer); wait for one past `before`.
  await page.waitForFunction((n) => (window.__explorer?.renders ?? 0) > n, before);
  return page.evaluate(() => ({ ...window.__explorer.last, renders: window.__explorer.renders, edges: window.__explorer.edges }));
}

function levelTab(page, name) {
  return page.getByRole("tablist", { name: "Level" }).getByRole("tab", { name, exact: true });
}

async function renders(page) {
  return page.evaluate(() => window.__explorer?.renders ?? 0);
}

async function nodeIds(page) {
  return page.locator("[data-testid=graph-node]").evaluateAll((nodes) => nodes.map((n) => n.getAttribute("data-id")));
}

// A node whose label starts with `text` (case-sensitive: "Train_…" is not "train.tsv").
function labelled(text) {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`);
}

async function nodeLabelled(page, text) {
  const node = page.locator("[data-testid=graph-node]", { hasText: labelled(text) }).first();
  await node.waitFor();
  return node;
}

async function clickNode(page, text, modifiers = []) {
  const node = await nodeLabelled(page, text);
  const id = await node.getAttribute("data-id");
  // Bring it to the middle (the inspector covers the graph's top right), then click where the
  // view says it is.
  await page.evaluate((i) => window.__explorer.view.centerOn(i, 0.9), id);
  await page.waitForTimeout(350);
  const at = await page.evaluate((i) => window.__explorer.view.screenPosition(i), id);
  await page.mouse.move(at.x, at.y);
  for (const m of modifiers) await page.keyboard.down(m);
  await page.mouse.click(at.x, at.y);
  for (const m of modifiers) await page.keyboard.up(m);
  return id;
}

// The edges drawn behind a node other than their own two ends (each SVG path sampled every
// 4 px against every node's box): none should be, or an edge seems to feed what it passes.
async function edgesBehindNodes(page) {
  return page.evaluate(() => {
    const boxes = [...document.querySelectorAll(".graph-svg g.node")].map((g) => {
      const body = g.querySelector("rect.body");
      const at = /translate\(([-\d.e]+),([-\d.e]+)\)/.exec(g.getAttribute("transform"));
      return { id: g.getAttribute("data-id"), x: Number(at[1]), y: Number(at[2]), w: Number(body.getAttribute("width")), h: Number(body.getAttribute("height")) };
    });
    const behind = [];
    for (const path of document.querySelectorAll(".graph-svg path.edge")) {
      const [source, target] = path.getAttribute("data-key").split(">");
      const length = path.getTotalLength();
      for (let d = 0; d <= length; d += 4) {
        const p = path.getPointAtLength(d);
        const hit = boxes.find((b) => b.id !== source && b.id !== target && p.x > b.x + 1 && p.x < b.x + b.w - 1 && p.y > b.y + 1 && p.y < b.y + b.h - 1);
        if (hit) {
          behind.push(`${source}>${target} behind ${hit.id}`);
          break;
        }
      }
    }
    return behind;
  });
}

// The SVG view's transform (d3-zoom's, on the viewport group).
async function transformOf(page) {
  return page.evaluate(() => {
    const t = document.querySelector(".graph-svg g.viewport")?.getAttribute("transform") ?? "";
    const m = /translate\(([-\d.e]+),([-\d.e]+)\) scale\(([-\d.e]+)\)/.exec(t);
    return m ? { x: Number(m[1]), y: Number(m[2]), k: Number(m[3]) } : null;
  });
}

// CRC-32 of PNG chunks.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// A PNG read chunk by chunk: signature, every CRC, IHDR first, IEND last, and the image data
// inflating to exactly height rows of width pixels. Answers its width and height.
export function checkPng(buffer) {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  assert.deepEqual([...buffer.subarray(0, 8)], signature, "not a PNG signature");
  let offset = 8;
  const chunks = [];
  const data = [];
  while (offset < buffer.length) {
    const length = buffer.readUInt32BE(offset);
    const type = buffer.subarray(offset + 4, offset + 8).toString("latin1");
    const body = buffer.subarray(offset + 8, offset + 8 + length);
    const crc = buffer.readUInt32BE(offset + 8 + length);
    assert.equal(crc32(buffer.subarray(offset + 4, offset + 8 + length)), crc, `bad CRC in ${type}`);
    chunks.push(type);
    if (type === "IDAT") data.push(body);
    offset += 12 + length;
  }
  assert.equal(chunks[0], "IHDR");
  assert.equal(chunks[chunks.length - 1], "IEND");
  const ihdr = buffer.subarray(16, 29);
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  const bitDepth = ihdr[8];
  const colorType = ihdr[9];
  const channels = { 2: 3, 6: 4, 0: 1, 4: 2 }[colorType];
  assert.ok(channels && bitDepth === 8, `unexpected PNG format ${colorType}/${bitDepth}`);
  const pixels = inflateSync(Buffer.concat(data));
  assert.equal(pixels.length, height * (1 + width * channels), "image data does not fill the image");
  return { width, height };
}

async function downloaded(page, button) {
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: button, exact: true }).click()]);
  return { name: download.suggestedFilename(), body: await readFile(await download.path()) };
}

export const scenarios = {
  "explorer: opens on the pipeline and switches levels": {
    schemes: ["light", "dark"],
    async run({ page, fixture, shot, scheme }) {
      const pipeline = fixture.demo.pipeline;
      // The explorer's code (its chunk, with d3) and its layout worker load with its tab only.
      const scripts = [];
      page.on("request", (request) => {
        if (request.resourceType() === "script" || /\.js$/.test(new URL(request.url()).pathname)) scripts.push(new URL(request.url()).pathname);
      });
      await page.goto(`/ui/p/${encodeURIComponent(pipeline)}/executions`);
      await page.getByTestId("row").first().waitFor();
      assert.ok(!scripts.some((s) => /ExplorerPage|layout\.worker/.test(s)), `loaded before the tab: ${scripts.join(", ")}`);
      await page.getByRole("tab", { name: "Lineage" }).click();
      await page.waitForURL(/\/explorer/);
      const first = await rendered(page);
      assert.equal(first.mode, "svg");
      assert.ok(scripts.some((s) => /ExplorerPage/.test(s)) && scripts.some((s) => /layout\.worker/.test(s)), scripts.join(", "));
      // No edge runs behind a node (the Environment, read by both executions, passes Prepare's
      // outputs on its way to Train).
      assert.deepEqual(await edgesBehindNodes(page), []);
      // Each edge ends in an arrowhead at its target.
      const markers = await page.locator(".graph-svg path.edge").evaluateAll((paths) => paths.map((p) => getComputedStyle(p).markerEnd));
      assert.ok(markers.length > 0 && markers.every((m) => m.includes("cmf-arrow")), markers.join());
      const ids = await nodeIds(page);
      assert.ok(ids.some((id) => id.startsWith("artifact:")) && ids.some((id) => id.startsWith("execution:")), ids.join());
      assert.equal(ids.length, first.nodes);
      await nodeLabelled(page, "model.pkl");
      await page.getByTestId("explorer-status").getByText(/layout/).waitFor();
      if (scheme === "light") await shot("explorer-combined");
      const levels = [
        ["Executions", (list) => list.length === 2 && list.every((id) => id.startsWith("execution:"))],
        ["Stages", (list) => list.length === 2 && list.every((id) => id.startsWith("stage:"))],
        ["Artifacts", (list) => list.length >= 3 && list.every((id) => id.startsWith("artifact:"))],
        ["Pipeline", (list) => list.includes(`pipeline:${pipeline}`)],
        ["Artifact tree", (list) => list.length >= 2 && list.every((id) => id.startsWith("tree:"))],
        ["Artifact–execution tree", (list) => list.some((id) => id.includes("execution_name_"))],
      ];
      for (const [name, check] of levels) {
        const before = await renders(page);
        await levelTab(page, name).click();
        await rendered(page, before);
        const list = await nodeIds(page);
        assert.ok(check(list), `${name}: ${list.join(", ")}`);
        if (name === "Stages" && scheme === "dark") await shot("explorer-stages");
      }
      assert.equal(new URL(page.url()).searchParams.get("level"), "tree-combined");
      // Back to a view already drawn: its layout comes from the cache (per graph version).
      const back = await renders(page);
      await levelTab(page, "Artifacts + executions").click();
      assert.equal((await rendered(page, back)).cached, true);
      await page.getByTestId("explorer-status").getByText(/layout cached/).waitFor();
      // The execution tree starts from an execution: chosen in the inspector.
      await levelTab(page, "Executions").click();
      await nodeLabelled(page, "Train_");
      await clickNode(page, "Train_");
      const before = await renders(page);
      await page.getByRole("button", { name: "Its execution tree" }).click();
      await rendered(page, before);
      const tree = await nodeIds(page);
      assert.equal(tree.length, 2, tree.join());
    },
  },

  "explorer: a click shows a node, its details open the drawer": {
    async run({ page, fixture, shot }) {
      await page.goto(explorerUrl(fixture.demo.pipeline));
      await rendered(page);
      const id = await clickNode(page, "Train_");
      assert.match(id, /^execution:\d+$/);
      const inspector = page.getByTestId("inspector");
      await inspector.getByRole("heading", { name: labelled("Train_") }).waitFor();
      assert.equal(new URL(page.url()).searchParams.get("sel"), id);
      await inspector.getByTestId("open-details").click();
      const drawer = page.getByTestId("execution-drawer");
      await drawer.getByTestId("properties").waitFor();
      await drawer.getByText("max_depth").waitFor();
      await shot("explorer-drawer");
      await page.keyboard.press("Escape");
      await drawer.waitFor({ state: "detached" });
      // An artifact's drawer too.
      await clickNode(page, "model.pkl");
      await page.getByTestId("open-details").click();
      await page.getByTestId("artifact-drawer").getByTestId("producers").waitFor();
    },
  },

  "explorer: expand upstream from a focused node, depth from the control": {
    async run({ page, fixture, shot }) {
      const pipeline = fixture.demo.pipeline;
      await page.goto(explorerUrl(pipeline));
      await rendered(page);
      const model = await (await nodeLabelled(page, "model.pkl")).getAttribute("data-id");
      // Focus on the model: its neighbourhood at depth 1, the train execution and what it read.
      await page.goto(explorerUrl(pipeline, `focus=${model}&depth=1`));
      await rendered(page);
      const around = await nodeIds(page);
      assert.ok(!around.some((id) => id === undefined));
      const hasPrepare = async () => (await page.locator("[data-testid=graph-node]", { hasText: labelled("Prepare_") }).count()) > 0;
      assert.equal(await hasPrepare(), false, "depth 1 from the model does not reach Prepare");
      await clickNode(page, "train.tsv");
      const before = await renders(page);
      await page.getByLabel("Expansion depth").fill("1");
      await page.getByTestId("expand-upstream").click();
      const after = await rendered(page, before);
      assert.ok(after.nodes > around.length, `${after.nodes} > ${around.length}`);
      assert.equal(await hasPrepare(), true, "expanding train.tsv upstream brings Prepare");
      assert.match(new URL(page.url()).searchParams.get("exp") ?? "", /~u~1~/);
      await nodeLabelled(page, "data.xml");
      await page.evaluate(() => window.__explorer.view.fit(false));
      await shot("explorer-expanded");
      // The expansion is in the URL: a reload shows the same nodes.
      const shown = (await nodeIds(page)).sort();
      await page.reload();
      await rendered(page);
      await page.waitForFunction((n) => document.querySelectorAll("[data-testid=graph-node]").length === n, shown.length);
      assert.deepEqual((await nodeIds(page)).sort(), shown);
      // One way only (dir=, as the SDK's links ask): upstream of train.tsv, then its downstream
      // expanded.
      const train = await (await nodeLabelled(page, "train.tsv")).getAttribute("data-id");
      await page.goto(explorerUrl(pipeline, `focus=${train}&dir=upstream&depth=1`));
      await rendered(page);
      await page.getByText(/1 execution upstream/).waitFor();
      assert.equal(await hasPrepare(), true);
      const hasTrain = async () => (await page.locator("[data-testid=graph-node]", { hasText: labelled("Train_") }).count()) > 0;
      assert.equal(await hasTrain(), false, "upstream of train.tsv is not its consumer");
      await clickNode(page, "train.tsv");
      const beforeDown = await renders(page);
      await page.getByTestId("expand-downstream").click();
      await rendered(page, beforeDown);
      assert.match(new URL(page.url()).searchParams.get("exp") ?? "", /~d~1~/);
      assert.equal(await hasTrain(), true, "expanding train.tsv downstream brings Train");
      await nodeLabelled(page, "model.pkl");
    },
  },

  "explorer: pan, zoom, the minimap and Fit by hand; labels go when zoomed out": {
    async run({ page, fixture }) {
      await page.goto(explorerUrl(fixture.sweep.pipeline));
      await rendered(page);
      await page.waitForTimeout(300);
      const host = await page.getByTestId("graph-host").boundingBox();
      const fitted = await transformOf(page);
      // The wheel zooms about the pointer.
      await page.mouse.move(host.x + host.width / 2, host.y + host.height / 2);
      await page.mouse.wheel(0, -300);
      await page.waitForFunction((k) => {
        const t = document.querySelector(".graph-svg g.viewport")?.getAttribute("transform") ?? "";
        return Number(/scale\(([-\d.e]+)\)/.exec(t)?.[1]) > k * 1.2;
      }, fitted.k);
      const zoomed = await transformOf(page);
      await page.getByTestId("explorer-status").getByText(`zoom ${zoomed.k.toFixed(2)}`).waitFor();
      // A drag on the background pans by as much.
      const from = { x: host.x + 30, y: host.y + host.height - 30 };
      await page.mouse.move(from.x, from.y);
      await page.mouse.down();
      await page.mouse.move(from.x + 60, from.y - 20, { steps: 4 });
      await page.mouse.move(from.x + 120, from.y - 40, { steps: 4 });
      await page.mouse.up();
      const panned = await transformOf(page);
      assert.ok(Math.abs(panned.x - zoomed.x - 120) < 2 && Math.abs(panned.y - zoomed.y + 40) < 2, JSON.stringify({ zoomed, panned }));
      assert.equal(panned.k, zoomed.k);
      // A click on the minimap moves the view there, at the same zoom.
      const minimap = await page.getByTestId("minimap").boundingBox();
      await page.mouse.click(minimap.x + 8, minimap.y + minimap.height / 2);
      const moved = await transformOf(page);
      assert.ok(moved.x !== panned.x && moved.k === panned.k, JSON.stringify({ panned, moved }));
      // Far out, labels are not drawn; Fit brings the whole graph back.
      const svg = page.locator(".graph-svg");
      assert.equal(await svg.evaluate((el) => el.classList.contains("far")), false);
      await page.mouse.move(host.x + host.width / 2, host.y + host.height / 2);
      for (let i = 0; i < 6; i++) await page.mouse.wheel(0, 400);
      await page.waitForFunction(() => document.querySelector(".graph-svg")?.classList.contains("far"));
      assert.equal(await page.locator(".graph-svg g.node text").first().evaluate((t) => getComputedStyle(t).display), "none");
      await page.getByRole("button", { name: "Fit", exact: true }).click();
      await page.waitForFunction((k) => {
        const t = document.querySelector(".graph-svg g.viewport")?.getAttribute("transform") ?? "";
        return Math.abs(Number(/scale\(([-\d.e]+)\)/.exec(t)?.[1]) - k) < 1e-3;
      }, fitted.k);
      // The sweep's graph is bigger: still no edge behind a node.
      assert.deepEqual(await edgesBehindNodes(page), []);
    },
  },

  "explorer: filters by type and stage are in the URL": {
    async run({ page, fixture }) {
      const pipeline = fixture.demo.pipeline;
      await page.goto(explorerUrl(pipeline));
      const all = await rendered(page);
      await page.getByRole("button", { name: /^Filters/ }).click();
      const filters = page.getByTestId("filters");
      let before = await renders(page);
      await filters.getByRole("checkbox", { name: /^Model/ }).check();
      await page.waitForURL((url) => url.searchParams.get("types") === "Model");
      const models = await rendered(page, before);
      assert.ok(models.nodes < all.nodes);
      const ids = await nodeIds(page);
      assert.equal(ids.filter((id) => id.startsWith("artifact:")).length, 1, ids.join());
      before = await renders(page);
      await filters.getByRole("checkbox", { name: /^Prepare/ }).check();
      await page.waitForURL((url) => url.searchParams.get("stages") === `${pipeline}/Prepare`);
      await rendered(page, before);
      assert.equal(await page.locator("[data-testid=graph-node]", { hasText: labelled("Train_") }).count(), 0);
      // A shared link shows the same view.
      await page.reload();
      await rendered(page);
      assert.equal(await page.locator("[data-testid=graph-node]", { hasText: labelled("Train_") }).count(), 0);
      await page.getByRole("button", { name: /^Filters \(2\)/ }).waitFor();
      // A property filter and an empty time range.
      await page.goto(explorerUrl(pipeline, "prop=max_depth:3"));
      await rendered(page);
      const byProperty = await nodeIds(page);
      assert.equal(byProperty.filter((id) => id.startsWith("execution:")).length, 1, byProperty.join());
      await page.goto(explorerUrl(pipeline, "since=2001-01-01&until=2001-01-02"));
      await page.getByText("Nothing matches the filters.").waitFor();
    },
  },

  "explorer: search, path between two nodes, collapse a stage": {
    async run({ page, fixture, shot }) {
      const pipeline = fixture.demo.pipeline;
      await page.goto(explorerUrl(pipeline));
      await rendered(page);
      await page.getByRole("searchbox", { name: "Find a node by name" }).fill("train.tsv");
      await page.waitForURL((url) => url.searchParams.get("q") === "train.tsv");
      await page.getByTestId("search-count").getByText("1 of 1").waitFor();
      await page.locator("[data-testid=graph-node].match", { hasText: labelled("train.tsv") }).waitFor();
      await page.getByRole("searchbox", { name: "Find a node by name" }).fill("");
      await page.waitForURL((url) => !url.searchParams.get("q"));
      const from = await clickNode(page, "data.xml");
      const to = await clickNode(page, "model.pkl", ["Shift"]);
      await page.waitForURL((url) => url.searchParams.get("sel") === from && url.searchParams.get("to") === to);
      await page.getByTestId("path").getByText("4 steps").waitFor();
      // The panel can say it a frame before the graph marks the path's nodes.
      await page.waitForFunction(
        () => document.querySelectorAll("[data-testid=graph-node].on-path").length >= 5,
      );
      assert.equal(await page.locator("[data-testid=graph-node].on-path").count(), 5);
      assert.ok((await page.locator("path.edge.on-path").count()) >= 4);
      await page.evaluate(() => window.__explorer.view.fit(false));
      await shot("explorer-path");
      await clickNode(page, "Prepare_");
      const before = await renders(page);
      await page.getByTestId("collapse-stage").click();
      await rendered(page, before);
      const ids = await nodeIds(page);
      assert.ok(ids.includes(`stage:${pipeline}/Prepare`), ids.join());
      assert.equal(new URL(page.url()).searchParams.get("collapsed"), `${pipeline}/Prepare`);
    },
  },

  "explorer: a cap says what it hides and loads more": {
    async run({ page, fixture }) {
      const { pipeline } = fixture.sweep;
      await page.goto(explorerUrl(pipeline, "max=5"));
      await rendered(page);
      const notice = page.getByTestId("partial");
      await notice.getByText(/more nodes of this view not shown/).waitFor();
      const text = await notice.innerText();
      assert.match(text, /\(5 shown\)/);
      const before = await renders(page);
      await notice.getByRole("button", { name: "Load more" }).click();
      await page.waitForURL((url) => Number(url.searchParams.get("max")) > 5);
      const more = await rendered(page, before);
      assert.ok(more.nodes > 5);
    },
  },

  "explorer: export PNG, SVG and JSON": {
    async run({ page, fixture }) {
      const { pipeline } = fixture.sweep;
      await page.goto(explorerUrl(pipeline));
      const shown = await rendered(page);
      const size = await page.getByTestId("graph-host").evaluate((el) => ({ w: el.clientWidth, h: el.clientHeight }));
      const png = await downloaded(page, "PNG");
      assert.match(png.name, /\.png$/);
      const image = checkPng(png.body);
      assert.deepEqual(image, { width: size.w * 2, height: size.h * 2 });
      const svg = await downloaded(page, "SVG");
      assert.match(svg.name, /\.svg$/);
      const parsed = await page.evaluate((text) => {
        const doc = new DOMParser().parseFromString(text, "image/svg+xml");
        return {
          error: doc.getElementsByTagName("parsererror").length,
          root: doc.documentElement.nodeName,
          nodes: doc.querySelectorAll("g[data-id]").length,
          edges: doc.querySelectorAll("path.e").length,
          arrows: doc.querySelectorAll("defs marker").length,
          viewBox: doc.documentElement.getAttribute("viewBox"),
        };
      }, svg.body.toString("utf8"));
      assert.equal(parsed.error, 0);
      assert.equal(parsed.root, "svg");
      assert.equal(parsed.nodes, shown.nodes);
      assert.equal(parsed.edges, shown.edges);
      assert.equal(parsed.arrows, 2);
      assert.ok(!svg.body.toString("utf8").includes("/work/"), "no local paths in the SVG");
      const json = JSON.parse((await downloaded(page, "JSON")).body.toString("utf8"));
      assert.equal(json.nodes.length, shown.nodes);
      assert.equal(json.pipeline, pipeline);
    },
  },

  "explorer: past the SVG limit it draws on a canvas, still clickable": {
    async run({ page, fixture, shot }) {
      const pipeline = fixture.demo.pipeline;
      // A 3,000-node answer in the route's shape, so the canvas path runs.
      await page.route("**/api/native/v1/lineage/graph/**", async (route) => {
        const nodes = [];
        const edges = [];
        for (let i = 0; i < 3000; i++) {
          const kind = i % 2 ? "execution" : "artifact";
          nodes.push({ id: `${kind}:${i + 1}`, kind, name: `n${i}`, display_name: `node ${i}`, type: kind === "artifact" ? "Dataset" : "S", stage: kind === "execution" ? `${pipeline}/S${i % 5}` : null, pipelines: [pipeline] });
          if (i) edges.push({ source: nodes[Math.floor((i - 1) / 2)].id, target: nodes[i].id, kind: "INPUT" });
        }
        await route.fulfill({
          json: { version: 1, pipeline, level: "combined", nodes, edges, total_nodes: 3000, total_edges: edges.length, hidden_nodes: 0, hidden_edges: 0, partial: false, reason: null, stages: [], artifact_types: [] },
        });
      });
      await page.goto(explorerUrl(pipeline, "max=3000"));
      const big = await rendered(page);
      assert.equal(big.mode, "canvas");
      assert.equal(await page.locator("[data-testid=graph-host] canvas.graph-canvas").count(), 1);
      await page.evaluate(() => window.__explorer.view.centerOn("artifact:1", 1));
      await page.waitForTimeout(400);
      const at = await page.evaluate(() => window.__explorer.view.screenPosition("artifact:1"));
      await page.mouse.click(at.x, at.y);
      await page.waitForURL((url) => url.searchParams.get("sel") === "artifact:1");
      await page.getByTestId("inspector").getByText("node 0").waitFor();
      await page.evaluate(() => window.__explorer.view.fit(false));
      await shot("explorer-canvas");
    },
  },
};
