import { describe, expect, it } from "vitest";
import { LANE_MARGIN, layered, routeLongEdges } from "./layered";
import {
  collapse,
  filterQuery,
  findPath,
  formatExpansions,
  layoutKey,
  merge,
  parseExpansions,
  parseState,
  search,
  treeGraph,
} from "./model";
import type { GEdge, GNode } from "./types";

const a = (id: number, type = "Dataset"): GNode => ({ id: `artifact:${id}`, kind: "artifact", name: `a${id}`, type });
const x = (id: number, stage: string): GNode => ({ id: `execution:${id}`, kind: "execution", name: `x${id}`, type: stage, stage });
const edge = (source: string, target: string, kind = "INPUT"): GEdge => ({ source, target, kind });

// a1 -> x2 (P/Prepare) -> a3 -> x4 (P/Train) -> a5 ; a6 -> x4
const nodes = [a(1), x(2, "P/Prepare"), a(3), x(4, "P/Train"), a(5, "Model"), a(6)];
const edges = [
  edge("artifact:1", "execution:2"),
  edge("execution:2", "artifact:3", "OUTPUT"),
  edge("artifact:3", "execution:4"),
  edge("execution:4", "artifact:5", "OUTPUT"),
  edge("artifact:6", "execution:4"),
];

describe("the URL state", () => {
  it("reads defaults and clamps what is out of range", () => {
    const s = parseState(new URLSearchParams("level=nope&depth=99&max=0&since=bad&prop=k:v&prop=novalue"));
    expect(s.level).toBe("combined");
    expect(s.depth).toBe(20);
    expect(s.max).toBe(1);
    expect(s.filters.since).toBe("");
    expect(s.filters.props).toEqual(["k:v"]);
  });
  it("reads which way a focus looks, both ways unless told", () => {
    expect(parseState(new URLSearchParams("focus=artifact:3&dir=upstream")).dir).toBe("upstream");
    expect(parseState(new URLSearchParams("focus=artifact:3&dir=downstream")).dir).toBe("downstream");
    expect(parseState(new URLSearchParams("focus=artifact:3&dir=sideways")).dir).toBe("both");
    expect(parseState(new URLSearchParams("focus=artifact:3")).dir).toBe("both");
  });
  it("round-trips expansions", () => {
    const list = parseExpansions("artifact:3~u~2~500;execution:4~d~1~2000;junk");
    expect(list).toEqual([
      { node: "artifact:3", direction: "upstream", depth: 2, max: 500 },
      { node: "execution:4", direction: "downstream", depth: 1, max: 2000 },
    ]);
    expect(parseExpansions(formatExpansions(list))).toEqual(list);
  });
  it("turns the filters into the graph route's query, until inclusive", () => {
    const q = filterQuery({ types: ["Model", "Dataset"], stages: [], props: ["seed:1"], since: "2026-01-01", until: "2026-01-01" });
    expect(q).toEqual([
      ["types", "Model,Dataset"],
      ["property", "seed:1"],
      ["since", String(Date.UTC(2026, 0, 1))],
      ["until", String(Date.UTC(2026, 0, 2))],
    ]);
  });
});

describe("the graph", () => {
  it("merges an expansion and counts what it added", () => {
    const { graph, added } = merge({ nodes: nodes.slice(0, 3), edges: edges.slice(0, 2) }, { nodes: nodes.slice(2, 5), edges: edges.slice(2, 4) });
    expect(added).toBe(2);
    expect(graph.nodes.map((n) => n.id)).toEqual(nodes.slice(0, 5).map((n) => n.id));
    expect(graph.edges).toHaveLength(4);
  });
  it("collapses a stage with the artifacts only it touches", () => {
    const g = collapse({ nodes, edges }, ["P/Train"]);
    expect(g.nodes.map((n) => n.id)).toEqual(["artifact:1", "execution:2", "artifact:3", "stage:P/Train"]);
    const folded = g.nodes.find((n) => n.id === "stage:P/Train");
    expect(folded?.collapsed).toBe(3); // x4, the model a5 only it wrote, a6 only it read
    expect(g.edges.map((e) => `${e.source}>${e.target}`)).toEqual([
      "artifact:1>execution:2",
      "execution:2>artifact:3",
      "artifact:3>stage:P/Train",
    ]);
  });
  it("searches names and ids in any case", () => {
    expect(search(nodes, "X4").map((n) => n.id)).toEqual(["execution:4"]);
    expect(search(nodes, "  ")).toEqual([]);
  });
  it("finds the path along the edges, either way, else ignoring direction", () => {
    const down = findPath(edges, "artifact:1", "artifact:5");
    expect(down?.nodes).toEqual(["artifact:1", "execution:2", "artifact:3", "execution:4", "artifact:5"]);
    expect(down?.directed).toBe(true);
    expect(findPath(edges, "artifact:5", "artifact:1")?.directed).toBe(true);
    const across = findPath(edges, "artifact:1", "artifact:6");
    expect(across?.directed).toBe(false);
    expect(across?.nodes).toEqual(["artifact:1", "execution:2", "artifact:3", "execution:4", "artifact:6"]);
    expect(findPath(edges, "artifact:1", "artifact:99")).toBeNull();
  });
  it("makes a tangled tree a graph whose columns follow the parents", () => {
    const g = treeGraph([
      [{ id: "data.xml:18b9", parents: [] }],
      [{ id: "train.tsv:2aa6", parents: ["data.xml:18b9"] }],
      [
        { id: "model.pkl:cd24", parents: ["train.tsv:2aa6"] },
        { id: "metrics:7652:2", parents: ["train.tsv:2aa6"] },
      ],
    ]);
    expect(g.nodes.map((n) => n.layer)).toEqual([0, 1, 2, 2]);
    expect(g.edges).toHaveLength(3);
  });
  it("keys a layout by the version and what is drawn", () => {
    const g = { nodes, edges };
    expect(layoutKey(["p", "v1"], g)).toBe(layoutKey(["p", "v1"], { nodes: [...nodes], edges: [...edges] }));
    expect(layoutKey(["p", "v1"], g)).not.toBe(layoutKey(["p", "v2"], g));
    expect(layoutKey(["p", "v1"], g)).not.toBe(layoutKey(["p", "v1"], { nodes, edges: edges.slice(1) }));
  });
});

describe("the layered layout", () => {
  it("puts each node right of what it comes from, without overlaps in a column", () => {
    const out = layered({ nodes: nodes.map((n) => ({ id: n.id, width: 100, height: 30 })), edges });
    const at = new Map(nodes.map((n, i) => [n.id, { x: out.x[i] as number, y: out.y[i] as number }]));
    for (const e of edges) expect(at.get(e.target)!.x).toBeGreaterThan(at.get(e.source)!.x);
    const columns = new Map<number, number[]>();
    for (const p of at.values()) columns.set(p.x, [...(columns.get(p.x) ?? []), p.y]);
    for (const ys of columns.values()) {
      ys.sort((p, q) => p - q);
      for (let i = 1; i < ys.length; i++) expect(ys[i]! - ys[i - 1]!).toBeGreaterThanOrEqual(30);
    }
  });
  it("runs an edge that crosses layers clear of the nodes between", () => {
    // The demo pipeline's shape: the Environment read by both executions, its edge to the
    // second one crossing Prepare's layer and train.tsv's.
    const demo: GNode[] = [a(10, "Environment"), a(1), a(6), x(2, "P/Prepare"), a(3), x(4, "P/Train"), a(5, "Model")];
    const links = [
      edge("artifact:10", "execution:2"),
      edge("artifact:1", "execution:2"),
      edge("artifact:6", "execution:2"),
      edge("execution:2", "artifact:3", "OUTPUT"),
      edge("artifact:3", "execution:4"),
      edge("artifact:10", "execution:4"),
      edge("execution:4", "artifact:5", "OUTPUT"),
    ];
    const input = { nodes: demo.map((n) => ({ id: n.id, width: 100, height: 30 })), edges: links };
    const out = layered(input);
    const lanes = routeLongEdges(input, out);
    const long = links.findIndex((e) => e.source === "artifact:10" && e.target === "execution:4");
    expect(Number.isNaN(lanes.y[long]!)).toBe(false);
    // Every node strictly between the edge's ends keeps clear of its lane.
    const [left, right] = [lanes.from[long]!, lanes.to[long]!];
    demo.forEach((n, i) => {
      if (n.id === "artifact:10" || n.id === "execution:4") return;
      const across = out.x[i]! + 50 > left && out.x[i]! - 50 < right;
      if (across) expect(Math.abs(out.y[i]! - lanes.y[long]!)).toBeGreaterThan(15 + LANE_MARGIN - 1);
    });
    // Edges to the next layer need no lane.
    expect(lanes.y.filter((y) => !Number.isNaN(y)).length).toBe(1);
  });
  it("passes over or under the nodes between when they block both its ends' heights", () => {
    // s -> m1 -> m2 -> t, and s -> t: the chain sits at s's and t's height all the way.
    const chain = ["s", "m1", "m2", "t"].map((id) => ({ id, width: 100, height: 30 }));
    const links = [
      { source: "s", target: "m1" },
      { source: "m1", target: "m2" },
      { source: "m2", target: "t" },
      { source: "s", target: "t" },
    ];
    const out = layered({ nodes: chain, edges: links });
    expect(out.y[0]).toBe(out.y[3]);
    const lanes = routeLongEdges({ nodes: chain, edges: links }, out);
    expect(Array.from(lanes.y.slice(0, 3), Number.isNaN)).toEqual([true, true, true]);
    expect(Math.abs(lanes.y[3]! - out.y[1]!)).toBeGreaterThan(15 + LANE_MARGIN);
    expect(lanes.from[3]).toBe(out.x[1]! - 50);
    expect(lanes.to[3]).toBe(out.x[2]! + 50);
    // Past the budget, edges stay one curve.
    expect(Number.isNaN(routeLongEdges({ nodes: chain, edges: links }, out, -1).y[3]!)).toBe(true);
  });
  it("survives cycles and lays 10,000 nodes out quickly", () => {
    const many = Array.from({ length: 10_000 }, (_, i) => ({ id: `n${i}`, width: 150, height: 32 }));
    const links = many.slice(1).map((n, i) => ({ source: `n${Math.floor(i / 2)}`, target: n.id }));
    links.push({ source: "n9999", target: "n0" });
    const started = performance.now();
    const out = layered({ nodes: many, edges: links });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(Number.isFinite(out.width) && Number.isFinite(out.height)).toBe(true);
  });
});
