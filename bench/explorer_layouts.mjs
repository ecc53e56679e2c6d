// The layered layouts the explorer could use, on lineage-shaped graphs (explorer_graph.mjs) in
// Node (the same V8 as the page's worker): elkjs (layered, its fast options), dagre, d3-dag
// (sugiyama: longest-path layering, two-layer decrossing, greedy coordinates) and ours
// (services/ui/src/explorer/layered.ts, bundled by esbuild first). Each engine runs in a process
// of its own with a time limit, as these calls block. Prints one JSON line {engine: {n: ms}}.
//   node bench/explorer_layouts.mjs [sizes=300,2000,10000] [limit_s=60] [run_length=200]
// run_length: executions per run (explorer_graph.mjs); 200 is a long chain, whose Environment
// edges cross hundreds of layers, 8 a shallow graph of many short runs.
// bench/explorer.py runs it; it needs services/ui's dev dependencies (npm ci).
import { execFileSync, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { lineageGraph } from "./explorer_graph.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const ui = join(here, "..", "services", "ui");
const require = createRequire(join(ui, "package.json"));
const W = 160;
const H = 34;

async function run(engine, n, runLength) {
  const g = lineageGraph(n, { runLength });
  const nodes = g.nodes.map((v) => ({ id: v.id, width: W, height: H }));
  const started = performance.now();
  if (engine === "ours") {
    const { layered } = await import(process.env.LAYERED_MODULE);
    layered({ nodes, edges: g.edges });
  } else if (engine === "elk") {
    const ELK = require("elkjs/lib/elk.bundled.js");
    await new ELK().layout({
      id: "root",
      layoutOptions: {
        "elk.algorithm": "layered",
        "elk.direction": "RIGHT",
        "elk.layered.thoroughness": "1",
        "elk.layered.nodePlacement.strategy": "LINEAR_SEGMENTS",
        "elk.layered.crossingMinimization.greedySwitch.type": "OFF",
        "elk.edgeRouting": "POLYLINE",
        "elk.separateConnectedComponents": "true",
      },
      children: nodes,
      edges: g.edges.map((e, i) => ({ id: `e${i}`, sources: [e.source], targets: [e.target] })),
    });
  } else if (engine === "dagre") {
    const dagre = require("@dagrejs/dagre");
    const gr = new dagre.graphlib.Graph();
    gr.setGraph({ rankdir: "LR" });
    gr.setDefaultEdgeLabel(() => ({}));
    for (const v of nodes) gr.setNode(v.id, { width: W, height: H });
    for (const e of g.edges) gr.setEdge(e.source, e.target);
    dagre.layout(gr);
  } else if (engine === "d3-dag") {
    // require.resolve names the CommonJS build, whose exports an import puts under `default`.
    const d3dag = require("d3-dag");
    const dag = d3dag.graphConnect().sourceId((e) => e.source).targetId((e) => e.target).single(true)(g.edges);
    d3dag.sugiyama().layering(d3dag.layeringLongestPath()).decross(d3dag.decrossTwoLayer()).coord(d3dag.coordGreedy()).nodeSize([W, H])(dag);
  }
  return performance.now() - started;
}

if (process.env.LAYOUT_ONE) {
  const [engine, n, runLength] = process.env.LAYOUT_ONE.split(":");
  console.log(JSON.stringify(await run(engine, Number(n), Number(runLength))));
  process.exit(0);
}

const sizes = (process.argv[2] ?? "300,2000,10000").split(",").map(Number);
const limit = Number(process.argv[3] ?? 60);
const runLength = Number(process.argv[4] ?? 200);
const bundle = "/tmp/cmf-explorer-layered.mjs";
execFileSync(join(ui, "node_modules", ".bin", "esbuild"), [join(ui, "src", "explorer", "layered.ts"), "--format=esm", `--outfile=${bundle}`, "--log-level=warning"]);
const results = {};
for (const engine of ["ours", "elk", "dagre", "d3-dag"]) {
  results[engine] = {};
  for (const n of sizes) {
    const done = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
      env: { ...process.env, LAYOUT_ONE: `${engine}:${n}:${runLength}`, LAYERED_MODULE: bundle },
      timeout: limit * 1000,
      encoding: "utf8",
    });
    // Only a run the time limit stopped is "over": a run that failed is an error, reported.
    const timedOut = done.error?.code === "ETIMEDOUT" || done.signal === "SIGTERM";
    if (done.status !== 0 && !timedOut) {
      throw new Error(`${engine} ${n} failed:\n${done.stderr}`);
    }
    const ms = timedOut ? null : Number(done.stdout.trim().split("\n").pop());
    results[engine][n] = ms;
    console.error(`[layouts] ${engine} ${n}: ${ms === null ? `over ${limit} s` : `${ms.toFixed(0)} ms`}`);
    if (ms === null) break; // larger graphs take longer still
  }
}
console.log(JSON.stringify(results));
