// The layout worker's client: one worker, loaded with the explorer only, its answers cached
// per layout key (the graph's version and what shapes the drawing; model.ts layoutKey).
import type { LayoutAnswer, LayoutRequest } from "./layout.worker";
import type { Placed } from "./types";

const CACHE_ENTRIES = 24;
const cache = new Map<string, Placed>();
let worker: Worker | null = null;
let nextId = 1;
const waiting = new Map<number, (answer: LayoutAnswer) => void>();

function theWorker(): Worker {
  if (!worker) {
    worker = new Worker(new URL("./layout.worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (event: MessageEvent<LayoutAnswer>) => {
      const done = waiting.get(event.data.id);
      waiting.delete(event.data.id);
      done?.(event.data);
    };
  }
  return worker;
}

export function cachedLayout(key: string): Placed | undefined {
  const found = cache.get(key);
  if (found) {
    cache.delete(key);
    cache.set(key, found);
  }
  return found;
}

export async function layout(
  key: string,
  nodes: LayoutRequest["nodes"],
  edges: LayoutRequest["edges"],
): Promise<Placed & { cached: boolean }> {
  const found = cachedLayout(key);
  if (found) return { ...found, cached: true };
  const id = nextId++;
  const answer = await new Promise<LayoutAnswer>((resolve) => {
    waiting.set(id, resolve);
    theWorker().postMessage({ id, nodes, edges } satisfies LayoutRequest);
  });
  const { id: _, ...placed } = answer;
  cache.set(key, placed);
  while (cache.size > CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
  return { ...placed, cached: false };
}
