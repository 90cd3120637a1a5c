// The brain's chat endpoint read by the official `ai` package's client side: the transport an
// unmodified `useChat` uses (DefaultChatTransport: request body, headers, SSE parsing and chunk
// validation) and `readUIMessageStream`, which assembles the UI messages. Through the edge in
// workerd (session, signature) to the real brain binary and a real local llama.cpp server
// (SmolLM2), loopback only. Run by scripts/test (BRAIN_BIN set).
import { describe, before, after, test } from "node:test";
import assert from "node:assert/strict";
import { DefaultChatTransport, readUIMessageStream } from "ai";
import { requireEnv, startLocalLlmStack } from "./support.mjs";

describe("chat through the ai package's client", { timeout: 240_000 }, () => {
  const brainBin = requireEnv("BRAIN_BIN");
  let stack, edgeUrl;
  // The session the edge issues to this (non-browser) client, sent back on every request.
  let session;

  before(async () => {
    stack = await startLocalLlmStack("e2e-chat", brainBin);
    edgeUrl = stack.edgeUrl;
  });

  after(async () => {
    await stack?.stop();
  });

  test("DefaultChatTransport + readUIMessageStream assemble the reply the brain stored", async () => {
    const created = await fetch(`${edgeUrl}/api/v1/threads`, {
      method: "POST",
      headers: { "x-session-id": "new", "content-type": "application/json" },
      body: JSON.stringify({ title: "ai e2e" }),
    });
    assert.equal(created.status, 201);
    session = { "x-session-id": created.headers.get("x-session-id") };
    assert.match(session["x-session-id"], /^v1\./);
    const thread = await created.json();

    const transport = new DefaultChatTransport({
      api: `${edgeUrl}/api/v1/threads/${thread.id}/messages`,
      headers: session,
    });
    const userMessage = { id: "u1", role: "user", parts: [{ type: "text", text: "Say hello." }] };
    const chunks = await transport.sendMessages({
      chatId: thread.id,
      messages: [userMessage],
      trigger: "submit-message",
      messageId: undefined,
      abortSignal: AbortSignal.timeout(60_000),
    });
    const errors = [];
    let message;
    for await (const uiMessage of readUIMessageStream({ stream: chunks, onError: (error) => errors.push(error) })) {
      message = uiMessage;
    }

    assert.deepEqual(errors, []);
    assert.ok(message, "the reader assembled a message");
    assert.equal(message.role, "assistant");
    const textParts = message.parts.filter((part) => part.type === "text");
    assert.equal(textParts.length, 1, JSON.stringify(message.parts));
    assert.equal(textParts[0].state, "done");
    assert.ok(textParts[0].text.length > 0);
    assert.equal(message.metadata.threadId, thread.id);
    const runId = message.metadata.runId;
    assert.match(runId, /^[0-9a-f-]{36}$/);

    // What the client assembled is exactly what the brain stored.
    const page = await (await fetch(`${edgeUrl}/api/v1/threads/${thread.id}/messages`, { headers: session })).json();
    assert.equal(page.messages.length, 2);
    assert.deepEqual(page.messages[0].parts, userMessage.parts);
    assert.equal(page.messages[1].id, message.id);
    assert.equal(page.messages[1].parts.find((part) => part.type === "text").text, textParts[0].text);
    const run = await (await fetch(`${edgeUrl}/api/v1/runs/${runId}`, { headers: session })).json();
    assert.equal(run.state, "succeeded");

    // Another session cannot see the thread.
    const stranger = await fetch(`${edgeUrl}/api/v1/threads/${thread.id}/messages`, { headers: { "x-session-id": "new" } });
    assert.equal(stranger.status, 404);
  });
});
