// The Rust client (crate edgebrain-client) end to end, through the `edgebrain` CLI built on it:
// health, a dataset upload and its description, SQL queries, documents and knowledge search
// (the brain's local embedding model), the stream probe, a streamed question and the thread it
// left, through the edge in workerd (sessions, signatures) to the real brain binary and a real
// local llama.cpp server (SmolLM2), loopback only. Run by scripts/test with BRAIN_BIN,
// EDGEBRAIN_CLI_BIN and EDGEBRAIN_NODE_DIR set.
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

  test("documents are uploaded, listed, read, searched and deleted; another session sees none", async () => {
    const file = join(work, "policies.md");
    // Two sections of about 700 chars each: more than one chunk (1,000 chars by default).
    const returns =
      "# Returns\n\n" +
      ("You may return any item within 30 days of delivery for a full refund. " +
        "Returned items must be unused and in their original packaging; the refund reaches your " +
        "card five business days after the return arrives at our warehouse. ").repeat(3);
    const shipping =
      "# Shipping\n\n" +
      ("Orders leave the warehouse within two business days. Standard delivery " +
        "takes three to five days; express delivery arrives the next day for orders placed " +
        "before noon. Tracking links are sent by e-mail. ").repeat(3);
    const text = `${returns}\n\n${shipping}\n\nNaïve café ☕ — unicode stays intact.\n`;
    writeFileSync(file, text);

    const upload = await ok(["documents", "upload", file]);
    const doc = JSON.parse(upload.stdout);
    assert.equal(doc.name, "policies.md");
    assert.equal(doc.media_type, "text/markdown");
    assert.equal(doc.chars, Array.from(text).length);
    assert.ok(doc.chunk_count >= 2, JSON.stringify(doc));
    assert.match(upload.stderr, new RegExp(`stored policies\\.md \\(${doc.chunk_count} chunks, ${doc.chars} chars\\)`));

    const listed = JSON.parse((await ok(["documents", "list", "--format", "json"])).stdout).documents;
    assert.deepEqual(listed.map((d) => d.id), [doc.id]);
    assert.match((await ok(["documents", "list"])).stdout, new RegExp(`^${doc.id}  policies\\.md  text/markdown`, "m"));

    // The text is the file (Markdown is kept verbatim), and every chunk is the chars its
    // offsets name in it.
    const stored = (await ok(["documents", "text", "policies.md"])).stdout;
    assert.equal(stored, text);
    const detail = JSON.parse((await ok(["documents", "get", doc.id])).stdout);
    assert.equal(detail.chunks.length, doc.chunk_count);
    const chars = Array.from(stored);
    for (const chunk of detail.chunks) {
      assert.equal(chars.slice(chunk.start, chunk.end).join(""), chunk.text);
    }

    const query = "how many days do I have to return an item for a refund";
    const found = JSON.parse((await ok(["knowledge", "search", query, "--limit", "2", "--format", "json"])).stdout);
    assert.ok(found.hits.length >= 1 && found.hits.length <= 2, JSON.stringify(found));
    assert.equal(found.hits[0].document_id, doc.id);
    assert.match(found.hits[0].text, /within 30 days/);
    const table = await ok(["knowledge", "search", query]);
    assert.match(table.stdout, /^score\s+document\s+chunk\s+chars\s+text/);
    assert.match(table.stdout, /policies\.md/);
    assert.match(table.stderr, /\d+ hit\(s\)/);

    // Another session has no documents and finds nothing; the id is not found for it.
    const other = join(work, "other-docs.json");
    const strangerList = JSON.parse((await ok(["documents", "list", "--format", "json"], { session: other })).stdout);
    assert.deepEqual(strangerList.documents, []);
    const strangerSearch = JSON.parse((await ok(["knowledge", "search", query, "--format", "json"], { session: other })).stdout);
    assert.deepEqual(strangerSearch.hits, []);
    const strangerGet = await cli(["documents", "get", doc.id], { session: other });
    assert.equal(strangerGet.code, 1);
    assert.match(strangerGet.stderr, /no document with id or name/);

    // Refused before sending: a file whose type the extension does not tell.
    const unknown = join(work, "notes.data");
    writeFileSync(unknown, "plain words");
    const refused = await cli(["documents", "upload", unknown]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /cannot tell the type of .*notes\.data/);
    // The brain's own refusal of a wrong declared type: its error body (422, nothing stored).
    const notPdf = await cli(["documents", "upload", unknown, "--media-type", "application/pdf"]);
    assert.equal(notPdf.code, 1);
    assert.match(notPdf.stderr, /\(unprocessable 422, request /);

    const deleted = await ok(["documents", "delete", "policies.md"]);
    assert.match(deleted.stderr, new RegExp(`deleted ${doc.id}`));
    assert.deepEqual(JSON.parse((await ok(["documents", "list", "--format", "json"])).stdout).documents, []);
    assert.deepEqual(JSON.parse((await ok(["knowledge", "search", query, "--format", "json"])).stdout).hits, []);
  });

  test("the stream probe reaches the CLI unbuffered through the edge", async () => {
    const probe = await ok(["diag", "stream", "--events", "3", "--interval-ms", "300"]);
    const lines = probe.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 3, probe.stdout);
    lines.forEach((line, index) => assert.match(line, new RegExp(`^tick ${index + 1}/3  arrived \\+\\d+ ms  sent \\+\\d+ ms$`)));
    assert.match(probe.stderr, /^streamed: the events arrived over \d+ ms as they were sent over \d+ ms/m);
    // Past the brain's bound: its error body, no stream.
    const tooMany = await cli(["diag", "stream", "--events", "100000"]);
    assert.equal(tooMany.code, 1);
    assert.match(tooMany.stderr, /\(invalid_query 400, request /);
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
