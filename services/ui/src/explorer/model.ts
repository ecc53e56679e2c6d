// The explorer's pure helpers (Vitest: model.test.ts): its state in the URL, the filters as
// the server's parameters, merging expansions, collapsing stages, search, the path between two
// nodes, and the tangled trees as graphs.
import type { Direction, Expansion, Filters, GEdge, GNode, Level, TangledTree } from "./types";
import { isLevel } from "./types";

export const DEFAULT_LEVEL: Level = "combined";
export const DEFAULT_DEPTH = 1;
export const MAX_DEPTH = 20;
export const DEFAULT_MAX = 2000;
export const MAX_MAX = 20000;

export interface ExplorerState {
  level: Level;
  focus: string | null; // a node id: its neighbourhood instead of the whole pipeline
  dir: Direction; // which way from the focus: both (the default), upstream or downstream
  depth: number;
  max: number;
  filters: Filters;
  q: string;
  sel: string | null;
  to: string | null; // the second node of a path
  collapsed: string[];
  expansions: Expansion[];
  uuid: string | null; // the execution tree's execution
}

function list(raw: string | null): string[] {
  return (raw ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function clampInt(raw: string | null, low: number, high: number, fallback: number): number {
  const value = Number(raw);
  if (!raw || !Number.isFinite(value)) return fallback;
  return Math.min(high, Math.max(low, Math.round(value)));
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DIRECTIONS: Direction[] = ["both", "upstream", "downstream"];

export function parseState(params: URLSearchParams): ExplorerState {
  const level = params.get("level");
  return {
    level: isLevel(level) ? level : DEFAULT_LEVEL,
    focus: params.get("focus") || null,
    dir: DIRECTIONS.find((d) => d === params.get("dir")) ?? "both",
    depth: clampInt(params.get("depth"), 1, MAX_DEPTH, DEFAULT_DEPTH),
    max: clampInt(params.get("max"), 1, MAX_MAX, DEFAULT_MAX),
    filters: {
      types: list(params.get("types")),
      stages: list(params.get("stages")),
      props: params.getAll("prop").filter((p) => p.includes(":")),
      since: DATE.test(params.get("since") ?? "") ? (params.get("since") as string) : "",
      until: DATE.test(params.get("until") ?? "") ? (params.get("until") as string) : "",
    },
    q: params.get("q") ?? "",
    sel: params.get("sel") || null,
    to: params.get("to") || null,
    collapsed: list(params.get("collapsed")),
    expansions: parseExpansions(params.get("exp")),
    uuid: params.get("uuid") || null,
  };
}

// `exp=<node>~<u|d>~<depth>~<max>;…`: the expansions a shared link replays, in order.
export function parseExpansions(raw: string | null): Expansion[] {
  const out: Expansion[] = [];
  for (const part of (raw ?? "").split(";")) {
    const [node, dir, depth, max] = part.split("~");
    if (!node || (dir !== "u" && dir !== "d")) continue;
    out.push({
      node,
      direction: dir === "u" ? "upstream" : "downstream",
      depth: clampInt(depth ?? null, 1, MAX_DEPTH, DEFAULT_DEPTH),
      max: clampInt(max ?? null, 1, MAX_MAX, 500),
    });
  }
  return out;
}

export function formatExpansions(expansions: Expansion[]): string {
  return expansions
    .map((e) => `${e.node}~${e.direction === "upstream" ? "u" : "d"}~${e.depth}~${e.max}`)
    .join(";");
}

const DAY_MS = 86_400_000;

// The filters as the graph route's query (since/until: UTC days, `until` inclusive).
export function filterQuery(filters: Filters): [string, string][] {
  const out: [string, string][] = [];
  if (filters.types.length) out.push(["types", filters.types.join(",")]);
  if (filters.stages.length) out.push(["stages", filters.stages.join(",")]);
  for (const p of filters.props) out.push(["property", p]);
  if (filters.since) out.push(["since", String(Date.parse(`${filters.since}T00:00:00Z`))]);
  if (filters.until) out.push(["until", String(Date.parse(`${filters.until}T00:00:00Z`) + DAY_MS)]);
  return out;
}

export function filtersActive(filters: Filters): number {
  return (
    filters.types.length + filters.stages.length + filters.props.length + (filters.since ? 1 : 0) + (filters.until ? 1 : 0)
  );
}

export interface Graph {
  nodes: GNode[];
  edges: GEdge[];
}

export function edgeKey(e: { source: string; target: string }): string {
  return `${e.source}>${e.target}`;
}

// `base` with what `extra` adds (nodes by id, edges by their ends).
export function merge(base: Graph, extra: Graph): { graph: Graph; added: number } {
  const ids = new Set(base.nodes.map((n) => n.id));
  const keys = new Set(base.edges.map(edgeKey));
  const nodes = base.nodes.slice();
  const edges = base.edges.slice();
  let added = 0;
  for (const n of extra.nodes) {
    if (!ids.has(n.id)) {
      ids.add(n.id);
      nodes.push(n);
      added += 1;
    }
  }
  for (const e of extra.edges) {
    const key = edgeKey(e);
    if (!keys.has(key) && ids.has(e.source) && ids.has(e.target)) {
      keys.add(key);
      edges.push(e);
    }
  }
  return { graph: { nodes, edges }, added };
}

export function stageLabel(stage: string): string {
  const slash = stage.indexOf("/");
  return slash >= 0 ? stage.slice(slash + 1) : stage;
}

// Each collapsed stage as one node: its executions, and the artifacts only they touch, folded
// into `stage:<name>`; edges moved onto it, those inside it dropped.
export function collapse(graph: Graph, stages: string[]): Graph {
  if (!stages.length) return graph;
  const wanted = new Set(stages);
  const into = new Map<string, string>();
  for (const n of graph.nodes) {
    if (n.kind === "execution" && n.stage && wanted.has(n.stage)) into.set(n.id, `stage:${n.stage}`);
  }
  if (!into.size) return graph;
  // Artifacts whose every neighbour folds into one and the same stage fold into it too.
  const neighbours = new Map<string, Set<string>>(); // artifact -> what its neighbours become
  for (const e of graph.edges) {
    for (const [a, b] of [
      [e.source, e.target],
      [e.target, e.source],
    ] as const) {
      if (into.has(a)) continue;
      const set = neighbours.get(a) ?? new Set<string>();
      set.add(into.get(b) ?? b);
      neighbours.set(a, set);
    }
  }
  for (const [artifact, targets] of neighbours) {
    const only = targets.size === 1 ? [...targets][0] : undefined;
    if (only?.startsWith("stage:")) into.set(artifact, only);
  }
  const counts = new Map<string, number>();
  for (const target of into.values()) counts.set(target, (counts.get(target) ?? 0) + 1);
  const nodes: GNode[] = [];
  const placed = new Set<string>();
  for (const n of graph.nodes) {
    const target = into.get(n.id);
    if (!target) {
      nodes.push(n);
    } else if (!placed.has(target)) {
      placed.add(target);
      const stage = target.slice("stage:".length);
      nodes.push({
        id: target,
        kind: "stage",
        name: stage,
        display_name: stageLabel(stage),
        type: "Collapsed stage",
        stage,
        collapsed: counts.get(target) ?? 0,
      });
    }
  }
  const keys = new Set<string>();
  const edges: GEdge[] = [];
  for (const e of graph.edges) {
    const source = into.get(e.source) ?? e.source;
    const target = into.get(e.target) ?? e.target;
    if (source === target) continue;
    const key = `${source}>${target}`;
    if (keys.has(key)) continue;
    keys.add(key);
    edges.push({ source, target, kind: e.kind });
  }
  return { nodes, edges };
}

export function label(n: GNode): string {
  return n.display_name || n.name || n.id;
}

// Nodes whose name, display name, uuid or uri holds `q` (any case), in graph order.
export function search(nodes: GNode[], q: string): GNode[] {
  const needle = q.trim().toLowerCase();
  if (!needle) return [];
  return nodes.filter((n) =>
    [n.name, n.display_name, n.uuid, n.uri, n.id].some((v) => v && v.toLowerCase().includes(needle)),
  );
}

export interface PathFound {
  nodes: string[];
  edges: Set<string>; // edgeKey of each edge on it
  directed: boolean; // false: only found ignoring the edges' direction
}

// The shortest path between two nodes of the loaded graph: along the edges from `a` to `b`,
// else from `b` to `a`, else ignoring direction; null when they are not connected.
export function findPath(edges: GEdge[], a: string, b: string): PathFound | null {
  if (a === b) return { nodes: [a], edges: new Set(), directed: true };
  const out = new Map<string, string[]>();
  const both = new Map<string, string[]>();
  const add = (map: Map<string, string[]>, from: string, to: string) => {
    const found = map.get(from);
    if (found) found.push(to);
    else map.set(from, [to]);
  };
  for (const e of edges) {
    add(out, e.source, e.target);
    add(both, e.source, e.target);
    add(both, e.target, e.source);
  }
  const bfs = (adj: Map<string, string[]>, from: string, to: string): string[] | null => {
    const previous = new Map<string, string>([[from, from]]);
    const queue = [from];
    for (let i = 0; i < queue.length; i++) {
      const v = queue[i] as string;
      if (v === to) break;
      for (const w of adj.get(v) ?? []) {
        if (!previous.has(w)) {
          previous.set(w, v);
          queue.push(w);
        }
      }
    }
    if (!previous.has(to)) return null;
    const path = [to];
    while (path[path.length - 1] !== from) path.push(previous.get(path[path.length - 1] as string) as string);
    return path.reverse();
  };
  const forward = bfs(out, a, b);
  const backward = forward ? null : bfs(out, b, a);
  const directed = forward ?? backward;
  const path = directed ?? bfs(both, a, b);
  if (!path) return null;
  const keys = new Set<string>();
  for (let i = 0; i + 1 < path.length; i++) {
    const s = path[i] as string;
    const t = path[i + 1] as string;
    keys.add(`${s}>${t}`);
    keys.add(`${t}>${s}`);
  }
  return { nodes: path, edges: keys, directed: directed !== null };
}

// A tangled tree (the reference's layered lists) as a graph: a node per entry, its layer kept,
// an edge from each parent.
export function treeGraph(tree: TangledTree): Graph {
  const nodes: GNode[] = [];
  const edges: GEdge[] = [];
  const seen = new Set<string>();
  tree.forEach((group, layer) => {
    for (const entry of group) {
      if (seen.has(entry.id)) continue;
      seen.add(entry.id);
      const execution = entry.id.startsWith("execution_name_") || /_[0-9a-f]{4}$/.test(entry.id);
      nodes.push({
        id: `tree:${entry.id}`,
        kind: execution && !entry.id.startsWith("artifact_name_") ? "execution" : "artifact",
        name: entry.id,
        display_name: entry.id.replace(/^(artifact|execution)_name_/, ""),
        type: "",
        layer,
      });
    }
  });
  const layerOf = new Map(nodes.map((n) => [n.id, n.layer ?? 0]));
  for (const group of tree) {
    for (const entry of group) {
      for (const parent of entry.parents) {
        const source = `tree:${parent}`;
        if (layerOf.has(source)) edges.push({ source, target: `tree:${entry.id}`, kind: "PARENT" });
      }
    }
  }
  // The layers as the tree has them are groups by parent set, in topological order; number the
  // columns by the longest path so a node sits right of its parents.
  const column = new Map<string, number>();
  const parents = new Map<string, string[]>();
  for (const e of edges) parents.set(e.target, [...(parents.get(e.target) ?? []), e.source]);
  for (const n of nodes) {
    const ups = parents.get(n.id) ?? [];
    column.set(n.id, ups.length ? Math.max(...ups.map((u) => column.get(u) ?? 0)) + 1 : 0);
  }
  for (const n of nodes) n.layer = column.get(n.id) ?? 0;
  return { nodes, edges };
}

export function nodeSize(n: GNode): { width: number; height: number } {
  if (n.kind === "stage" || n.kind === "pipeline") return { width: 180, height: 44 };
  return { width: 160, height: 34 };
}

// The key a layout is cached under: the graph's version and everything that shapes what is
// drawn (the nodes and edges themselves, summarised).
export function layoutKey(parts: (string | number)[], graph: Graph): string {
  let h = 2166136261;
  const mix = (s: string) => {
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 16777619);
    }
  };
  for (const n of graph.nodes) mix(n.id);
  for (const e of graph.edges) mix(edgeKey(e));
  return `${parts.join("|")}|n${graph.nodes.length}|e${graph.edges.length}|${(h >>> 0).toString(36)}`;
}
