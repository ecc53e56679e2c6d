import { useQueries, useQuery } from "@tanstack/react-query";
import { flexRender, getCoreRowModel, useReactTable, type ColumnDef, type Header, type Row } from "@tanstack/react-table";
import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { flushSync } from "react-dom";
import type { Page } from "../lib/types";
import { ErrorState } from "./States";
import { blocksOf, formatCount, sortState } from "../lib/shape";

export const BLOCK = 100;
const ROW_HEIGHT = 36;
const HEAD_HEIGHT = 39; // the sticky header row, inside the scroller
const OVERSCAN = 8; // rows rendered beyond each edge of the view, once the first rows are painted

export interface ColumnMeta {
  sortKey?: string;
  numeric?: boolean;
}

// The rows' area of the scroller before it is measured: .grid is min(64vh, 720px) tall.
function guessedViewHeight(): number {
  return Math.min(Math.round(window.innerHeight * 0.64), 720) - HEAD_HEIGHT;
}

// Which rows the scroller shows: the first one in view and the height of the rows' area. Rows
// are all ROW_HEIGHT tall, so the window is arithmetic (nothing is measured per row, whatever
// the total), and a scroll step re-renders only when it moves the first row in view; it renders
// at once (flushSync), so the frame that scrolled paints the rows it uncovered. The scroller's
// size comes from a ResizeObserver, never from reading layout in a render.
function useRowWindow() {
  const [view, setView] = useState(() => ({ first: 0, height: guessedViewHeight() }));
  const element = useRef<HTMLDivElement | null>(null);
  const detach = useRef<() => void>(() => {});
  const ref = useCallback((el: HTMLDivElement | null) => {
    detach.current();
    detach.current = () => {};
    element.current = el;
    if (!el) return;
    // A scroller just mounted is at the top; reading its scrollTop here would force a layout of
    // the page in the middle of the commit that builds it (laid out again before the paint).
    let first = 0;
    const onScroll = () => {
      const next = Math.floor(el.scrollTop / ROW_HEIGHT);
      if (next === first) return;
      first = next;
      flushSync(() => setView((v) => (v.first === next ? v : { ...v, first: next })));
    };
    const observer = new ResizeObserver((entries) => {
      const box = entries[entries.length - 1]?.contentRect;
      if (!box) return;
      const height = Math.max(ROW_HEIGHT, Math.round(box.height) - HEAD_HEIGHT);
      setView((v) => (v.height === height ? v : { ...v, height }));
    });
    el.addEventListener("scroll", onScroll, { passive: true });
    observer.observe(el);
    detach.current = () => {
      el.removeEventListener("scroll", onScroll);
      observer.disconnect();
    };
  }, []);
  useEffect(() => () => detach.current(), []);
  // Bring row `index` into view: to the top ("start"), or only as far as needed ("auto").
  const scrollTo = useCallback((index: number, align: "start" | "auto", height: number) => {
    const el = element.current;
    if (!el) return;
    const top = index * ROW_HEIGHT;
    const current = el.scrollTop;
    if (align === "start" || top < current) el.scrollTop = top;
    else if (top + ROW_HEIGHT > current + height) el.scrollTop = top + ROW_HEIGHT - height;
  }, []);
  return { view, ref, scrollTo };
}

// A table over every row of a server-side list: rows are virtualised (only those on screen are
// in the DOM) and fetched in numbered blocks of 100 as they scroll into view; sorting and
// filtering are the server's (the caller's query key and fetch carry them). Keyboard: ↑ ↓,
// Page Up/Down, Home/End move the active row, Enter opens it, Space toggles its selection.
export function VirtualTable<T>(props: {
  queryKey: readonly unknown[];
  fetchPage: (offset: number, limit: number, signal: AbortSignal) => Promise<Page<T>>;
  columns: ColumnDef<T, unknown>[];
  sort: string;
  onSort: (sortKey: string) => void;
  active: number;
  onActive: (index: number) => void;
  onOpen: (row: T) => void;
  rowKey: (row: T) => string | number;
  isChecked?: (row: T) => boolean;
  onToggle?: (row: T) => void;
  empty: React.ReactNode;
  label: string;
  onTotal?: (total: number) => void;
}) {
  const { view, ref: scroller, scrollTo } = useRowWindow();
  const { fetchPage, queryKey } = props;
  const keyText = JSON.stringify(queryKey);
  const firstBlock = useQuery({
    queryKey: [...queryKey, 0],
    queryFn: ({ signal }) => fetchPage(0, BLOCK, signal),
  });
  const total = firstBlock.data?.total ?? 0;
  // The frame that paints the first rows builds only the rows in view; the rows beyond its
  // edges (OVERSCAN each way, what a scroll step uncovers) join once it has been painted.
  const [overscan, setOverscan] = useState(0);
  const hasData = firstBlock.data !== undefined;
  useEffect(() => {
    if (!hasData || overscan === OVERSCAN) return;
    const frame = requestAnimationFrame(() => setOverscan(OVERSCAN));
    return () => cancelAnimationFrame(frame);
  }, [hasData, overscan]);
  const viewHeight = view.height;
  const pageRows = Math.max(1, Math.floor(viewHeight / ROW_HEIGHT));
  const visibleFirst = Math.min(Math.max(0, total - 1), view.first);
  const visibleLast = Math.min(total - 1, visibleFirst + Math.ceil(viewHeight / ROW_HEIGHT) - 1);
  // The window: a fixed number of rows (the view and OVERSCAN beyond each edge), shifted rather
  // than cut at the ends, so each rendered row keeps a slot (index modulo the window's size).
  const slots = Math.ceil(viewHeight / ROW_HEIGHT) + 2 * overscan;
  const first = Math.max(0, Math.min(visibleFirst - overscan, total - slots));
  const last = Math.min(total - 1, first + slots - 1);
  // Block 0 is firstBlock's; the others are asked for as they come into the window.
  const blocks = useMemo(() => blocksOf(first, last, BLOCK).filter((b) => b > 0), [first, last]);
  const queries = useMemo(
    () =>
      blocks.map((block) => ({
        queryKey: [...queryKey, block],
        queryFn: ({ signal }: { signal: AbortSignal }) => fetchPage(block * BLOCK, BLOCK, signal),
        staleTime: 60_000,
      })),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [blocks, keyText, fetchPage],
  );
  const results = useQueries({ queries });
  const loaded = new Map<number, T[]>();
  blocks.forEach((block, i) => {
    const data = results[i]?.data;
    if (data) loaded.set(block, data.items);
  });
  if (firstBlock.data && first < BLOCK) loaded.set(0, firstBlock.data.items);
  const rowAt = (index: number): T | undefined =>
    index < BLOCK ? firstBlock.data?.items[index] : loaded.get(Math.floor(index / BLOCK))?.[index % BLOCK];

  // TanStack Table holds the columns and the rows of the blocks loaded for the window; the data
  // keeps its identity while the same blocks stay loaded, so scrolling within them re-renders
  // only the rows that move in (MemoRow).
  const loadedKey = [...loaded.keys()]
    .map((b) => `${b}:${b === 0 ? firstBlock.dataUpdatedAt : results[blocks.indexOf(b)]?.dataUpdatedAt}`)
    .join(",");
  const { windowRows, windowIndex } = useMemo(() => {
    const rows: T[] = [];
    const index: number[] = [];
    for (const [block, items] of loaded) {
      items.forEach((row, i) => {
        rows.push(row);
        index.push(block * BLOCK + i);
      });
    }
    return { windowRows: rows, windowIndex: index };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [loadedKey]);
  const table = useReactTable({
    data: windowRows,
    columns: props.columns,
    getCoreRowModel: getCoreRowModel(),
    manualSorting: true,
    manualPagination: true,
  });
  const tableRows = table.getRowModel().rows;
  const byIndex = useMemo(() => {
    const map = new Map<number, Row<T>>();
    tableRows.forEach((row, i) => map.set(windowIndex[i] ?? -1, row));
    return map;
  }, [tableRows, windowIndex]);
  const width = table.getTotalSize();

  const { onTotal } = props;
  useEffect(() => {
    if (firstBlock.data) onTotal?.(firstBlock.data.total);
  }, [firstBlock.data, onTotal]);
  const hasRows = byIndex.size > 0;
  // Marked when the rows are in the document, before the frame that paints them.
  useLayoutEffect(() => {
    if (hasRows && performance.getEntriesByName("cmf:first-rows").length === 0) {
      performance.mark("cmf:first-rows");
    }
  }, [hasRows]);

  // Keep the active row in view when it changes from the keyboard or the URL.
  const { active } = props;
  const paged = useRef(false);
  useEffect(() => {
    if (paged.current) {
      paged.current = false; // a page button scrolled already, to the row at the top
      return;
    }
    if (total > 0 && active >= 0 && active < total) scrollTo(active, "auto", viewHeight);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [active, total]);

  const move = (to: number) => props.onActive(Math.max(0, Math.min(total - 1, to)));
  const pageTo = (to: number) => {
    const index = Math.max(0, Math.min(total - 1, to));
    paged.current = index !== active;
    props.onActive(index);
    scrollTo(index, "start", viewHeight);
  };
  const onKeyDown = (event: React.KeyboardEvent) => {
    const keys: Record<string, () => void> = {
      ArrowDown: () => move(active + 1),
      ArrowUp: () => move(active - 1),
      PageDown: () => move(active + pageRows),
      PageUp: () => move(active - pageRows),
      Home: () => move(0),
      End: () => move(total - 1),
      Enter: () => {
        const row = rowAt(active);
        if (row !== undefined) props.onOpen(row);
      },
      " ": () => {
        const row = rowAt(active);
        if (row !== undefined) props.onToggle?.(row);
      },
    };
    const action = keys[event.key];
    if (action && total > 0) {
      event.preventDefault();
      action();
    }
  };

  const onPickRef = useRef<(index: number, row: T | undefined) => void>(() => {});
  onPickRef.current = (index, row) => {
    props.onActive(index);
    if (row !== undefined) props.onOpen(row);
  };
  const onPick = useCallback((index: number, row: T | undefined) => onPickRef.current(index, row), []);

  if (firstBlock.isError) {
    return (
      <div className="table-wrap">
        <ErrorState error={firstBlock.error} onRetry={() => void firstBlock.refetch()} />
      </div>
    );
  }
  const loading = firstBlock.isPending;
  // The rows by slot, not by index: a scroll step then changes the rows of some slots without
  // moving any element in the DOM (rows are placed by their transform; aria-rowindex says each
  // one's place).
  const indexes: number[] = [];
  for (let slot = 0; slot < slots; slot += 1) {
    const index = first + ((((slot - first) % slots) + slots) % slots);
    if (index <= last) indexes.push(index);
  }
  const shownFirst = total === 0 ? 0 : visibleFirst + 1;
  const shownLast = Math.min(total, visibleLast + 1);

  return (
    <div className="table-wrap">
      <div
        className="grid"
        ref={scroller}
        tabIndex={0}
        role="grid"
        aria-label={props.label}
        aria-rowcount={total}
        aria-activedescendant={total > 0 ? `row-${active}` : undefined}
        onKeyDown={onKeyDown}
        data-testid="grid"
      >
        <MemoHead<T> headers={table.getHeaderGroups()[0]?.headers ?? []} width={width} sort={props.sort} onSort={props.onSort} />
        {loading ? (
          <div className="state" role="status">
            <div className="spinner" />
          </div>
        ) : total === 0 ? (
          props.empty
        ) : (
          <div className="rows" style={{ height: total * ROW_HEIGHT, width }} role="rowgroup">
            {indexes.map((index) => {
              const row = byIndex.get(index);
              const data = row?.original;
              return (
                <MemoRow<T>
                  key={index % slots}
                  index={index}
                  start={index * ROW_HEIGHT}
                  width={width}
                  row={row}
                  columns={props.columns}
                  active={index === active}
                  checked={data !== undefined && (props.isChecked?.(data) ?? false)}
                  onPick={onPick}
                />
              );
            })}
          </div>
        )}
      </div>
      <div className="table-foot" data-testid="table-foot">
        <span>
          {total > 0 ? `Rows ${formatCount(shownFirst)}–${formatCount(shownLast)} of ${formatCount(total)}` : "No rows"}
        </span>
        <div className="spacer" />
        <span className="kbd">↑↓</span>
        <span className="kbd">PgUp/PgDn</span>
        <span className="kbd">Enter</span>
        <button className="btn small" type="button" disabled={visibleFirst === 0} onClick={() => pageTo(0)}>
          First
        </button>
        <button
          className="btn small"
          type="button"
          disabled={visibleFirst === 0}
          onClick={() => pageTo(visibleFirst - pageRows)}
        >
          Previous page
        </button>
        <button className="btn small" type="button" disabled={shownLast >= total} onClick={() => pageTo(visibleLast + 1)}>
          Next page
        </button>
        <button className="btn small" type="button" disabled={shownLast >= total} onClick={() => pageTo(total - 1)}>
          Last
        </button>
      </div>
    </div>
  );
}

// The header row: re-rendered only when the columns, the sort or the widths change, not on scroll.
function HeadView<T>(props: {
  headers: Header<T, unknown>[];
  width: number;
  sort: string;
  onSort: (sortKey: string) => void;
}) {
  return (
    <div className="grid-head" role="row" style={{ width: props.width }}>
      {props.headers.map((header) => {
        const meta = header.column.columnDef.meta as ColumnMeta | undefined;
        const state = meta?.sortKey ? sortState(props.sort, meta.sortKey) : null;
        return (
          <button
            key={header.id}
            type="button"
            role="columnheader"
            className="th"
            tabIndex={-1}
            style={{ width: header.getSize(), justifyContent: meta?.numeric ? "flex-end" : undefined }}
            aria-sort={state === "asc" ? "ascending" : state === "desc" ? "descending" : "none"}
            onClick={() => meta?.sortKey && props.onSort(meta.sortKey)}
            disabled={!meta?.sortKey}
            title={meta?.sortKey ? "Sort (server-side)" : undefined}
          >
            {flexRender(header.column.columnDef.header, header.getContext())}
            {state && <span className="arrow">{state === "asc" ? "↑" : "↓"}</span>}
          </button>
        );
      })}
    </div>
  );
}

const MemoHead = memo(HeadView) as typeof HeadView;

interface RowProps<T> {
  index: number;
  start: number;
  width: number;
  row: Row<T> | undefined;
  columns: ColumnDef<T, unknown>[];
  active: boolean;
  checked: boolean;
  onPick: (index: number, row: T | undefined) => void;
}

// A cell's content: its column's template called as a plain function (the templates hold no
// hooks), not mounted as a component of its own as flexRender does, which would add a React
// component per cell to every row rendered on each scroll step.
function cellContent<C>(template: string | ((context: C) => unknown) | undefined, context: C): React.ReactNode {
  return (typeof template === "function" ? template(context) : template) as React.ReactNode;
}

// One row, in one of the window's slots (rendered rows are keyed by slot, so a row scrolled out
// of the window is reused for the one scrolled in: React updates its text and position instead
// of removing and building elements); its cells are keyed by column, so they are reused too.
// Re-rendered only when its index, data or columns change, or it becomes active or checked (Row
// objects are new when the window's blocks change, so rows are compared by the data they show);
// a row whose block has not arrived yet shows placeholders.
function RowView<T>(props: RowProps<T>) {
  const { row } = props;
  const cells = row?.getVisibleCells();
  return (
    <div
      id={`row-${props.index}`}
      role="row"
      aria-rowindex={props.index + 1}
      aria-selected={props.active}
      className={`tr${props.checked ? " checked" : ""}`}
      data-testid="row"
      style={{ transform: `translateY(${props.start}px)`, height: ROW_HEIGHT, width: props.width }}
      onClick={() => props.onPick(props.index, row?.original)}
    >
      {cells
        ? cells.map((cell) => {
            const meta = cell.column.columnDef.meta as ColumnMeta | undefined;
            return (
              <div
                key={cell.column.id}
                role="gridcell"
                className={`td${meta?.numeric ? " num" : ""}`}
                style={{ width: cell.column.getSize() }}
              >
                {cellContent(cell.column.columnDef.cell, cell.getContext())}
              </div>
            );
          })
        : props.columns.map((column, i) => (
            <div key={column.id ?? i} className="td" style={{ width: column.size ?? 150 }}>
              <div className="skeleton" />
            </div>
          ))}
    </div>
  );
}

function sameRow<T>(a: RowProps<T>, b: RowProps<T>): boolean {
  return (
    a.index === b.index &&
    a.start === b.start &&
    a.width === b.width &&
    a.row?.original === b.row?.original &&
    a.columns === b.columns &&
    a.active === b.active &&
    a.checked === b.checked &&
    a.onPick === b.onPick
  );
}

const MemoRow = memo(RowView, sameRow) as typeof RowView;
