// The headline question on the default configuration of scripts/run, in a real headless Chromium:
// the default local model of scripts/llm-models.json (llama.cpp with its chat template, greedy,
// fixed seed — as scripts/run starts it), the brain with the agent's tools on and its built-in
// agent, the edge in wrangler dev serving the web app. No scripted model: the numbers the page
// shows must be the ones SQL computes from the same sample, with the SQL shown ("How this was
// computed"), the chart drawn and the grounding check agreeing; and a question the data cannot
// answer answered as such. Screenshots go to e2e/artifacts/. Issue 16's acceptance; its runs are
// in BENCHMARKS.md ("Local models"). scripts/acceptance runs it alone.
import { describe, before, after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  ROOT, freePort, launchChromium, requireEnv, startBrain, startEdge, startProcess, stopProcess, tempDir, waitHealthy,
} from "./support.mjs";
import { MODELS, inventsAnswer, llmServerArgs, numbersIn, saysCannotAnswer, statesNumber } from "../scripts/eval.mjs";

const ARTIFACTS = join(ROOT, "e2e/artifacts");
const TOP_STORES = "Which 5 stores had the highest revenue in 2025? Show a chart.";
const TOP_STORES_SQL = "SELECT store_id, SUM(quantity * unit_price) AS revenue FROM transactions " +
  "WHERE ts >= '2025-01-01' AND ts < '2026-01-01' GROUP BY store_id ORDER BY revenue DESC LIMIT 5";
// The evaluation's weather question, with its pattern of invented answers.
const UNANSWERABLE = JSON.parse(readFileSync(join(ROOT, "scripts/eval-questions.json"), "utf8"))
  .questions.find((question) => question.id === "none-weather");
// A turn of the real model on two shared cores: up to four model calls.
const TURN_MS = 600_000;

describe("the default configuration in Chromium: a real local model answers from the data", { timeout: 1_800_000 }, () => {
  const brainBin = requireEnv("BRAIN_BIN");
  let llm, brain, edge, edgeUrl, browser, page;

  const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `default-model-${name}.png`), fullPage: true });

  /** A reply's text parts as the model wrote them (`data-raw` of each `message-text`). */
  async function rawText(reply) {
    return (await reply.getByTestId("message-text").evaluateAll((elements) => elements.map((element) => element.dataset.raw))).join("\n");
  }

  /** Asks in the page and waits until the reply is complete; returns the last assistant message. */
  async function ask(question) {
    const replies = page.getByTestId("message-assistant");
    const before = await replies.count();
    await page.getByLabel("Message", { exact: true }).fill(question);
    await page.getByLabel("Message", { exact: true }).press("Enter");
    await page.getByTestId("message-user").filter({ hasText: question }).waitFor();
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="message-assistant"]').length > n, before, { timeout: TURN_MS });
    // The AI SDK's status (`data-state`), not the words the page shows.
    await page.locator('[data-testid="chat-status"][data-state="ready"]').waitFor({ state: "attached", timeout: TURN_MS });
    return replies.last();
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const [llmPort, brainPort, edgePort] = await Promise.all([freePort(), freePort(), freePort()]);
    const ctx = 8192;
    const { python, args, model } = llmServerArgs(MODELS.default, { port: llmPort, ctx, seed: 42, temperature: 0 });
    llm = startProcess("llm", python, args, {});
    await waitHealthy(`http://127.0.0.1:${llmPort}/health`, llm, 180_000);
    brain = startBrain(brainBin, brainPort, tempDir("edgebrain-e2e-default-model-"), {
      BRAIN_LOCAL_LLM_URL: `http://127.0.0.1:${llmPort}/v1`,
      BRAIN_LOCAL_LLM_TOOLS: String(model.tools),
      BRAIN_LOCAL_LLM_CONTEXT_TOKENS: String(ctx),
      BRAIN_SAMPLE_TRANSACTIONS: "20000",
    });
    edge = await startEdge("default-model-edge", edgePort, { BRAIN_URL: `http://127.0.0.1:${brainPort}` });
    edgeUrl = `http://127.0.0.1:${edgePort}`;
    await Promise.all([
      waitHealthy(`http://127.0.0.1:${brainPort}/ready`, brain, 120_000),
      // wrangler dev runs scripts/build-edge first, which waits for any other build-edge.
      waitHealthy(`${edgeUrl}/health`, edge, 600_000),
    ]);
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
    page.setDefaultTimeout(60_000);
    assert.equal((await page.goto(edgeUrl)).status(), 200);
    await page.getByRole("button", { name: "New conversation" }).first().click();
    await page.getByTestId("thread").first().waitFor();
  });

  after(async () => {
    if (page && !page.isClosed()) await shot("last").catch(() => {});
    await browser?.close();
    await stopProcess(edge);
    await stopProcess(brain);
    await stopProcess(llm);
  });

  test("the top-5-stores question: numbers equal SQL's, and a chart is drawn", async () => {
    // The expected answer, from the brain's SQL endpoint through the edge (the sample is public).
    const issued = await fetch(`${edgeUrl}/api/v1/session`, { headers: { "x-session-id": "new" } });
    const session = { "x-session-id": issued.headers.get("x-session-id") };
    const response = await fetch(`${edgeUrl}/api/v1/queries/sql`, {
      method: "POST", headers: { ...session, "content-type": "application/json" }, body: JSON.stringify({ sql: TOP_STORES_SQL }),
    });
    assert.equal(response.status, 200);
    const expected = (await response.json()).rows;
    assert.equal(expected.length, 5);

    const reply = await ask(TOP_STORES);
    // The text as the model wrote it (`data-raw`): the page shows prose numbers in the reader's
    // locale, rounded.
    const text = await rawText(reply);
    const numbers = numbersIn(text);
    const missing = expected.flatMap((row) => [
      statesNumber(numbers, row.store_id) ? [] : [`store ${row.store_id}`],
      statesNumber(numbers, row.revenue) ? [] : [`revenue ${row.revenue}`],
    ].flat());
    assert.deepEqual(missing, [], `the answer states SQL's numbers: ${JSON.stringify(text)}`);
    const chart = reply.getByTestId("tool-chart").getByTestId("chart");
    await chart.locator("svg").first().waitFor({ timeout: 30_000 });
    assert.ok((await chart.locator("svg .mark-rect path, svg .mark-arc path, svg .mark-line path, svg .mark-symbol path").count()) >= 1, "vega drew marks");
    // "How this was computed": the SQL exactly as it ran, over the sample's transactions.
    const provenance = reply.getByTestId("provenance");
    await provenance.locator("summary").click();
    const sql = await provenance.getByTestId("provenance-sql").allTextContents();
    assert.ok(sql.length >= 1 && sql.every((text) => /\bSELECT\b/i.test(text)), `the SQL is shown: ${JSON.stringify(sql)}`);
    assert.ok(sql.some((text) => /\btransactions\b/.test(text)), `the SQL reads transactions: ${JSON.stringify(sql)}`);
    // The grounding check agrees: every number of this answer comes from the data.
    assert.equal(await reply.getByTestId("grounding").getAttribute("data-status"), "verified");
    await shot("top-stores");
  });

  test("a question the data cannot answer is answered as such", async () => {
    const reply = await ask(UNANSWERABLE.question);
    const text = await rawText(reply);
    assert.ok(saysCannotAnswer(text), `the answer says the data cannot answer: ${JSON.stringify(text)}`);
    // …and does not answer anyway ("it was sunny", then "the data cannot answer it").
    assert.ok(!inventsAnswer(UNANSWERABLE, text), `the answer invents no weather: ${JSON.stringify(text)}`);
    await shot("unanswerable");
  });
});
