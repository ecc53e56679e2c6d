// The explorer's layouts, off the main thread: our layered layout (layered.ts). ELK (elkjs),
// dagre and d3-dag were measured on lineage-shaped graphs first and take seconds to minutes
// where this takes milliseconds: CMF's Environment artifact is read by every execution, so
// their long edges turn into thousands of dummy nodes (bench/explorer_layouts.mjs,
// bench/RESULTS.md "Lineage explorer").
import { layered, type LayoutInput } from "./layered";
import type { Placed } from "./types";

export interface LayoutRequest extends LayoutInput {
  id: number;
}

export interface LayoutAnswer extends Placed {
  id: number;
}

self.onmessage = (event: MessageEvent<LayoutRequest>) => {
  const request = event.data;
  const started = performance.now();
  const out = layered(request);
  const answer: LayoutAnswer = { id: request.id, ...out, engine: "layered", ms: performance.now() - started };
  (self as unknown as Worker).postMessage(answer, [answer.x.buffer as ArrayBuffer, answer.y.buffer as ArrayBuffer]);
};
