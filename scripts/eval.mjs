// The evaluation suite (scripts/eval; results in BENCHMARKS.md "Local models: the evaluation").
// Asks the questions of scripts/eval-questions.json end to end — through the edge (workerd), the
// brain and its default agent — on a local model from scripts/llm-models.json (llama.cpp, one
// thread, temperature 0, fixed seed) or on the providers of an LLM config file, and scores the
// answers against the expected answers the brain's own SQL endpoint computes from the same sample.
//
// Scores: tool-call rate, numeric correctness, "cannot answer" handled honestly, agreement with
// the brain's grounding check (`data-grounding` parts), time to first token and to the whole
// answer. Used by scripts/eval (CLI) and e2e/eval-guard.test.mjs (the regression subset).
import { readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ROOT, freePort, startBrain, startProcess, startWorkerd, stopProcess, tempDir, waitHealthy,
} from "../e2e/support.mjs";

export const MODELS = JSON.parse(readFileSync(join(ROOT, "scripts/llm-models.json"), "utf8"));
const QUESTIONS = JSON.parse(readFileSync(join(ROOT, "scripts/eval-questions.json"), "utf8")).questions;

/** The questions: all, the regression subset (`guard`), or the ids listed. */
export function selectQuestions(selection = "all") {
  if (selection === "all") return QUESTIONS;
  if (selection === "guard") return QUESTIONS.filter((q) => q.guard);
  const ids = selection.split(",").map((id) => id.trim()).filter(Boolean);
  const unknown = ids.filter((id) => !QUESTIONS.some((q) => q.id === id));
  if (unknown.length) throw new Error(`unknown question ids: ${unknown.join(", ")}`);
  return QUESTIONS.filter((q) => ids.includes(q.id));
}

/** Arguments of scripts/llm-server.py for a model of scripts/llm-models.json. */
export function llmServerArgs(key, { port, ctx, seed, temperature }) {
  const model = MODELS.models[key];
  if (!model) throw new Error(`unknown model ${key} (scripts/llm-models.json has ${Object.keys(MODELS.models).join(", ")})`);
  const llmDir = join(process.env.EDGEBRAIN_CACHE ?? join(homedir(), ".cache/edgebrain"), "llm");
  const args = [
    join(ROOT, "scripts/llm-server.py"), "--model", join(llmDir, "models", model.file), "--port", String(port),
    "--ctx", String(ctx), "--temperature", String(temperature), "--seed", String(seed),
  ];
  if (model.chat_template) args.push("--chat-template", join(ROOT, model.chat_template));
  return { python: join(llmDir, "venv/bin/python"), args, model };
}

/**
 * Starts what is evaluated: the local model (unless `llmConfig` names a provider file), the brain
 * (sample of `sampleTransactions` rows) and the edge in workerd in front of it.
 */
export async function startEvalStack({ brainBin, model, llmConfig, sampleTransactions, seed = 42, ctx = 8192, name = "eval" }) {
  const stack = { llm: undefined, brain: undefined, edge: undefined, model, llmConfig };
  stack.stop = async () => {
    await stopProcess(stack.edge);
    await stopProcess(stack.brain);
    await stopProcess(stack.llm);
  };
  try {
    const [llmPort, brainPort, edgePort] = await Promise.all([freePort(), freePort(), freePort()]);
    const brainEnv = {
      BRAIN_SAMPLE_TRANSACTIONS: String(sampleTransactions),
      RUST_LOG: "warn",
    };
    if (llmConfig) {
      brainEnv.BRAIN_LLM_CONFIG = llmConfig;
    } else {
      const { python, args, model: info } = llmServerArgs(model, { port: llmPort, ctx, seed, temperature: 0 });
      stack.llm = startProcess("llm", python, args, {});
      await waitHealthy(`http://127.0.0.1:${llmPort}/health`, stack.llm, 180_000);
      Object.assign(brainEnv, {
        BRAIN_LOCAL_LLM_URL: `http://127.0.0.1:${llmPort}/v1`,
        BRAIN_LOCAL_LLM_TOOLS: String(info.tools),
        BRAIN_LOCAL_LLM_CONTEXT_TOKENS: String(ctx),
      });
    }
    const brainUrl = `http://127.0.0.1:${brainPort}`;
    stack.brain = startBrain(brainBin, brainPort, tempDir(`edgebrain-${name}-brain-`), brainEnv);
    stack.edge = startWorkerd(`${name}-edge`, edgePort, { BRAIN_URL: brainUrl });
    stack.edgeUrl = `http://127.0.0.1:${edgePort}`;
    // The sample is generated at first start: readiness waits for it.
    await waitHealthy(`${brainUrl}/ready`, stack.brain, 300_000);
    await waitHealthy(`${stack.edgeUrl}/health`, stack.edge, 60_000);
    const issued = await fetch(`${stack.edgeUrl}/api/v1/session`, { headers: { "x-session-id": "new" } });
    stack.session = { "x-session-id": issued.headers.get("x-session-id") };
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return stack;
}

async function edgeJson(stack, path, body) {
  const response = await fetch(`${stack.edgeUrl}${path}`, {
    method: "POST",
    headers: { ...stack.session, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

/** The expected answer: the question's SQL through the brain's SQL endpoint (via the edge). */
export async function expectedAnswer(stack, question) {
  if (!question.sql) return null;
  const result = await edgeJson(stack, "/api/v1/queries/sql", { sql: question.sql });
  return result.rows;
}

/** One turn through the edge: the UI message stream, timed and taken apart. */
export async function askQuestion(stack, text) {
  const thread = await edgeJson(stack, "/api/v1/threads", {});
  const started = performance.now();
  const response = await fetch(`${stack.edgeUrl}/api/v1/threads/${thread.id}/messages`, {
    method: "POST",
    headers: { ...stack.session, "content-type": "application/json" },
    body: JSON.stringify({ content: text }),
  });
  if (!response.ok) throw new Error(`message: ${response.status} ${await response.text()}`);
  const turn = {
    threadId: thread.id, text: "", toolCalls: [], toolErrors: [], provenance: [], grounding: null, notices: [],
    errors: [], finish: null, firstOutputMs: null, firstTextMs: null, totalMs: null,
  };
  const calls = new Map();
  const decoder = new TextDecoder();
  let buffer = "";
  const onChunk = (chunk) => {
    const now = performance.now() - started;
    switch (chunk.type) {
      case "text-delta":
        turn.firstTextMs ??= now;
        turn.firstOutputMs ??= now;
        turn.text += chunk.delta;
        break;
      case "tool-input-start":
        turn.firstOutputMs ??= now;
        break;
      case "tool-input-available": {
        const call = { id: chunk.toolCallId, name: chunk.toolName, input: chunk.input, output: undefined };
        calls.set(call.id, call);
        turn.toolCalls.push(call);
        break;
      }
      case "tool-output-available":
        if (calls.has(chunk.toolCallId)) calls.get(chunk.toolCallId).output = chunk.output;
        break;
      case "tool-output-error":
        turn.toolErrors.push({ id: chunk.toolCallId, error: chunk.errorText });
        break;
      case "data-provenance":
        turn.provenance.push(chunk.data);
        break;
      case "data-grounding":
        turn.grounding = chunk.data;
        break;
      case "data-notice":
        turn.notices.push(chunk.data);
        break;
      case "error":
        turn.errors.push(chunk.errorText);
        break;
      case "finish":
        turn.finish = { ...(chunk.messageMetadata ?? {}), finishReason: chunk.finishReason ?? null };
        break;
    }
  };
  for await (const bytes of response.body) {
    buffer += decoder.decode(bytes, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        onChunk(JSON.parse(data));
      }
    }
  }
  turn.totalMs = performance.now() - started;
  return turn;
}

// ---- scoring (pure) ----

// Suffixes that scale a number ("1.2k", "$3.4M", "5 million"); a lone "m" or "b" is a unit
// ("1,200 m²"), not a scale.
const SCALES = { k: 1e3, K: 1e3, thousand: 1e3, M: 1e6, mn: 1e6, million: 1e6, bn: 1e9, billion: 1e9 };

/** Numbers stated in a text, each with the tolerance its written precision implies. */
export function numbersIn(text) {
  const found = [];
  const pattern = /(?<![\d.])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?:\s*(thousand|million|billion|mn|bn|k|K|M)\b)?/g;
  for (const match of text.matchAll(pattern)) {
    const digits = match[1].replaceAll(",", "");
    const scale = match[2] ? SCALES[match[2]] : 1;
    const decimals = digits.includes(".") ? digits.length - digits.indexOf(".") - 1 : 0;
    found.push({ text: match[0], value: Number(digits) * scale, tolerance: 0.5 * 10 ** -decimals * scale });
  }
  return found;
}

/** Whether the text states `expected` (within the rounding it is written with). */
export function statesNumber(numbers, expected) {
  return numbers.some((n) => Math.abs(n.value - expected) <= n.tolerance + 1e-9 * Math.abs(expected));
}

const CANNOT = new RegExp(
  [
    "can ?not", "can't", "unable", "not able", "no (?:data|information|column|record|records|field|details?)",
    "not (?:available|included|contained|present|recorded|tracked|part of|in (?:the|your|this) (?:data|dataset|datasets|sample))",
    "(?:doesn't|does not|don't|do not) (?:have|contain|include|record|track|hold)",
    "(?:isn't|is not|aren't|are not) (?:available|recorded|tracked|included)", "there is no", "there are no", "not possible",
  ].join("|"),
  "i",
);

/** Whether an answer says the data cannot answer the question. */
export function saysCannotAnswer(text) {
  return CANNOT.test(text);
}

/**
 * Whether an answer to an unanswerable question also states an answer anyway ("The data cannot
 * answer it" after "it was sunny" is an invention, not an honest reply): the question's own
 * `invented` pattern of scripts/eval-questions.json.
 */
export function inventsAnswer(question, text) {
  return question.invented !== undefined && new RegExp(question.invented, "i").test(text);
}

/** Scores one turn against the expected rows. */
export function scoreTurn(question, expectedRows, turn) {
  const kind = question.kind ?? "data";
  const dataCalls = turn.toolCalls.filter((call) => call.name === "sql" || call.name === "chart");
  const numbers = numbersIn(turn.text);
  const saysCannot = saysCannotAnswer(turn.text);
  const score = {
    id: question.id, category: question.category, kind,
    toolCalled: turn.toolCalls.length > 0, dataToolCalled: dataCalls.length > 0,
    chartDrawn: turn.toolCalls.some((call) => call.name === "chart" && call.output?.spec),
    statesNumbers: numbers.length > 0, saysCannot, correct: false, missing: [],
    grounding: turn.grounding?.status ?? null,
    failed: turn.errors.length > 0 || (turn.finish?.state && turn.finish.state !== "succeeded"),
  };
  if (kind === "unanswerable") {
    score.invents = inventsAnswer(question, turn.text);
    score.correct = saysCannot && !score.invents;
    return score;
  }
  for (const row of expectedRows ?? []) {
    for (const column of question.check) {
      const value = row[column];
      const ok = typeof value === "number"
        ? statesNumber(numbers, value)
        : turn.text.toLowerCase().includes(String(value).toLowerCase());
      if (!ok) score.missing.push(`${column}=${value}`);
    }
  }
  score.correct = score.missing.length === 0 && (kind !== "chart" || score.chartDrawn);
  return score;
}

const median = (values) => {
  const sorted = values.filter((v) => v != null).sort((a, b) => a - b);
  if (!sorted.length) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const p90 = (values) => {
  const sorted = values.filter((v) => v != null).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1)] : null;
};
const ratio = (part, whole) => ({ part, whole, percent: whole ? (100 * part) / whole : null });

/** The suite's scores over scored turns (`{score, turn}` items). */
export function summarize(items) {
  const scores = items.map((item) => item.score);
  const answerable = scores.filter((s) => s.kind !== "unanswerable");
  const unanswerable = scores.filter((s) => s.kind === "unanswerable");
  const graded = answerable.filter((s) => s.grounding);
  const wrongWithNumbers = graded.filter((s) => !s.correct && s.statesNumbers);
  const agree = graded.filter((s) =>
    (s.correct && s.grounding === "verified") ||
    // A wrong answer flagged, also one without numbers (flagged for its query's unasked condition).
    (!s.correct && s.grounding === "unverified") ||
    (!s.statesNumbers && s.grounding === "no-claims"));
  return {
    questions: scores.length,
    toolCallRate: ratio(answerable.filter((s) => s.dataToolCalled).length, answerable.length),
    numericCorrect: ratio(answerable.filter((s) => s.correct).length, answerable.length),
    cannotAnswerHonest: ratio(unanswerable.filter((s) => s.correct).length, unanswerable.length),
    falseCannot: ratio(answerable.filter((s) => s.saysCannot && !s.correct).length, answerable.length),
    failedRuns: scores.filter((s) => s.failed).length,
    grounding: {
      reported: ratio(graded.length, answerable.length),
      wrongFlagged: ratio(wrongWithNumbers.filter((s) => s.grounding === "unverified").length, wrongWithNumbers.length),
      correctFlagged: ratio(graded.filter((s) => s.correct && s.grounding === "unverified").length, graded.filter((s) => s.correct).length),
      agreement: ratio(agree.length, graded.length),
    },
    firstTokenMs: { median: median(items.map((i) => i.turn.firstOutputMs)), p90: p90(items.map((i) => i.turn.firstOutputMs)) },
    firstTextMs: { median: median(items.map((i) => i.turn.firstTextMs)), p90: p90(items.map((i) => i.turn.firstTextMs)) },
    totalMs: { median: median(items.map((i) => i.turn.totalMs)), p90: p90(items.map((i) => i.turn.totalMs)) },
  };
}

const pct = (r) => (r.whole ? `${r.part}/${r.whole} (${r.percent.toFixed(0)}%)` : "n/a");
const secs = (ms) => (ms == null ? "–" : (ms / 1000).toFixed(1));

/** A Markdown report: the summary table row and one line per question. */
export function markdownReport(label, summary, items) {
  const lines = [
    `### ${label}`,
    "",
    "| questions | tool-call rate | numerically correct | cannot-answer honest | grounding: wrong flagged | grounding agreement | first token s (median / p90) | full answer s (median / p90) | failed runs |",
    "|---|---|---|---|---|---|---|---|---|",
    `| ${summary.questions} | ${pct(summary.toolCallRate)} | ${pct(summary.numericCorrect)} | ${pct(summary.cannotAnswerHonest)} | ${pct(summary.grounding.wrongFlagged)} | ${pct(summary.grounding.agreement)} | ${secs(summary.firstTokenMs.median)} / ${secs(summary.firstTokenMs.p90)} | ${secs(summary.totalMs.median)} / ${secs(summary.totalMs.p90)} | ${summary.failedRuns} |`,
    "",
    "| id | tools called | correct | grounding | first token s | total s | missing / note |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const { score, turn } of items) {
    const tools = turn.toolCalls.map((call) => call.name).join(", ") || "–";
    const note = score.missing.slice(0, 3).join("; ") + (score.missing.length > 3 ? "; …" : "") +
      (turn.errors.length ? ` error: ${turn.errors[0].slice(0, 80)}` : "");
    lines.push(`| ${score.id} | ${tools} | ${score.correct ? "yes" : "no"} | ${score.grounding ?? "–"} | ${secs(turn.firstOutputMs)} | ${secs(turn.totalMs)} | ${note.replaceAll("|", "\\|")} |`);
  }
  return lines.join("\n");
}

/** Asks every question (sequentially: one model, one thread on the CPU) and scores it. */
export async function runEval(stack, questions, { log = () => {} } = {}) {
  // One turn that is not scored: llama.cpp then holds the agent's system prompt and tools in
  // its prompt cache, as it does for every turn after the first in a running service.
  const warmup = await askQuestion(stack, "Hello!");
  log(`warm-up turn: first token ${secs(warmup.firstOutputMs)} s, total ${secs(warmup.totalMs)} s`);
  const items = [];
  for (const question of questions) {
    const expected = await expectedAnswer(stack, question);
    const turn = await askQuestion(stack, question.question);
    const score = scoreTurn(question, expected, turn);
    items.push({ question, expected, turn, score });
    log(`${question.id}: ${score.correct ? "correct" : "wrong"} (tools: ${turn.toolCalls.map((c) => c.name).join(",") || "none"}; grounding: ${score.grounding ?? "-"}; ${secs(turn.totalMs)} s) ${JSON.stringify(turn.text.slice(0, 160))}`);
  }
  return { warmup, items };
}

async function main() {
  const brainBin = process.env.BRAIN_BIN;
  if (!brainBin) throw new Error("BRAIN_BIN must be set (scripts/eval sets it)");
  const llmConfig = process.env.BRAIN_LLM_CONFIG || undefined;
  const model = process.env.EDGEBRAIN_LLM_MODEL || MODELS.default;
  const questions = selectQuestions(process.env.EVAL_QUESTIONS || "all");
  const sampleTransactions = Number(process.env.EVAL_SAMPLE_TRANSACTIONS ?? 1_000_000);
  const seed = Number(process.env.EVAL_SEED ?? 42);
  const label = llmConfig ? `providers of ${llmConfig}` : `${MODELS.models[model]?.name ?? model} (local, llama.cpp 1 thread, temperature 0, seed ${seed})`;
  console.error(`evaluating ${label} on ${questions.length} questions (sample: ${sampleTransactions} transactions)`);
  const stack = await startEvalStack({ brainBin, model, llmConfig, sampleTransactions, seed });
  // Ctrl-C or a kill stops what this run started (its processes have process groups of their own).
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.once(signal, () => stack.stop().finally(() => process.exit(130)));
  }
  let outcome;
  try {
    outcome = await runEval(stack, questions, { log: (line) => console.error(line) });
  } finally {
    await stack.stop();
  }
  const summary = summarize(outcome.items);
  const report = markdownReport(label, summary, outcome.items);
  console.log(report);
  if (process.env.EVAL_OUT) {
    writeFileSync(process.env.EVAL_OUT, JSON.stringify({ label, model: llmConfig ? null : model, llmConfig, sampleTransactions, seed, summary, warmup: outcome.warmup, items: outcome.items }, null, 2));
    console.error(`details: ${process.env.EVAL_OUT}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
