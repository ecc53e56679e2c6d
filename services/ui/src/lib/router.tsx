// A small router over the History API: the whole view state lives in the URL (path and
// query), so a link can be shared and Back works. Paths are relative to /ui/.
import { useCallback, useSyncExternalStore } from "react";

export const BASE = "/ui";
const listeners = new Set<() => void>();

function notify(): void {
  for (const listener of listeners) listener();
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

// A replacing navigation (a table's active row, its filter, its sort…) takes effect at once for
// the app, and reaches the browser's history at most every REPLACE_MS: history.replaceState
// costs milliseconds of the frame it runs in, and paging with the keyboard replaces the URL on
// every key. A pushing navigation, leaving the page and Back write (or drop) it first.
const REPLACE_MS = 120;
let pending: string | null = null;
let pendingTimer = 0;

function flushReplace(): void {
  window.clearTimeout(pendingTimer);
  pendingTimer = 0;
  if (pending === null) return;
  const href = pending;
  pending = null;
  if (href !== window.location.pathname + window.location.search) window.history.replaceState(null, "", href);
}

if (typeof window !== "undefined") {
  window.addEventListener("pagehide", flushReplace);
  window.addEventListener("popstate", () => {
    window.clearTimeout(pendingTimer);
    pendingTimer = 0;
    pending = null; // the browser moved to another entry; what was pending was the old one's
    notify();
  });
}

function snapshot(): string {
  return pending ?? window.location.pathname + window.location.search;
}

export interface Location {
  path: string; // without the /ui prefix, always starting with "/"
  params: URLSearchParams;
}

export function parseLocation(href: string): Location {
  const [pathname = "/", search = ""] = href.split("?", 2);
  let path = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
  if (!path.startsWith("/")) path = `/${path}`;
  return { path, params: new URLSearchParams(search) };
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const href = to.startsWith(BASE) ? to : `${BASE}${to}`;
  if (href === snapshot()) return;
  if (options.replace) {
    pending = href;
    if (!pendingTimer) pendingTimer = window.setTimeout(flushReplace, REPLACE_MS);
  } else {
    flushReplace();
    window.history.pushState(null, "", href);
  }
  notify();
}

export function useLocation(): Location {
  const href = useSyncExternalStore(subscribe, snapshot, () => "/ui/");
  return parseLocation(href);
}

// The current query with some parameters changed (null or "" removes one).
export function withParams(
  params: URLSearchParams,
  changes: Record<string, string | number | null | undefined>,
): string {
  const next = new URLSearchParams(params);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null || value === undefined || value === "") next.delete(key);
    else next.set(key, String(value));
  }
  const text = next.toString();
  return text ? `?${text}` : "";
}

export function useParams(): [URLSearchParams, (changes: Record<string, string | number | null | undefined>, replace?: boolean) => void] {
  const location = useLocation();
  const set = useCallback(
    (changes: Record<string, string | number | null | undefined>, replace = false) => {
      const current = parseLocation(snapshot());
      navigate(current.path + withParams(current.params, changes), { replace });
    },
    [],
  );
  return [location.params, set];
}

export function pipelinePath(pipeline: string, view: string): string {
  return `/p/${encodeURIComponent(pipeline)}/${view}`;
}

export function Link(props: {
  to: string;
  className?: string;
  children: React.ReactNode;
  title?: string;
  onClick?: () => void;
}): React.ReactElement {
  const href = props.to.startsWith(BASE) ? props.to : `${BASE}${props.to}`;
  return (
    <a
      href={href}
      className={props.className}
      title={props.title}
      onClick={(event) => {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        props.onClick?.();
        navigate(href);
      }}
    >
      {props.children}
    </a>
  );
}
