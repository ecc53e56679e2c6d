import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// Served by the CMF server under /ui/ (docs/ui.md); `npm run dev` proxies the API to a server on
// :8080 so the page's origin stays the API base.
export default defineConfig({
  base: "/ui/",
  plugins: [react()],
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
