// A fast layered (Sugiyama-style) layout for big graphs, left to right: connected components
// apart and stacked, longest-path layers, barycentre ordering sweeps, then each node placed at
// the median height of its neighbours with overlaps pushed apart. An edge is not split into a
// dummy node per layer it crosses (routeLongEdges below gives it a lane clear of the nodes
// between instead), so the work is linear in the edges: 10,000 nodes lay out in tens of
// milliseconds, where ELK, dagre and d3-dag take seconds to minutes on lineage graphs
// (bench/explorer_layouts.mjs, bench/RESULTS.md).

export interface LayoutInput {
  nodes: { id: string; width: number; height: number }[];
  edges: { source: string; target: string }[];
}

export interface LayoutOutput {
  // Node centres, in the order of the input's nodes.
  x: Float64Array;
  y: Float64Array;
  width: number;
  height: number;
}

export interface LayeredOptions {
  layerGap: number; // between the right side of a layer and the left of the next
  nodeGap: number; // between nodes of a layer
  componentGap: number;
  sweeps: number;
}

export const LAYERED_DEFAULTS: LayeredOptions = { layerGap: 70, nodeGap: 14, componentGap: 40, sweeps: 4 };

export function layered(input: LayoutInput, options: Partial<LayeredOptions> = {}): LayoutOutput {
  const opt = { ...LAYERED_DEFAULTS, ...options };
  const n = input.nodes.length;
  const index = new Map<string, number>();
  input.nodes.forEach((node, i) => index.set(node.id, i));
  // Adjacency in CSR form (out and in), self loops and duplicates dropped.
  const pairs: number[] = [];
  const seen = new Set<number>();
  for (const e of input.edges) {
    const s = index.get(e.source);
    const t = index.get(e.target);
    if (s === undefined || t === undefined || s === t) continue;
    const key = s * n + t;
    if (seen.has(key)) continue;
    seen.add(key);
    pairs.push(s, t);
  }
  const m = pairs.length / 2;
  const outStart = new Int32Array(n + 1);
  const inStart = new Int32Array(n + 1);
  for (let k = 0; k < m; k++) {
    outStart[pairs[2 * k]! + 1]! += 1;
    inStart[pairs[2 * k + 1]! + 1]! += 1;
  }
  for (let i = 0; i < n; i++) {
    outStart[i + 1]! += outStart[i]!;
    inStart[i + 1]! += inStart[i]!;
  }
  const outAdj = new Int32Array(m);
  const inAdj = new Int32Array(m);
  const outFill = outStart.slice(0, n);
  const inFill = inStart.slice(0, n);
  for (let k = 0; k < m; k++) {
    const s = pairs[2 * k]!;
    const t = pairs[2 * k + 1]!;
    outAdj[outFill[s]!++] = t;
    inAdj[inFill[t]!++] = s;
  }

  // Layers: longest path from the sources (Kahn); a node on a cycle goes one past its
  // deepest placed predecessor.
  const layer = new Int32Array(n);
  const indeg = new Int32Array(n);
  for (let i = 0; i < n; i++) indeg[i] = inStart[i + 1]! - inStart[i]!;
  const queue = new Int32Array(n);
  let head = 0;
  let tail = 0;
  for (let i = 0; i < n; i++) if (indeg[i] === 0) queue[tail++] = i;
  const placed = new Uint8Array(n);
  for (;;) {
    while (head < tail) {
      const v = queue[head++]!;
      placed[v] = 1;
      for (let k = outStart[v]!; k < outStart[v + 1]!; k++) {
        const w = outAdj[k]!;
        if (layer[v]! + 1 > layer[w]!) layer[w] = layer[v]! + 1;
        if (--indeg[w]! === 0) queue[tail++] = w;
      }
    }
    if (tail >= n) break;
    // A cycle: release its first unplaced node.
    let pick = -1;
    for (let i = 0; i < n; i++) if (!placed[i] && indeg[i]! > 0) { pick = i; break; }
    if (pick < 0) break;
    indeg[pick] = 0;
    queue[tail++] = pick;
  }

  // Components (undirected), in the order of their first node.
  const comp = new Int32Array(n).fill(-1);
  let components = 0;
  const stack: number[] = [];
  for (let i = 0; i < n; i++) {
    if (comp[i] !== -1) continue;
    comp[i] = components;
    stack.push(i);
    while (stack.length) {
      const v = stack.pop()!;
      for (let k = outStart[v]!; k < outStart[v + 1]!; k++) {
        const w = outAdj[k]!;
        if (comp[w] === -1) { comp[w] = components; stack.push(w); }
      }
      for (let k = inStart[v]!; k < inStart[v + 1]!; k++) {
        const w = inAdj[k]!;
        if (comp[w] === -1) { comp[w] = components; stack.push(w); }
      }
    }
    components += 1;
  }
  const members: number[][] = Array.from({ length: components }, () => []);
  for (let i = 0; i < n; i++) members[comp[i]!]!.push(i);

  const x = new Float64Array(n);
  const y = new Float64Array(n);
  const pos = new Float64Array(n); // order within a layer, as a number for barycentres
  const widths = input.nodes.map((node) => node.width);
  const heights = input.nodes.map((node) => node.height);
  let top = 0;
  let maxWidth = 0;
  for (const nodes of members) {
    // Layers of the component, each an ordered list, shifted so the first is 0.
    let low = Infinity;
    let high = -Infinity;
    for (const v of nodes) {
      if (layer[v]! < low) low = layer[v]!;
      if (layer[v]! > high) high = layer[v]!;
    }
    const layers: number[][] = Array.from({ length: high - low + 1 }, () => []);
    for (const v of nodes) layers[layer[v]! - low]!.push(v);
    layers.forEach((row) => row.forEach((v, i) => (pos[v] = i)));
    const bary = new Float64Array(n);
    const sweep = (row: number[], useIn: boolean) => {
      for (const v of row) {
        let sum = 0;
        let count = 0;
        const start = useIn ? inStart : outStart;
        const adj = useIn ? inAdj : outAdj;
        for (let k = start[v]!; k < start[v + 1]!; k++) {
          sum += pos[adj[k]!]!;
          count += 1;
        }
        bary[v] = count ? sum / count : pos[v]!;
      }
      row.sort((a, b) => bary[a]! - bary[b]! || pos[a]! - pos[b]!);
      row.forEach((v, i) => (pos[v] = i));
    };
    for (let s = 0; s < opt.sweeps; s++) {
      for (let l = 1; l < layers.length; l++) sweep(layers[l]!, true);
      for (let l = layers.length - 2; l >= 0; l--) sweep(layers[l]!, false);
    }
    // Columns: each layer as wide as its widest node.
    let left = 0;
    const columnX: number[] = [];
    for (const row of layers) {
      let w = 0;
      for (const v of row) w = Math.max(w, widths[v]!);
      columnX.push(left + w / 2);
      left += w + opt.layerGap;
    }
    // Heights: stacked first, then each node pulled to the median of its placed neighbours
    // (down then up), overlaps pushed apart within the layer.
    for (const row of layers) {
      let cursor = 0;
      for (const v of row) {
        y[v] = cursor + heights[v]! / 2;
        cursor += heights[v]! + opt.nodeGap;
      }
    }
    const median = (v: number, useIn: boolean): number => {
      const start = useIn ? inStart : outStart;
      const adj = useIn ? inAdj : outAdj;
      const count = start[v + 1]! - start[v]!;
      if (!count) return y[v]!;
      const values: number[] = [];
      for (let k = start[v]!; k < start[v + 1]!; k++) values.push(y[adj[k]!]!);
      values.sort((a, b) => a - b);
      const mid = values.length >> 1;
      return values.length % 2 ? values[mid]! : (values[mid - 1]! + values[mid]!) / 2;
    };
    // Packed top-down (each at least where it wants) and bottom-up (at most), then averaged:
    // both keep the order without overlaps, so their mean does too.
    const down = new Float64Array(n);
    const settle = (row: number[], useIn: boolean) => {
      const want = row.map((v) => median(v, useIn));
      let floor = -Infinity;
      row.forEach((v, i) => {
        const h = heights[v]!;
        down[v] = Math.max(want[i]!, floor + h / 2);
        floor = down[v]! + h / 2 + opt.nodeGap;
      });
      let ceiling = Infinity;
      for (let i = row.length - 1; i >= 0; i--) {
        const v = row[i]!;
        const h = heights[v]!;
        const up = Math.min(want[i]!, ceiling - h / 2);
        ceiling = up - h / 2 - opt.nodeGap;
        y[v] = (up + down[v]!) / 2;
      }
    };
    for (let pass = 0; pass < 2; pass++) {
      for (let l = 1; l < layers.length; l++) settle(layers[l]!, true);
      for (let l = layers.length - 2; l >= 0; l--) settle(layers[l]!, false);
    }
    let minY = Infinity;
    let maxY = -Infinity;
    for (const v of nodes) {
      minY = Math.min(minY, y[v]! - heights[v]! / 2);
      maxY = Math.max(maxY, y[v]! + heights[v]! / 2);
    }
    layers.forEach((row, l) => {
      for (const v of row) {
        x[v] = columnX[l]!;
        y[v] = y[v]! - minY + top;
      }
    });
    top += maxY - minY + opt.componentGap;
    maxWidth = Math.max(maxWidth, left - opt.layerGap);
  }
  return { x, y, width: maxWidth, height: Math.max(0, top - opt.componentGap) };
}

// Where an edge that crosses layers runs: along `y[k]` from `from[k]` to `to[k]`, bending into
// that height in the gap after its source's layer (or not at all) and out of it in the gap
// before its target's. NaN `y[k]`: edge k is drawn as one curve.
export interface Lanes {
  y: Float64Array;
  from: Float64Array;
  to: Float64Array;
}

export const LANE_MARGIN = 4; // the clearance a lane keeps from a node's top and bottom
const LANE_BUDGET = 4_000_000; // layers looked at in all, past which edges stay one curve

// Lanes for the edges that cross one or more layers, so that none runs behind a node it does
// not touch (drawn as one curve, CMF's Environment artifact, read by every execution, would
// seem to feed whatever sits between): each such edge keeps its source's height through the
// layers between while no node there is in the way, else takes its target's height from the
// first of them, else passes over or under every node between. A node blocks a height when it
// covers it, LANE_MARGIN included; columns are the layers' x (laid out by `layered`). Past
// `budget` layers looked at, the remaining edges stay one curve.
export function routeLongEdges(input: LayoutInput, out: LayoutOutput, budget = LANE_BUDGET): Lanes {
  const m = input.edges.length;
  const n = input.nodes.length;
  const lanes: Lanes = { y: new Float64Array(m).fill(Number.NaN), from: new Float64Array(m), to: new Float64Array(m) };
  const index = new Map<string, number>();
  input.nodes.forEach((node, i) => index.set(node.id, i));
  const columns = Array.from(new Set(out.x)).sort((a, b) => a - b);
  const columnOf = new Map<number, number>();
  columns.forEach((x, c) => columnOf.set(x, c));
  const half = new Float64Array(columns.length);
  const members: number[][] = columns.map(() => []);
  input.nodes.forEach((node, i) => {
    const c = columnOf.get(out.x[i]!)!;
    half[c] = Math.max(half[c]!, node.width / 2);
    members[c]!.push(i);
  });
  // Each column's nodes as intervals of height sorted by their tops; within a column the
  // layout never overlaps nodes, so the bottoms are sorted too.
  const tops: Float64Array[] = [];
  const bottoms: Float64Array[] = [];
  for (const list of members) {
    list.sort((a, b) => out.y[a]! - out.y[b]!);
    tops.push(Float64Array.from(list, (i) => out.y[i]! - input.nodes[i]!.height / 2 - LANE_MARGIN));
    bottoms.push(Float64Array.from(list, (i) => out.y[i]! + input.nodes[i]!.height / 2 + LANE_MARGIN));
  }
  const blocked = (c: number, y: number): boolean => {
    const top = tops[c]!;
    let low = 0;
    let high = top.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (top[mid]! <= y) {
        found = mid;
        low = mid + 1;
      } else high = mid - 1;
    }
    return found >= 0 && bottoms[c]![found]! >= y;
  };
  // Per node, how far its own height stays clear: to the right of a source, up to the
  // furthest layer one of its edges crosses (the first blocked column, or past that), and to
  // the left of a target, lazily (only asked when its source's height is blocked).
  const need = new Int32Array(n).fill(-1);
  const needLeft = new Int32Array(n).fill(0x7fffffff);
  const ends: [number, number, number][] = []; // edge, source, target
  for (let k = 0; k < m; k++) {
    const e = input.edges[k]!;
    const s = index.get(e.source);
    const t = index.get(e.target);
    if (s === undefined || t === undefined) continue;
    const cs = columnOf.get(out.x[s]!)!;
    const ct = columnOf.get(out.x[t]!)!;
    if (ct - cs < 2) continue;
    ends.push([k, s, t]);
    need[s] = Math.max(need[s]!, ct - 1);
    needLeft[t] = Math.min(needLeft[t]!, cs + 1);
  }
  let work = 0;
  const blockedRight = new Int32Array(n).fill(-1); // -1: not scanned
  const rightOf = (s: number): number => {
    if (blockedRight[s]! < 0) {
      let c = columnOf.get(out.x[s]!)! + 1;
      while (c <= need[s]! && !blocked(c, out.y[s]!)) c++;
      work += c - columnOf.get(out.x[s]!)!;
      blockedRight[s] = c;
    }
    return blockedRight[s]!;
  };
  const blockedLeft = new Int32Array(n).fill(-2); // -2: not scanned; -1: clear to column 0
  const leftOf = (t: number): number => {
    if (blockedLeft[t]! === -2) {
      let c = columnOf.get(out.x[t]!)! - 1;
      while (c >= needLeft[t]! && !blocked(c, out.y[t]!)) c--;
      work += columnOf.get(out.x[t]!)! - c;
      blockedLeft[t] = c;
    }
    return blockedLeft[t]!;
  };
  for (const [k, s, t] of ends) {
    if (work > budget) break;
    const cs = columnOf.get(out.x[s]!)!;
    const ct = columnOf.get(out.x[t]!)!;
    if (rightOf(s) > ct - 1) {
      lanes.y[k] = out.y[s]!;
      lanes.from[k] = out.x[s]! + input.nodes[s]!.width / 2;
      lanes.to[k] = columns[ct - 1]! + half[ct - 1]!;
    } else if (leftOf(t) < cs + 1) {
      lanes.y[k] = out.y[t]!;
      lanes.from[k] = columns[cs + 1]! - half[cs + 1]!;
      lanes.to[k] = out.x[t]! - input.nodes[t]!.width / 2;
    } else {
      // Over or under every node between, whichever is nearer.
      let above = Infinity;
      let below = -Infinity;
      for (let c = cs + 1; c <= ct - 1; c++) {
        const top = tops[c]!;
        if (!top.length) continue;
        above = Math.min(above, top[0]!);
        below = Math.max(below, bottoms[c]![top.length - 1]!);
      }
      work += ct - cs - 1;
      const middle = (out.y[s]! + out.y[t]!) / 2;
      lanes.y[k] = middle - above <= below - middle ? above - LANE_MARGIN : below + LANE_MARGIN;
      lanes.from[k] = columns[cs + 1]! - half[cs + 1]!;
      lanes.to[k] = columns[ct - 1]! + half[ct - 1]!;
    }
  }
  return lanes;
}
