// The shapes of the lineage explorer's answers (cmf_lineage/api/explorer.py) and of what the
// page draws.

export type NodeKind = "artifact" | "execution" | "stage" | "pipeline";

export interface GNode {
  id: string;
  kind: NodeKind;
  name: string;
  display_name?: string | null;
  type: string;
  stage?: string | null;
  uuid?: string | null;
  uri?: string | null;
  pipelines?: string[] | null;
  executions?: number | null;
  time?: number | null;
  // Set by the page: a tangled tree's layer, a collapsed stage's node count.
  layer?: number;
  collapsed?: number;
}

export interface GEdge {
  source: string;
  target: string;
  kind: string;
}

export interface Cut {
  version: number;
  nodes: GNode[];
  edges: GEdge[];
  total_nodes: number;
  total_edges: number;
  hidden_nodes: number;
  hidden_edges: number;
  partial: boolean;
  reason: string | null;
}

export interface GraphAnswer extends Cut {
  pipeline: string;
  level: string;
  stages: { name: string; count: number }[];
  artifact_types: { type: string; count: number }[];
}

export interface NeighbourhoodAnswer extends Cut {
  root: string;
  level: string;
  direction: Direction;
  depth: number;
  hidden_at_least: boolean;
}

export type Direction = "upstream" | "downstream" | "both";

export type TangledTree = { id: string; parents: string[] }[][];

export const LEVELS = [
  { id: "pipeline", label: "Pipeline" },
  { id: "stage", label: "Stages" },
  { id: "execution", label: "Executions" },
  { id: "artifact", label: "Artifacts" },
  { id: "combined", label: "Artifacts + executions" },
  { id: "tree-artifact", label: "Artifact tree" },
  { id: "tree-combined", label: "Artifact–execution tree" },
  { id: "tree-execution", label: "Execution tree" },
] as const;

export type Level = (typeof LEVELS)[number]["id"];

export function isLevel(value: string | null): value is Level {
  return LEVELS.some((l) => l.id === value);
}

export function isTree(level: Level): boolean {
  return level.startsWith("tree-");
}

// The levels one can expand a node at (the server's neighbourhood levels).
export function expandable(level: Level): boolean {
  return level === "combined" || level === "execution" || level === "artifact";
}

export interface Filters {
  types: string[];
  stages: string[];
  props: string[]; // key:value
  since: string; // YYYY-MM-DD, inclusive (UTC)
  until: string; // YYYY-MM-DD, inclusive (UTC)
}

export interface Expansion {
  node: string;
  direction: "upstream" | "downstream";
  depth: number;
  max: number;
}

// A node's position and size once laid out.
export interface Placed {
  x: Float64Array;
  y: Float64Array;
  width: number;
  height: number;
  // Where each edge (in the order laid out) runs between the layers it crosses (layered.ts
  // routeLongEdges); NaN laneY: one curve.
  laneY: Float64Array;
  laneFrom: Float64Array;
  laneTo: Float64Array;
  engine: string;
  ms: number;
}
