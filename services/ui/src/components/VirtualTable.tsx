import { useQueries } from "@tanstack/react-query";
import { flexRender, getCoreRowModel, useReactTable, type ColumnDef, type Row } from "@tanstack/react-table";
import { useVirtualizer } from "@tanstack/react-virtual";
import { memo, useCallback, useEffect, useMemo, useRef } from "react";
import type { Page } from "../lib/types";
import { ErrorState } from "./States";
import { blocksOf, formatCount, sortState } from "../lib/shape";

export const BLOCK = 100;
const ROW_HEIGHT = 36;
const HEAD_HEIGHT = 39; // the sticky header row, inside the scroller

export interface ColumnMeta {
  sortKey?: string;
  numeric?: boolean;
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
  const scroller = useRef<HTMLDivElement>(null);
  const { fetchPage, queryKey } = props;
  const firstBlock = useQueries({
    queries: [
      {
        queryKey: [...queryKey, 0],
        queryFn: ({ signal }: { signal: AbortSignal }) => fetchPage(0, BLOCK, signal),
      },
    ],
  })[0];
  const total = firstBlock?.data?.total ?? 0;
  const virtualizer = useVirtualizer({
    count: total,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 6,
    scrollMargin: HEAD_HEIGHT,
    scrollPaddingStart: HEAD_HEIGHT,
  });
  const items = virtualizer.getVirtualItems();
  const first = items[0]?.index ?? 0;
  const last = items[items.length - 1]?.index ?? -1;
  const blocks = useMemo(() => blocksOf(first, last, BLOCK), [first, last]);
  const results = useQueries({
    queries: blocks.map((block) => ({
      queryKey: [...queryKey, block],
      queryFn: ({ signal }: { signal: AbortSignal }) => fetchPage(block * BLOCK, BLOCK, signal),
      staleTime: 60_000,
    })),
  });
  const loaded = new Map<number, T[]>();
  blocks.forEach((block, i) => {
    const data = results[i]?.data;
    if (data) loaded.set(block, data.items);
  });
  if (firstBlock?.data) loaded.set(0, firstBlock.data.items);
  const rowAt = (index: number): T | undefined => loaded.get(Math.floor(index / BLOCK))?.[index % BLOCK];

  // TanStack Table holds the columns and the rows of the blocks loaded for the window; the data
  // keeps its identity while the same blocks stay loaded, so scrolling within them re-renders
  // only the rows that move (MemoRow).
  const loadedKey = blocks.map((b) => `${b}:${loaded.has(b) ? (b === 0 ? firstBlock?.dataUpdatedAt : results[blocks.indexOf(b)]?.dataUpdatedAt) : "-"}`).join(",");
  const { windowRows, windowIndex } = useMemo(() => {
    const rows: T[] = [];
    const index: number[] = [];
    for (const block of blocks) {
      const items = loaded.get(block);
      if (!items) continue;
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
  const byIndex = new Map<number, Row<T>>();
  table.getRowModel().rows.forEach((row, i) => byIndex.set(windowIndex[i] ?? -1, row));
  const width = table.getTotalSize();

  const { onTotal } = props;
  useEffect(() => {
    if (firstBlock?.data) onTotal?.(firstBlock.data.total);
  }, [firstBlock?.data, onTotal]);
  const hasRows = byIndex.size > 0;
  useEffect(() => {
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
    if (total > 0 && active >= 0 && active < total) virtualizer.scrollToIndex(active, { align: "auto" });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [active, total]);

  const viewHeight = (scroller.current?.clientHeight ?? 576) - HEAD_HEIGHT;
  const pageRows = Math.max(1, Math.floor(viewHeight / ROW_HEIGHT));
  const scrollTop = virtualizer.scrollOffset ?? 0;
  const visibleFirst = Math.min(Math.max(0, total - 1), Math.floor(scrollTop / ROW_HEIGHT));
  const visibleLast = Math.min(total - 1, Math.floor((scrollTop + viewHeight - 1) / ROW_HEIGHT));
  const move = (to: number) => props.onActive(Math.max(0, Math.min(total - 1, to)));
  const pageTo = (to: number) => {
    const index = Math.max(0, Math.min(total - 1, to));
    paged.current = index !== active;
    props.onActive(index);
    virtualizer.scrollToIndex(index, { align: "start" });
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

  if (firstBlock?.isError) {
    return (
      <div className="table-wrap">
        <ErrorState error={firstBlock.error} onRetry={() => void firstBlock.refetch()} />
      </div>
    );
  }
  const loading = firstBlock?.isPending ?? true;
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
        <div className="grid-head" role="row" style={{ width }}>
          {table.getHeaderGroups()[0]?.headers.map((header) => {
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
        {loading ? (
          <div className="state" role="status">
            <div className="spinner" />
          </div>
        ) : total === 0 ? (
          props.empty
        ) : (
          <div style={{ height: virtualizer.getTotalSize(), position: "relative", width }} role="rowgroup">
            {items.map((item) => {
              const row = byIndex.get(item.index);
              const data = row?.original;
              return (
                <MemoRow<T>
                  key={item.key}
                  index={item.index}
                  start={item.start - HEAD_HEIGHT}
                  width={width}
                  row={row}
                  columns={props.columns}
                  active={item.index === active}
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

// One row: re-rendered only when it moves, its data or columns change, or it becomes active or
// checked; a row whose block has not arrived yet shows placeholders.
function RowView<T>(props: RowProps<T>) {
  const { row } = props;
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
      {row
        ? row.getVisibleCells().map((cell) => {
            const meta = cell.column.columnDef.meta as ColumnMeta | undefined;
            return (
              <div
                key={cell.id}
                role="gridcell"
                className={`td${meta?.numeric ? " num" : ""}`}
                style={{ width: cell.column.getSize() }}
              >
                {flexRender(cell.column.columnDef.cell, cell.getContext())}
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

const MemoRow = memo(RowView) as typeof RowView;
