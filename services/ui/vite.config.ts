import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

// Served by the CMF server under /ui/ (docs/ui.md); `npm run dev` proxies the API to a server on
// :8080 so the page's origin stays the API base.
//
// The code is React's API (React 18's hooks, TanStack Query and Table's React adapters); the
// runtime under it is Preact's compatibility layer (preact/compat), a tenth of react-dom's size:
// the executions table's first rows wait for the app's script to be parsed and run, and on this
// two-core machine that is most of the wait (docs/ui.md, "Fast first rows").
// V8's explicit compile hint: every function of the entry chunk is compiled eagerly, on a
// background thread while the script streams in, instead of lazily on the main thread the first
// time it runs (the first render calls most of them). Ignored by other engines.
const COMPILE_HINT = "//# allFunctionsCalledOnLoad\n";

function compileHints(): Plugin {
  return {
    name: "cmf:compile-hints",
    enforce: "post",
    // After the minifier (which drops comments) and Vite's own last edits of the chunk; the
    // chunk's name keeps the hash of what it was built from.
    generateBundle(_options, bundle) {
      for (const chunk of Object.values(bundle)) {
        if (chunk.type === "chunk" && chunk.isEntry) chunk.code = COMPILE_HINT + chunk.code;
      }
    },
  };
}

export default defineConfig({
  base: "/ui/",
  plugins: [compileHints()],
  esbuild: { jsx: "automatic", jsxImportSource: "preact/compat" },
  resolve: {
    alias: [
      { find: /^react-dom\/client$/, replacement: "preact/compat/client" },
      { find: /^react-dom$/, replacement: "preact/compat" },
      { find: /^react\/jsx-runtime$/, replacement: "preact/compat/jsx-runtime" },
      { find: /^react$/, replacement: "preact/compat" },
    ],
  },
  build: {
    outDir: "dist",
    assetsDir: "assets",
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:8080",
      "/artifact_pull": "http://127.0.0.1:8080",
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
