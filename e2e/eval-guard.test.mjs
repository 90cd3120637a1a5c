// The evaluation's regression guard: the `guard` questions of scripts/eval-questions.json, asked
// end to end (edge in workerd → brain → default agent → the default local model of
// scripts/llm-models.json, greedy, fixed seed) and scored exactly as scripts/eval scores them.
// The floors come from measured runs (BENCHMARKS.md "Local models: the evaluation"): they sit
// one answer below the worst measured run, so a change that costs the default configuration
// answers fails here, while one flip of a borderline answer does not. The unanswerable question
// is not in the guard: the default model invents an answer to it on every run so far
// (BENCHMARKS.md); e2e/default-model.test.mjs asks it.
// Run by scripts/test (BRAIN_BIN set).
import { describe, before, after, test } from "node:test";
import assert from "node:assert/strict";
import { requireEnv } from "./support.mjs";
import { MODELS, runEval, selectQuestions, startEvalStack, summarize } from "../scripts/eval.mjs";

/** Answerable guard questions whose numbers must all be in the answer. */
const MIN_CORRECT = 4;
/** Answerable guard questions where the agent must have queried the data (sql or chart). */
const MIN_TOOL_CALLS = 6;

describe("evaluation guard: the default local model answers from the data", { timeout: 1_800_000 }, () => {
  const brainBin = requireEnv("BRAIN_BIN");
  const questions = selectQuestions("guard");
  let stack, outcome, summary;

  before(async () => {
    stack = await startEvalStack({ brainBin, model: MODELS.default, sampleTransactions: 100_000, name: "eval-guard" });
    outcome = await runEval(stack, questions, { log: (line) => console.log(`  ${line}`) });
    summary = summarize(outcome.items);
    console.log(`  summary: ${JSON.stringify(summary)}`);
  });

  after(async () => {
    await stack?.stop();
  });

  test("every guard question is answered, none by a failed run", () => {
    assert.equal(outcome.items.length, questions.length);
    const failed = outcome.items.filter((item) => item.score.failed).map((item) => `${item.question.id}: ${item.turn.errors.join("; ")}`);
    assert.deepEqual(failed, []);
  });

  test(`the agent queries the data for at least ${MIN_TOOL_CALLS} of the answerable questions`, () => {
    assert.ok(summary.toolCallRate.part >= MIN_TOOL_CALLS, JSON.stringify(summary.toolCallRate));
  });

  test(`at least ${MIN_CORRECT} answers state the numbers SQL computes`, () => {
    const wrong = outcome.items.filter((item) => !item.score.correct).map((item) => `${item.question.id}: ${JSON.stringify(item.turn.text.slice(0, 200))}`);
    assert.ok(summary.numericCorrect.part >= MIN_CORRECT, `${JSON.stringify(summary.numericCorrect)}; wrong:\n${wrong.join("\n")}`);
  });
});
