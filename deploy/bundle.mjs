// Bundles the CLI and its dependencies into lib/, one chunk per command, so that the package
// runs with Node alone and `netpol validate` loads a few files instead of hundreds (zod alone is
// ~400 modules; resolving them cost more than running the command). It reads the TypeScript
// sources itself (esbuild strips the types; `npm run typecheck` checks them), so lib/ does not
// wait for tsc: `npm run test:unit` bundles in half a second and runs what ships.
import { rm } from "node:fs/promises";
import { build } from "esbuild";
import { BUNDLE_BANNER } from "./bundle-banner.mjs";

await rm("lib", { recursive: true, force: true });

await build({
  // The server validates policies in a worker thread, which loads its own entry file.
  entryPoints: { main: "src/cli/main.ts", "validate-worker": "src/server/validate-worker.ts" },
  outdir: "lib",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  logLevel: "warning",
  banner: { js: BUNDLE_BANNER },
});
