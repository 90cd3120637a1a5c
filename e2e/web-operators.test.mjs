// The operators' screens of the web app in a real headless Chromium (issue 20): the edge (wrangler
// dev, with the web app's assets) signs users in at a real OpenID provider (scripts/oidc-provider.mjs
// on loopback; logins named `operator…` get the `edgebrain:operator` role), the brain behind it runs
// the built-in agents plus a support agent that hands conversations to a person, on the scripted
// model (e2e/scripted-llm.mjs). An anonymous visitor's conversation is escalated and the visitor
// sees no operators' tab; an operator signs in through the provider's pages, sees the queue, opens
// their own escalated thread, resolves the visitor's escalation with a note, and sees a dataset
// they uploaded and queried in the memory overview. Tests wait on `data-state`/`data-testid`,
// never on sleeps.
import { describe, before, after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertAccessible } from "./axe.mjs";
import { ROOT, freePort, launchChromium, newWatchedPage, requireEnv, startBrain, startEdge, startOidcProvider, stopProcess, tempDir, waitHealthy } from "./support.mjs";
import {
  ESCALATION_ANSWER,
  ESCALATION_QUESTION,
  ESCALATION_REASON,
  SUPPORT_AGENT,
  scriptedLlmConfig,
  startScriptedLlm,
  supportAgentsToml,
} from "./scripted-llm.mjs";

const ARTIFACTS = join(ROOT, "e2e/artifacts");
const CLIENT_ID = "edgebrain-e2e-operators";
const CLIENT_SECRET = "edgebrain-e2e-operators-secret-0123456789";
const OPERATOR = "operator-olga";
const NOTE = "Called the customer back; a new blender is on its way.";

describe("the operators' screens in Chromium, signed in through the edge", { timeout: 300_000 }, () => {
  let provider, llm, brain, edge, edgeUrl, browser;
  /** The anonymous visitor's page and the operator's. */
  let visitor, operator;
  const consoleErrors = [];

  /** A page in a fresh browser context whose app pages must log no error (the provider's are not ours). */
  const newPage = () => newWatchedPage(browser, edgeUrl, consoleErrors);

  /** Starts a conversation with `agent` and asks ESCALATION_QUESTION; returns the thread id. */
  async function escalate(page, agent) {
    await page.getByLabel("Agent for a new conversation").first().selectOption(agent);
    await page.getByRole("button", { name: "New conversation" }).first().click();
    await page.getByTestId("thread-agent").filter({ hasText: `Agent: ${agent}` }).waitFor();
    await page.getByLabel("Message", { exact: true }).fill(ESCALATION_QUESTION);
    await page.getByLabel("Message", { exact: true }).press("Enter");
    await page.getByTestId("message-assistant").getByTestId("message-text").filter({ hasText: ESCALATION_ANSWER }).waitFor({ timeout: 60_000 });
    await page.locator('[data-testid="chat-status"][data-state="ready"]').waitFor({ state: "attached" });
    return new URLSearchParams((await page.evaluate(() => location.hash)).slice(1)).get("thread");
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const brainBin = requireEnv("BRAIN_BIN");
    llm = await startScriptedLlm();
    const dataDir = tempDir("edgebrain-e2e-operators-");
    const configFile = join(dataDir, "llm.toml");
    writeFileSync(configFile, scriptedLlmConfig(llm.url, "scripted-agent"));
    const agentsFile = join(dataDir, "agents.toml");
    writeFileSync(agentsFile, supportAgentsToml());
    const [brainPort, edgePort] = await Promise.all([freePort(), freePort()]);
    edgeUrl = `http://127.0.0.1:${edgePort}`;
    provider = await startOidcProvider({
      clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${edgeUrl}/auth/callback`] }],
    });
    // The default diagnostics setting (operators only), as users get it.
    brain = startBrain(brainBin, brainPort, dataDir, {
      BRAIN_LLM_CONFIG: configFile,
      BRAIN_AGENTS_CONFIG: agentsFile,
      BRAIN_SAMPLE_TRANSACTIONS: "500",
      BRAIN_DIAG: null,
    });
    edge = await startEdge("operators-edge", edgePort, {
      BRAIN_URL: `http://127.0.0.1:${brainPort}`,
      OIDC_ISSUER: provider.issuer,
      OIDC_CLIENT_ID: CLIENT_ID,
      OIDC_CLIENT_SECRET: CLIENT_SECRET,
      // The provider puts `edgebrain:operator` in the `roles` claim.
      OIDC_SCOPE_CLAIMS: "roles",
    });
    await Promise.all([
      waitHealthy(`http://127.0.0.1:${brainPort}/ready`, brain, 60_000),
      waitHealthy(`${edgeUrl}/health`, edge, 120_000),
    ]);
    browser = await launchChromium();
  });

  after(async () => {
    for (const [name, page] of [["visitor", visitor], ["operator", operator]]) {
      if (page && !page.isClosed()) await page.screenshot({ path: join(ARTIFACTS, `operators-${name}-last.png`) }).catch(() => {});
    }
    await browser?.close();
    await Promise.all([stopProcess(edge), stopProcess(brain), stopProcess(provider?.proc)]);
    await llm?.close();
  });

  test("an anonymous visitor's conversation with the support agent is escalated; the visitor sees no operators' tab", async () => {
    visitor = await newPage();
    await visitor.goto(edgeUrl);
    await visitor.getByTestId("identity").filter({ hasText: "anonymous (edge session)" }).waitFor();
    await escalate(visitor, SUPPORT_AGENT);
    await visitor.getByTestId("tool-escalate_to_human").waitFor();
    assert.deepEqual(await visitor.getByRole("tab").allTextContents(), ["Chat", "Documents", "Datasets", "Query", "Usage"]);
    assert.equal((await visitor.request.get(`${edgeUrl}/api/v1/escalations`)).status(), 403);
  });

  test("an operator signs in, opens their own escalated thread and resolves the visitor's with a note", async () => {
    operator = await newPage();
    await operator.goto(edgeUrl);
    await operator.getByTestId("identity").filter({ hasText: "anonymous (edge session)" }).waitFor();
    assert.equal(await operator.getByRole("tab", { name: "Operators" }).count(), 0, "not before signing in");
    // The provider's own pages: any login, then consent.
    await operator.getByRole("link", { name: "Sign in" }).click();
    await operator.locator('input[name="login"]').fill(OPERATOR);
    await operator.locator('input[name="password"]').fill("any password");
    await operator.locator('button[type="submit"]').click();
    await operator.locator('button[type="submit"]').click(); // consent: "Continue"
    await operator.waitForURL((url) => url.origin === edgeUrl);
    await operator.getByTestId("identity").filter({ hasText: `signed in as User ${OPERATOR}` }).waitFor();

    // The operator's own conversation is escalated too (so there is a thread they may open).
    const ownThread = await escalate(operator, SUPPORT_AGENT);

    await operator.getByRole("tab", { name: "Operators" }).click();
    const queue = operator.locator('[data-testid="escalations"][data-state="ready"]');
    await queue.waitFor();
    const items = queue.getByTestId("escalation");
    assert.equal(await items.count(), 2);
    const api = (await (await operator.request.get(`${edgeUrl}/api/v1/escalations?status=open`)).json()).escalations;
    assert.deepEqual(await items.evaluateAll((elements) => elements.map((element) => element.dataset.escalationId)), api.map((e) => e.id));
    const own = items.filter({ has: operator.getByRole("button", { name: "Open the thread" }) });
    const theirs = items.filter({ hasNot: operator.getByRole("button", { name: "Open the thread" }) });
    assert.equal(await own.count(), 1);
    assert.equal(await theirs.count(), 1);
    assert.match(await theirs.textContent(), new RegExp(ESCALATION_REASON.replace(".", "\\.")));
    assert.match(await theirs.textContent(), /high urgency · agent support-desk · session:/);
    await assertAccessible(operator, "the operators' view");
    await operator.screenshot({ path: join(ARTIFACTS, "web-operators.png"), fullPage: true });

    // The visitor's conversation is theirs, yet the operator reads it here (read-only).
    await theirs.getByRole("button", { name: "Read the conversation" }).click();
    const transcript = theirs.locator('[data-testid="escalation-transcript"][data-state="ready"]');
    await transcript.getByTestId("transcript-user").filter({ hasText: ESCALATION_QUESTION }).waitFor();
    assert.equal(await transcript.getByTestId("transcript-assistant").count(), 1);
    await assertAccessible(operator, "an escalated conversation read by an operator");
    // For the README (docs/screenshots, like e2e/web.test.mjs's): the operators' view.
    await operator.screenshot({ path: join(process.env.EDGEBRAIN_SCREENSHOTS_DIR ?? join(ROOT, "docs/screenshots"), "desktop-operators.png") });

    // Open the thread: the chat shows the escalated conversation.
    await own.getByRole("button", { name: "Open the thread" }).click();
    await operator.getByTestId("message-user").filter({ hasText: ESCALATION_QUESTION }).waitFor();
    assert.equal(new URLSearchParams((await operator.evaluate(() => location.hash)).slice(1)).get("thread"), ownThread);
    assert.equal(await operator.getByRole("tab", { name: "Chat" }).getAttribute("aria-selected"), "true");

    // Resolve the visitor's with a note: it leaves the open queue, resolved by this operator.
    await operator.getByRole("tab", { name: "Operators" }).click();
    const visitorsId = await queue.getByTestId("escalation").filter({ hasNot: operator.getByRole("button", { name: "Open the thread" }) }).getAttribute("data-escalation-id");
    const item = operator.locator(`[data-testid="escalation"][data-escalation-id="${visitorsId}"]`);
    await item.getByLabel("Note").fill(NOTE);
    await item.getByRole("button", { name: "Resolve" }).click();
    await item.waitFor({ state: "detached" });
    assert.equal(await queue.getByTestId("escalation").count(), 1);
    const resolved = (await (await operator.request.get(`${edgeUrl}/api/v1/escalations?status=resolved`)).json()).escalations;
    assert.deepEqual(resolved.map((e) => [e.id, e.status, e.resolution, e.resolved_by]), [[visitorsId, "resolved", NOTE, `user:${OPERATOR}`]]);
    // The resolved view shows the note.
    await operator.getByLabel("Show").selectOption("resolved");
    await operator.locator(`[data-testid="escalation"][data-escalation-id="${visitorsId}"]`).getByTestId("escalation-resolution").filter({ hasText: NOTE }).waitFor();
  });

  test("the memory overview shows a dataset the operator uploaded and queried", async () => {
    const overview = operator.locator('[data-testid="memory"][data-state="ready"]');
    await overview.waitFor();
    assert.equal(await overview.getByTestId("memory-frame").filter({ hasText: "blenders" }).count(), 0);
    // From the app's own page (same origin, the operator's cookies): upload a dataset, query it.
    const statuses = await operator.evaluate(async () => {
      const upload = await fetch("/api/v1/datasets?name=blenders", {
        method: "POST",
        headers: { "content-type": "text/csv" },
        body: "model,watts\nB100,600\nB200,900\n",
      });
      const query = await fetch("/api/v1/queries/sql", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ sql: "SELECT MAX(watts) AS watts FROM blenders" }),
      });
      return [upload.status, query.status];
    });
    assert.deepEqual(statuses, [201, 200]);
    const blenders = (await (await operator.request.get(`${edgeUrl}/api/v1/datasets`)).json()).datasets.find((d) => d.name === "blenders");
    const stats = await (await operator.request.get(`${edgeUrl}/api/v1/datasets/memory`)).json();
    assert.ok(stats.frames.some((frame) => frame.id === blenders.id), "the brain has it in memory");

    await operator.getByRole("button", { name: "Refresh the memory overview" }).click();
    const frame = operator.locator(`[data-testid="memory-frame"][data-dataset-id="${blenders.id}"]`);
    await frame.waitFor();
    assert.equal(await frame.locator("td").first().textContent(), "blenders");
    assert.equal(await operator.getByTestId("memory-frames").textContent(), String(stats.loaded_frames));
  });

  test("at 390×844 the operators' view fits the width", async () => {
    await operator.setViewportSize({ width: 390, height: 844 });
    await operator.getByLabel("Show").selectOption("all");
    await operator.locator('[data-testid="escalations"][data-state="ready"]').getByTestId("escalation").nth(1).waitFor();
    const widths = await operator.evaluate(() => {
      const main = document.querySelector("main");
      return { page: [document.documentElement.scrollWidth, document.documentElement.clientWidth], main: [main.scrollWidth, main.clientWidth] };
    });
    assert.ok(widths.page[0] <= widths.page[1] && widths.main[0] <= widths.main[1], `no horizontal scroll: ${JSON.stringify(widths)}`);
    const resolve = await operator.getByRole("button", { name: "Resolve" }).first().boundingBox();
    assert.ok(resolve.x >= 0 && resolve.x + resolve.width <= 390, JSON.stringify(resolve));
    await operator.screenshot({ path: join(ARTIFACTS, "web-phone-operators.png"), fullPage: true });
  });

  test("no app page logged a console error or threw", () => {
    assert.deepEqual(consoleErrors, []);
  });
});
