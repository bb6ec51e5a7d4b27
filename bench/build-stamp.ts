import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

/** What `npm run build` reads: its outputs (dist/ by tsc, lib/ by esbuild) follow from these. */
const INPUTS = [
  "src",
  "deploy",
  "package.json",
  "package-lock.json",
  "tsconfig.json",
  "tsconfig.build.json",
];

/** Written into lib/ after a build of these inputs; `deploy/bundle.mjs` empties lib/ first, so any other build removes it. */
const STAMP = "lib/.bench-build";

async function inputsHash(root: string): Promise<string> {
  const hash = createHash("sha256");
  for (const input of INPUTS) {
    const at = path.join(root, input);
    const files = input.includes(".")
      ? [input]
      : (await readdir(at, { recursive: true, withFileTypes: true }))
          .filter((e) => e.isFile())
          .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
          .sort();
    for (const file of files) {
      hash.update(`${file}\0`);
      hash.update(await readFile(path.join(root, file)));
      hash.update("\0");
    }
  }
  return hash.digest("hex");
}

/**
 * `npm run build`, unless `onlyIfStale` and dist/ and lib/ were built from the sources as they
 * are (the stamp a build through here left in lib/ names their hash). Says which.
 */
export async function buildIfStale(root: string, onlyIfStale: boolean): Promise<void> {
  const hash = await inputsHash(root);
  const stamp = path.join(root, STAMP);
  const current =
    existsSync(path.join(root, "dist/cli/main.js")) &&
    existsSync(stamp) &&
    (await readFile(stamp, "utf8")) === hash;
  if (onlyIfStale && current) {
    console.log(
      `(dist/ and lib/ are built from these sources, ${hash.slice(0, 12)}: not built again)`,
    );
    return;
  }
  const start = performance.now();
  const r = spawnSync("npm", ["run", "build"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`npm run build exited ${r.status}`);
  await writeFile(stamp, hash);
  console.log(`(npm run build: ${((performance.now() - start) / 1000).toFixed(1)} s)`);
}
