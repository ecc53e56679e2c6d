import { useQuery } from "@tanstack/react-query";
import type { ColumnDef } from "@tanstack/react-table";
import { lazy, Suspense, useCallback, useEffect, useMemo, useState } from "react";
import { ColumnChooser } from "../components/ColumnChooser";
import { SearchBox } from "../components/SearchBox";
import { Empty, ErrorState, Loading } from "../components/States";
import { BLOCK, VirtualTable, type ColumnMeta } from "../components/VirtualTable";
import { api, earlyAnswer, paths } from "../lib/api";
import { useParams } from "../lib/router";
import { absoluteTime, decodeIds, decodeList, encodeList, formatCount, formatValue, MAX_COMPARE, nextSort, shortUuid, toggleItem } from "../lib/shape";
import type { Execution, Page, PipelineOverview, StageColumns, StageSummary } from "../lib/types";

// The drawers are chunks of their own, fetched when one opens: the script a link to a stage
// runs before its first rows is the table's alone (docs/ui.md, "Fast first rows").
const ExecutionDrawer = lazy(() => import("./ExecutionDrawer").then((m) => ({ default: m.ExecutionDrawer })));
const CompareDrawer = lazy(() => import("./CompareDrawer").then((m) => ({ default: m.CompareDrawer })));

const DEFAULT_SORT = "-id";

// What a stage's table reads first, asked for as soon as the pipeline page opens (index.html
// asked already; lib/api.ts takes those answers): the stage's columns and its first block of
// rows. "done" once both have settled and the frame showing them has been painted (or at once
// without a stage): the pipeline page asks for its overview only then.
export function useStageFirst(pipeline: string, stage: string | null, params: URLSearchParams): "waiting" | "done" {
  const q = params.get("q") ?? "";
  const sort = params.get("sort") ?? DEFAULT_SORT;
  const enabled = stage !== null;
  const name = stage ?? "";
  const first = { pipeline, stage: name, q, sort, offset: 0, limit: BLOCK };
  const columns = useQuery({
    queryKey: ["stage-columns", pipeline, name],
    queryFn: ({ signal }) => api.stageColumns(pipeline, name, signal),
    initialData: () => (enabled ? earlyAnswer<StageColumns>(paths.stageColumns(pipeline, name)) : undefined),
    enabled,
  });
  const rows = useQuery({
    queryKey: ["executions", pipeline, name, q, sort, 0],
    queryFn: ({ signal }) => api.executions(first, signal),
    initialData: () => (enabled ? earlyAnswer<Page<Execution>>(paths.executions(first)) : undefined),
    enabled,
  });
  const settled = !enabled || (!columns.isPending && !rows.isPending);
  const [painted, setPainted] = useState(!enabled);
  useEffect(() => {
    if (!settled || painted) return;
    let timer = 0;
    const frame = requestAnimationFrame(() => {
      timer = window.setTimeout(() => setPainted(true), 0);
    });
    return () => {
      cancelAnimationFrame(frame);
      window.clearTimeout(timer);
    };
  }, [settled, painted]);
  return painted ? "done" : "waiting";
}

export function StageList(props: {
  pipeline: string;
  stages: StageSummary[] | undefined;
  current: string;
  onPick: (stage: string) => void;
}) {
  const { pipeline, current } = props;
  return (
    <nav className="side" aria-label="Stages">
      <div className="side-title">Stages</div>
      {props.stages === undefined && (
        // The overview has not arrived yet: the stage being shown alone.
        <div className="side-item" aria-current="true">
          <span>{current.startsWith(`${pipeline}/`) ? current.slice(pipeline.length + 1) : current}</span>
        </div>
      )}
      {props.stages?.map((stage) => (
        <button
          key={stage.id}
          type="button"
          className="side-item"
          style={{ width: "100%", border: 0, background: undefined, textAlign: "left" }}
          aria-current={stage.name === props.current}
          onClick={() => props.onPick(stage.name)}
        >
          <span>{stage.label}</span>
          <span className="badge">{formatCount(stage.execution_count)}</span>
        </button>
      ))}
    </nav>
  );
}

// A pipeline's stages and the table of one. Without the overview yet (a link to a stage opens
// before it arrives), the stage of the URL alone.
export function ExecutionsView({ pipeline, overview }: { pipeline: string; overview: PipelineOverview | undefined }) {
  const [params, setParams] = useParams();
  const stages = overview?.stages;
  const withExecutions = stages?.filter((s) => s.execution_count > 0) ?? [];
  const stage = params.get("stage") ?? withExecutions[0]?.name ?? stages?.[0]?.name ?? "";
  const known = stages === undefined || stages.some((s) => s.name === stage);
  if (stages?.length === 0) {
    return <Empty title="This pipeline has no stages yet">Push it again once it has run.</Empty>;
  }
  return (
    <div className="layout">
      <StageList
        pipeline={pipeline}
        stages={stages}
        current={stage}
        onPick={(name) =>
          setParams({ stage: name, cols: null, sort: null, q: null, row: null, exec: null, sel: null, compare: null })
        }
      />
      <div>
        {known ? (
          <StageTable key={stage} pipeline={pipeline} stage={stage} />
        ) : (
          <Empty title={`No stage “${stage}” in this pipeline`}>Pick one of its stages on the left.</Empty>
        )}
      </div>
    </div>
  );
}

function propertyOf(row: Execution, key: string) {
  return row.custom_properties[key] ?? row.properties[key];
}

export function StageTable({ pipeline, stage }: { pipeline: string; stage: string }) {
  const [params, setParams] = useParams();
  const q = params.get("q") ?? "";
  const sort = params.get("sort") ?? DEFAULT_SORT;
  const active = Number(params.get("row") ?? 0) || 0;
  const openId = Number(params.get("exec") ?? 0) || null;
  const selected = decodeIds(params.get("sel"), MAX_COMPARE);
  const comparing = params.get("compare") === "1" && selected.length > 0;
  const [total, setTotal] = useState<number | null>(null);

  const columnsAnswer = useQuery({
    queryKey: ["stage-columns", pipeline, stage],
    queryFn: ({ signal }) => api.stageColumns(pipeline, stage, signal),
  });
  const chosen = params.has("cols") ? decodeList(params.get("cols")) : (columnsAnswer.data?.default_columns ?? []);
  const numeric = useMemo(
    () => new Set((columnsAnswer.data?.columns ?? []).filter((c) => c.numeric).map((c) => c.key)),
    [columnsAnswer.data],
  );

  const selectedKey = selected.join(",");
  const columns = useMemo<ColumnDef<Execution, unknown>[]>(() => {
    const picked = new Set(decodeIds(selectedKey));
    const fixed: ColumnDef<Execution, unknown>[] = [
      {
        id: "select",
        header: () => <span className="sr-only">Compare</span>,
        size: 44,
        cell: ({ row }) => (
          <input
            type="checkbox"
            aria-label={`Select execution ${row.original.id} to compare`}
            checked={picked.has(row.original.id)}
            onClick={(event) => event.stopPropagation()}
            onChange={() =>
              setParams({ sel: encodeList(toggleItem([...picked], row.original.id, MAX_COMPARE).map(String)) || null }, true)
            }
          />
        ),
      },
      {
        id: "id",
        header: "ID",
        size: 80,
        meta: { sortKey: "id", numeric: true } satisfies ColumnMeta,
        cell: ({ row }) => <span>{row.original.id}</span>,
      },
      {
        id: "uuid",
        header: "UUID",
        size: 110,
        cell: ({ row }) => <span className="mono" title={row.original.uuid}>{shortUuid(row.original.uuid)}</span>,
      },
    ];
    const props: ColumnDef<Execution, unknown>[] = chosen.map((key) => ({
      id: `p:${key}`,
      header: key,
      size: Math.min(260, Math.max(110, key.length * 9 + 40)),
      meta: { sortKey: `property:${key}`, numeric: numeric.has(key) } satisfies ColumnMeta,
      cell: ({ row }) => {
        const text = formatValue(propertyOf(row.original, key));
        return <span title={text}>{text}</span>;
      },
    }));
    const created: ColumnDef<Execution, unknown> = {
      id: "created",
      header: "Created",
      size: 170,
      meta: { sortKey: "create_time_since_epoch" } satisfies ColumnMeta,
      cell: ({ row }) => (
        <span>{absoluteTime(row.original.original_create_time_since_epoch ?? row.original.create_time_since_epoch)}</span>
      ),
    };
    return [...fixed, ...props, created];
  }, [chosen.join("\u0000"), numeric, selectedKey, setParams]); // eslint-disable-line react-hooks/exhaustive-deps

  const fetchPage = useCallback(
    (offset: number, limit: number, signal: AbortSignal) =>
      api.executions({ pipeline, stage, q, sort, offset, limit }, signal),
    [pipeline, stage, q, sort],
  );
  const onActive = useCallback((index: number) => setParams({ row: index || null }, true), [setParams]);
  const onOpen = useCallback((row: Execution) => setParams({ exec: row.id }), [setParams]);
  const onToggle = useCallback(
    (row: Execution) =>
      setParams({ sel: encodeList(toggleItem(selected, row.id, MAX_COMPARE).map(String)) || null }, true),
    [selected, setParams], // eslint-disable-line react-hooks/exhaustive-deps
  );
  const closeDrawer = useCallback(() => setParams({ exec: null }), [setParams]);
  const closeCompare = useCallback(() => setParams({ compare: null, diff: null }), [setParams]);

  if (columnsAnswer.isPending) return <Loading label="Loading the stage's columns…" />;
  if (columnsAnswer.isError) return <ErrorState error={columnsAnswer.error} onRetry={() => void columnsAnswer.refetch()} />;

  return (
    <>
      <div className="toolbar">
        <SearchBox
          label="Filter executions"
          placeholder="Filter by any property value…"
          value={q}
          onChange={(value) => setParams({ q: value || null, row: null }, true)}
        />
        <ColumnChooser
          all={columnsAnswer.data.columns}
          chosen={chosen}
          onChange={(next) => setParams({ cols: encodeList(next) || "," }, true)}
          onReset={() => setParams({ cols: null }, true)}
        />
        <div className="spacer" />
        {total !== null && <span className="sub">{formatCount(total)} {q ? "matching" : "executions"}</span>}
        {selected.length > 0 && (
          <button className="btn small ghost" type="button" onClick={() => setParams({ sel: null, compare: null }, true)}>
            Clear selection
          </button>
        )}
        <button
          className="btn primary"
          type="button"
          disabled={selected.length < 2}
          title={selected.length < 2 ? "Select 2 to 10 executions (Space or the checkboxes)" : undefined}
          onClick={() => setParams({ compare: 1 })}
        >
          Compare{selected.length ? ` (${selected.length})` : ""}
        </button>
      </div>
      <VirtualTable<Execution>
        label={`Executions of ${stage}`}
        queryKey={["executions", pipeline, stage, q, sort]}
        fetchPage={fetchPage}
        columns={columns}
        sort={sort}
        onSort={(key) => setParams({ sort: nextSort(sort, key, DEFAULT_SORT) === DEFAULT_SORT ? null : nextSort(sort, key, DEFAULT_SORT), row: null }, true)}
        active={active}
        onActive={onActive}
        onOpen={onOpen}
        rowKey={(row) => row.id}
        isChecked={(row) => selected.includes(row.id)}
        onToggle={onToggle}
        onTotal={setTotal}
        empty={
          q ? (
            <Empty title={`No execution holds “${q}”`}>
              <button className="btn" type="button" onClick={() => setParams({ q: null })}>
                Clear the filter
              </button>
            </Empty>
          ) : (
            <Empty title="No executions in this stage" />
          )
        }
      />
      <Suspense fallback={null}>
        {openId !== null && <ExecutionDrawer id={openId} pipeline={pipeline} onClose={closeDrawer} />}
        {comparing && <CompareDrawer ids={selected} onClose={closeCompare} />}
      </Suspense>
    </>
  );
}
