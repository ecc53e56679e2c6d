import { useState } from "react";
import { ApiError } from "../lib/api";

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <div className="state" role="status" aria-live="polite">
      <div className="spinner" />
      <span>{label}</span>
    </div>
  );
}

export function CopyLine({ text }: { text: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div className="copy">
      <code>{text}</code>
      <button
        className="btn small"
        type="button"
        onClick={() => {
          void navigator.clipboard?.writeText(text).then(
            () => setCopied(true),
            () => setCopied(false),
          );
        }}
      >
        {copied ? "Copied" : "Copy"}
      </button>
    </div>
  );
}

export function serverUrl(): string {
  return window.location.origin;
}

export function initLine(): string {
  return `cmf init local --path ./cmf-artifacts --git-remote-url <your git remote> --cmf-server-url ${serverUrl()}`;
}

export function NothingPushed({ what = "No pipeline has been pushed to this server yet." }: { what?: string }) {
  return (
    <div className="state" data-testid="empty">
      <div className="icon">⇪</div>
      <h2>Nothing here yet</h2>
      <p>{what} Point the cmf client at this server, then push:</p>
      <CopyLine text={initLine()} />
      <CopyLine text="cmf metadata push -p <pipeline>" />
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: React.ReactNode }) {
  return (
    <div className="state" data-testid="empty">
      <div className="icon">∅</div>
      <h2>{title}</h2>
      {children}
    </div>
  );
}

export function ErrorState({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  let title = "Something went wrong";
  let detail = error instanceof Error ? error.message : String(error);
  if (error instanceof ApiError && error.kind === "offline") {
    title = "The server does not answer";
    detail = `Nothing answered at ${serverUrl()}. Is cmf-server running? Start it with \`make run\` (or \`cmf-server up\`) and retry.`;
  } else if (error instanceof ApiError && error.status === 404) {
    title = "Not found";
  }
  return (
    <div className="state error" role="alert" data-testid="error">
      <div className="icon">!</div>
      <h2>{title}</h2>
      <p>{detail}</p>
      {onRetry && (
        <button className="btn" type="button" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}
