// Debian's Chromium as every browser run of this repository launches it: headless, no GPU,
// a fresh profile, and nothing of its own on the network (no QUIC, no background requests, no
// component updates, no sync). One copy for the UI's end-to-end tests (e2e/run.mjs) and the
// benchmarks (bench/ui_browser.mjs, bench/explorer_browser.mjs); playwright-core resolves from
// services/ui's node_modules, whoever imports this.
import { chromium } from "playwright-core";

export const CHROMIUM_PATH = process.env.CHROMIUM ?? "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
}
