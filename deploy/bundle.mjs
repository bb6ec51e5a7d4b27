// Bundles the CLI and its dependencies into lib/, one chunk per command, so that the package
// runs with Node alone and `netpol validate` loads a few files instead of hundreds (zod alone is
// ~400 modules; resolving them cost more than running the command). It reads the TypeScript
// sources itself (esbuild strips the types; `npm run typecheck` checks them), so lib/ does not
// wait for tsc: `npm run test:unit` bundles in half a second and runs what ships.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { build } from "esbuild";
import { BUNDLE_BANNER, bundleDefine } from "./bundle-banner.mjs";
import { bundleClient } from "./client-bundle.mjs";

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
  define: { ...(await bundleDefine()), __NETPOL_YAML__: JSON.stringify("./yaml.cjs") },
});

// The `yaml` package, needed only on the policy reader's error path and by `netpol down`, in a
// file of its own that src/policy/yaml-package.ts requires when first asked: the commands that
// read a policy no longer compile its 250 KB at start-up.
await build({
  entryPoints: { yaml: "yaml" },
  outfile: "lib/yaml.cjs",
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  logLevel: "warning",
});

// The dashboard's own script and stylesheet, served from lib/ui (src/server/dashboard/assets.ts).
const client = await bundleClient();
await mkdir("lib/ui", { recursive: true });
await writeFile("lib/ui/dashboard.js", client.script);
await writeFile("lib/ui/dashboard.css", client.style);
