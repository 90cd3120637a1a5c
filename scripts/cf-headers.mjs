// Writes Cloudflare's `_headers` file for the static web app from vercel.json's `headers` rules,
// so pages served by Workers static assets (which never run the worker, hence never the edge
// core's rules) carry the same response headers as on Vercel, where the CDN applies vercel.json
// to static files itself. Only rules Cloudflare's format can express are converted: a `source`
// that is a literal path, or a literal prefix followed by `(.*)` or `:name*`, without `has` or
// `missing`. Any other header rule stops the build, so the two platforms never silently differ.
//   node scripts/cf-headers.mjs vercel.json web/dist/_headers
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export function cloudflareHeaders(vercelJson) {
  const rules = JSON.parse(vercelJson).headers ?? [];
  const blocks = [];
  rules.forEach((rule, index) => {
    const where = `vercel.json headers[${index}] (source ${JSON.stringify(rule.source)})`;
    if (rule.has || rule.missing) throw new Error(`${where}: has/missing cannot be expressed in Cloudflare's _headers`);
    const wildcard = /^(\/(?:[A-Za-z0-9._~-]+\/)*)(?:\(\.\*\)|:[A-Za-z_][A-Za-z0-9_]*\*)$/.exec(rule.source);
    let pattern;
    if (wildcard) pattern = `${wildcard[1]}*`;
    else if (/^\/[A-Za-z0-9._~\/-]*$/.test(rule.source)) pattern = rule.source;
    else throw new Error(`${where}: only literal paths and prefix wildcards convert to Cloudflare's _headers`);
    const lines = rule.headers.map(({ key, value }) => {
      if (/[\r\n]/.test(key + value)) throw new Error(`${where}: header ${key} spans lines`);
      return `  ${key}: ${value}`;
    });
    blocks.push(`${pattern}\n${lines.join("\n")}`);
  });
  return `# Generated from vercel.json by scripts/cf-headers.mjs; do not edit.\n${blocks.join("\n")}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) {
    console.error("usage: node scripts/cf-headers.mjs vercel.json OUT/_headers");
    process.exit(2);
  }
  try {
    writeFileSync(output, cloudflareHeaders(readFileSync(input, "utf8")));
  } catch (error) {
    console.error(`error: ${error.message}`);
    process.exit(1);
  }
}
