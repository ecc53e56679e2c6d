import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useEffect, useLayoutEffect } from "react";
import { ErrorState, Loading, NothingPushed, Empty } from "../components/States";
import { SearchBox } from "../components/SearchBox";
import { api, earlyAnswer, paths } from "../lib/api";
import { Link, pipelinePath, useParams } from "../lib/router";
import { absoluteTime, formatCount, plural, relativeTime } from "../lib/shape";
import type { Page, PipelineCard } from "../lib/types";

function Card({ pipeline }: { pipeline: PipelineCard }) {
  return (
    <Link to={pipelinePath(pipeline.name, "executions")} className="card">
      <div className="card-title" data-testid="pipeline-card">
        <span className="card-icon" aria-hidden="true">
          {pipeline.name.slice(0, 1).toUpperCase()}
        </span>
        <span>{pipeline.name}</span>
      </div>
      <div className="stats">
        <div className="stat">
          <b>{formatCount(pipeline.stage_count)}</b>
          <span>{pipeline.stage_count === 1 ? "stage" : "stages"}</span>
        </div>
        <div className="stat">
          <b>{formatCount(pipeline.execution_count)}</b>
          <span>{pipeline.execution_count === 1 ? "execution" : "executions"}</span>
        </div>
        <div className="stat">
          <b>{formatCount(pipeline.artifact_count)}</b>
          <span>{pipeline.artifact_count === 1 ? "artifact" : "artifacts"}</span>
        </div>
      </div>
      <div className="card-foot">
        <span title={absoluteTime(pipeline.last_push_time_since_epoch)}>
          Pushed {relativeTime(pipeline.last_push_time_since_epoch)}
        </span>
        <span aria-hidden="true">→</span>
      </div>
    </Link>
  );
}

export function PipelinesPage() {
  const [params, setParams] = useParams();
  const q = params.get("q") ?? "";
  const answer = useQuery({
    queryKey: ["pipelines", q],
    queryFn: ({ signal }) => api.pipelines(q, signal),
    initialData: () => earlyAnswer<Page<PipelineCard>>(paths.pipelines(q)),
    placeholderData: keepPreviousData,
  });
  const items = answer.data?.items;
  // Marked when the cards are in the document (a layout effect runs before the frame paints
  // them, in React and in Preact alike; a passive effect may run a frame later).
  useLayoutEffect(() => {
    if (items && items.length > 0 && performance.getEntriesByName("cmf:first-card").length === 0) {
      performance.mark("cmf:first-card");
    }
  }, [items]);
  useEffect(() => {
    document.title = "Pipelines · CMF Server";
  }, []);

  let body: React.ReactNode;
  if (answer.isPending) body = <Loading label="Loading pipelines…" />;
  else if (answer.isError) body = <ErrorState error={answer.error} onRetry={() => void answer.refetch()} />;
  else if (answer.data.total === 0 && !q) body = <NothingPushed />;
  else if (answer.data.items.length === 0)
    body = (
      <Empty title={`No pipeline name holds “${q}”`}>
        <button className="btn" type="button" onClick={() => setParams({ q: null })}>
          Clear the search
        </button>
      </Empty>
    );
  else
    body = (
      <div className="cards">
        {answer.data.items.map((p) => (
          <Card key={p.id} pipeline={p} />
        ))}
      </div>
    );

  return (
    <>
      <div className="page-head">
        <div>
          <h1>Pipelines</h1>
          <div className="sub">
            {answer.data ? `${plural(answer.data.total, "pipeline")}, the last pushed first` : "\u00a0"}
          </div>
        </div>
        <div className="spacer" />
        <SearchBox
          label="Search pipelines by name"
          placeholder="Search pipelines…"
          value={q}
          onChange={(value) => setParams({ q: value || null }, true)}
        />
      </div>
      {body}
    </>
  );
}
