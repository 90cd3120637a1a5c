// Accessibility checks inside the browser tests: axe-core (the root package.json's pinned
// devDependency) injected into the page under test and run on the whole document as it is
// shown. Any view's test can call `assertAccessible(page, "the view's name")`; it fails on every
// `serious` or `critical` violation, naming the rule, the elements and how to fix them.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/** The impacts that fail a test (axe's `minor` and `moderate` are reported, not failed). */
export const FAILING_IMPACTS = ["serious", "critical"];

/**
 * axe's violations on `page` now, of every impact: `{ id, impact, help, nodes: [{ target,
 * summary }] }`. axe is evaluated through the browser's debugging protocol, so a page's
 * Content-Security-Policy does not stop it and the page itself never loads it.
 * `options.exclude`: CSS selectors axe leaves out (third-party markup the app cannot change).
 */
export async function axeViolations(page, { exclude = [] } = {}) {
  if (!(await page.evaluate(() => typeof window.axe?.run === "function"))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async (excluded) => {
    const context = excluded.length > 0 ? { exclude: excluded.map((selector) => [selector]) } : document;
    const result = await window.axe.run(context, { resultTypes: ["violations"] });
    return result.violations.map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      nodes: violation.nodes.map((node) => ({ target: node.target.join(" "), summary: node.failureSummary })),
    }));
  }, exclude);
}

/**
 * Fails unless axe finds no `serious` or `critical` violation on `page` (`view` names it).
 * With EDGEBRAIN_AXE_VERBOSE set, the other (minor, moderate) violations are printed too.
 */
export async function assertAccessible(page, view, options = {}) {
  const violations = await axeViolations(page, options);
  const failing = violations.filter((violation) => FAILING_IMPACTS.includes(violation.impact));
  if (process.env.EDGEBRAIN_AXE_VERBOSE) {
    for (const violation of violations.filter((item) => !failing.includes(item))) {
      console.log(`axe (${violation.impact}) on ${view}: ${violation.id} — ${violation.help}: ${violation.nodes.map((node) => node.target).join(", ")}`);
    }
  }
  const report = failing
    .map((violation) => `- ${violation.impact} ${violation.id}: ${violation.help}\n${violation.nodes.map((node) => `    ${node.target}: ${node.summary}`).join("\n")}`)
    .join("\n");
  assert.equal(failing.length, 0, `axe on ${view}:\n${report}`);
}
