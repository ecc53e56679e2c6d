// The explorer's layouts, off the main thread: our layered layout (layered.ts), then the lanes
// of the edges that cross layers, so none runs behind a node it does not touch. ELK (elkjs),
// dagre and d3-dag were measured on lineage-shaped graphs first and take seconds to minutes
// where this takes milliseconds: CMF's Environment artifact is read by every execution, so
// their long edges turn into thousands of dummy nodes (bench/explorer_layouts.mjs,
// bench/RESULTS.md "Lineage explorer").
import { layered, routeLongEdges, type LayoutInput } from "./layered";
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
  const lanes = routeLongEdges(request, out);
  const answer: LayoutAnswer = {
    id: request.id,
    ...out,
    laneY: lanes.y,
    laneFrom: lanes.from,
    laneTo: lanes.to,
    engine: "layered",
    ms: performance.now() - started,
  };
  const buffers = [answer.x, answer.y, answer.laneY, answer.laneFrom, answer.laneTo].map((a) => a.buffer as ArrayBuffer);
  (self as unknown as Worker).postMessage(answer, buffers);
};
