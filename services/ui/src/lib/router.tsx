// A small router over the History API: the whole view state lives in the URL (path and
// query), so a link can be shared and Back works. Paths are relative to /ui/.
import { useCallback, useSyncExternalStore } from "react";

export const BASE = "/ui";
const listeners = new Set<() => void>();

function notify(): void {
  for (const listener of listeners) listener();
}

if (typeof window !== "undefined") window.addEventListener("popstate", notify);

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function snapshot(): string {
  return window.location.pathname + window.location.search;
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
  if (options.replace) window.history.replaceState(null, "", href);
  else window.history.pushState(null, "", href);
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
