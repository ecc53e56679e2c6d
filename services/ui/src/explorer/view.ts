// The explorer's drawing: d3-zoom for pan and zoom over either an SVG (d3-selection joins; up
// to SVG_MAX_NODES, where each node is a DOM element one can click and inspect) or a canvas
// past that (drawn per frame, culled to the viewport). Level of detail: labels go when nodes
// get too small to read them, edges become straight lines and then thin out. A minimap shows
// the whole graph and the viewport and pans on click. Exports: the whole graph as SVG, the
// current view as PNG.
import { select, type Selection } from "d3-selection";
import { zoom as d3zoom, zoomIdentity, type ZoomBehavior, type ZoomTransform } from "d3-zoom";
import type { GEdge, GNode, Placed } from "./types";

export const SVG_MAX_NODES = 1200;
const LABEL_MIN_SCALE = 0.45; // below this a label would be under ~6px: not drawn
const CURVE_MIN_SCALE = 0.2; // below this edges are straight lines
const MIN_SCALE = 0.005;
const MAX_SCALE = 4;
const MINIMAP_W = 200;
const MINIMAP_H = 130;

export interface SceneNode {
  id: string;
  x: number;
  y: number;
  w: number;
  h: number;
  label: string;
  kind: string;
  type: string;
  color: string;
  node: GNode;
}

export interface SceneEdge {
  s: number;
  t: number;
  key: string;
  // Runs along `lane` from x `from` to `to` (NaN lane: one curve); see layered.ts Lanes.
  lane: number;
  from: number;
  to: number;
}

export interface Scene {
  nodes: SceneNode[];
  edges: SceneEdge[];
  index: Map<string, number>;
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

export interface Highlight {
  selected: Set<string>;
  pathNodes: Set<string>;
  pathEdges: Set<string>;
  matches: Set<string>;
  focus: string | null; // the node search moved to
}

export const NO_HIGHLIGHT: Highlight = {
  selected: new Set(),
  pathNodes: new Set(),
  pathEdges: new Set(),
  matches: new Set(),
  focus: null,
};

const TYPE_COLOR: Record<string, string> = {
  Dataset: "--c1",
  Model: "--c2",
  Metrics: "--c3",
  Step_Metrics: "--c6",
  Environment: "--c9",
  Label: "--c5",
  Dataslice: "--c7",
};

function colorVar(n: GNode): string {
  if (n.kind === "execution") return "--c0";
  if (n.kind === "stage" || n.kind === "pipeline") return "--c5";
  return TYPE_COLOR[n.type] ?? "--c8";
}

export function truncate(text: string, max = 22): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function buildScene(
  nodes: GNode[],
  edges: GEdge[],
  placed: Placed,
  size: (n: GNode) => { width: number; height: number },
  labelOf: (n: GNode) => string,
): Scene {
  const index = new Map<string, number>();
  const styles = getComputedStyle(document.documentElement);
  const colors = new Map<string, string>();
  const color = (v: string) => {
    let c = colors.get(v);
    if (!c) {
      c = styles.getPropertyValue(v).trim() || "#64748b";
      colors.set(v, c);
    }
    return c;
  };
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  const out: SceneNode[] = nodes.map((n, i) => {
    index.set(n.id, i);
    const { width, height } = size(n);
    const x = placed.x[i] ?? 0;
    const y = placed.y[i] ?? 0;
    minX = Math.min(minX, x - width / 2);
    minY = Math.min(minY, y - height / 2);
    maxX = Math.max(maxX, x + width / 2);
    maxY = Math.max(maxY, y + height / 2);
    return { id: n.id, x, y, w: width, h: height, label: labelOf(n), kind: n.kind, type: n.type, color: color(colorVar(n)), node: n };
  });
  const sceneEdges: SceneEdge[] = [];
  edges.forEach((e, k) => {
    const s = index.get(e.source);
    const t = index.get(e.target);
    if (s === undefined || t === undefined || s === t) return;
    const lane = placed.laneY?.[k] ?? Number.NaN;
    sceneEdges.push({ s, t, key: `${e.source}>${e.target}`, lane, from: placed.laneFrom?.[k] ?? 0, to: placed.laneTo?.[k] ?? 0 });
  });
  if (!out.length) {
    minX = minY = 0;
    maxX = maxY = 1;
  }
  return { nodes: out, edges: sceneEdges, index, minX, minY, maxX, maxY };
}

// What an edge is drawn on: a canvas's 2D context, or PathText for an SVG path's `d`.
interface PathSink {
  moveTo(x: number, y: number): void;
  lineTo(x: number, y: number): void;
  bezierCurveTo(c1x: number, c1y: number, c2x: number, c2y: number, x: number, y: number): void;
}

class PathText implements PathSink {
  d = "";
  moveTo(x: number, y: number): void {
    this.d += `M${x},${y}`;
  }
  lineTo(x: number, y: number): void {
    this.d += `L${x},${y}`;
  }
  bezierCurveTo(c1x: number, c1y: number, c2x: number, c2y: number, x: number, y: number): void {
    this.d += `C${c1x},${c1y} ${c2x},${c2y} ${x},${y}`;
  }
}

// From (x1, y1) to (x2, y2), left to right: a line when level, else an S-curve.
function bend(sink: PathSink, x1: number, y1: number, x2: number, y2: number): void {
  if (y1 === y2) {
    sink.lineTo(x2, y2);
    return;
  }
  const dx = Math.max(30, Math.abs(x2 - x1) / 2);
  sink.bezierCurveTo(x1 + dx, y1, x2 - dx, y2, x2, y2);
}

// One edge, from the right side of its source to the left side of its target: along its lane
// when it has one (bending into it and out of it), else one curve; a straight line when far.
export function traceEdge(sink: PathSink, a: SceneNode, b: SceneNode, e: SceneEdge, curved: boolean): void {
  const sx = a.x + a.w / 2;
  const tx = b.x - b.w / 2;
  sink.moveTo(sx, a.y);
  if (!curved) {
    sink.lineTo(tx, b.y);
    return;
  }
  if (Number.isNaN(e.lane)) {
    bend(sink, sx, a.y, tx, b.y);
    return;
  }
  if (e.from > sx) bend(sink, sx, a.y, e.from, e.lane);
  sink.lineTo(e.to, e.lane);
  if (tx > e.to) bend(sink, e.to, e.lane, tx, b.y);
}

export function edgePath(a: SceneNode, b: SceneNode, e: SceneEdge, curved: boolean): string {
  const text = new PathText();
  traceEdge(text, a, b, e, curved);
  return text.d;
}

interface Theme {
  bg: string;
  panel: string;
  text: string;
  muted: string;
  edge: string;
  accent: string;
  warn: string;
}

function theme(): Theme {
  const s = getComputedStyle(document.documentElement);
  const v = (name: string, fallback: string) => s.getPropertyValue(name).trim() || fallback;
  return {
    bg: v("--bg", "#f7f8fb"),
    panel: v("--panel", "#ffffff"),
    text: v("--text", "#141824"),
    muted: v("--muted", "#5d6478"),
    edge: v("--faint", "#8b92a6"),
    accent: v("--accent", "#4f46e5"),
    warn: v("--c3", "#f59e0b"),
  };
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const ARROW_LENGTH = 7;
const ARROW_HALF_WIDTH = 3.5;

function arrowheads(ctx: CanvasRenderingContext2D, scene: Scene, edges: SceneEdge[]): void {
  ctx.beginPath();
  for (const e of edges) {
    const b = scene.nodes[e.t] as SceneNode;
    const tx = b.x - b.w / 2;
    ctx.moveTo(tx, b.y);
    ctx.lineTo(tx - ARROW_LENGTH, b.y - ARROW_HALF_WIDTH);
    ctx.lineTo(tx - ARROW_LENGTH, b.y + ARROW_HALF_WIDTH);
    ctx.closePath();
  }
  ctx.fill();
}

// An SVG marker of the same arrowhead, `fill` its colour (a CSS value: a variable in the view).
function arrowMarker(id: string, fill: string): string {
  return (
    `<marker id="${id}" viewBox="0 0 ${ARROW_LENGTH} ${2 * ARROW_HALF_WIDTH}" refX="${ARROW_LENGTH}" refY="${ARROW_HALF_WIDTH}" ` +
    `markerUnits="userSpaceOnUse" markerWidth="${ARROW_LENGTH}" markerHeight="${2 * ARROW_HALF_WIDTH}" orient="auto">` +
    `<path d="M0,0L${ARROW_LENGTH},${ARROW_HALF_WIDTH}L0,${2 * ARROW_HALF_WIDTH}z" style="fill:${fill}"/></marker>`
  );
}

// The scene drawn on a 2D context at a transform: what the canvas view draws each frame and
// what the PNG export draws once.
export function drawScene(
  ctx: CanvasRenderingContext2D,
  scene: Scene,
  t: { x: number; y: number; k: number },
  width: number,
  height: number,
  hl: Highlight,
  colors: Theme,
  pixelRatio = 1,
): void {
  ctx.setTransform(pixelRatio, 0, 0, pixelRatio, 0, 0);
  ctx.fillStyle = colors.bg;
  ctx.fillRect(0, 0, width, height);
  ctx.setTransform(pixelRatio * t.k, 0, 0, pixelRatio * t.k, pixelRatio * t.x, pixelRatio * t.y);
  const x0 = -t.x / t.k;
  const y0 = -t.y / t.k;
  const x1 = (width - t.x) / t.k;
  const y1 = (height - t.y) / t.k;
  const visible = (n: SceneNode) => n.x + n.w / 2 >= x0 && n.x - n.w / 2 <= x1 && n.y + n.h / 2 >= y0 && n.y - n.h / 2 <= y1;
  const curved = t.k >= CURVE_MIN_SCALE;
  const onPath = hl.pathEdges.size > 0;
  // Edges: one path for all, one for the path's; culled by their bounding boxes.
  ctx.lineWidth = 1.2 / Math.max(t.k, 0.35);
  ctx.strokeStyle = colors.edge;
  ctx.globalAlpha = onPath ? 0.25 : t.k < CURVE_MIN_SCALE ? 0.45 : 0.8;
  ctx.beginPath();
  const special: SceneEdge[] = [];
  const drawn: SceneEdge[] = [];
  for (const e of scene.edges) {
    const a = scene.nodes[e.s] as SceneNode;
    const b = scene.nodes[e.t] as SceneNode;
    const ex0 = Math.min(a.x, b.x) - 80;
    const ex1 = Math.max(a.x, b.x) + 80;
    const laned = !Number.isNaN(e.lane);
    const ey0 = laned ? Math.min(a.y, b.y, e.lane) : Math.min(a.y, b.y);
    const ey1 = laned ? Math.max(a.y, b.y, e.lane) : Math.max(a.y, b.y);
    if (ex1 < x0 || ex0 > x1 || ey1 < y0 || ey0 > y1) continue;
    if (onPath && hl.pathEdges.has(e.key)) {
      special.push(e);
      continue;
    }
    traceEdge(ctx, a, b, e, curved);
    drawn.push(e);
  }
  ctx.stroke();
  // Arrowheads where edges meet their targets (they arrive level), once labels are drawn.
  const arrows = t.k >= LABEL_MIN_SCALE;
  if (arrows) {
    ctx.fillStyle = colors.edge;
    arrowheads(ctx, scene, drawn);
  }
  ctx.globalAlpha = 1;
  if (special.length) {
    ctx.strokeStyle = colors.accent;
    ctx.lineWidth = 3 / Math.max(t.k, 0.35);
    ctx.beginPath();
    for (const e of special) traceEdge(ctx, scene.nodes[e.s] as SceneNode, scene.nodes[e.t] as SceneNode, e, true);
    ctx.stroke();
    if (arrows) {
      ctx.fillStyle = colors.accent;
      arrowheads(ctx, scene, special);
    }
  }
  // Nodes: batched by colour.
  const byColor = new Map<string, SceneNode[]>();
  const shown: SceneNode[] = [];
  for (const n of scene.nodes) {
    if (!visible(n)) continue;
    shown.push(n);
    const list = byColor.get(n.color);
    if (list) list.push(n);
    else byColor.set(n.color, [n]);
  }
  const dim = onPath || hl.matches.size > 0;
  const detailed = t.k >= LABEL_MIN_SCALE;
  for (const [color, list] of byColor) {
    ctx.fillStyle = color;
    ctx.globalAlpha = detailed ? 0.16 : dim ? 0.35 : 0.85;
    ctx.beginPath();
    for (const n of list) ctx.rect(n.x - n.w / 2, n.y - n.h / 2, n.w, n.h);
    ctx.fill();
    if (detailed) {
      ctx.globalAlpha = 1;
      ctx.beginPath();
      for (const n of list) ctx.rect(n.x - n.w / 2, n.y - n.h / 2, 4, n.h);
      ctx.fill();
    }
  }
  ctx.globalAlpha = 1;
  const marked = shown.filter((n) => hl.selected.has(n.id) || hl.pathNodes.has(n.id) || hl.matches.has(n.id));
  for (const n of marked) {
    ctx.strokeStyle = hl.selected.has(n.id) ? colors.accent : hl.pathNodes.has(n.id) ? colors.accent : colors.warn;
    ctx.lineWidth = (hl.selected.has(n.id) ? 3 : 2) / Math.max(t.k, 0.2);
    ctx.strokeRect(n.x - n.w / 2, n.y - n.h / 2, n.w, n.h);
  }
  if (detailed && shown.length < 4000) {
    ctx.fillStyle = colors.text;
    ctx.font = "12px Inter, ui-sans-serif, system-ui, sans-serif";
    ctx.textBaseline = "middle";
    for (const n of shown) ctx.fillText(truncate(n.label), n.x - n.w / 2 + 10, n.y, n.w - 14);
  }
}

export function sceneSvg(scene: Scene, hl: Highlight, title: string): string {
  const c = theme();
  const pad = 20;
  const w = Math.ceil(scene.maxX - scene.minX + 2 * pad);
  const h = Math.ceil(scene.maxY - scene.minY + 2 * pad);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="${scene.minX - pad} ${scene.minY - pad} ${w} ${h}" width="${w}" height="${h}">`,
    `<title>${escapeXml(title)}</title>`,
    `<style>text{font:12px Inter,ui-sans-serif,system-ui,sans-serif;fill:${c.text};dominant-baseline:middle}` +
      `.e{fill:none;stroke:${c.edge};stroke-width:1.2;marker-end:url(#a)}.e.p{stroke:${c.accent};stroke-width:3;marker-end:url(#ap)}</style>`,
    `<defs>${arrowMarker("a", c.edge)}${arrowMarker("ap", c.accent)}</defs>`,
    `<rect x="${scene.minX - pad}" y="${scene.minY - pad}" width="${w}" height="${h}" fill="${c.bg}"/>`,
    `<g class="edges">`,
  ];
  for (const e of scene.edges) {
    const a = scene.nodes[e.s] as SceneNode;
    const b = scene.nodes[e.t] as SceneNode;
    parts.push(`<path class="e${hl.pathEdges.has(e.key) ? " p" : ""}" d="${edgePath(a, b, e, true)}"/>`);
  }
  parts.push(`</g><g class="nodes">`);
  for (const n of scene.nodes) {
    const x = n.x - n.w / 2;
    const y = n.y - n.h / 2;
    const stroke = hl.selected.has(n.id) || hl.pathNodes.has(n.id) ? ` stroke="${c.accent}" stroke-width="2"` : "";
    parts.push(
      `<g data-id="${escapeXml(n.id)}"><rect x="${x}" y="${y}" width="${n.w}" height="${n.h}" rx="6" fill="${n.color}" fill-opacity="0.16"${stroke}/>` +
        `<rect x="${x}" y="${y}" width="4" height="${n.h}" fill="${n.color}"/>` +
        `<text x="${x + 10}" y="${n.y}">${escapeXml(truncate(n.label))}</text></g>`,
    );
  }
  parts.push("</g></svg>");
  return parts.join("");
}

type Mode = "svg" | "canvas";

export interface ViewEvents {
  onNodeClick: (id: string, event: MouseEvent) => void;
  onBackgroundClick: () => void;
  onZoom?: (k: number) => void;
}

export class GraphView {
  private readonly host: HTMLDivElement;
  private readonly events: ViewEvents;
  private readonly zoom: ZoomBehavior<HTMLDivElement, unknown>;
  private readonly hostSel: Selection<HTMLDivElement, unknown, null, undefined>;
  private scene: Scene | null = null;
  private mode: Mode = "svg";
  private hl: Highlight = NO_HIGHLIGHT;
  private transform: ZoomTransform = zoomIdentity;
  private svg: SVGSVGElement | null = null;
  private viewport: SVGGElement | null = null;
  private canvas: HTMLCanvasElement | null = null;
  private minimap: HTMLCanvasElement;
  private minimapBase: HTMLCanvasElement | null = null;
  private frame = 0;
  private colors: Theme;
  private lastFar: boolean | null = null;
  private resizeObserver: ResizeObserver;

  constructor(host: HTMLDivElement, events: ViewEvents) {
    this.host = host;
    this.events = events;
    this.colors = theme();
    this.hostSel = select(host);
    this.zoom = d3zoom<HTMLDivElement, unknown>()
      .scaleExtent([MIN_SCALE, MAX_SCALE])
      .on("zoom", (event: { transform: ZoomTransform }) => {
        this.transform = event.transform;
        this.applyTransform();
      });
    this.hostSel.call(this.zoom).on("dblclick.zoom", null);
    host.addEventListener("click", this.onClick);
    this.minimap = document.createElement("canvas");
    this.minimap.className = "minimap";
    this.minimap.width = MINIMAP_W;
    this.minimap.height = MINIMAP_H;
    this.minimap.setAttribute("aria-label", "Minimap: click to move there");
    this.minimap.dataset.testid = "minimap";
    this.minimap.addEventListener("pointerdown", this.onMinimap);
    // Not a pan or a zoom of the graph (d3-zoom listens on the host).
    for (const type of ["mousedown", "wheel", "touchstart", "dblclick"]) {
      this.minimap.addEventListener(type, (e) => e.stopPropagation());
    }
    this.minimap.addEventListener("pointermove", (e) => {
      if (e.buttons === 1) this.onMinimap(e);
    });
    host.appendChild(this.minimap);
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(host);
  }

  destroy(): void {
    cancelAnimationFrame(this.frame);
    cancelAnimationFrame(this.animation);
    clearTimeout(this.settle);
    this.resizeObserver.disconnect();
    this.host.removeEventListener("click", this.onClick);
    this.hostSel.on(".zoom", null);
    this.host.replaceChildren();
  }

  get currentMode(): Mode {
    return this.mode;
  }

  get scale(): number {
    return this.transform.k;
  }

  private size(): { width: number; height: number } {
    return { width: this.host.clientWidth || 800, height: this.host.clientHeight || 600 };
  }

  setScene(scene: Scene, options: { keepTransform?: boolean; forceCanvas?: boolean } = {}): void {
    this.scene = scene;
    this.cache = null;
    this.colors = theme();
    const mode: Mode = options.forceCanvas || scene.nodes.length > SVG_MAX_NODES ? "canvas" : "svg";
    this.mode = mode;
    this.host.dataset.mode = mode;
    this.svg?.remove();
    this.canvas?.remove();
    this.svg = null;
    this.viewport = null;
    this.canvas = null;
    this.lastFar = null;
    if (mode === "svg") this.buildSvg(scene);
    else this.buildCanvas();
    this.buildMinimap();
    if (!options.keepTransform) this.fit(false);
    else this.applyTransform();
  }

  setHighlight(hl: Highlight): void {
    this.hl = hl;
    this.cache = null;
    if (this.mode === "svg" && this.svg && this.scene) {
      const svg = select(this.svg);
      svg.classed("dimmed", hl.pathNodes.size > 0 || hl.matches.size > 0);
      svg
        .selectAll<SVGGElement, SceneNode>("g.node")
        .classed("selected", (d) => hl.selected.has(d.id))
        .classed("on-path", (d) => hl.pathNodes.has(d.id))
        .classed("match", (d) => hl.matches.has(d.id));
      svg
        .selectAll<SVGPathElement, Scene["edges"][number]>("path.edge")
        .classed("on-path", (d) => hl.pathEdges.has(d.key));
    } else {
      this.schedule();
    }
  }

  private buildSvg(scene: Scene): void {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "graph-svg");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Lineage graph");
    this.host.insertBefore(svg, this.minimap);
    const root = select(svg);
    // Arrowheads where edges meet their targets, in the edges' colours (explorer.css).
    root.append("defs").html(arrowMarker("cmf-arrow", "var(--faint)") + arrowMarker("cmf-arrow-path", "var(--accent)"));
    const viewport = root.append("g").attr("class", "viewport");
    viewport
      .append("g")
      .attr("class", "edges")
      .selectAll("path")
      .data(scene.edges)
      .join("path")
      .attr("class", "edge")
      .attr("data-key", (e) => e.key)
      .attr("d", (e) => edgePath(scene.nodes[e.s] as SceneNode, scene.nodes[e.t] as SceneNode, e, true));
    const nodes = viewport
      .append("g")
      .attr("class", "nodes")
      .selectAll<SVGGElement, SceneNode>("g")
      .data(scene.nodes)
      .join("g")
      .attr("class", (d) => `node k-${d.kind}`)
      .attr("data-id", (d) => d.id)
      .attr("data-testid", "graph-node")
      .attr("transform", (d) => `translate(${d.x - d.w / 2},${d.y - d.h / 2})`);
    nodes
      .append("rect")
      .attr("class", "body")
      .attr("width", (d) => d.w)
      .attr("height", (d) => d.h)
      .attr("rx", 6)
      .style("--node", (d) => d.color);
    nodes
      .append("rect")
      .attr("class", "node-bar")
      .attr("width", 4)
      .attr("height", (d) => d.h)
      .style("fill", (d) => d.color);
    nodes
      .append("text")
      .attr("x", 10)
      .attr("y", (d) => d.h / 2)
      .text((d) => truncate(d.label));
    nodes.append("title").text((d) => `${d.label}\n${d.type || d.kind}`);
    this.svg = svg;
    this.viewport = viewport.node();
  }

  private buildCanvas(): void {
    const canvas = document.createElement("canvas");
    canvas.className = "graph-canvas";
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "Lineage graph");
    this.host.insertBefore(canvas, this.minimap);
    this.canvas = canvas;
    this.resize();
  }

  private resize(): void {
    this.cache = null;
    if (this.canvas) {
      const { width, height } = this.size();
      const ratio = window.devicePixelRatio || 1;
      this.canvas.width = Math.round(width * ratio);
      this.canvas.height = Math.round(height * ratio);
      this.canvas.style.width = `${width}px`;
      this.canvas.style.height = `${height}px`;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  // The canvas draws the graph once into a bitmap twice the viewport's size around what is in
  // view, and each frame of a pan or zoom only blits it (scaled while a zoom lasts); it is drawn
  // afresh when the view leaves it, when it has scaled past 2×, and sharp 150 ms after a zoom.
  private cache: { canvas: HTMLCanvasElement; k: number; x0: number; y0: number; x1: number; y1: number } | null = null;
  private settle = 0;

  private cacheAround(t: ZoomTransform, width: number, height: number): NonNullable<GraphView["cache"]> | null {
    if (!this.scene) return null;
    const ratio = window.devicePixelRatio || 1;
    const canvas = document.createElement("canvas");
    canvas.width = Math.ceil(2 * width * ratio);
    canvas.height = Math.ceil(2 * height * ratio);
    const ctx = canvas.getContext("2d");
    if (!ctx) return null;
    const x0 = -t.x / t.k - width / (2 * t.k);
    const y0 = -t.y / t.k - height / (2 * t.k);
    drawScene(ctx, this.scene, { x: -x0 * t.k, y: -y0 * t.k, k: t.k }, 2 * width, 2 * height, this.hl, this.colors, ratio);
    return { canvas, k: t.k, x0, y0, x1: x0 + (2 * width) / t.k, y1: y0 + (2 * height) / t.k };
  }

  private draw(): void {
    if (this.mode === "canvas" && this.canvas && this.scene) {
      const ctx = this.canvas.getContext("2d");
      if (ctx) {
        const { width, height } = this.size();
        const ratio = window.devicePixelRatio || 1;
        const t = this.transform;
        let cache = this.cache;
        const vx0 = -t.x / t.k;
        const vy0 = -t.y / t.k;
        const inside =
          cache !== null &&
          t.k / cache.k <= 2 &&
          t.k / cache.k >= 0.5 &&
          vx0 >= cache.x0 &&
          vy0 >= cache.y0 &&
          vx0 + width / t.k <= cache.x1 &&
          vy0 + height / t.k <= cache.y1;
        if (!inside) {
          cache = this.cacheAround(t, width, height);
          this.cache = cache;
        }
        if (cache) {
          const s = t.k / cache.k;
          ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
          ctx.fillStyle = this.colors.bg;
          ctx.fillRect(0, 0, width, height);
          ctx.drawImage(cache.canvas, cache.x0 * t.k + t.x, cache.y0 * t.k + t.y, 2 * width * s, 2 * height * s);
          if (s !== 1) {
            // Sharp again once the zoom settles.
            clearTimeout(this.settle);
            this.settle = window.setTimeout(() => {
              this.cache = null;
              this.schedule();
            }, 150);
          }
        } else {
          drawScene(ctx, this.scene, t, width, height, this.hl, this.colors, ratio);
        }
      }
    }
    this.drawMinimap();
  }

  private applyTransform(): void {
    const t = this.transform;
    if (this.mode === "svg" && this.viewport && this.svg) {
      this.viewport.setAttribute("transform", t.toString());
      const far = t.k < LABEL_MIN_SCALE;
      if (far !== this.lastFar) {
        this.lastFar = far;
        this.svg.classList.toggle("far", far);
      }
      this.schedule();
    } else {
      this.schedule();
    }
    this.events.onZoom?.(t.k);
  }

  fit(animate = true): void {
    if (!this.scene) return;
    const { width, height } = this.size();
    const s = this.scene;
    const gw = Math.max(1, s.maxX - s.minX);
    const gh = Math.max(1, s.maxY - s.minY);
    const k = Math.max(MIN_SCALE, Math.min(1.2, 0.92 * Math.min(width / gw, height / gh)));
    const t = zoomIdentity
      .translate(width / 2 - (k * (s.minX + s.maxX)) / 2, height / 2 - (k * (s.minY + s.maxY)) / 2)
      .scale(k);
    this.setTransform(t, animate);
  }

  private animation = 0;

  // To `t`, eased over 250 ms when asked and the graph is small enough to redraw that often.
  private setTransform(t: ZoomTransform, animate: boolean): void {
    cancelAnimationFrame(this.animation);
    if (!animate || !this.scene || this.scene.nodes.length >= 3000) {
      this.hostSel.call(this.zoom.transform, t);
      return;
    }
    const from = this.transform;
    const started = performance.now();
    const step = (now: number) => {
      const p = Math.min(1, (now - started) / 250);
      const e = p < 0.5 ? 2 * p * p : 1 - (-2 * p + 2) ** 2 / 2;
      const k = from.k * (t.k / from.k) ** e;
      const x = from.x + (t.x - from.x) * e;
      const y = from.y + (t.y - from.y) * e;
      this.hostSel.call(this.zoom.transform, zoomIdentity.translate(x, y).scale(k));
      if (p < 1) this.animation = requestAnimationFrame(step);
    };
    this.animation = requestAnimationFrame(step);
  }

  centerOn(id: string, minScale = 0.8): void {
    const i = this.scene?.index.get(id);
    if (i === undefined || !this.scene) return;
    const n = this.scene.nodes[i] as SceneNode;
    const { width, height } = this.size();
    const k = Math.max(this.transform.k, minScale);
    this.setTransform(zoomIdentity.translate(width / 2 - k * n.x, height / 2 - k * n.y).scale(k), true);
  }

  // Scripted interaction (benchmarks, tests): pan by pixels, zoom by a factor about the centre.
  panBy(dx: number, dy: number): void {
    this.hostSel.call(this.zoom.translateBy, dx / this.transform.k, dy / this.transform.k);
  }

  zoomBy(factor: number): void {
    this.hostSel.call(this.zoom.scaleBy, factor);
  }

  // Where a node is on screen (page coordinates), for tests.
  screenPosition(id: string): { x: number; y: number } | null {
    const i = this.scene?.index.get(id);
    if (i === undefined || !this.scene) return null;
    const n = this.scene.nodes[i] as SceneNode;
    const box = this.host.getBoundingClientRect();
    const [x, y] = this.transform.apply([n.x, n.y]);
    return { x: box.left + x, y: box.top + y };
  }

  private hit(event: MouseEvent): string | null {
    if (this.mode === "svg") {
      const target = (event.target as Element | null)?.closest?.("g.node");
      return target?.getAttribute("data-id") ?? null;
    }
    if (!this.scene) return null;
    const box = this.host.getBoundingClientRect();
    const [wx, wy] = this.transform.invert([event.clientX - box.left, event.clientY - box.top]);
    const nodes = this.scene.nodes;
    for (let i = nodes.length - 1; i >= 0; i--) {
      const n = nodes[i] as SceneNode;
      if (Math.abs(wx - n.x) <= n.w / 2 && Math.abs(wy - n.y) <= n.h / 2) return n.id;
    }
    return null;
  }

  private onClick = (event: MouseEvent) => {
    if (event.target === this.minimap) return;
    const id = this.hit(event);
    if (id) this.events.onNodeClick(id, event);
    else this.events.onBackgroundClick();
  };

  private minimapScale(): { k: number; ox: number; oy: number } | null {
    if (!this.scene) return null;
    const s = this.scene;
    const gw = Math.max(1, s.maxX - s.minX);
    const gh = Math.max(1, s.maxY - s.minY);
    const k = Math.min((MINIMAP_W - 8) / gw, (MINIMAP_H - 8) / gh);
    return { k, ox: 4 - s.minX * k + ((MINIMAP_W - 8) - gw * k) / 2, oy: 4 - s.minY * k + ((MINIMAP_H - 8) - gh * k) / 2 };
  }

  private buildMinimap(): void {
    const m = this.minimapScale();
    if (!this.scene || !m) return;
    const base = document.createElement("canvas");
    base.width = MINIMAP_W;
    base.height = MINIMAP_H;
    const ctx = base.getContext("2d");
    if (ctx) {
      ctx.fillStyle = this.colors.panel;
      ctx.fillRect(0, 0, MINIMAP_W, MINIMAP_H);
      for (const n of this.scene.nodes) {
        ctx.fillStyle = n.color;
        ctx.fillRect(m.ox + (n.x - n.w / 2) * m.k, m.oy + (n.y - n.h / 2) * m.k, Math.max(1, n.w * m.k), Math.max(1, n.h * m.k));
      }
    }
    this.minimapBase = base;
    this.schedule();
  }

  private drawMinimap(): void {
    const m = this.minimapScale();
    const ctx = this.minimap.getContext("2d");
    if (!ctx || !m || !this.minimapBase) return;
    ctx.clearRect(0, 0, MINIMAP_W, MINIMAP_H);
    ctx.drawImage(this.minimapBase, 0, 0);
    const { width, height } = this.size();
    const t = this.transform;
    const x0 = (-t.x / t.k) * m.k + m.ox;
    const y0 = (-t.y / t.k) * m.k + m.oy;
    ctx.strokeStyle = this.colors.accent;
    ctx.lineWidth = 1.5;
    ctx.strokeRect(x0, y0, (width / t.k) * m.k, (height / t.k) * m.k);
  }

  private onMinimap = (event: PointerEvent) => {
    event.stopPropagation();
    event.preventDefault();
    const m = this.minimapScale();
    if (!m) return;
    const box = this.minimap.getBoundingClientRect();
    const wx = (event.clientX - box.left - m.ox) / m.k;
    const wy = (event.clientY - box.top - m.oy) / m.k;
    const { width, height } = this.size();
    const k = this.transform.k;
    this.setTransform(zoomIdentity.translate(width / 2 - k * wx, height / 2 - k * wy).scale(k), false);
  };

  exportSvg(title: string): string {
    return this.scene ? sceneSvg(this.scene, this.hl, title) : "";
  }

  // The current view as on screen, at `ratio` times its CSS pixel size.
  async exportPng(ratio = 2): Promise<{ blob: Blob; width: number; height: number }> {
    const { width, height } = this.size();
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    if (!ctx || !this.scene) throw new Error("nothing to export");
    drawScene(ctx, this.scene, this.transform, width, height, this.hl, this.colors, ratio);
    const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, "image/png"));
    if (!blob) throw new Error("the browser could not encode the PNG");
    return { blob, width: canvas.width, height: canvas.height };
  }
}
