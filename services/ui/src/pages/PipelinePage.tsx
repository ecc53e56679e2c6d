import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { ErrorState, Loading } from "../components/States";
import { api, ApiError } from "../lib/api";
import { Link, pipelinePath, useParams } from "../lib/router";
import { absoluteTime, formatCount, plural, relativeTime } from "../lib/shape";
import { ArtifactsView } from "./ArtifactsView";
import { ExecutionsView, prefetchStage, StageTable } from "./ExecutionsView";
import { TensorBoardView } from "./TensorBoardView";

const VIEWS = ["executions", "artifacts", "tensorboard"] as const;

export default function PipelinePage({ pipeline, view }: { pipeline: string; view: string }) {
  const client = useQueryClient();
  const [params] = useParams();
  const stage = view === "executions" ? params.get("stage") : null;
  useEffect(() => {
    if (stage) prefetchStage(client, pipeline, stage, params);
    // Only on opening the page: later changes are the table's own queries.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, pipeline]);
  const overview = useQuery({
    queryKey: ["pipeline", pipeline],
    queryFn: ({ signal }) => api.pipeline(pipeline, signal),
  });
  useEffect(() => {
    document.title = `${pipeline} · CMF Server`;
  }, [pipeline]);

  // A link to a stage's table shows the table as soon as its rows arrive, without waiting for
  // the pipeline's overview (its counts take longest on a big pipeline).
  if (overview.isPending && stage) {
    return (
      <>
        <div className="page-head">
          <div>
            <h1>{pipeline}</h1>
            <div className="sub">&nbsp;</div>
          </div>
        </div>
        <nav className="tabs" aria-label="Views of the pipeline">
          <span className="tab">
            <span role="tab" aria-selected="true">
              Executions
            </span>
          </span>
        </nav>
        <div className="layout">
          <nav className="side" aria-label="Stages">
            <div className="side-title">Stages</div>
            <div className="side-item" aria-current="true">
              <span>{stage.startsWith(`${pipeline}/`) ? stage.slice(pipeline.length + 1) : stage}</span>
            </div>
          </nav>
          <div>
            <StageTable pipeline={pipeline} stage={stage} />
          </div>
        </div>
      </>
    );
  }
  if (overview.isPending) return <Loading label={`Loading ${pipeline}…`} />;
  if (overview.isError) {
    const error = overview.error;
    if (error instanceof ApiError && error.code === "pipeline_not_found") {
      return (
        <div className="state error" role="alert" data-testid="error">
          <div className="icon">?</div>
          <h2>No pipeline named “{pipeline}”</h2>
          <p>Nothing was pushed under this name to this server. Check the spelling, or push it with
            <code> cmf metadata push -p {pipeline}</code>.</p>
          <Link to="/" className="btn">
            See every pipeline
          </Link>
        </div>
      );
    }
    return <ErrorState error={error} onRetry={() => void overview.refetch()} />;
  }
  const data = overview.data;
  const current = (VIEWS as readonly string[]).includes(view) ? view : "executions";
  const counts: Record<string, number | undefined> = {
    executions: data.execution_count,
    artifacts: data.artifact_count,
  };
  return (
    <>
      <div className="page-head">
        <div>
          <h1>{data.name}</h1>
          <div className="sub" title={absoluteTime(data.last_push_time_since_epoch)}>
            {plural(data.stage_count, "stage")} · {plural(data.execution_count, "execution")} ·{" "}
            {plural(data.artifact_count, "artifact")} · pushed {relativeTime(data.last_push_time_since_epoch)}
          </div>
        </div>
      </div>
      <nav className="tabs" role="tablist" aria-label="Views of the pipeline">
        {VIEWS.map((name) => (
          <Link key={name} to={pipelinePath(pipeline, name)} className="tab">
            <span role="tab" aria-selected={current === name}>
              {name === "tensorboard" ? "TensorBoard" : name[0]?.toUpperCase() + name.slice(1)}
            </span>
            {counts[name] !== undefined && <span className="badge">{formatCount(counts[name] ?? 0)}</span>}
          </Link>
        ))}
      </nav>
      {current === "executions" && <ExecutionsView overview={data} />}
      {current === "artifacts" && <ArtifactsView overview={data} />}
      {current === "tensorboard" && <TensorBoardView pipeline={data.name} />}
    </>
  );
}
