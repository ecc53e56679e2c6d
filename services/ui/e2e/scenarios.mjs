// The scenarios of run.mjs: each opens pages as a person would and checks what they show.
import assert from "node:assert/strict";

async function cardNames(page) {
  return page.locator("[data-testid=pipeline-card]").allInnerTexts();
}

export const scenarios = {
  "root redirects to the pipelines page": {
    async run({ page }) {
      const answer = await page.goto("/");
      assert.equal(new URL(page.url()).pathname, "/ui/");
      assert.equal(answer.status(), 200);
      await page.locator("[data-testid=pipeline-card]").first().waitFor();
    },
  },
  "pipelines show a card each, the last pushed first": {
    schemes: ["light", "dark"],
    async run({ page, fixture, shot }) {
      await page.goto("/ui/");
      await page.locator("[data-testid=pipeline-card]").first().waitFor();
      const names = (await cardNames(page)).map((t) => t.trim().split("\n").slice(-1)[0]);
      assert.deepEqual(names, fixture.newest_first);
      const first = page.locator(".card").first();
      await assert.doesNotReject(first.getByText("executions").waitFor());
      await shot("pipelines");
    },
  },
  "pipelines search by name and keep it in the URL": {
    async run({ page, fixture }) {
      await page.goto("/ui/");
      await page.locator("[data-testid=pipeline-card]").first().waitFor();
      const wanted = fixture.newest_first[1];
      await page.getByRole("searchbox", { name: "Search pipelines by name" }).fill(wanted.slice(0, 4).toLowerCase());
      await page.waitForURL((url) => url.searchParams.get("q") === wanted.slice(0, 4).toLowerCase());
      await page.waitForFunction(
        (n) => document.querySelectorAll("[data-testid=pipeline-card]").length === n,
        1,
      );
      await page.reload();
      await page.locator("[data-testid=pipeline-card]").first().waitFor();
      assert.equal((await cardNames(page)).length, 1);
      await page.getByRole("searchbox").fill("no-such-pipeline");
      await page.getByText("No pipeline name holds").waitFor();
    },
  },
  "nothing pushed yet shows the cmf init line": {
    async run({ page, base, shot }) {
      await page.route("**/api/native/v1/views/pipelines*", (route) =>
        route.fulfill({ json: { items: [], total: 0, offset: 0 } }),
      );
      await page.goto("/ui/");
      await page.getByText("Nothing here yet").waitFor();
      await page.getByText(`--cmf-server-url ${base}`).waitFor();
      await shot("empty");
    },
  },
  "a server that does not answer says so": {
    async run({ page, expectErrors, shot }) {
      expectErrors(/Failed to load resource/, /ERR_FAILED|ERR_CONNECTION_REFUSED/);
      await page.route("**/api/native/v1/**", (route) => route.abort("connectionrefused"));
      await page.goto("/ui/");
      await page.getByText("The server does not answer").waitFor();
      await shot("server-down");
    },
  },
  "a deep link inside /ui/ loads the app, a missing asset is a 404": {
    async run({ page }) {
      const answer = await page.goto("/ui/no/such/view");
      assert.equal(answer.status(), 200);
      await page.getByText("No such page").waitFor();
      const asset = await page.request.get("/ui/assets/missing.js");
      assert.equal(asset.status(), 404);
      const index = await page.request.get("/ui/");
      assert.equal(index.headers()["cache-control"], "no-cache");
      const icon = await page.request.get("/ui/favicon.svg");
      assert.equal(icon.status(), 200);
    },
  },
};
