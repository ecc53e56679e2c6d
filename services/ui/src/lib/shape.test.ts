import { describe, expect, it } from "vitest";
import {
  artifactLabel,
  bars,
  blocksOf,
  decodeIds,
  decodeList,
  encodeList,
  formatBytes,
  formatValue,
  moveItem,
  nextSort,
  orderTypes,
  relativeTime,
  shortUuid,
  sortState,
  toggleItem,
} from "./shape";
import { parseLocation, withParams } from "./router";

describe("URL lists", () => {
  it("round-trip any key, commas and percent signs included", () => {
    const keys = ["lr", "a,b", "50%", "x%2Cy", ""];
    expect(decodeList(encodeList(keys))).toEqual(["lr", "a,b", "50%", "x%2Cy"]);
  });
  it("read ids, dropping junk and repeats, up to a maximum", () => {
    expect(decodeIds("3,x,4,3,-1,5", 2)).toEqual([3, 4]);
    expect(decodeIds(null)).toEqual([]);
  });
});

describe("sorting by a header", () => {
  it("goes ascending, descending, then back to the default", () => {
    expect(nextSort("-id", "property:lr", "-id")).toBe("property:lr");
    expect(nextSort("property:lr", "property:lr", "-id")).toBe("-property:lr");
    expect(nextSort("-property:lr", "property:lr", "-id")).toBe("-id");
    expect(sortState("-property:lr", "property:lr")).toBe("desc");
    expect(sortState("id", "property:lr")).toBeNull();
  });
});

describe("column choice", () => {
  it("moves a column within bounds", () => {
    expect(moveItem(["a", "b", "c"], 2, -1)).toEqual(["a", "c", "b"]);
    expect(moveItem(["a", "b", "c"], 0, -1)).toEqual(["a", "b", "c"]);
  });
  it("toggles a selection up to its maximum", () => {
    expect(toggleItem([1, 2], 3, 3)).toEqual([1, 2, 3]);
    expect(toggleItem([1, 2, 3], 4, 3)).toEqual([1, 2, 3]);
    expect(toggleItem([1, 2, 3], 2, 3)).toEqual([1, 3]);
  });
});

describe("formatting", () => {
  it("shows values as a person reads them", () => {
    expect(formatValue(0.1 + 0.2)).toBe("0.3");
    expect(formatValue(42)).toBe("42");
    expect(formatValue(null)).toBe("");
    expect(formatValue(1.5e-7)).toBe("1.5000e-7");
    expect(formatValue({ a: 1 })).toBe('{"a":1}');
  });
  it("says how long ago", () => {
    const now = 1_700_000_000_000;
    expect(relativeTime(now - 3_000, now)).toBe("just now");
    expect(relativeTime(now - 5 * 60_000, now)).toBe("5 minutes ago");
    expect(relativeTime(now - 26 * 3_600_000, now)).toBe("1 day ago");
  });
  it("shortens uuids and artifact names", () => {
    expect(shortUuid("72d025da-e9d5-11f1,abc")).toBe("72d025da");
    expect(artifactLabel("artifacts/model/model.pkl:cd24e3c0c20c51b12879a98838cfea55:2", "Model")).toBe(
      "artifacts/model/model.pkl",
    );
    expect(artifactLabel("artifacts/data.xml:18b9e58c4262091a8806fb81b89b9f61", "Dataset")).toBe("artifacts/data.xml");
    expect(artifactLabel("metrics:76526bbe-e9d5:2", "Metrics")).toBe("metrics");
  });
  it("sizes files", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(5 * 1024 * 1024)).toBe("5.0 MB");
  });
});

describe("tables and charts", () => {
  it("finds the blocks a row range needs", () => {
    expect(blocksOf(95, 130, 100)).toEqual([0, 1]);
    expect(blocksOf(10, 5, 100)).toEqual([]);
  });
  it("scales bars to the widest magnitude", () => {
    expect(bars([2, -4, null, 0])).toEqual([
      { size: 0.5, negative: false },
      { size: 1, negative: true },
      null,
      { size: 0, negative: false },
    ]);
  });
  it("orders artifact tabs as a pipeline runs, bookkeeping last", () => {
    const types = ["Environment", "Metrics", "Label", "Dataset", "Custom", "Model"].map((type) => ({ type }));
    expect(orderTypes(types).map((t) => t.type)).toEqual(["Dataset", "Model", "Metrics", "Custom", "Label", "Environment"]);
  });
});

describe("locations", () => {
  it("strip the /ui prefix and keep the query", () => {
    const location = parseLocation("/ui/p/My%20Pipe/executions?stage=a&cols=x,y");
    expect(location.path).toBe("/p/My%20Pipe/executions");
    expect(location.params.get("cols")).toBe("x,y");
  });
  it("change some parameters, dropping emptied ones", () => {
    expect(withParams(new URLSearchParams("a=1&b=2"), { a: null, c: 3 })).toBe("?b=2&c=3");
  });
});
