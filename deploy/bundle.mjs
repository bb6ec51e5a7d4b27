// Bundles the CLI and its dependencies into lib/, so that the package runs with Node alone and
// `netpol validate` reads one file instead of resolving hundreds (zod alone is ~400 modules). It
// reads the TypeScript sources itself (esbuild strips the types; `npm run typecheck` checks
// them), so lib/ does not wait for tsc: `npm run test:unit` bundles in a second and runs what
// ships.
//
// The CLI is one CommonJS file, lib/main.cjs, because Node 20 can load a V8 code cache only for
// a script it compiles through node:vm, never for an ES module: bin/netpol.js compiles it with
// the cache this script writes beside it (lib/main.cjs.v8cache), so a command starts without
// parsing or compiling what the cache holds. The commands' modules are still evaluated only when
// that command runs (esbuild turns each `await import()` into a lazy initialiser).

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { build } from "esbuild";
import { BUNDLE_BANNER, bundleDefine } from "./bundle-banner.mjs";
import { bundleClient } from "./client-bundle.mjs";

await rm("lib", { recursive: true, force: true });
const define = { ...(await bundleDefine()), __NETPOL_YAML__: JSON.stringify("./yaml.cjs") };

const main = await build({
  entryPoints: ["src/cli/main.ts"],
  outfile: "lib/main.cjs",
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  logLevel: "warning",
  write: false,
  // Without comments and indentation the file is a third smaller; ASCII alone (esbuild escapes
  // strings, not regular expressions or comments) keeps V8's source string one byte a character,
  // which Node reads three times faster than a two-byte one.
  minifyWhitespace: true,
  legalComments: "none",
  charset: "ascii",
  banner: { js: "const __netpolUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: { ...define, "import.meta.url": "__netpolUrl" },
});
const code = main.outputFiles[0].text;
// Its last line names this build's code and how to read it: bin/netpol.js uses a code cache only
// if it names the same code, and reads an ASCII file as Latin-1, which costs less than UTF-8.
const ascii = Buffer.byteLength(code) === code.length;
if (!ascii) {
  const at = [...code].findIndex((c) => c.charCodeAt(0) > 0x7f);
  console.warn(
    `deploy/bundle.mjs: lib/main.cjs is not ASCII (at ${JSON.stringify(code.slice(at - 40, at + 10))}): write the character as \\u…, or start-up slows`,
  );
}
const id = createHash("sha256").update(code).digest("hex");
await mkdir("lib", { recursive: true });
await writeFile("lib/main.cjs", `${code}//# netpol-bundle ${id} ${ascii ? "latin1" : "utf8"}\n`);

// The server validates policies in a worker thread, which loads its own entry file.
await build({
  entryPoints: { "validate-worker": "src/server/validate-worker.ts" },
  outdir: "lib",
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  logLevel: "warning",
  banner: { js: BUNDLE_BANNER },
  define,
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

// The code cache: what V8 compiled while validating the example policy, written by bin/netpol.js
// as it exits. Node runs it as a user would (no NODE_OPTIONS: V8 refuses a cache made under other
// flags). Without it every command still runs, compiling as it goes.
const { NODE_OPTIONS: _, ...env } = process.env;
const made = spawnSync(
  process.execPath,
  ["bin/netpol.js", "validate", "policies/a-vlan-via-vpn.yaml"],
  {
    env: { ...env, NETPOL_CODE_CACHE_OUT: "lib/main.cjs.v8cache" },
    stdio: ["ignore", "ignore", "inherit"],
  },
);
if (made.status !== 0)
  console.warn(`deploy/bundle.mjs: no code cache (validate exited ${made.status})`);
