// The oracle of the rules engine's differential test (edge/src/core/rules/oracle.rs): builds the
// cases — hand-written ones per documented feature, then generated ones from a fixed seed — and
// answers each with the real implementations Vercel deploys with, pinned in package.json:
//   - path-to-regexp 6.1.0 (Vercel's options: strict, sensitive, delimiter "/") and V8's RegExp
//     for `source` patterns: is the source accepted, which regex it compiles to, what it
//     captures on a path;
//   - V8's RegExp alone for regexes as `has` values and parameter patterns use them;
//   - @vercel/routing-utils (getTransformedRoutes, and its JSON schemas through ajv, as the
//     Vercel CLI validates vercel.json) for whole rules: accepted or refused at deploy, and the
//     route they compile to (regex, Location/destination template, status, header values).
//
//   node oracle.mjs          rewrites oracle.json next to this file
//   node oracle.mjs --check  exits 1 when oracle.json differs from what the oracles answer now
//
// scripts/test runs --check, so the checked-in answers are the pinned packages' answers.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const { pathToRegexp } = require("path-to-regexp");
const routing = require("@vercel/routing-utils");
const Ajv = require("ajv");
const OUT = fileURLToPath(new URL("./oracle.json", import.meta.url));

// routing-utils logs every source that path-to-regexp 6.3.0 would compile differently.
console.error = () => {};

// A small deterministic PRNG (mulberry32): the generated cases are the same on every run.
let seed = 0x5eed1e55;
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (items) => items[Math.floor(random() * items.length)];
const range = (n) => Array.from({ length: n }, (_, i) => i);

// ---- source patterns ---------------------------------------------------------------------

/** What Vercel does with a source: RegExp(source) must be valid, path-to-regexp compiles it,
 * routing-utils normalises the regex (`\/` → `/`), and RegExp(src) must be valid again. */
function compileSource(source) {
  try {
    new RegExp(source);
    const { src } = routing.sourceToRegex(source);
    const normalized = src.replace(/\\\//g, "/");
    return { regex: normalized, re: new RegExp(normalized) };
  } catch {
    return null;
  }
}

function matchCase(source, path) {
  const compiled = compileSource(source);
  if (!compiled) return { kind: "match", source, path, expect: { valid: false } };
  const m = compiled.re.exec(path);
  return {
    kind: "match",
    source,
    path,
    expect: { valid: true, regex: compiled.regex, captures: m ? m.slice(1).map((v) => (v === undefined ? null : v)) : null },
  };
}

// Hand-written: one group per documented feature of vercel.json sources.
const SOURCES = {
  literal: ["about", ":lang(en|fr)?/home", "/about", "/a.b", "/caf%C3%A9", "/a\\:b", "/x\\(y\\)", "/a+b", "/a*b", "/", "/~u/x", "/a b"],
  named: ["/blog/:slug", "/u/:id/posts/:post", "/:a/:b", "/api/:v.:fmt", "/a/:b-:c", "/v/:x.json", "/:a:b", "/0/:_x9"],
  optional: ["/docs/:page?", "/p/:a?/:b?", "/:lang(en|fr)?/home", "/u/:id(\\d+)?", "/{:x}?"],
  repeated: ["/docs/:path*", "/docs/:path+", "/x/:p*/edit", "/:x+", "/a-:x+", "/a-:x*", "/(.*)*", "/f{-:tag}*"],
  custom: ["/item/:id(\\d+)", "/(.*)", "/:path(.*)", "/static/(.*)\\.js", "/:a(x|y)-(\\d+)", "/n/:n([0-9]{2,4})", "/c/:name([^/]+)", "/w/:w(\\w+)", "/s/:s(\\s*)x"],
  braces: ["/file{.:ext}?", "/old{-page}?", "/{v:n}", "/a{/:b}+", "/x{-(\\d+)}?"],
  lookaround: ["/:path((?!uk/).*)", "/((?!api|_next|static).*)", "/:p((?=a)\\w+)", "/:p((?<!x)y+)", "/:p((?<=a/)b)"],
  invalid: ["/conf/*", "/a/:", "/a/(", "/a/()", "/a/((x))", "/a/(?:x)", "/a/{x", "/a/x}", "/a\\", "/:id([)", "/a/**", "/a/:b(\\d+", "/a)", "/[a", "/a{2,1}", "/(?<n>x)"],
};
const PATHS = ["/about", "/About", "/about/", "/a.b", "/aXb", "/caf%C3%A9", "/a:b", "/x(y)", "/blog/hello", "/blog/a/b",
  "/blog/", "/blog/a%2Fb", "/u/7/posts/9", "/x/y", "/api/v1.json", "/a/b-c", "/a/b-c-d", "/v/a.json", "/v/.json",
  "/docs", "/docs/", "/docs/a", "/docs/a/b/c", "/docs//a", "/p", "/p/1", "/p/1/2", "/home", "/en/home", "/de/home",
  "/u", "/u/1", "/u/x", "/", "/x", "/a-bcd", "/a-", "/x/edit", "/x/a/b/edit", "/f", "/f-a-b", "/item/42", "/item/abc",
  "/any/thing", "/static/app.js", "/static/a/b.js", "/y-12", "/x-1", "/n/123", "/n/1", "/n/12345", "/c/né", "/w/a_1",
  "/s/  x", "/file", "/file.png", "/old", "/old-page", "/v1", "/a/b", "/a/b/c", "/x-12", "/uk/shop", "/fr/shop", "/uk",
  "/api/x", "/_next/a", "/web", "/abc", "/xy", "/a/b", "/~u/x", "/a b", "/a%20b", "/a+b", "/aab", "/a*b"];

// Generated sources: random compositions of the pieces path-to-regexp knows.
const PIECES = ["blog", "docs", "v1", "a", "x-y", "file.txt", "caf%C3%A9", ":id", ":slug?", ":path*", ":path+",
  ":id(\\d+)", ":lang(en|fr|de)?", "(.*)", ":rest(.*)", ":p((?!uk/).*)", ":n([0-9]{2,4})", "{-:v}?", "{.:ext}",
  ":a-:b", "a-:x+", "\\(lit\\)", ":name([^/]+)", ":q(a|ab)(c|bcd)?", ":w(\\w+)?", "(\\d+)", ":e([a-z]+)*", "{:z}"];
const VALUES = ["x", "abc", "42", "2019", "en", "fr", "uk", "a/b", "a.b", "", "ü", "%2F", "bcd", "x-y", "a-b-c", "ab",
  "abcd", "1", "12345", "lit", "(lit)", "file.txt", "v1", "docs", "a_1", "-", "."];

function generatedSource() {
  const parts = range(1 + Math.floor(random() * 4)).map(() => pick(PIECES));
  let source = "";
  for (const part of parts) source += (source && random() < 0.15 ? pick(["-", ".", ""]) : "/") + part;
  return source;
}

/** Paths likely to exercise a source: its pieces filled with values, and variations. */
function pathsFor(source, count) {
  const paths = new Set();
  for (let i = 0; i < count * 3 && paths.size < count; i++) {
    let path = source
      .replace(/\{([^}]*)\}[?*+]?/g, (_, inner) => (random() < 0.5 ? "" : inner))
      .replace(/:[A-Za-z0-9_]+(\((?:[^()]|\([^()]*\))*\))?[?*+]?/g, () => pick(VALUES))
      .replace(/\((?:[^()]|\([^()]*\))*\)[?*+]?/g, () => pick(VALUES))
      .replace(/\\(.)/g, "$1");
    const mutation = random();
    if (mutation < 0.1) path += "/";
    else if (mutation < 0.2) path = path.toUpperCase();
    else if (mutation < 0.3) path = path.slice(0, -1);
    else if (mutation < 0.4) path += "/" + pick(VALUES);
    if (!path.startsWith("/")) path = "/" + path;
    paths.add(path.replace(/\/\/+/g, random() < 0.8 ? "/" : "//"));
  }
  return [...paths];
}

// ---- JavaScript regexes ------------------------------------------------------------------

function regexCase(pattern, input) {
  let re;
  try {
    re = new RegExp(pattern);
  } catch {
    return { kind: "regex", pattern, input, expect: { valid: false } };
  }
  const m = re.exec(input);
  return {
    kind: "regex",
    pattern,
    input,
    // A lone surrogate (`.` takes half of an astral character) is not valid JSON for Rust.
    expect: { valid: true, match: m ? { index: m.index, groups: m.map((v) => (v === undefined ? null : v.toWellFormed())) } : null },
  };
}

const REGEXES = [
  // has values as Vercel's documentation and users write them
  ["(?<sub>[a-z]+)\\.example\\.com", ["eu.example.com", "EU.example.com", "a.b.example.com"]],
  ["en|fr", ["en", "fr", "english", "xfr"]],
  ["^(?:en|fr)$", ["en", "english"]],
  ["(?<lang>[a-z]{2})(?:-(?<region>[A-Z]{2}))?", ["en-GB", "en", "EN-gb"]],
  ["Bearer (?<token>.+)", ["Bearer abc.def", "bearer x"]],
  ["(?<v>.*)", ["café", "", "a\nb"]],
  ["GB", ["GB", "gb"]],
  [".*(?:Googlebot|bingbot).*", ["Mozilla/5.0 (compatible; Googlebot/2.1)", "curl/8"]],
  ["\\d{3,}", ["12", "123", "a1234"]],
  // JavaScript specifics
  ["\\d\\w\\s\\b", ["1a b", "١a b", "1é x"]],
  ["[^]", ["\n", ""]],
  ["[]", ["a"]],
  [".", ["\n", "\r", "\u2028", "é", "😀"]],
  ["a{", ["a{", "a"]],
  ["a{1,", ["a{1,"]],
  ["x{,5}", ["x{,5}"]],
  ["]}", ["]}"]],
  ["\\c1", ["\\c1", "\u0001"]],
  ["\\cJ", ["\n"]],
  ["\\8\\9", ["89"]],
  ["\\101\\60", ["A0"]],
  ["\\0", ["\0"]],
  ["(a)\\2", ["a\u0002"]],
  ["\\x41\\x4", ["Ax4"]],
  ["\\u0041\\u004", ["Au004"]],
  ["[\\d-z]", ["-", "5", "z", "m"]],
  ["[a-\\d]", ["-", "5", "a"]],
  ["[\\b]", ["\b", "b"]],
  ["[\\cJ\\c1]", ["\n", "\u0011"]],
  ["\\k", ["k"]],
  ["\\k<a>(?<a>x)", ["x"]],
  ["(?<a>x)\\k<a>", ["xx", "x"]],
  ["(?=(a+))a*b\\1", ["baaabac"]],
  ["(?<=\\$)\\d+", ["cost $42", "42"]],
  ["(?<!\\$)\\b\\d+", ["$4 42"]],
  ["(?<=(\\d+)(\\d+))$", ["1053"]],
  ["(?<=\\1(a))b", ["aab", "ab"]],
  ["(a|ab)(c|bcd)(d*)", ["abcd"]],
  ["(z)((a+)?(b+)?(c))*", ["zaacbbbcac"]],
  ["(a*)*", ["b"]],
  ["(a*)+", ["b"]],
  ["(?:(a)|b)+", ["ab"]],
  ["(a)|b", ["b"]],
  ["(?:a|b)*?c", ["ababc"]],
  ["a+?b", ["aaab"]],
  ["(?=a)*", ["a"]],
  ["(?!a)+b", ["b"]],
  ["^(?:a+)+$", ["aaaa"]],
  ["\\bfoo\\B", ["foox", "foo x"]],
  ["[\\u00e9-\\u00ff]+", ["éü"]],
  ["\\uD83D\\uDE00", ["😀"]],
  ["x*?", ["xxx"]],
  ["(x)?\\1y", ["y", "xxy"]],
  // invalid in V8
  ["(", []], [")", []], ["[a", []], ["a**", []], ["*", []], ["+a", []], ["{1}", []], ["a{2,1}", []],
  ["(?<n>a)(?<n>b)", []], ["\\", []], ["(?i)a", []], ["[z-a]", []], ["^*", []], ["(?<=a)+", []],
  ["\\k<x>(?<y>.)", []], ["(?<1a>x)", []], ["a)", []], ["(?<a>x", []], ["x{1}{2}", []], ["\\b+", []],
];
const REGEX_ATOMS = ["a", "b", "\\d", "\\w", ".", "[a-c]", "[^b]", "(a|b)", "(?:ab)", "(?=a)", "(?!b)", "(?<=a)",
  "(?<!a)", "\\1", "(x)", "(?<n>y)", "\\k<n>", "^", "$", "\\b", "{", "}", "]", "\\.", "-", "é"];
const REGEX_QUANTIFIERS = ["", "", "", "", "*", "+", "?", "*?", "+?", "??", "{2}", "{1,2}", "{0,}", "{2,1}"];
const REGEX_INPUTS = ["", "a", "ab", "aab", "abc", "ba", "xyx", "a.b", "aaab", "12ab", "a-b", "y", "xx", "éa", "a{b}", "]"];

function generatedRegex() {
  let pattern = "";
  for (const _ of range(1 + Math.floor(random() * 4))) {
    let atom = pick(REGEX_ATOMS);
    if (random() < 0.15) atom = `(${atom}|${pick(REGEX_ATOMS)})`;
    pattern += atom + pick(REGEX_QUANTIFIERS);
  }
  return pattern;
}

// ---- whole rules through routing-utils ---------------------------------------------------

const ajv = new Ajv({ allErrors: false });
const SCHEMAS = {
  redirects: ajv.compile(routing.redirectsSchema),
  rewrites: ajv.compile(routing.rewritesSchema),
  headers: ajv.compile(routing.headersSchema),
};

/** What Vercel makes of a one-rule file: refused at deploy, or the route it compiles to. */
function ruleCase(list, rule) {
  const invalid = { kind: "rule", list, rule, expect: { valid: false } };
  if (!SCHEMAS[list]([rule])) return invalid;
  let result;
  try {
    result = routing.getTransformedRoutes({ [list]: [JSON.parse(JSON.stringify(rule))] });
  } catch {
    return invalid;
  }
  if (result.error) return invalid;
  const route = result.routes.find((r) => r.src);
  const expect = { valid: true, src: route.src };
  if (list === "redirects") {
    expect.location = route.headers.Location;
    expect.status = route.status;
  } else if (list === "rewrites") {
    expect.dest = route.dest;
  } else {
    expect.headers = Object.entries(route.headers);
  }
  return { kind: "rule", list, rule, expect };
}

const GB = { type: "header", key: "x-vercel-ip-country", value: "GB" };
const RULES = [
  // redirects
  ["redirects", { source: "/me", destination: "/profile.html" }],
  ["redirects", { source: "/user", destination: "/api/user", permanent: false }],
  ["redirects", { source: "/view-source", destination: "https://github.com/vercel/vercel" }],
  ["redirects", { source: "/:path((?!uk/).*)", has: [GB], destination: "/uk/:path*", permanent: false }],
  ["redirects", { source: "/old-api/:path*", destination: "/api/:path*", permanent: true }],
  ["redirects", { source: "/a", destination: "/b", statusCode: 301 }],
  ["redirects", { source: "/a", destination: "/b", statusCode: 302 }],
  ["redirects", { source: "/a", destination: "/b", statusCode: 303 }],
  ["redirects", { source: "/a", destination: "/b", statusCode: 300 }],
  ["redirects", { source: "/a", destination: "/b", statusCode: 200 }],
  ["redirects", { source: "/a", destination: "/b", statusCode: 600 }],
  ["redirects", { source: "/a", destination: "/b", statusCode: 99 }],
  ["redirects", { source: "/a", destination: "/b", statusCode: 301, permanent: true }],
  ["redirects", { source: "/a", destination: "/b", permanent: "yes" }],
  ["redirects", { source: "/blog/:slug", destination: "/news/:slug" }],
  ["redirects", { source: "/blog/:slug", destination: "/news/:other" }],
  ["redirects", { source: "/blog/:slug", destination: "/news?s=:slug" }],
  ["redirects", { source: "/blog/:slug", destination: "/news?s=:nope" }],
  ["redirects", { source: "/blog/:slug", destination: "/news#:slug" }],
  ["redirects", { source: "/c/:id", destination: "/d/{:id}/e" }],
  ["redirects", { source: "/c/:id", destination: "/d/{:id}/e#x" }],
  ["redirects", { source: "/f/:id", destination: "https://:id.example.com/" }],
  ["redirects", { source: "/f/:id", destination: "https://:id.example.com/x/:id?q=:id" }],
  ["redirects", { source: "/(.*)", destination: "/$1" }],
  ["redirects", { source: "/(.*)/(.*)", destination: "/$2/$1" }],
  ["redirects", { source: "/a-:x+", destination: "/b/:x" }],
  ["redirects", { source: "/s/:q", destination: "/search?q=:q&next=/a/b&x" }],
  ["redirects", { source: "/s", destination: "/search?next=/a/b&x" }],
  ["redirects", { source: "/p/:p", destination: "/x?price=%2450&p=:p" }],
  ["redirects", { source: "/(.*)", has: [{ type: "host", value: "(?<sub>[a-z]+)\\.example\\.com" }], destination: "https://:sub.example.org/$1?from=:host" }],
  ["redirects", { source: "/(.*)", has: [{ type: "host", value: "example.com" }], destination: "/$1?h=:host" }],
  ["redirects", { source: "/a", has: [{ type: "query", key: "ref" }], destination: "/b/:ref" }],
  ["redirects", { source: "/a", has: [{ type: "header", key: "x-user-id" }], destination: "/u?id=:x-user-id" }],
  ["redirects", { source: "/a", has: [{ type: "cookie", key: "plan", value: "(?<plan>pro|team)" }], destination: "/plan/:plan" }],
  ["redirects", { source: "/a", has: [{ type: "query", key: "v", value: { pre: "v", ninc: ["v0"] } }], destination: "/pre" }],
  ["redirects", { source: "/a", has: [{ type: "query", key: "v", value: { re: "(?<ver>v\\d)" } }], destination: "/r/:ver" }],
  ["redirects", { source: "/a", has: [{ type: "header", key: "x-n", value: { gte: 2, lt: 10 } }], destination: "/range" }],
  ["redirects", { source: "/a", has: [{ type: "query", key: "z", value: { eq: 1 } }], destination: "/eq" }],
  ["redirects", { source: "/a", has: [{ type: "query", key: "z", value: {} }], destination: "/empty" }],
  ["redirects", { source: "/a", has: [{ type: "query", key: "z", value: { like: "x" } }], destination: "/like" }],
  ["redirects", { source: "/a", has: [{ type: "host" }], destination: "/nohost" }],
  ["redirects", { source: "/a", has: [{ type: "ip", key: "x" }], destination: "/ip" }],
  ["redirects", { source: "/a", has: [{ type: "query" }], destination: "/nokey" }],
  ["redirects", { source: "/a", has: range(16).map((i) => ({ type: "query", key: `k${i}` })), destination: "/16" }],
  ["redirects", { source: "/a", has: range(17).map((i) => ({ type: "query", key: `k${i}` })), destination: "/17" }],
  ["redirects", { source: "/a", missing: range(17).map((i) => ({ type: "query", key: `k${i}` })), destination: "/17" }],
  ["redirects", { source: "/a/(", destination: "/b" }],
  ["redirects", { source: "/a/**", destination: "/b" }],
  ["redirects", { source: "/a", destination: "/b", desination: "/c" }],
  ["redirects", { source: "/a" }],
  ["redirects", { source: "/x/:a(\\d+)/:b", destination: "/y/:b/:a" }],
  ["redirects", { source: "/docs/:page?", destination: "/d/:page" }],
  ["redirects", { source: "/docs/:page?", destination: "/d?p=:page" }],
  ["redirects", { source: "/:a/:b", destination: "/:b/:a#frag" }],
  ["redirects", { source: "/q/:id", destination: "/Q/:id?a=1&a=2&b" }],
  ["redirects", { source: "/n/:n", destination: "/:n/'quoted'" }],
  ["redirects", { source: "/n/:n", destination: "/:n/{braces}" }],
  ["redirects", { source: "/x", destination: "/{braces}" }],
  ["redirects", { source: "/t/:t", destination: "/t.:t" }],
  ["redirects", { source: "/t/:t", destination: "https://API.Example.com:8443/:t" }],
  ["redirects", { source: "/a/:b", destination: "/c/:b?x=:b&x=2#h-:b" }],
  ["redirects", { source: "/a/:b", destination: "/c/:b?1=x&b=y&0=z" }],
  ["redirects", { source: "/:a", destination: "https://ext.example/?q=:a#:a" }],
  ["redirects", { source: "/:a", destination: "/x/:a+" }],
  ["redirects", { source: "/:a", destination: "/x/:a?" }],
  ["redirects", { source: "/:a", destination: "/x/:a*suffix" }],
  ["redirects", { source: "/(.*)", destination: "/x/:nope" }],
  ["redirects", { source: "/(.*)", destination: "/x/$1?y=$1" }],
  ["redirects", { source: "/:a", destination: "/x\\:y/:a" }],
  ["redirects", { source: "/p/:id", has: [{ type: "query", key: "id", value: "(?<id>\\d+)" }], destination: "/q/:id" }],
  ["redirects", { source: "/p", has: [{ type: "header", key: "x-a", value: "(?<a>.+)" }], destination: "/q?a=:a" }],
  ["redirects", { source: "/p", missing: [{ type: "cookie", key: "seen" }], destination: "/q" }],
  ["redirects", { source: "/a", destination: "/b?c" }],
  ["redirects", { source: "/a/:x", destination: "/b#c?d#e:x" }],
  ["redirects", { source: "/a/:x", destination: "/b/:x/" }],
  ["redirects", { source: "/a/:x", destination: "/b%20c/:x?q=%20+x" }],
  ["redirects", { source: "/a/:x", destination: "HTTP://Ext.Example/:x" }],
  ["redirects", { source: "/a/:x", destination: "https://ext.example:8080" }],
  ["redirects", { source: "/a/:x", destination: "//ext.example/:x" }],
  ["redirects", { source: "/a/:x", destination: "b/:x" }],
  ["redirects", { source: "/a", destination: "mailto:x@example.com" }],
  // rewrites
  ["rewrites", { source: "/(.*)", destination: "/x/:nope" }],
  ["rewrites", { source: "/a", destination: "/b?c" }],
  ["rewrites", { source: "/a", has: [{ type: "query", key: "a.b" }], destination: "/b" }],
  ["rewrites", { source: "/a/:x", has: [{ type: "query", key: "x" }], destination: "/b" }],
  ["rewrites", { source: "/a/:x/(.*)", destination: "/b#:x" }],
  ["rewrites", { source: "/a/:x", destination: "https://:x.example/" }],
  ["rewrites", { source: "/api/:path*", destination: "https://api.example.com/:path*" }],
  ["rewrites", { source: "/resize/:width/:height", destination: "/api/sharp" }],
  ["rewrites", { source: "/blog/:slug", destination: "/api/posts" }],
  ["rewrites", { source: "/blog/:slug", destination: "/api/posts/:slug" }],
  ["rewrites", { source: "/blog/:slug", destination: "/api/posts?s=:slug" }],
  ["rewrites", { source: "/blog/:slug", destination: "/api/posts?slug=x" }],
  ["rewrites", { source: "/docs/:page?", destination: "/api/docs" }],
  ["rewrites", { source: "/(.*)", destination: "/api/$1" }],
  ["rewrites", { source: "/(.*)", destination: "/api/edge" }],
  ["rewrites", { source: "/u/:id/(.*)", destination: "/api/users" }],
  ["rewrites", { source: "/a", has: [{ type: "header", key: "x-user-id" }], destination: "/api/u" }],
  ["rewrites", { source: "/a", has: [{ type: "header", key: "X-Tenant", value: "(?<tenant>[a-z]+)" }], destination: "/api/:tenant" }],
  ["rewrites", { source: "/a", has: [{ type: "host", value: "(?<sub>[a-z]+)\\.example\\.com" }], destination: "/api/x" }],
  ["rewrites", { source: "/app/:path*", has: [{ type: "cookie", key: "plan" }], missing: [{ type: "cookie", key: "legacy" }], destination: "/api/:plan/:path*" }],
  ["rewrites", { source: "/a", destination: "/b", statusCode: 404 }],
  ["rewrites", { source: "/a/:b", destination: "/c/:d" }],
  ["rewrites", { source: "/v1/:path*", destination: "/api/v1/:path*" }],
  ["rewrites", { source: "/:lang(en|fr)/:rest*", destination: "/api/:rest*?lang=:lang" }],
  ["rewrites", { source: "/:path((?!uk/).*)", destination: "/api/:path" }],
  // headers
  ["headers", { source: "/(.*)", headers: [{ key: "X-Frame-Options", value: "DENY" }] }],
  ["headers", { source: "/static/:file", headers: [{ key: "X-File", value: "file=:file" }] }],
  ["headers", { source: "/u/(\\d+)", headers: [{ key: "x-id", value: "id=$1" }] }],
  ["headers", { source: "/u/:id", headers: [{ key: "x-id", value: "id=$1 :id :other" }] }],
  ["headers", { source: "/a", has: [{ type: "query", key: "v", value: "(?<v>.*)" }], headers: [{ key: "x-v", value: "v=:v" }] }],
  ["headers", { source: "/a", has: [{ type: "query", key: "v" }], headers: [{ key: "x-v", value: "v=:v" }] }],
  ["headers", { source: "/a/:p*", headers: [{ key: "x-p", value: ":p* and :p+ and :p? (x) {y}" }] }],
  ["headers", { source: "/a", headers: [{ key: "Cache-Control", value: "public, max-age=60" }] }],
  ["headers", { source: "/a", headers: [] }],
  ["headers", { source: "/a/:n", headers: [{ key: "x-price", value: "$5 or $1 or $n" }] }],
  ["headers", { source: "/a/:n", headers: [{ key: "link", value: "</:n>; rel=preload" }] }],
  ["headers", { source: "/a/:n", has: [{ type: "cookie", key: "c" }], headers: [{ key: "x-c", value: ":c:n" }] }],
  ["headers", { source: "/a", headers: [{ key: "bad key", value: "v" }] }],
  ["headers", { source: "/a", headers: [{ key: "x" }] }],
];

const DESTINATIONS = ["/x/:a", "/x/:b?q=:a", "/x", "/x?y=1", "https://ext.example/:a*", "/:a/:b/:c", "/x#:b", "/$1",
  "/x/{:a}", "/x?a=:a&b=:b", "/x/:a.html", "https://:a.example/", "/x?next=/:a", "/x/:zz"];
const HAS = [undefined, [{ type: "query", key: "q" }], [{ type: "header", key: "x-h", value: "(?<hv>\\d+)" }],
  [{ type: "host", value: "(?<sub>[^.]+)\\.example\\.com" }], [{ type: "cookie", key: "c", value: { pre: "p" } }]];

function generatedRule() {
  const list = pick(["redirects", "rewrites", "headers"]);
  const names = ["a", "b", "c"];
  let source = "";
  for (const _ of range(1 + Math.floor(random() * 3))) {
    const name = names.shift();
    source += "/" + pick([name ? `:${name}` : "x", name ? `:${name}?` : "y", name ? `:${name}*` : "z", "lit", "(\\d+)"]);
  }
  const rule = { source };
  const has = pick(HAS);
  if (has) rule.has = has;
  if (list === "headers") rule.headers = [{ key: "x-gen", value: pick(["v=:a", "$1-:b", "fixed", ":hv:sub:q", "a:b"]) }];
  else rule.destination = pick(DESTINATIONS);
  if (list === "redirects" && random() < 0.3) rule.permanent = false;
  return [list, rule];
}

// ---- the corpus --------------------------------------------------------------------------

function build() {
  const cases = [];
  for (const sources of Object.values(SOURCES)) {
    for (const source of sources) {
      for (const path of [...PATHS.filter((_, i) => i % 7 === source.length % 7), ...pathsFor(source, 6)]) {
        cases.push(matchCase(source, path));
      }
    }
  }
  for (const _ of range(140)) {
    const source = generatedSource();
    for (const path of pathsFor(source, 6)) cases.push(matchCase(source, path));
  }
  for (const [pattern, inputs] of REGEXES) {
    if (inputs.length === 0) cases.push(regexCase(pattern, ""));
    for (const input of inputs) cases.push(regexCase(pattern, input));
  }
  for (const _ of range(250)) {
    const pattern = generatedRegex();
    for (const _ of range(2)) cases.push(regexCase(pattern, pick(REGEX_INPUTS)));
  }
  for (const [list, rule] of RULES) cases.push(ruleCase(list, rule));
  for (const _ of range(150)) cases.push(ruleCase(...generatedRule()));
  const seen = new Set();
  return cases.filter((c) => {
    const key = JSON.stringify([c.kind, c.source ?? c.pattern ?? c.list, c.path ?? c.input ?? c.rule]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const versions = {
  "path-to-regexp": require("path-to-regexp/package.json").version,
  "@vercel/routing-utils": require("@vercel/routing-utils/package.json").version,
  ajv: require("ajv/package.json").version,
  node: process.version,
};
const cases = build();
const text =
  JSON.stringify({ generator: "edge/src/core/rules/testdata/oracle.mjs", versions: { "path-to-regexp": versions["path-to-regexp"], "@vercel/routing-utils": versions["@vercel/routing-utils"], ajv: versions.ajv } })
    .slice(0, -1) +
  ',"cases":[\n' +
  cases.map((c) => JSON.stringify(c)).join(",\n") +
  "\n]}\n";
if (process.argv.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(OUT, "utf8");
  } catch {}
  if (current !== text) {
    console.log(`oracle.json is stale: regenerate it with node ${fileURLToPath(import.meta.url)}`);
    process.exit(1);
  }
  console.log(`oracle.json is fresh: ${cases.length} cases answered by path-to-regexp ${versions["path-to-regexp"]}, @vercel/routing-utils ${versions["@vercel/routing-utils"]} and V8 (Node ${versions.node})`);
} else {
  writeFileSync(OUT, text);
  console.log(`wrote ${cases.length} cases to ${OUT}`);
}
