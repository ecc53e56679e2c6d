// The token the UI sends as `Authorization: Bearer` once the server asked for one (a 401:
// auth is on, docs/access.md). It is kept for the tab (sessionStorage), or for this browser
// (localStorage) when the user asks; the prompt (TokenPrompt.tsx) collects it.
export const TOKEN_KEY = "cmf.token";

export type TokenRequest = { reason: "missing" | "refused"; detail: string } | null;

type Listener = (request: TokenRequest) => void;

function stored(): string | null {
  try {
    return window.sessionStorage.getItem(TOKEN_KEY) ?? window.localStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: the token lives as long as the page
  }
}

let token: string | null = typeof window === "undefined" ? null : stored();
let request: TokenRequest = null;
let waiters: Array<() => void> = [];
const listeners = new Set<Listener>();

export function currentToken(): string | null {
  return token;
}

// The header a request to the API carries (none before a token was given).
export function authHeaders(): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// Called on a 401 that `sent` (the token the request carried, or null) caused: resolves once
// the user has given a token other than the refused one. Requests refused together wait for one
// prompt.
export function tokenNeeded(sent: string | null, detail: string, signal?: AbortSignal): Promise<void> {
  if (token !== null && token !== sent) return Promise.resolve(); // a new one came meanwhile
  if (request === null) {
    request = { reason: sent === null ? "missing" : "refused", detail };
    listeners.forEach((listener) => listener(request));
  }
  return new Promise<void>((resolve, reject) => {
    const done = () => resolve();
    waiters.push(done);
    signal?.addEventListener("abort", () => {
      waiters = waiters.filter((w) => w !== done);
      reject(new DOMException("aborted", "AbortError"));
    });
  });
}

export function provideToken(value: string, remember: boolean): void {
  token = value.trim();
  try {
    window.sessionStorage.removeItem(TOKEN_KEY);
    window.localStorage.removeItem(TOKEN_KEY);
    (remember ? window.localStorage : window.sessionStorage).setItem(TOKEN_KEY, token);
  } catch {
    // storage disabled: kept in memory only
  }
  request = null;
  listeners.forEach((listener) => listener(null));
  const waiting = waiters;
  waiters = [];
  waiting.forEach((resolve) => resolve());
}

export function forgetToken(): void {
  token = null;
  try {
    window.sessionStorage.removeItem(TOKEN_KEY);
    window.localStorage.removeItem(TOKEN_KEY);
  } catch {
    // nothing kept
  }
}

export function subscribe(listener: Listener): () => void {
  listeners.add(listener);
  listener(request);
  return () => listeners.delete(listener);
}
