import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Drawer } from "../components/Drawer";
import { ErrorState, Loading } from "../components/States";
import { api, ApiError } from "../lib/api";
import { Link, pipelinePath } from "../lib/router";
import { absoluteTime, artifactLabel, formatValue, shortUuid } from "../lib/shape";
import type { Bag, ExecutionDetail } from "../lib/types";

const GIT = ["Git_Repo", "Git_Start_Commit", "Git_End_Commit"];

export function PropertyTable({ bags }: { bags: { label: string; values: Bag }[] }) {
  const rows = bags.flatMap((bag) =>
    Object.keys(bag.values)
      .sort((a, b) => a.localeCompare(b))
      .map((key) => ({ key, bag: bag.label, value: bag.values[key] })),
  );
  return (
    <table className="plain" data-testid="properties">
      <tbody>
        {rows.map((row) => (
          <tr key={`${row.bag}:${row.key}`}>
            <td className="k">{row.key}</td>
            <td className="mono">{formatValue(row.value)}</td>
            <td className="k">
              <span className="badge">{row.bag}</span>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function PythonEnv({ id }: { id: number }) {
  const [open, setOpen] = useState(false);
  const env = useQuery({
    queryKey: ["python-env", id],
    queryFn: ({ signal }) => api.pythonEnv(id, signal),
    enabled: open,
  });
  return (
    <details onToggle={(event) => setOpen((event.target as HTMLDetailsElement).open)} data-testid="python-env">
      <summary style={{ cursor: "pointer" }}>Show the Python environment</summary>
      {open && env.isPending && <Loading />}
      {open && env.isError && (
        <p className="sub">
          {env.error instanceof ApiError && env.error.status === 404
            ? "The client did not upload this execution's environment file."
            : String(env.error)}
        </p>
      )}
      {env.data !== undefined && <pre className="env">{env.data}</pre>}
    </details>
  );
}

function Artifacts({ detail, kind, pipeline }: { detail: ExecutionDetail; kind: string; pipeline: string }) {
  const events = detail.events.filter((e) => e.kind === kind && e.artifact.type !== "Environment");
  if (events.length === 0) return <p className="sub">None.</p>;
  return (
    <div className="links">
      {events.map((event) => (
        <div className="link-row" key={`${event.kind}:${event.artifact.id}`}>
          <span className="badge accent">{event.artifact.type}</span>
          <Link
            to={`${pipelinePath(pipeline, "artifacts")}?type=${encodeURIComponent(event.artifact.type)}&art=${event.artifact.id}`}
          >
            {artifactLabel(event.artifact.name, event.artifact.type)}
          </Link>
        </div>
      ))}
    </div>
  );
}

export function ExecutionDrawer({ id, pipeline, onClose }: { id: number; pipeline: string; onClose: () => void }) {
  const detail = useQuery({ queryKey: ["execution", id], queryFn: ({ signal }) => api.execution(id, signal) });
  const data = detail.data;
  return (
    <Drawer
      title={data ? `Execution ${data.id}` : `Execution ${id}`}
      subtitle={data ? `${data.stage} · ${shortUuid(data.uuid)}` : undefined}
      onClose={onClose}
      testId="execution-drawer"
    >
      {detail.isPending && <Loading />}
      {detail.isError && <ErrorState error={detail.error} />}
      {data && (
        <>
          <h3>Summary</h3>
          <dl className="kv">
            <dt>Type</dt>
            <dd>{data.type}</dd>
            <dt>UUID</dt>
            <dd className="mono">{data.uuid}</dd>
            <dt>Command</dt>
            <dd className="mono">{formatValue(data.properties.Execution)}</dd>
            <dt>Created</dt>
            <dd>{absoluteTime(data.original_create_time_since_epoch ?? data.create_time_since_epoch)}</dd>
          </dl>
          <h3>Git</h3>
          <dl className="kv" data-testid="git">
            {GIT.map((key) => (
              <div key={key} style={{ display: "contents" }}>
                <dt>{key.replace("Git_", "").replace("_", " ")}</dt>
                <dd className="mono">{formatValue(data.properties[key] ?? data.custom_properties[key]) || "—"}</dd>
              </div>
            ))}
          </dl>
          <h3>Inputs</h3>
          <Artifacts detail={data} kind="INPUT" pipeline={pipeline} />
          <h3>Outputs</h3>
          <Artifacts detail={data} kind="OUTPUT" pipeline={pipeline} />
          <h3>Properties</h3>
          <PropertyTable
            bags={[
              { label: "custom", values: data.custom_properties },
              { label: "cmf", values: data.properties },
            ]}
          />
          <h3>Python environment</h3>
          <PythonEnv id={data.id} />
        </>
      )}
    </Drawer>
  );
}
