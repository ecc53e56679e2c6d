// The token prompt (src/auth), against `cmf-server up --auth`: run by
// tests/integration/test_auth_ui.py with CMF_UI_SCENARIOS=./auth.mjs. The fixture holds a
// read token, a well-formed token the server never made, and the pipeline pushed.
import assert from "node:assert/strict";

export const scenarios = {
  "the UI asks for a token, refuses a wrong one and remembers a good one": {
    async run({ page, fixture, expectErrors, shot }) {
      expectErrors(/status of 401/);
      await page.goto("/ui/");
      const prompt = page.getByTestId("token-prompt");
      await prompt.waitFor();
      assert.equal(await page.locator("[data-testid=pipeline-card]").count(), 0);
      await shot("token-prompt");
      const field = page.getByLabel("Token", { exact: true });
      await field.fill(fixture.wrong);
      await page.getByRole("button", { name: "Continue" }).click();
      await page.getByRole("alert").filter({ hasText: "That token was refused: unknown token" }).waitFor();
      await field.fill(fixture.read);
      await page.getByLabel("Remember it in this browser").check();
      await page.getByRole("button", { name: "Continue" }).click();
      await page.locator("[data-testid=pipeline-card]").first().waitFor();
      assert.equal(await prompt.count(), 0);
      const cards = await page.locator("[data-testid=pipeline-card]").allInnerTexts();
      assert.ok(cards.some((c) => c.includes(fixture.pipeline)), cards.join(" | "));
      // Kept in this browser: a reload asks nothing and sends it from the first request on.
      const sent = [];
      page.on("request", (r) => {
        if (r.url().includes("/api/native/v1/")) sent.push(r.headers()["authorization"] ?? "");
      });
      await page.reload();
      await page.locator("[data-testid=pipeline-card]").first().waitFor();
      assert.equal(await prompt.count(), 0);
      assert.ok(sent.length > 0 && sent.every((h) => h === `Bearer ${fixture.read}`), sent.join(","));
    },
  },
};
