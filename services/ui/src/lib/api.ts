// The server's API, on the page's own origin. Errors arrive as problem+json; a failed fetch
// (the server is down, the network refused) becomes an ApiError of kind "offline".
import type {
  ArtifactDetail,
  Comparison,
  Execution,
  ExecutionDetail,
  LabelPage,
  ModelCard,
  Page,
  Artifact,
  PipelineCard,
  PipelineOverview,
  StageColumns,
  TensorBoardAnswer,
} from "./types";
import { authHeaders, currentToken, tokenNeeded } from "../auth/token";

export const V1 = "/api/native/v1";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly kind: "offline" | "problem" | "http",
    readonly status: number = 0,
    readonly code: string = "",
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

declare global {
  interface Window {
    __cmfEarly?: Record<string, Promise<Response> | undefined>;
    __cmfEarlyData?: Record<string, unknown>;
    __cmfEarlyReady?: Promise<unknown>;
  }
}

// A request index.html started before the app loaded, for this very URL (taken once).
function takeEarly(path: string): Promise<Response> | undefined {
  const early = typeof window === "undefined" ? undefined : window.__cmfEarly;
  const found = early?.[path];
  if (early && found) delete early[path];
  return found;
}

// The answer to such a request when it has already arrived (index.html parses each successful
// one as it comes): a query's initialData, so the app's first render shows it instead of a
// loading state and a render more. Taken once, with the request.
export function earlyAnswer<T>(path: string): T | undefined {
  const data = typeof window === "undefined" ? undefined : window.__cmfEarlyData;
  if (!data || !(path in data)) return undefined;
  const answer = data[path] as T;
  delete data[path];
  takeEarly(path);
  return answer;
}

async function request(path: string, signal?: AbortSignal): Promise<Response> {
  let answer: Response;
  const sent = currentToken();
  try {
    answer = await (takeEarly(path) ??
      fetch(path, { signal, headers: { Accept: "application/json", ...authHeaders() } }));
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError("The server does not answer.", "offline");
  }
  if (answer.ok) return answer;
  if (answer.status === 401) {
    // Auth is on (src/auth): ask for a token, then send the request again with it.
    const body = (await answer.json().catch(() => null)) as { detail?: unknown } | null;
    await tokenNeeded(sent, typeof body?.detail === "string" ? body.detail : "", signal);
    return request(path, signal);
  }
  const type = answer.headers.get("content-type") ?? "";
  if (type.includes("json")) {
    const body = (await answer.json().catch(() => null)) as {
      detail?: unknown;
      code?: string;
    } | null;
    const detail = typeof body?.detail === "string" ? body.detail : `HTTP ${answer.status}`;
    throw new ApiError(detail, "problem", answer.status, body?.code ?? "");
  }
  if (answer.status === 502 || answer.status === 503 || answer.status === 504) {
    throw new ApiError("The server is unavailable.", "offline", answer.status);
  }
  throw new ApiError(`HTTP ${answer.status}`, "http", answer.status);
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const answer = await request(path, signal);
  return (await answer.json()) as T;
}

export async function getText(path: string, signal?: AbortSignal): Promise<string> {
  const answer = await request(path, signal);
  return answer.text();
}

const views = `${V1}/views`;

type ExecutionsPage = { pipeline: string; stage: string; q: string; sort: string; offset: number; limit: number };

// The URLs index.html asks for early (it builds them the same way).
export const paths = {
  pipelines: (q: string) => `${views}/pipelines${query({ q, limit: 500 })}`,
  pipeline: (name: string) => `${views}/pipeline${query({ name })}`,
  stageColumns: (pipeline: string, stage: string) => `${views}/stage-columns${query({ pipeline, stage })}`,
  executions: (p: ExecutionsPage) => `${views}/executions${query(p)}`,
};

export const api = {
  pipelines: (q: string, signal?: AbortSignal) => getJson<Page<PipelineCard>>(paths.pipelines(q), signal),
  pipeline: (name: string, signal?: AbortSignal) => getJson<PipelineOverview>(paths.pipeline(name), signal),
  stageColumns: (pipeline: string, stage: string, signal?: AbortSignal) =>
    getJson<StageColumns>(paths.stageColumns(pipeline, stage), signal),
  executions: (p: ExecutionsPage, signal?: AbortSignal) => getJson<Page<Execution>>(paths.executions(p), signal),
  execution: (id: number, signal?: AbortSignal) =>
    getJson<ExecutionDetail>(`${V1}/executions/${id}`, signal),
  pythonEnv: (id: number, signal?: AbortSignal) =>
    getText(`${views}/executions/${id}/python-env`, signal),
  compare: (ids: number[], signal?: AbortSignal) =>
    getJson<Comparison>(`${views}/compare${query({ ids: ids.join(",") })}`, signal),
  artifacts: (
    p: { pipeline: string; type: string; q: string; sort: string; offset: number; limit: number },
    signal?: AbortSignal,
  ) => getJson<Page<Artifact>>(`${views}/artifacts${query(p)}`, signal),
  artifact: (id: number, signal?: AbortSignal) =>
    getJson<ArtifactDetail>(`${V1}/artifacts/${id}${query({ events: 200 })}`, signal),
  labels: (id: number, offset: number, limit: number, signal?: AbortSignal) =>
    getJson<LabelPage>(`${views}/labels/${id}${query({ offset, limit })}`, signal),
  modelCard: (id: number, signal?: AbortSignal) =>
    getJson<ModelCard>(`${views}/model-card/${id}`, signal),
  tensorboard: (pipeline: string, signal?: AbortSignal) =>
    getJson<TensorBoardAnswer>(`${views}/tensorboard${query({ pipeline })}`, signal),
};

export function downloadUrl(pipeline: string, artifactName: string): string {
  return `/artifact_pull${query({ pipeline_name: pipeline, artifact_name: artifactName })}`;
}
