// The web app is plain static files (web/dist): served by Workers static assets on Cloudflare and
// by Vercel's CDN, calling the edge on the same origin (/api/*). No dev-only proxy is configured
// on purpose: `scripts/run` serves the built app through the edge, as production does.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    // vega + vega-lite + vega-embed form one lazily loaded chunk (charts only); the chat shell
    // stays small.
    chunkSizeWarningLimit: 1500,
    rolldownOptions: {
      // React libraries mark modules "use client" (a server-components hint); meaningless in a
      // client-only bundle.
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
    },
  },
});
