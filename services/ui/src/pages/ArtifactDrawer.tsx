import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Drawer } from "../components/Drawer";
import { ErrorState, Loading } from "../components/States";
import { api, ApiError, downloadUrl } from "../lib/api";
import { Link, pipelinePath, useParams } from "../lib/router";
import { absoluteTime, artifactLabel, formatCount, formatValue, shortUuid } from "../lib/shape";
import type { ArtifactDetail, ExecutionRef } from "../lib/types";
import { PropertyTable } from "./ExecutionDrawer";

const LABEL_PAGE = 50;

function executionLink(execution: ExecutionRef) {
  return `${pipelinePath(execution.pipeline, "executions")}?stage=${encodeURIComponent(execution.stage)}&exec=${execution.id}`;
}

function Executions({ detail, kind }: { detail: ArtifactDetail; kind: string }) {
  const events = detail.events.filter((e) => e.kind === kind);
  if (events.length === 0) return <p className="sub">None.</p>;
  return (
    <div className="links" data-testid={kind === "OUTPUT" ? "producers" : "consumers"}>
      {events.map((event) => (
        <div className="link-row" key={`${kind}:${event.execution.id}`}>
          <span className="badge">{event.execution.stage.split("/").slice(-1)[0]}</span>
          <Link to={executionLink(event.execution)}>
            Execution {event.execution.id} · {shortUuid(event.execution.uuid)}
          </Link>
          {event.execution.pipeline !== detail.pipelines[0] && <span className="sub">{event.execution.pipeline}</span>}
        </div>
      ))}
    </div>
  );
}

export function hasLabels(artifact: ArtifactDetail): boolean {
  return artifact.type === "Label" || typeof artifact.custom_properties.labels_uri === "string";
}

function Labels({ id }: { id: number }) {
  const [params, setParams] = useParams();
  const offset = Math.max(0, Number(params.get("lo") ?? 0) || 0);
  const page = useQuery({
    queryKey: ["labels", id, offset],
    queryFn: ({ signal }) => api.labels(id, offset, LABEL_PAGE, signal),
    placeholderData: keepPreviousData,
  });
  if (page.isPending) return <Loading label="Loading the labels…" />;
  if (page.isError) {
    const missing = page.error instanceof ApiError && page.error.code === "labels_not_found";
    return missing ? <p className="sub">{page.error.message}. The client uploads it on push.</p> : <ErrorState error={page.error} />;
  }
  const data = page.data;
  const last = Math.min(data.total, offset + data.rows.length);
  return (
    <div data-testid="labels">
      <div className="toolbar">
        <span className="sub">
          {data.file_name} · rows {formatCount(data.total ? offset + 1 : 0)}–{formatCount(last)} of {formatCount(data.total)}
        </span>
        <div className="spacer" />
        <button className="btn small" type="button" disabled={offset === 0} onClick={() => setParams({ lo: Math.max(0, offset - LABEL_PAGE) || null }, true)}>
          Previous
        </button>
        <button className="btn small" type="button" disabled={last >= data.total} onClick={() => setParams({ lo: offset + LABEL_PAGE }, true)}>
          Next
        </button>
      </div>
      <div style={{ overflow: "auto", maxHeight: "60vh", border: "1px solid var(--border)", borderRadius: 8 }}>
        <table className="plain">
          <thead>
            <tr>
              <th>#</th>
              {data.columns.map((c, i) => (
                <th key={i}>{c}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {data.rows.map((row, r) => (
              <tr key={offset + r}>
                <td className="k">{offset + r + 1}</td>
                {row.map((cell, c) => (
                  <td key={c}>{cell}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function ModelCardView({ id }: { id: number }) {
  const card = useQuery({ queryKey: ["model-card", id], queryFn: ({ signal }) => api.modelCard(id, signal) });
  if (card.isPending) return <Loading label="Loading the model card…" />;
  if (card.isError) return <ErrorState error={card.error} />;
  const { model, executions, inputs, outputs } = card.data;
  const props = { ...model.properties, ...model.custom_properties };
  return (
    <div data-testid="model-card">
      <dl className="kv">
        {["model_framework", "model_type", "model_name"].map((key) => (
          <div key={key} style={{ display: "contents" }}>
            <dt>{key.replace("model_", "").replace("_", " ")}</dt>
            <dd>{formatValue(props[key]) || "—"}</dd>
          </div>
        ))}
      </dl>
      <h3>Executions</h3>
      <table className="plain">
        <thead>
          <tr>
            <th>Execution</th>
            <th>Stage</th>
            <th>Command</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {executions.map((e) => (
            <tr key={e.id}>
              <td>
                <Link to={`${pipelinePath(e.pipeline, "executions")}?stage=${encodeURIComponent(e.stage)}&exec=${e.id}`}>
                  {e.id} · {shortUuid(e.uuid)}
                </Link>
              </td>
              <td>{e.stage}</td>
              <td className="mono">{formatValue(e.properties.Execution)}</td>
              <td>{absoluteTime(e.original_create_time_since_epoch ?? e.create_time_since_epoch)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {[
        ["Inputs", inputs],
        ["Outputs", outputs],
      ].map(([title, list]) => (
        <div key={title as string}>
          <h3>{title as string}</h3>
          <div className="links">
            {(list as typeof inputs).map((a) => (
              <div className="link-row" key={a.id}>
                <span className="badge accent">{a.type}</span>
                <span>{artifactLabel(a.name, a.type)}</span>
              </div>
            ))}
            {(list as typeof inputs).length === 0 && <p className="sub">None.</p>}
          </div>
        </div>
      ))}
    </div>
  );
}

export function ArtifactDrawer({ id, pipeline, onClose }: { id: number; pipeline: string; onClose: () => void }) {
  const [params, setParams] = useParams();
  const view = params.get("view");
  const detail = useQuery({ queryKey: ["artifact", id], queryFn: ({ signal }) => api.artifact(id, signal) });
  const data = detail.data;
  const labels = data !== undefined && hasLabels(data);
  const model = data?.type === "Model";
  return (
    <Drawer
      wide={view === "labels" || view === "card"}
      title={data ? artifactLabel(data.name, data.type) : `Artifact ${id}`}
      subtitle={data ? `${data.type} · artifact ${data.id}` : undefined}
      onClose={onClose}
      testId="artifact-drawer"
      actions={
        data && (
          <div className="chip-row">
            {view && (
              <button className="btn small" type="button" onClick={() => setParams({ view: null, lo: null })}>
                Details
              </button>
            )}
            {labels && view !== "labels" && (
              <button className="btn small" type="button" onClick={() => setParams({ view: "labels" })}>
                View labels
              </button>
            )}
            {model && view !== "card" && (
              <button className="btn small" type="button" onClick={() => setParams({ view: "card" })}>
                Model card
              </button>
            )}
            {data.stored === true && (
              <a className="btn small primary" href={downloadUrl(pipeline, data.name)} download>
                Download
              </a>
            )}
          </div>
        )
      }
    >
      {detail.isPending && <Loading />}
      {detail.isError && <ErrorState error={detail.error} />}
      {data && view === "labels" && labels && <Labels id={data.id} />}
      {data && view === "card" && model && <ModelCardView id={data.id} />}
      {data && (view === null || (view === "labels" && !labels) || (view === "card" && !model)) && (
        <>
          <h3>Summary</h3>
          <dl className="kv">
            <dt>Type</dt>
            <dd>{data.type}</dd>
            <dt>Name</dt>
            <dd className="mono">{data.name}</dd>
            <dt>URI</dt>
            <dd className="mono">{data.uri}</dd>
            <dt>Pipelines</dt>
            <dd>{data.pipelines.join(", ")}</dd>
            <dt>Created</dt>
            <dd>{absoluteTime(data.create_time_since_epoch)}</dd>
            <dt>Bytes</dt>
            <dd>{data.stored === true ? "held by the artifact service" : "not held by this server (they stay in the DVC remote)"}</dd>
          </dl>
          <h3>Produced by</h3>
          <Executions detail={data} kind="OUTPUT" />
          <h3>Used by</h3>
          <Executions detail={data} kind="INPUT" />
          {data.events_total > data.events.length && (
            <p className="sub">and {formatCount(data.events_total - data.events.length)} more executions.</p>
          )}
          <h3>Properties</h3>
          <PropertyTable
            bags={[
              { label: "custom", values: data.custom_properties },
              { label: "cmf", values: data.properties },
            ]}
          />
        </>
      )}
    </Drawer>
  );
}
