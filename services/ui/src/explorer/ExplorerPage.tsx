// The lineage explorer (docs/ui-explorer.md): a pipeline's lineage at a level, laid out in a
// worker, drawn by GraphView (view.ts), every choice kept in the URL. Loaded with this page only
// (React.lazy in PipelinePage).
import { useQueries, useQuery } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { SearchBox } from "../components/SearchBox";
import { ErrorState, Loading } from "../components/States";
import { Link, navigate, pipelinePath, useParams } from "../lib/router";
import { formatCount, plural } from "../lib/shape";
import { ArtifactDrawer } from "../pages/ArtifactDrawer";
import { ExecutionDrawer } from "../pages/ExecutionDrawer";
import { explorerApi } from "./api";
import { layout } from "./layout";
import {
  collapse,
  filtersActive,
  findPath,
  formatExpansions,
  type Graph,
  label,
  layoutKey,
  MAX_DEPTH,
  MAX_MAX,
  merge,
  nodeSize,
  parseState,
  search,
  stageLabel,
  treeGraph,
} from "./model";
import type { Cut, Expansion, Filters, GNode, GraphAnswer, Level } from "./types";
import { expandable, isTree, LEVELS } from "./types";
import { buildScene, GraphView, NO_HIGHLIGHT, type Highlight } from "./view";
import "./explorer.css";

declare global {
  interface Window {
    __explorer?: {
      view: GraphView;
      nodes: number;
      edges: number;
      renders: number;
      last: { layoutMs: number; engine: string; mode: string; cached: boolean; nodes: number };
    };
  }
}

interface Hidden {
  what: string;
  shown: number;
  hidden: number;
  atLeast: boolean;
  more: (() => void) | null;
}

function download(name: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function fileStem(pipeline: string, level: string): string {
  return `${pipeline}-${level}`.replace(/[^\w.-]+/g, "_");
}

export default function ExplorerPage({ pipeline }: { pipeline: string }) {
  const [params, setParams] = useParams();
  const state = parseState(params);
  const { level, focus, dir, depth, max, filters, collapsed, expansions } = state;
  const tree = isTree(level);
  const filterKey = JSON.stringify(filters);

  // The base graph: a tangled tree, a node's neighbourhood, or the pipeline at the level.
  const base = useQuery({
    queryKey: ["explorer", pipeline, level, focus, dir, depth, max, filterKey, state.uuid],
    queryFn: async ({ signal }): Promise<(Graph & Partial<Cut> & Partial<GraphAnswer>) | { error: string }> => {
      if (tree) {
        const answer = await explorerApi.tree(pipeline, level, state.uuid, signal);
        if (!Array.isArray(answer)) return { error: answer.error };
        return { ...treeGraph(answer), version: 0 };
      }
      if (focus) {
        return explorerApi.neighbourhood(
          focus,
          { direction: dir, depth, level: expandable(level) ? level : "combined", maxNodes: max, types: filters.types },
          signal,
        );
      }
      return explorerApi.graph(pipeline, level, filters, max, signal);
    },
    staleTime: 60_000,
  });

  // Expansions, replayed in order from the URL (at the levels one expands at).
  const expandLevel: Level = expandable(level) ? level : "combined";
  const expanded = useQueries({
    queries: expansions.map((e) => ({
      queryKey: ["explorer-expand", e.node, e.direction, e.depth, e.max, expandLevel, filters.types.join(",")],
      queryFn: ({ signal }: { signal: AbortSignal }) =>
        explorerApi.neighbourhood(
          e.node,
          { direction: e.direction, depth: e.depth, level: expandLevel, maxNodes: e.max, types: filters.types },
          signal,
        ),
      staleTime: 60_000,
      enabled: expandable(level),
    })),
  });

  const baseData = base.data && !("error" in base.data) ? base.data : null;
  const graph: Graph | null = useMemo(() => {
    if (!baseData) return null;
    let g: Graph = { nodes: baseData.nodes, edges: baseData.edges };
    if (expandable(level)) for (const e of expanded) if (e.data) g = merge(g, e.data).graph;
    if (level === "combined" || level === "execution") g = collapse(g, collapsed);
    return g;
    // The expansions change when one of their answers does.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [baseData, level, collapsed.join(","), expanded.map((e) => `${e.dataUpdatedAt}:${e.data ? 1 : 0}`).join(",")]);

  const version = baseData?.version ?? 0;
  // What is drawn decides the key (its node and edge ids are hashed in), not how it was asked for.
  const key = graph ? layoutKey([pipeline, level, `v${version}`, filterKey, collapsed.join(",")], graph) : "";
  const graphRef = useRef(graph);
  graphRef.current = graph;

  // Layout (in the worker, cached per key), then the scene.
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<GraphView | null>(null);
  const [rendered, setRendered] = useState<{ key: string; layoutMs: number; engine: string; mode: string; cached: boolean } | null>(null);
  const anchor = useRef<{ id: string; x: number; y: number } | null>(null);
  const [zoomK, setZoomK] = useState(1);
  const stateRef = useRef(state);
  stateRef.current = state;

  const onNodeClick = useCallback(
    (id: string, event: MouseEvent) => {
      const s = stateRef.current;
      if (event.shiftKey && s.sel && s.sel !== id) setParams({ to: id }, true);
      else setParams({ sel: id, to: null }, true);
    },
    [setParams],
  );
  const onBackgroundClick = useCallback(() => setParams({ sel: null, to: null }, true), [setParams]);

  useEffect(() => {
    if (!host.current) return;
    const v = new GraphView(host.current, { onNodeClick, onBackgroundClick, onZoom: (k) => setZoomK(k) });
    view.current = v;
    return () => {
      v.destroy();
      view.current = null;
    };
  }, [onNodeClick, onBackgroundClick]);

  useEffect(() => {
    const graph = graphRef.current;
    if (!graph || !key) return;
    let cancelled = false;
    const started = performance.now();
    const input = {
      nodes: graph.nodes.map((n) => ({ id: n.id, ...nodeSize(n) })),
      edges: graph.edges.map((e) => ({ source: e.source, target: e.target })),
    };
    void layout(key, input.nodes, input.edges).then((placed) => {
      const v = view.current;
      if (cancelled || !v) return;
      const scene = buildScene(graph.nodes, graph.edges, placed, nodeSize, label);
      const keep = anchor.current;
      v.setScene(scene, { keepTransform: !!keep });
      if (keep) {
        const now = v.screenPosition(keep.id);
        if (now) v.panBy(keep.x - now.x, keep.y - now.y);
        anchor.current = null;
      }
      const info = { layoutMs: placed.ms, engine: placed.engine, mode: v.currentMode, cached: placed.cached, nodes: graph.nodes.length };
      window.__explorer = {
        view: v,
        nodes: graph.nodes.length,
        edges: graph.edges.length,
        renders: (window.__explorer?.renders ?? 0) + 1,
        last: info,
      };
      setRendered({ key, ...info });
      // Marked once the frame that drew it has been painted (the start of the frame after).
      requestAnimationFrame(() =>
        requestAnimationFrame(() => {
          performance.mark("cmf:explorer-rendered", {
            detail: { ...info, edges: graph.edges.length, sinceLayoutStart: performance.now() - started },
          });
        }),
      );
    });
    return () => {
      cancelled = true;
    };
  }, [key]);

  // Highlights: the selection, the path between two nodes, search matches.
  const matches = useMemo(() => (graph ? search(graph.nodes, state.q) : []), [graph, state.q]);
  const path = useMemo(
    () => (graph && state.sel && state.to ? findPath(graph.edges, state.sel, state.to) : null),
    [graph, state.sel, state.to],
  );
  const [matchIndex, setMatchIndex] = useState(0);
  useEffect(() => setMatchIndex(0), [state.q]);
  const focusMatch = matches.length ? matches[matchIndex % matches.length] : undefined;
  useEffect(() => {
    const hl: Highlight = {
      ...NO_HIGHLIGHT,
      selected: new Set([state.sel, state.to].filter((s): s is string => !!s)),
      pathNodes: new Set(path?.nodes ?? []),
      pathEdges: path?.edges ?? new Set(),
      matches: new Set(matches.map((m) => m.id)),
      focus: focusMatch?.id ?? null,
    };
    view.current?.setHighlight(hl);
  }, [state.sel, state.to, path, matches, focusMatch, rendered]);
  useEffect(() => {
    if (focusMatch && rendered) view.current?.centerOn(focusMatch.id);
  }, [focusMatch, rendered?.key]); // eslint-disable-line react-hooks/exhaustive-deps

  const byId = useMemo(() => new Map((graph?.nodes ?? []).map((n) => [n.id, n])), [graph]);
  const selected = state.sel ? byId.get(state.sel) : undefined;
  const target = state.to ? byId.get(state.to) : undefined;
  const [expandDepth, setExpandDepth] = useState(depth);

  const expand = (node: string, direction: "upstream" | "downstream") => {
    const pos = view.current?.screenPosition(node);
    if (pos) anchor.current = { id: node, x: pos.x, y: pos.y };
    const next: Expansion[] = [
      ...expansions.filter((e) => !(e.node === node && e.direction === direction)),
      { node, direction, depth: expandDepth, max: 500 },
    ];
    setParams({ exp: formatExpansions(next) });
  };

  // What is not shown, said: the cap of the base graph and of each expansion.
  const hidden: Hidden[] = [];
  if (baseData && baseData.partial) {
    const shown = baseData.nodes.length;
    const total = baseData.total_nodes ?? shown;
    hidden.push({
      what: focus ? `around ${label(byId.get(focus) ?? ({ id: focus } as GNode))}` : "of this view",
      shown,
      hidden: baseData.hidden_nodes ?? total - shown,
      atLeast: Boolean((baseData as { hidden_at_least?: boolean }).hidden_at_least),
      more: max < MAX_MAX ? () => setParams({ max: Math.min(MAX_MAX, Math.max(max * 2, Math.min(total, MAX_MAX))) }) : null,
    });
  }
  expanded.forEach((e, i) => {
    const spec = expansions[i];
    if (!e.data || !spec || !e.data.partial) return;
    hidden.push({
      what: `${spec.direction} of ${label(byId.get(spec.node) ?? ({ id: spec.node } as GNode))}`,
      shown: e.data.nodes.length,
      hidden: e.data.hidden_nodes,
      atLeast: e.data.hidden_at_least,
      more:
        spec.max < MAX_MAX
          ? () =>
              setParams({
                exp: formatExpansions(expansions.map((x, j) => (j === i ? { ...x, max: Math.min(MAX_MAX, x.max * 4) } : x))),
              })
          : null,
    });
  });

  const [showFilters, setShowFilters] = useState(filtersActive(filters) > 0);
  const [exportNote, setExportNote] = useState("");
  const stem = fileStem(pipeline, level);
  const doExport = async (kind: "svg" | "png" | "json") => {
    const v = view.current;
    if (!v || !graph) return;
    if (kind === "svg") {
      download(`${stem}.svg`, new Blob([v.exportSvg(`${pipeline} · ${level}`)], { type: "image/svg+xml" }));
      setExportNote(`SVG of the whole graph (${plural(graph.nodes.length, "node")})`);
    } else if (kind === "png") {
      const png = await v.exportPng(2);
      download(`${stem}.png`, png.blob);
      setExportNote(`PNG of the view, ${png.width} × ${png.height}`);
    } else {
      const body = {
        pipeline,
        level,
        version,
        filters,
        focus,
        expansions,
        collapsed,
        nodes: graph.nodes,
        edges: graph.edges,
        hidden: hidden.map(({ what, shown, hidden: h, atLeast }) => ({ what, shown, hidden: h, at_least: atLeast })),
      };
      download(`${stem}.json`, new Blob([JSON.stringify(body, null, 1)], { type: "application/json" }));
      setExportNote(`JSON of ${plural(graph.nodes.length, "node")} and ${plural(graph.edges.length, "edge")}`);
    }
  };

  const openId = params.get("open");
  const openNode = openId ? byId.get(openId) : undefined;
  const drawerId = openId ? Number(openId.split(":")[1]) : NaN;
  const closeDrawer = useCallback(() => setParams({ open: null, view: null, lo: null }, true), [setParams]);

  const facets = baseData && "stages" in baseData ? (baseData as GraphAnswer) : null;
  const loading = base.isPending || expanded.some((e) => e.isPending && e.fetchStatus !== "idle");
  const waitingLayout = graph && rendered?.key !== key;

  return (
    <div className="explorer" data-testid="explorer">
      <div className="explorer-bar">
        <div className="segmented" role="tablist" aria-label="Level">
          {LEVELS.map((l) => (
            <button
              key={l.id}
              type="button"
              role="tab"
              aria-selected={level === l.id}
              className={level === l.id ? "on" : ""}
              onClick={() => setParams({ level: l.id, sel: null, to: null, exp: null, focus: isTree(l.id) ? null : focus })}
            >
              {l.label}
            </button>
          ))}
        </div>
        <SearchBox value={state.q} onChange={(q) => setParams({ q }, true)} placeholder="Find a node by name" label="Find a node by name" />
        {state.q && (
          <span className="sub" data-testid="search-count">
            {matches.length ? `${matchIndex + 1} of ${matches.length}` : "no match"}
            {matches.length > 1 && (
              <button className="btn small ghost" type="button" onClick={() => setMatchIndex((i) => i + 1)}>
                Next
              </button>
            )}
          </span>
        )}
        <div className="spacer" />
        <label className="depth">
          Depth
          <input
            type="number"
            min={1}
            max={MAX_DEPTH}
            value={expandDepth}
            aria-label="Expansion depth"
            onChange={(e) => setExpandDepth(Math.max(1, Math.min(MAX_DEPTH, Number(e.target.value) || 1)))}
          />
        </label>
        <button className={`btn small${showFilters ? " primary" : ""}`} type="button" onClick={() => setShowFilters((s) => !s)}>
          Filters{filtersActive(filters) ? ` (${filtersActive(filters)})` : ""}
        </button>
        <button className="btn small" type="button" onClick={() => view.current?.fit()}>
          Fit
        </button>
        <button className="btn small" type="button" onClick={() => void doExport("svg")}>
          SVG
        </button>
        <button className="btn small" type="button" onClick={() => void doExport("png")}>
          PNG
        </button>
        <button className="btn small" type="button" onClick={() => void doExport("json")}>
          JSON
        </button>
      </div>
      {showFilters && !tree && (
        <FilterPanel
          filters={filters}
          facets={facets}
          onChange={(f) => {
            // Read afresh: one navigation with every filter, the property pairs repeated.
            const next = new URLSearchParams(window.location.search);
            const set = (k: string, v: string) => (v ? next.set(k, v) : next.delete(k));
            set("types", f.types.join(","));
            set("stages", f.stages.join(","));
            set("since", f.since);
            set("until", f.until);
            next.delete("prop");
            for (const p of f.props) next.append("prop", p);
            for (const k of ["sel", "to", "exp"]) next.delete(k);
            navigate(`${pipelinePath(pipeline, "explorer")}?${next.toString()}`);
          }}
        />
      )}
      {hidden.map((h) => (
        <div className="notice" role="status" data-testid="partial" key={h.what}>
          <strong>
            {formatCount(h.hidden)}
            {h.atLeast ? "+" : ""} more {h.hidden === 1 ? "node" : "nodes"} {h.what} not shown
          </strong>
          <span className="sub"> ({formatCount(h.shown)} shown).</span>
          {h.more ? (
            <button className="btn small" type="button" onClick={h.more}>
              Load more
            </button>
          ) : (
            <span className="sub"> Narrow it with the filters or a focus node.</span>
          )}
        </div>
      ))}
      {focus && (
        <div className="notice subtle">
          Around <strong>{label(byId.get(focus) ?? ({ id: focus } as GNode))}</strong>, {plural(depth, "execution")}{" "}
          {dir === "both" ? "either way" : dir}.{" "}
          <button className="btn small ghost" type="button" onClick={() => setParams({ focus: null, dir: null, exp: null })}>
            Show the whole pipeline
          </button>
        </div>
      )}
      <div className="explorer-body">
        <div className="graph-host" ref={host} data-testid="graph-host" tabIndex={0} aria-label="Lineage graph: drag to pan, wheel to zoom" />
        {(loading || waitingLayout) && (
          <div className="graph-overlay">
            <Loading label={loading ? "Loading the lineage…" : `Laying out ${plural(graph?.nodes.length ?? 0, "node")}…`} />
          </div>
        )}
        {base.isError && (
          <div className="graph-overlay">
            <ErrorState error={base.error} onRetry={() => void base.refetch()} />
          </div>
        )}
        {base.data && "error" in base.data && (
          <div className="graph-overlay">
            <div className="state">
              <h2>Nothing to show</h2>
              <p>{base.data.error}</p>
              <p className="sub">The execution tree starts from an execution: select one at the execution level first.</p>
            </div>
          </div>
        )}
        {graph && !loading && graph.nodes.length === 0 && (
          <div className="graph-overlay">
            <div className="state">
              <h2>No lineage here</h2>
              <p className="sub">{filtersActive(filters) ? "Nothing matches the filters." : "This pipeline has nothing at this level yet."}</p>
            </div>
          </div>
        )}
        {selected && (
          <Inspector
            node={selected}
            target={target}
            pipeline={pipeline}
            level={level}
            pathFound={path}
            collapsed={collapsed}
            onExpand={expand}
            onOpen={() => setParams({ open: selected.id })}
            onFocus={() =>
              setParams({ focus: selected.id, dir: null, exp: null, sel: selected.id, level: expandable(level) ? level : "combined" })
            }
            onCollapse={(stage, on) =>
              setParams({ collapsed: (on ? [...collapsed, stage] : collapsed.filter((s) => s !== stage)).join(",") || null, sel: null })
            }
            onUuid={(uuid) => setParams({ level: "tree-execution", uuid, sel: null, focus: null, exp: null })}
            onClose={onBackgroundClick}
          />
        )}
      </div>
      <div className="explorer-foot sub" data-testid="explorer-status">
        {graph ? `${plural(graph.nodes.length, "node")} · ${plural(graph.edges.length, "edge")}` : ""}
        {rendered &&
          ` · layout ${rendered.cached ? "cached" : `${Math.round(rendered.layoutMs)} ms`} (${rendered.engine === "elk" ? "ELK" : "layered"}) · ${rendered.mode === "svg" ? "SVG" : "canvas"} · zoom ${zoomK.toFixed(2)}`}
        {state.sel && !state.to && " · shift-click another node for the path between them"}
        {exportNote && ` · exported: ${exportNote}`}
      </div>
      {openNode && openNode.kind === "execution" && Number.isFinite(drawerId) && (
        <ExecutionDrawer id={drawerId} pipeline={openNode.pipelines?.[0] ?? pipeline} onClose={closeDrawer} />
      )}
      {openNode && openNode.kind === "artifact" && Number.isFinite(drawerId) && (
        <ArtifactDrawer id={drawerId} pipeline={openNode.pipelines?.[0] ?? pipeline} onClose={closeDrawer} />
      )}
    </div>
  );
}

function Inspector(props: {
  node: GNode;
  target: GNode | undefined;
  pipeline: string;
  level: Level;
  pathFound: ReturnType<typeof findPath>;
  collapsed: string[];
  onExpand: (id: string, direction: "upstream" | "downstream") => void;
  onOpen: () => void;
  onFocus: () => void;
  onCollapse: (stage: string, on: boolean) => void;
  onUuid: (uuid: string) => void;
  onClose: () => void;
}) {
  const n = props.node;
  const real = n.kind === "artifact" || n.kind === "execution";
  const treeNode = n.id.startsWith("tree:");
  return (
    <aside className="inspector" data-testid="inspector" aria-label="Selected node">
      <div className="inspector-head">
        <span className="badge accent">{n.kind === "stage" && n.collapsed ? "collapsed stage" : n.kind}</span>
        <button className="btn small ghost" type="button" aria-label="Close" onClick={props.onClose}>
          ✕
        </button>
      </div>
      <h3 className="inspector-title" title={n.name}>
        {label(n)}
      </h3>
      <dl className="facts">
        {n.type && (
          <>
            <dt>Type</dt>
            <dd>{n.type}</dd>
          </>
        )}
        {n.stage && (
          <>
            <dt>Stage</dt>
            <dd>{stageLabel(n.stage)}</dd>
          </>
        )}
        {n.uuid && (
          <>
            <dt>uuid</dt>
            <dd className="mono">{n.uuid}</dd>
          </>
        )}
        {n.uri && (
          <>
            <dt>uri</dt>
            <dd className="mono">{n.uri.length > 24 ? `${n.uri.slice(0, 24)}…` : n.uri}</dd>
          </>
        )}
        {n.collapsed !== undefined && (
          <>
            <dt>Holds</dt>
            <dd>{plural(n.collapsed, "node")}</dd>
          </>
        )}
        {n.executions != null && (
          <>
            <dt>Executions</dt>
            <dd>{formatCount(n.executions)}</dd>
          </>
        )}
      </dl>
      <div className="inspector-actions">
        {real && !treeNode && (
          <button className="btn small primary" type="button" onClick={props.onOpen} data-testid="open-details">
            Details
          </button>
        )}
        {real && !treeNode && expandable(props.level) && (
          <>
            <button className="btn small" type="button" onClick={() => props.onExpand(n.id, "upstream")} data-testid="expand-upstream">
              ← Expand upstream
            </button>
            <button className="btn small" type="button" onClick={() => props.onExpand(n.id, "downstream")} data-testid="expand-downstream">
              Expand downstream →
            </button>
            <button className="btn small ghost" type="button" onClick={props.onFocus}>
              Focus here
            </button>
          </>
        )}
        {n.kind === "execution" && n.stage && (props.level === "combined" || props.level === "execution") && (
          <button className="btn small ghost" type="button" onClick={() => props.onCollapse(n.stage as string, true)} data-testid="collapse-stage">
            Collapse stage {stageLabel(n.stage)}
          </button>
        )}
        {n.kind === "execution" && n.uuid && (
          <button className="btn small ghost" type="button" onClick={() => props.onUuid(n.uuid as string)}>
            Its execution tree
          </button>
        )}
        {n.kind === "stage" && n.collapsed !== undefined && n.stage && (
          <button className="btn small" type="button" onClick={() => props.onCollapse(n.stage as string, false)} data-testid="expand-stage">
            Expand the stage
          </button>
        )}
        {n.kind === "stage" && n.collapsed === undefined && n.stage && (
          <Link className="btn small" to={`${pipelinePath(props.pipeline, "executions")}?stage=${encodeURIComponent(n.stage)}`}>
            Its executions
          </Link>
        )}
        {n.kind === "pipeline" && n.name !== props.pipeline && (
          <Link className="btn small" to={`${pipelinePath(n.name, "explorer")}?level=pipeline`}>
            Explore {n.name}
          </Link>
        )}
      </div>
      {props.target && (
        <div className="path-note" data-testid="path">
          {props.pathFound ? (
            <>
              Path to <strong>{label(props.target)}</strong>: {plural(props.pathFound.nodes.length - 1, "step")}
              {props.pathFound.directed ? "" : " (ignoring edge direction)"}.
            </>
          ) : (
            <>No path to {label(props.target)} in the loaded graph.</>
          )}
        </div>
      )}
    </aside>
  );
}

function FilterPanel(props: {
  filters: Filters;
  facets: GraphAnswer | null;
  onChange: (f: Filters) => void;
}) {
  const f = props.filters;
  const [prop, setProp] = useState("");
  const toggle = (list: string[], value: string) => (list.includes(value) ? list.filter((v) => v !== value) : [...list, value]);
  return (
    <div className="filters" data-testid="filters">
      <fieldset>
        <legend>Artifact types</legend>
        {(props.facets?.artifact_types ?? []).map((t) => (
          <label key={t.type} className="check">
            <input type="checkbox" checked={f.types.includes(t.type)} onChange={() => props.onChange({ ...f, types: toggle(f.types, t.type) })} />
            {t.type} <span className="sub">{formatCount(t.count)}</span>
          </label>
        ))}
      </fieldset>
      <fieldset>
        <legend>Stages</legend>
        {(props.facets?.stages ?? []).map((s) => (
          <label key={s.name} className="check">
            <input type="checkbox" checked={f.stages.includes(s.name)} onChange={() => props.onChange({ ...f, stages: toggle(f.stages, s.name) })} />
            {stageLabel(s.name)} <span className="sub">{formatCount(s.count)}</span>
          </label>
        ))}
      </fieldset>
      <fieldset>
        <legend>Execution property</legend>
        {f.props.map((p) => (
          <span key={p} className="badge accent chip">
            {p}
            <button type="button" aria-label={`Remove ${p}`} onClick={() => props.onChange({ ...f, props: f.props.filter((x) => x !== p) })}>
              ✕
            </button>
          </span>
        ))}
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (prop.includes(":")) props.onChange({ ...f, props: [...f.props, prop] });
            setProp("");
          }}
        >
          <input className="text" placeholder="key:value" aria-label="Execution property key:value" value={prop} onChange={(e) => setProp(e.target.value)} />
        </form>
      </fieldset>
      <fieldset>
        <legend>Created (UTC)</legend>
        <label className="check">
          from <input type="date" aria-label="Created from" value={f.since} onChange={(e) => props.onChange({ ...f, since: e.target.value })} />
        </label>
        <label className="check">
          to <input type="date" aria-label="Created until" value={f.until} onChange={(e) => props.onChange({ ...f, until: e.target.value })} />
        </label>
      </fieldset>
      <button
        className="btn small ghost"
        type="button"
        onClick={() => props.onChange({ types: [], stages: [], props: [], since: "", until: "" })}
      >
        Clear
      </button>
    </div>
  );
}

