// Pure helpers the pages use to turn answers and URL state into what they show. The server
// shapes the data (counts, columns, differences); these only format and encode.
import type { Json } from "./types";

export function formatValue(value: Json | undefined): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : trimNumber(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  return JSON.stringify(value);
}

function trimNumber(value: number): string {
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e9)) return value.toExponential(4);
  return String(Number(value.toPrecision(8)));
}

// How many executions one comparison holds.
export const MAX_COMPARE = 10;

// One formatter for every count: making an Intl.NumberFormat costs far more than using one, and
// a table's footer formats three counts on each scroll step.
const COUNT = new Intl.NumberFormat("en-US");

export function formatCount(n: number): string {
  return COUNT.format(n);
}

const UNITS: [number, string][] = [
  [60, "second"],
  [60, "minute"],
  [24, "hour"],
  [30, "day"],
  [12, "month"],
  [Number.POSITIVE_INFINITY, "year"],
];

export function relativeTime(ms: number, now: number = Date.now()): string {
  let amount = Math.round((now - ms) / 1000);
  if (Math.abs(amount) < 10) return "just now";
  for (const [size, unit] of UNITS) {
    if (Math.abs(amount) < size) {
      const n = Math.abs(amount);
      const words = `${n} ${unit}${n === 1 ? "" : "s"}`;
      return amount >= 0 ? `${words} ago` : `in ${words}`;
    }
    amount = Math.round(amount / size);
  }
  return "";
}

export function absoluteTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// A list kept in one URL parameter: items joined by commas, a comma or % inside an item
// percent-encoded, so any property key survives the round trip.
export function encodeList(items: readonly string[]): string {
  return items.map((item) => item.replace(/%/g, "%25").replace(/,/g, "%2C")).join(",");
}

export function decodeList(text: string | null): string[] {
  if (!text) return [];
  return text
    .split(",")
    .filter((item) => item !== "")
    .map((item) => item.replace(/%2C/gi, ",").replace(/%25/g, "%"));
}

export function decodeIds(text: string | null, max = Number.POSITIVE_INFINITY): number[] {
  const ids: number[] = [];
  for (const part of decodeList(text)) {
    const id = Number(part);
    if (Number.isSafeInteger(id) && id > 0 && !ids.includes(id)) ids.push(id);
    if (ids.length >= max) break;
  }
  return ids;
}

// Clicking a column header: ascending, then descending, then back to the default sort.
export function nextSort(current: string, key: string, fallback: string): string {
  if (current === key) return `-${key}`;
  if (current === `-${key}`) return fallback;
  return key;
}

export function sortState(current: string, key: string): "asc" | "desc" | null {
  if (current === key) return "asc";
  if (current === `-${key}`) return "desc";
  return null;
}

export function moveItem<T>(items: readonly T[], index: number, delta: number): T[] {
  const target = index + delta;
  if (index < 0 || index >= items.length || target < 0 || target >= items.length) return [...items];
  const copy = [...items];
  const [item] = copy.splice(index, 1);
  copy.splice(target, 0, item as T);
  return copy;
}

export function toggleItem<T>(items: readonly T[], item: T, max = Number.POSITIVE_INFINITY): T[] {
  if (items.includes(item)) return items.filter((x) => x !== item);
  if (items.length >= max) return [...items];
  return [...items, item];
}

export function shortUuid(uuid: string): string {
  const first = uuid.split(",")[0] ?? uuid;
  return first.split("-")[0] ?? first;
}

// An artifact's name without the md5 and execution id CMF appends ("path:md5[:exec]").
export function artifactLabel(name: string, type: string): string {
  const parts = name.split(":");
  if (type === "Metrics") return parts[0] ?? name;
  if (type === "Step_Metrics") {
    const path = parts[0] ?? name;
    return path.split("/").slice(-1)[0] ?? path;
  }
  return parts.length > 1 ? parts.slice(0, -1).filter((p) => !/^[0-9a-f]{32}$/.test(p)).join(":") || (parts[0] ?? name) : name;
}

export function fileName(path: string): string {
  return path.split("/").filter(Boolean).slice(-1)[0] ?? path;
}

// The tabs of the Artifacts view: the usual CMF types in pipeline order, then the others, then
// the bookkeeping types (every execution's Environment, the Label CSVs).
const TYPE_ORDER = ["Dataset", "Model", "Metrics", "Step_Metrics", "Dataslice"];
const TYPE_LAST = ["Label", "Environment"];

export function orderTypes<T extends { type: string }>(types: readonly T[]): T[] {
  const rank = (t: string) => {
    const first = TYPE_ORDER.indexOf(t);
    if (first >= 0) return first;
    const last = TYPE_LAST.indexOf(t);
    return last >= 0 ? 100 + last : 50;
  };
  return [...types].sort((a, b) => rank(a.type) - rank(b.type) || a.type.localeCompare(b.type));
}

// The blocks of `size` rows that rows [start, end] fall in.
export function blocksOf(start: number, end: number, size: number): number[] {
  if (end < start) return [];
  const blocks: number[] = [];
  for (let b = Math.floor(start / size); b <= Math.floor(end / size); b += 1) blocks.push(b);
  return blocks;
}

// Bars for numbers side by side: each one's length (0..1 of the widest magnitude) and whether
// it is negative. A missing value has no bar.
export function bars(numbers: readonly (number | null)[]): ({ size: number; negative: boolean } | null)[] {
  const widest = Math.max(0, ...numbers.map((n) => (n === null ? 0 : Math.abs(n))));
  return numbers.map((n) => {
    if (n === null) return null;
    return { size: widest === 0 ? 0 : Math.abs(n) / widest, negative: n < 0 };
  });
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${formatCount(n)} ${n === 1 ? word : many}`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
