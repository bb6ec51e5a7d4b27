// Bundles the compiled CLI (dist/) and its dependencies into lib/, one chunk per command, so
// that the package runs with Node alone and `netpol validate` loads a few files instead of
// hundreds (zod alone is ~400 modules; resolving them cost more than running the command).
import { rm } from "node:fs/promises";
import { build } from "esbuild";
import { BUNDLE_BANNER } from "./bundle-banner.mjs";

await rm("lib", { recursive: true, force: true });

await build({
  // The server validates policies in a worker thread, which loads its own entry file.
  entryPoints: { main: "dist/cli/main.js", "validate-worker": "dist/server/validate-worker.js" },
  outdir: "lib",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  logLevel: "warning",
  banner: { js: BUNDLE_BANNER },
});
