import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { ApiError } from "./lib/api";
import "./styles.css";

const client = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 30_000,
      refetchOnWindowFocus: false,
      // A 4xx will not change by asking again; an unreachable server might.
      retry: (count, error) => error instanceof ApiError && error.kind === "offline" && count < 1,
    },
  },
});

// The first render waits for the answers index.html asked for early (they are parsed as they
// arrive; lib/api.ts, earlyAnswer), for at most EARLY_WAIT_MS: it then shows the view's data at
// once, with no loading state painted and replaced a moment later (docs/ui.md, "Fast first rows").
const EARLY_WAIT_MS = 500;

function start() {
  const root = document.getElementById("root");
  if (!root) return;
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={client}>
        <App />
      </QueryClientProvider>
    </StrictMode>,
  );
}

const early = window.__cmfEarlyReady;
if (early) {
  void Promise.race([early, new Promise((resolve) => setTimeout(resolve, EARLY_WAIT_MS))]).then(start);
} else {
  start();
}
