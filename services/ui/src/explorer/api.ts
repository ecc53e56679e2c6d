// The explorer's reads: the lineage service's explorer routes (docs/ui-explorer.md) and the
// reference's tangled trees.
import { getJson, V1 } from "../lib/api";
import { filterQuery } from "./model";
import type { Direction, Filters, GraphAnswer, Level, NeighbourhoodAnswer, TangledTree } from "./types";

function search(pairs: [string, string | number][]): string {
  const s = new URLSearchParams();
  for (const [k, v] of pairs) s.append(k, String(v));
  const text = s.toString();
  return text ? `?${text}` : "";
}

export const explorerApi = {
  graph: (pipeline: string, level: Level, filters: Filters, maxNodes: number, signal?: AbortSignal) =>
    getJson<GraphAnswer>(
      `${V1}/lineage/graph/${encodeURIComponent(pipeline)}${search([
        ["level", level],
        ["max_nodes", maxNodes],
        ...filterQuery(filters),
      ])}`,
      signal,
    ),
  neighbourhood: (
    node: string,
    p: { direction: Direction; depth: number; level: Level; maxNodes: number; types: string[] },
    signal?: AbortSignal,
  ) =>
    getJson<NeighbourhoodAnswer>(
      `${V1}/lineage/neighbourhood/${encodeURIComponent(node)}${search([
        ["direction", p.direction],
        ["depth", p.depth],
        ["level", p.level],
        ["max_nodes", p.maxNodes],
        ...(p.types.length ? ([["types", p.types.join(",")]] as [string, string][]) : []),
      ])}`,
      signal,
    ),
  tree: (pipeline: string, level: Level, uuid: string | null, signal?: AbortSignal) => {
    const p = encodeURIComponent(pipeline);
    const path =
      level === "tree-artifact"
        ? `/api/artifact-lineage/tangled-tree/${p}`
        : level === "tree-combined"
          ? `/api/artifact-execution-lineage/tangled-tree/${p}`
          : `/api/execution-lineage/tangled-tree/${encodeURIComponent((uuid ?? "").slice(0, 4))}/${p}`;
    return getJson<TangledTree | { error: string }>(path, signal);
  },
};
