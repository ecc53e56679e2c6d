import { useQuery } from "@tanstack/react-query";
import { lazy, Suspense, useEffect } from "react";
import { ErrorState, Loading } from "../components/States";
import { api, ApiError, earlyAnswer, paths } from "../lib/api";
import { Link, pipelinePath, useParams } from "../lib/router";
import { absoluteTime, formatCount, plural, relativeTime } from "../lib/shape";
import type { PipelineOverview } from "../lib/types";
import { ExecutionsView, useStageFirst } from "./ExecutionsView";

const VIEWS = ["executions", "artifacts", "explorer", "tensorboard"] as const;
const TAB_NAMES: Record<string, string> = { tensorboard: "TensorBoard", explorer: "Lineage" };

// The lineage explorer (D3, its layout worker) is a chunk of its own, loaded with its tab only;
// so are the artifacts and TensorBoard tabs (a link to a stage's table runs none of them).
const ExplorerPage = lazy(() => import("../explorer/ExplorerPage"));
const ArtifactsView = lazy(() => import("./ArtifactsView").then((m) => ({ default: m.ArtifactsView })));
const TensorBoardView = lazy(() => import("./TensorBoardView").then((m) => ({ default: m.TensorBoardView })));

export default function PipelinePage({ pipeline, view }: { pipeline: string; view: string }) {
  const [params] = useParams();
  const stage = view === "executions" ? params.get("stage") : null;
  // A link to a stage's table shows the table first: the pipeline's overview (its counts take
  // longest on a big pipeline, and the table does not need it) is asked for once the stage's
  // first rows are painted, so the server and the machine work on those rows alone.
  const rowsFirst = useStageFirst(pipeline, stage, params);
  const overview = useQuery({
    queryKey: ["pipeline", pipeline],
    queryFn: ({ signal }) => api.pipeline(pipeline, signal),
    initialData: () => earlyAnswer<PipelineOverview>(paths.pipeline(pipeline)),
    enabled: rowsFirst === "done",
  });
  useEffect(() => {
    document.title = `${pipeline} · CMF Server`;
  }, [pipeline]);

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
  if (overview.isPending && !stage) return <Loading label={`Loading ${pipeline}…`} />;
  if (overview.isPending) {
    // The same tree as below (the table keeps its place, so it stays mounted when the overview
    // arrives), without the counts yet.
    return (
      <>
        <div className="page-head">
          <div>
            <h1>{pipeline}</h1>
            <div className="sub">&nbsp;</div>
          </div>
        </div>
        <nav className="tabs" role="tablist" aria-label="Views of the pipeline">
          <span className="tab">
            <span role="tab" aria-selected="true">
              Executions
            </span>
          </span>
        </nav>
        <ExecutionsView pipeline={pipeline} overview={undefined} />
      </>
    );
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
              {TAB_NAMES[name] ?? name[0]?.toUpperCase() + name.slice(1)}
            </span>
            {counts[name] !== undefined && <span className="badge">{formatCount(counts[name] ?? 0)}</span>}
          </Link>
        ))}
      </nav>
      {current === "executions" && <ExecutionsView pipeline={pipeline} overview={data} />}
      {current === "artifacts" && (
        <Suspense fallback={<Loading label="Loading the artifacts…" />}>
          <ArtifactsView overview={data} />
        </Suspense>
      )}
      {current === "explorer" && (
        <Suspense fallback={<Loading label="Loading the lineage explorer…" />}>
          <ExplorerPage pipeline={data.name} />
        </Suspense>
      )}
      {current === "tensorboard" && (
        <Suspense fallback={<Loading label="Loading the TensorBoard logs…" />}>
          <TensorBoardView pipeline={data.name} />
        </Suspense>
      )}
    </>
  );
}
