import { TokenPrompt } from "./auth/TokenPrompt";
import { Link, useLocation } from "./lib/router";
import PipelinePage from "./pages/PipelinePage";
import { PipelinesPage } from "./pages/PipelinesPage";

export function route(path: string): { page: "pipelines" } | { page: "pipeline"; pipeline: string; view: string } | { page: "missing" } {
  if (path === "/" || path === "") return { page: "pipelines" };
  const match = /^\/p\/([^/]+)(?:\/([a-z]+))?\/?$/.exec(path);
  if (match?.[1]) {
    return { page: "pipeline", pipeline: decodeURIComponent(match[1]), view: match[2] ?? "executions" };
  }
  return { page: "missing" };
}

export function App() {
  const location = useLocation();
  const current = route(location.path);
  return (
    <>
      <header className="topbar">
        <Link to="/" className="brand">
          <img src="/ui/favicon.svg" alt="" />
          CMF Server
        </Link>
        <nav className="crumbs" aria-label="Breadcrumb">
          <span className="sep">/</span>
          {current.page === "pipeline" ? (
            <>
              <Link to="/">Pipelines</Link>
              <span className="sep">/</span>
              <span className="here">{current.pipeline}</span>
            </>
          ) : (
            <span className="here">Pipelines</span>
          )}
        </nav>
        <div className="spacer" />
        <a className="btn small ghost" href="/openapi.json">
          API
        </a>
      </header>
      <main>
        {current.page === "pipelines" && <PipelinesPage />}
        {current.page === "pipeline" && (
          <PipelinePage pipeline={current.pipeline} view={current.view} />
        )}
        {current.page === "missing" && (
          <div className="state">
            <h2>No such page</h2>
            <Link to="/">Back to the pipelines</Link>
          </div>
        )}
      </main>
      <TokenPrompt />
    </>
  );
}
