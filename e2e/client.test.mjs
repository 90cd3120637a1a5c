// The Rust client (crate edgebrain-client) end to end, through the `edgebrain` CLI built on it:
// health, a dataset upload and its description, SQL queries, a streamed question and the
// thread it left, through the edge in workerd (sessions, signatures) to the real brain binary
// and a real local llama.cpp server (SmolLM2), loopback only. Run by scripts/test with
// BRAIN_BIN, EDGEBRAIN_CLI_BIN and EDGEBRAIN_NODE_DIR set.
import { describe, before, after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireEnv, startLocalLlmStack, tempDir } from "./support.mjs";

describe("the edgebrain CLI (Rust client) through the edge", { timeout: 300_000 }, () => {
  const brainBin = requireEnv("BRAIN_BIN");
  const cliBin = requireEnv("EDGEBRAIN_CLI_BIN");
  let stack, edgeUrl, work, sessionFile;

  /** Runs the CLI; resolves with {code, stdout, stderr} (never rejects on a non-zero exit). */
  function cli(args, { session = sessionFile, timeoutMs = 120_000 } = {}) {
    return new Promise((resolve, reject) => {
      execFile(
        cliBin,
        ["--url", edgeUrl, "--session-file", session, ...args],
        { env: { ...process.env, EDGEBRAIN_TOKEN: "" }, timeout: timeoutMs, maxBuffer: 16 << 20 },
        (error, stdout, stderr) => {
          if (error && typeof error.code !== "number") return reject(error);
          resolve({ code: error ? error.code : 0, stdout, stderr });
        },
      );
    });
  }

  /** Runs the CLI and expects success. */
  async function ok(args, options) {
    const result = await cli(args, options);
    assert.equal(result.code, 0, `edgebrain ${args.join(" ")} failed:\n${result.stderr}`);
    return result;
  }

  before(async () => {
    work = tempDir("edgebrain-e2e-client-");
    sessionFile = join(work, "session.json");
    stack = await startLocalLlmStack("e2e-client", brainBin);
    edgeUrl = stack.edgeUrl;
  });

  after(async () => {
    await stack?.stop();
  });

  test("health is the edge's own report", async () => {
    const { stdout } = await ok(["health"]);
    assert.match(stdout, /^edge Ok \(version \d+\.\d+\.\d+\)$/m);
  });

  test("the OpenAPI document is served through the edge, signed like every /api route", async () => {
    const response = await fetch(`${edgeUrl}/api/v1/openapi.json`, { headers: { "x-session-id": "new" } });
    assert.equal(response.status, 200);
    const document = await response.json();
    assert.equal(document.openapi, "3.1.0");
    assert.ok(document.paths["/api/v1/threads/{id}/messages"].post, "the chat operation is documented");
    assert.ok(document.components.schemas.UiMessageChunk);
  });

  test("an uploaded CSV is listed, described and queried; the session is kept", async () => {
    const csv = join(work, "sales.csv");
    writeFileSync(csv, "store,qty,price\na,1,2.5\nb,2,1.0\na,4,\n");
    const upload = await ok(["datasets", "upload", csv, "--name", "sales_cli"]);
    const info = JSON.parse(upload.stdout);
    assert.equal(info.name, "sales_cli");
    assert.equal(info.row_count, 3);
    assert.deepEqual(info.columns.map((c) => c.name), ["store", "qty", "price"]);
    assert.equal(info.owned, true);
    assert.match(upload.stderr, /created sales_cli \(3 rows, 3 columns\)/);

    // The next command is the same caller: the edge's session came back through the file.
    const list = JSON.parse((await ok(["datasets", "list", "--format", "json"])).stdout);
    const listed = list.datasets.find((d) => d.name === "sales_cli");
    assert.ok(listed, JSON.stringify(list));
    assert.equal(listed.id, info.id);

    const described = JSON.parse((await ok(["datasets", "describe", "sales_cli"])).stdout);
    assert.equal(described.dataset.id, info.id);
    assert.equal(described.dataset.row_count, 3);
    const qty = described.stats.find((s) => s.name === "qty");
    assert.deepEqual([qty.min, qty.max, qty.mean, qty.null_count], [1, 4, 7 / 3, 0]);
    assert.equal(described.stats.find((s) => s.name === "price").null_count, 1);
    assert.deepEqual(described.sample_rows[0], { store: "a", qty: 1, price: 2.5 });

    const sql = "SELECT store, SUM(qty) AS units FROM sales_cli GROUP BY store ORDER BY store";
    const json = JSON.parse((await ok(["query", "sql", sql, "--format", "json"])).stdout);
    assert.deepEqual(json.rows, [{ store: "a", units: 5 }, { store: "b", units: 2 }]);
    assert.equal(json.page.next_offset, null);
    const csvOut = await ok(["query", "sql", sql, "--format", "csv"]);
    assert.equal(csvOut.stdout, "store,units\na,5\nb,2\n");
    const table = await ok(["query", "sql", sql]);
    assert.deepEqual(table.stdout.split("\n").map((l) => l.trimEnd()), ["store  units", "-----  -----", "a      5", "b      2", ""]);
    assert.match(table.stderr, /2 row\(s\) in/);
    const paged = JSON.parse((await ok(["query", "sql", sql, "--format", "json", "--limit", "1"])).stdout);
    assert.deepEqual(paged.rows, [{ store: "a", units: 5 }]);
    assert.equal(paged.page.next_offset, 1);

    // Another session does not see the dataset.
    const stranger = JSON.parse((await ok(["datasets", "list", "--format", "json"], { session: join(work, "other.json") })).stdout);
    assert.equal(stranger.datasets.find((d) => d.name === "sales_cli"), undefined);
  });

  test("errors print the error body's message and exit non-zero", async () => {
    const refused = await cli(["query", "sql", "DROP TABLE sales_cli"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error: .+ \(bad_request 400, request [\w.:-]+\)$/m);
    const missing = await cli(["datasets", "describe", "no_such_dataset"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no dataset with id or name `no_such_dataset`/);
    const unknownRun = await cli(["runs", "get", "00000000-0000-4000-8000-000000000000"]);
    assert.equal(unknownRun.code, 1);
    assert.match(unknownRun.stderr, /\(not_found 404, request /);
    const badUpload = await cli(["datasets", "upload", join(work, "missing.csv")]);
    assert.equal(badUpload.code, 1);
    assert.match(badUpload.stderr, /missing\.csv/);
  });

  test("ask streams the answer; the thread and run are what the brain stored", async () => {
    const asked = await ok(["ask", "Say hello."]);
    const ids = asked.stderr.match(/thread ([0-9a-f-]{36}) · run ([0-9a-f-]{36})/);
    assert.ok(ids, asked.stderr);
    const [, threadId, runId] = ids;
    assert.ok(asked.stdout.endsWith("\n"));
    const answer = asked.stdout.slice(0, -1);
    assert.ok(answer.length > 0, "some text streamed");
    assert.match(asked.stderr, /\[\d+ tokens in, \d+ out\]/);

    const run = JSON.parse((await ok(["runs", "get", runId])).stdout);
    assert.equal(run.state, "succeeded");
    assert.equal(run.thread_id, threadId);

    const messages = JSON.parse((await ok(["threads", "messages", threadId])).stdout).messages;
    assert.equal(messages.length, 2);
    assert.deepEqual(messages[0].parts, [{ type: "text", text: "Say hello." }]);
    assert.equal(messages[1].role, "assistant");
    assert.equal(messages[1].parts.filter((p) => p.type === "text").map((p) => p.text).join(""), answer);

    const threads = JSON.parse((await ok(["threads", "list", "--format", "json"])).stdout).threads;
    const thread = threads.find((t) => t.id === threadId);
    assert.ok(thread, JSON.stringify(threads));
    assert.equal(thread.title, "Say hello.");
    assert.ok(thread.usage.output_tokens > 0);
    const tableList = await ok(["threads", "list"]);
    assert.match(tableList.stdout, new RegExp(`^${threadId}  Say hello\\.`, "m"));

    // Replaying the finished run's events yields the same text; a finished run cannot be cancelled.
    const replay = await ok(["runs", "follow", runId]);
    assert.equal(replay.stdout.slice(0, -1), answer);
    // Resuming after event 3 (start, start-step, text-start) skips nothing of the text; after
    // event 4 the first delta is gone: what follows is a suffix.
    assert.equal((await ok(["runs", "follow", runId, "--after", "3"])).stdout.slice(0, -1), answer);
    const resumed = (await ok(["runs", "follow", runId, "--after", "4"])).stdout.replace(/\n$/, "");
    assert.ok(answer.endsWith(resumed) && resumed.length <= answer.length, JSON.stringify({ answer, resumed }));
    const cancel = await cli(["runs", "cancel", runId]);
    assert.equal(cancel.code, 1);
    assert.match(cancel.stderr, /\(conflict 409, request /);

    // A second question in the same thread continues it.
    await ok(["ask", "And goodbye?", "--thread", threadId]);
    const more = JSON.parse((await ok(["threads", "messages", threadId])).stdout).messages;
    assert.equal(more.length, 4);
  });
});
