// The scenarios of run.mjs: each opens pages as a person would and checks what they show.
import assert from "node:assert/strict";

async function cardNames(page) {
  return page.locator("[data-testid=pipeline-card]").allInnerTexts();
}

async function footer(page) {
  return (await page.getByTestId("table-foot").innerText()).split("\n")[0];
}

async function cellsOf(page, column) {
  // The text of one column in the rendered rows, top to bottom.
  const headers = await page.locator(".grid-head .th").allInnerTexts();
  const index = headers.findIndex((h) => h.replace(/[↑↓]/g, "").trim() === column);
  assert.ok(index >= 0, `no column ${column} in ${headers}`);
  return page.locator("[data-testid=row]").evaluateAll(
    (rows, i) =>
      rows
        .map((r) => ({ top: Number(r.getAttribute("aria-rowindex")), text: r.children[i]?.textContent ?? "" }))
        .sort((a, b) => a.top - b.top)
        .map((r) => r.text),
    index,
  );
}

async function firstRowsReady(page) {
  await page.locator("[data-testid=row] [role=gridcell]").first().waitFor();
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
  "executions: columns are the stage's properties, sorted and filtered by the server": {
    schemes: ["light", "dark"],
    async run({ page, fixture, shot, scheme }) {
      const { pipeline, runs } = fixture.sweep;
      await page.goto(`/ui/p/${pipeline}/executions`);
      await firstRowsReady(page);
      const headers = (await page.locator(".grid-head .th").allInnerTexts()).map((h) => h.trim());
      for (const key of ["accuracy", "learning_rate", "max_depth", "optimizer", "run"]) {
        assert.ok(headers.includes(key), `${key} in ${headers}`);
      }
      assert.match(await footer(page), new RegExp(`of ${runs}$`));
      await shot("executions");
      if (scheme === "dark") return;
      await page.locator(".th", { hasText: /^run/ }).click();
      await page.waitForURL((url) => url.searchParams.get("sort") === "property:run");
      await page.waitForFunction(() => document.querySelector("[data-testid=row] [role=gridcell]:nth-child(4)") !== null);
      await page.waitForTimeout(300);
      let runsShown = await cellsOf(page, "run");
      assert.equal(runsShown[0], "0");
      await page.locator(".th", { hasText: /^run/ }).click();
      await page.waitForURL((url) => url.searchParams.get("sort") === "-property:run");
      await page.waitForFunction(
        (n) => [...document.querySelectorAll("[data-testid=row]")].some((r) => r.getAttribute("aria-rowindex") === "1" && r.textContent.includes(String(n))),
        runs - 1,
      );
      runsShown = await cellsOf(page, "run");
      assert.equal(runsShown[0], String(runs - 1));
      await page.reload();
      await firstRowsReady(page);
      assert.equal((await cellsOf(page, "run"))[0], String(runs - 1), "the sort survives a reload");
      await page.getByRole("searchbox", { name: "Filter executions" }).fill("rmsprop");
      await page.waitForURL((url) => url.searchParams.get("q") === "rmsprop");
      await page.getByText(`${runs / 3} matching`).waitFor();
      const optimizers = await cellsOf(page, "optimizer");
      assert.ok(optimizers.every((o) => o === "rmsprop"), String(optimizers));
    },
  },
  "executions: paging and the keyboard move through every row": {
    async run({ page, fixture }) {
      const { pipeline, runs } = fixture.sweep;
      await page.goto(`/ui/p/${pipeline}/executions`);
      await firstRowsReady(page);
      const before = await footer(page);
      assert.match(before, /^Rows 1–/);
      await page.getByRole("button", { name: "Next page" }).click();
      await page.waitForFunction((text) => !document.querySelector("[data-testid=table-foot]").innerText.startsWith(text), "Rows 1–");
      assert.match(await footer(page), /^Rows (1[0-9]|2[0-9])–/);
      await page.getByRole("button", { name: "First" }).click();
      await page.waitForFunction(() => document.querySelector("[data-testid=table-foot]").innerText.startsWith("Rows 1–"));
      const grid = page.getByTestId("grid");
      await grid.focus();
      await page.keyboard.press("End");
      await page.waitForURL((url) => url.searchParams.get("row") === String(runs - 1));
      await page.locator(`#row-${runs - 1}[aria-selected=true]`).waitFor();
      await page.keyboard.press("Home");
      await page.keyboard.press("ArrowDown");
      await page.keyboard.press("ArrowDown");
      await page.waitForURL((url) => url.searchParams.get("row") === "2");
      await page.keyboard.press("Enter");
      await page.getByTestId("execution-drawer").waitFor();
      await page.keyboard.press("Escape");
      await page.getByTestId("execution-drawer").waitFor({ state: "detached" });
    },
  },
  "executions: columns chosen and reordered stay in the URL": {
    async run({ page, fixture }) {
      const { pipeline } = fixture.sweep;
      await page.goto(`/ui/p/${pipeline}/executions`);
      await firstRowsReady(page);
      await page.getByRole("button", { name: /^Columns/ }).click();
      const chooser = page.getByTestId("columns");
      await chooser.getByRole("checkbox", { name: "optimizer" }).uncheck();
      await chooser.getByRole("button", { name: "Move run left" }).click();
      await chooser.getByRole("checkbox", { name: "Git_Repo" }).check();
      await page.waitForURL((url) => (url.searchParams.get("cols") ?? "").includes("Git_Repo"));
      const cols = new URL(page.url()).searchParams.get("cols").split(",");
      assert.ok(!cols.includes("optimizer"));
      assert.ok(cols.indexOf("run") < cols.indexOf("max_depth"), String(cols));
      await page.reload();
      await firstRowsReady(page);
      const headers = (await page.locator(".grid-head .th").allInnerTexts()).map((h) => h.trim());
      assert.deepEqual(headers.slice(3, 3 + cols.length), cols);
    },
  },
  "execution drawer: every property, git commits and the python environment": {
    async run({ page, fixture, shot }) {
      const pipeline = fixture.demo.pipeline;
      await page.goto(`/ui/p/${pipeline}/executions?stage=${encodeURIComponent(`${pipeline}/Train`)}`);
      await firstRowsReady(page);
      await page.locator("[data-testid=row]").first().click();
      const drawer = page.getByTestId("execution-drawer");
      await drawer.waitFor();
      assert.ok(new URL(page.url()).searchParams.get("exec"));
      await drawer.getByTestId("git").getByText("Start Commit").waitFor();
      const properties = await drawer.getByTestId("properties").innerText();
      for (const key of ["max_depth", "Execution_uuid", "Git_Start_Commit", "Python_Env"]) assert.ok(properties.includes(key), key);
      await drawer.getByText("Show the Python environment").click();
      await drawer.locator("pre.env").waitFor();
      assert.match(await drawer.locator("pre.env").innerText(), /\S/);
      await drawer.getByRole("link", { name: /model\.pkl/ }).waitFor();
      await shot("execution-drawer");
    },
  },
  "compare: up to ten side by side, differences only, numbers charted": {
    async run({ page, fixture, shot }) {
      const { pipeline } = fixture.sweep;
      await page.goto(`/ui/p/${pipeline}/executions`);
      await firstRowsReady(page);
      const grid = page.getByTestId("grid");
      await grid.focus();
      for (let i = 0; i < 4; i += 1) {
        await page.keyboard.press(" ");
        await page.keyboard.press("ArrowDown");
      }
      await page.waitForURL((url) => (url.searchParams.get("sel") ?? "").split(",").length === 4);
      await page.getByRole("button", { name: "Compare (4)" }).click();
      const compare = page.getByTestId("compare");
      await compare.getByTestId("compare-table").waitFor();
      const all = await compare.getByTestId("compare-row").count();
      assert.ok((await compare.getByTestId("chart").count()) >= 2, "numeric properties are charted");
      await compare.getByText("Differences only").click();
      await page.waitForURL((url) => url.searchParams.get("diff") === "1");
      await page.waitForFunction((n) => document.querySelectorAll("[data-testid=compare-row]").length < n, all);
      const keys = await compare.locator("[data-testid=compare-row] td.k").allInnerTexts();
      assert.ok(keys.includes("run") && !keys.includes("Git_Repo"), String(keys));
      await shot("compare");
    },
  },
  "artifacts: a tab per type, a drawer with producers and consumers, the label CSV": {
    async run({ page, fixture, shot }) {
      const pipeline = fixture.demo.pipeline;
      await page.goto(`/ui/p/${pipeline}/artifacts`);
      await page.locator("[role=tablist][aria-label='Artifact types'] [role=tab]").first().waitFor();
      const tabs = await page.locator("[role=tablist][aria-label='Artifact types'] [role=tab]").allInnerTexts();
      assert.match(tabs[0], /^Dataset/);
      assert.ok(tabs.some((t) => t.startsWith("Model")), String(tabs));
      await firstRowsReady(page);
      await shot("artifacts");
      await page.locator("[data-testid=row]", { hasText: "artifacts/data.xml" }).click();
      const drawer = page.getByTestId("artifact-drawer");
      await drawer.getByTestId("consumers").waitFor();
      assert.equal(await drawer.getByRole("link", { name: "Download" }).count(), 0, "no bytes held: no download");
      await drawer.getByRole("button", { name: "View labels" }).click();
      await page.waitForURL((url) => url.searchParams.get("view") === "labels");
      const labels = drawer.getByTestId("labels");
      await labels.locator("tbody tr").first().waitFor();
      assert.deepEqual(await labels.locator("thead th").allInnerTexts(), ["#", "id", "label"]);
      assert.equal(await labels.locator("tbody tr").count(), 2);
      await shot("labels");
      await drawer.getByRole("button", { name: "Details" }).click();
      await drawer.getByTestId("consumers").getByRole("link").first().click();
      await page.waitForURL((url) => url.pathname.endsWith("/executions") && url.searchParams.has("exec"));
      await page.getByTestId("execution-drawer").waitFor();
    },
  },
  "model card: the model, its executions, inputs and outputs": {
    async run({ page, fixture, shot }) {
      const pipeline = fixture.demo.pipeline;
      await page.goto(`/ui/p/${pipeline}/artifacts?type=Model`);
      await firstRowsReady(page);
      await page.locator("[data-testid=row]").first().click();
      const drawer = page.getByTestId("artifact-drawer");
      await drawer.getByTestId("producers").waitFor();
      await drawer.getByRole("button", { name: "Model card" }).click();
      const card = drawer.getByTestId("model-card");
      await card.getByText("RandomForestClassifier", { exact: true }).waitFor();
      await card.getByRole("link", { name: /^\d+ · / }).first().waitFor();
      const text = await card.innerText();
      assert.match(text, /Dataset/);
      assert.match(text, /Metrics/);
      await shot("model-card");
    },
  },
  "tensorboard says it is not configured and lists the uploaded logs": {
    async run({ page, fixture, shot }) {
      await page.goto(`/ui/p/${fixture.demo.pipeline}/tensorboard`);
      await page.getByText("TensorBoard is not configured").waitFor();
      await shot("tensorboard");
    },
  },
  "an unknown pipeline says so": {
    async run({ page, expectErrors }) {
      expectErrors(/status of 404/);
      await page.goto("/ui/p/No-Such-Pipeline/executions");
      await page.getByText("No pipeline named “No-Such-Pipeline”").waitFor();
    },
  },
};
