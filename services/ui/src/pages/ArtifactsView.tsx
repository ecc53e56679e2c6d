import type { ColumnDef } from "@tanstack/react-table";
import { useCallback, useState } from "react";
import { SearchBox } from "../components/SearchBox";
import { Empty } from "../components/States";
import { VirtualTable, type ColumnMeta } from "../components/VirtualTable";
import { api } from "../lib/api";
import { useParams } from "../lib/router";
import { absoluteTime, artifactLabel, formatCount, nextSort, orderTypes } from "../lib/shape";
import type { Artifact, PipelineOverview } from "../lib/types";
import { ArtifactDrawer } from "./ArtifactDrawer";

const DEFAULT_SORT = "-id";

const COLUMNS: ColumnDef<Artifact, unknown>[] = [
  { id: "id", header: "ID", size: 80, meta: { sortKey: "id", numeric: true } satisfies ColumnMeta, cell: ({ row }) => <span>{row.original.id}</span> },
  {
    id: "name",
    header: "Name",
    size: 380,
    meta: { sortKey: "name" } satisfies ColumnMeta,
    cell: ({ row }) => <span title={row.original.name}>{artifactLabel(row.original.name, row.original.type)}</span>,
  },
  {
    id: "uri",
    header: "URI",
    size: 300,
    meta: { sortKey: "uri" } satisfies ColumnMeta,
    cell: ({ row }) => <span className="mono" title={row.original.uri}>{row.original.uri}</span>,
  },
  {
    id: "stored",
    header: "Bytes",
    size: 90,
    cell: ({ row }) =>
      row.original.stored === true ? (
        <span className="badge" title="held by the artifact service">stored</span>
      ) : (
        <span className="muted" title="not held by this server (they stay in the DVC remote)">remote</span>
      ),
  },
  {
    id: "pipelines",
    header: "Pipelines",
    size: 180,
    cell: ({ row }) => <span>{row.original.pipelines.join(", ")}</span>,
  },
  {
    id: "created",
    header: "Created",
    size: 170,
    meta: { sortKey: "create_time_since_epoch" } satisfies ColumnMeta,
    cell: ({ row }) => <span>{absoluteTime(row.original.create_time_since_epoch)}</span>,
  },
];

export function ArtifactsView({ overview }: { overview: PipelineOverview }) {
  const [params, setParams] = useParams();
  const types = orderTypes(overview.artifact_types);
  const type = params.get("type") ?? types[0]?.type ?? "";
  const q = params.get("q") ?? "";
  const sort = params.get("sort") ?? DEFAULT_SORT;
  const active = Number(params.get("row") ?? 0) || 0;
  const openId = Number(params.get("art") ?? 0) || null;
  const [, setTotal] = useState(0);
  const pipeline = overview.name;
  const fetchPage = useCallback(
    (offset: number, limit: number, signal: AbortSignal) => api.artifacts({ pipeline, type, q, sort, offset, limit }, signal),
    [pipeline, type, q, sort],
  );
  const onActive = useCallback((index: number) => setParams({ row: index || null }, true), [setParams]);
  const onOpen = useCallback((row: Artifact) => setParams({ art: row.id, view: null, lo: null }), [setParams]);
  const close = useCallback(() => setParams({ art: null, view: null, lo: null }), [setParams]);

  if (types.length === 0) {
    return (
      <>
        <Empty title="No artifacts in this pipeline" />
        {openId !== null && <ArtifactDrawer id={openId} pipeline={pipeline} onClose={close} />}
      </>
    );
  }
  return (
    <>
      <div className="tabs" role="tablist" aria-label="Artifact types">
        {types.map((t) => (
          <button
            key={t.type}
            type="button"
            role="tab"
            className="tab"
            aria-selected={t.type === type}
            onClick={() => setParams({ type: t.type, row: null, sort: null, q: null, art: null, view: null })}
          >
            {t.type.replace("_", " ")} <span className="badge">{formatCount(t.count)}</span>
          </button>
        ))}
      </div>
      <div className="toolbar">
        <SearchBox
          label="Filter artifacts"
          placeholder="Filter by name, URI or property…"
          value={q}
          onChange={(value) => setParams({ q: value || null, row: null }, true)}
        />
      </div>
      <VirtualTable<Artifact>
        key={type}
        label={`${type} artifacts of ${pipeline}`}
        queryKey={["artifacts", pipeline, type, q, sort]}
        fetchPage={fetchPage}
        columns={COLUMNS}
        sort={sort}
        onSort={(key) => {
          const next = nextSort(sort, key, DEFAULT_SORT);
          setParams({ sort: next === DEFAULT_SORT ? null : next, row: null }, true);
        }}
        active={active}
        onActive={onActive}
        onOpen={onOpen}
        rowKey={(row) => row.id}
        onTotal={setTotal}
        empty={<Empty title={q ? `No ${type} holds “${q}”` : `No ${type} artifacts`} />}
      />
      {openId !== null && <ArtifactDrawer id={openId} pipeline={pipeline} onClose={close} />}
    </>
  );
}
