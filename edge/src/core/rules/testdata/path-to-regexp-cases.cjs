// Regenerates path-to-regexp-6.1.0.json (the reference table of pattern.rs tests):
//   npm install --prefix /tmp/ptr path-to-regexp@6.1.0 && NODE_PATH=/tmp/ptr/node_modules node path-to-regexp-cases.cjs > path-to-regexp-6.1.0.json
const { pathToRegexp } = require('path-to-regexp');
const sources = ["/about", "/blog/:slug", "/docs/:path*", "/docs/:path+", "/docs/:page?", "/item/:id(\\d+)",
  "/(.*)", "/:a(x|y)-(\\d+)", "/file{.:ext}?", "/old{-page}?", "/api/:v.:fmt", "/a/:b-:c", "/x/:p*/edit",
  "/:lang(en|fr)?/home", "/u/:id/posts/:post", "/static/(.*)\\.js", "/caf%C3%A9/:x", "/:a:b", "/(.*)*", "/v/:x.json", "/a\\:b", "/:path(.*)", "/u/:id(\\d+)?", "/{:x}?", "/:x+", "/p/:a?/:b?"];
const paths = ["/about", "/About", "/about/", "/blog/hello", "/blog/a/b", "/blog/", "/docs", "/docs/", "/docs/a",
  "/docs/a/b/c", "/item/42", "/item/abc", "/", "/any/thing", "/y-12", "/x-1", "/file", "/file.png", "/old",
  "/old-page", "/api/v1.json", "/a/b-c", "/a/b-c-d", "/x/edit", "/x/a/b/edit", "/home", "/en/home", "/de/home",
  "/u/7/posts/9", "/static/app.js", "/static/a/b.js", "/caf%C3%A9/1", "/docs//a", "/blog/a%2Fb", "/a:b", "/u", "/u/1", "/u/x", "/p", "/p/1", "/p/1/2", "/v/a.json", "/v/.json"];
const out = [];
for (const s of sources) {
  const keys = [];
  let re;
  try { re = pathToRegexp(s, keys, { strict: true, sensitive: true, delimiter: '/' }); } catch (e) { out.push([s, "ERR"]); continue; }
  for (const p of paths) {
    const m = re.exec(p);
    if (m) out.push([s, p, m.slice(1).map(v => v === undefined ? null : v)]);
  }
}
console.log(JSON.stringify({generator: "path-to-regexp " + require("path-to-regexp/package.json").version + " with Vercel options {strict: true, sensitive: true, delimiter: \"/\"}", sources, paths, matches: out}, null, 0).replace(/\],\[/g, "],\n["));
