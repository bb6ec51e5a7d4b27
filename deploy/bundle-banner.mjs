// Bundled CommonJS dependencies (prom-client, fastify's) call require(), and write-file-atomic
// names its temporary files after __filename: an ESM bundle must give them both.
export const BUNDLE_BANNER =
  "import { createRequire as __netpolRequire } from 'node:module'; import { fileURLToPath as __netpolPath } from 'node:url'; const require = __netpolRequire(import.meta.url); const __filename = __netpolPath(import.meta.url);";

/**
 * What a bundle's code defines: its build id, a hash of every source file, package.json and the
 * lock file (so of the version and the dependencies), which names the state a build compiled
 * (src/apply/policy-cache.ts): a netpol built from anything else never trusts it.
 */
export async function bundleDefine(root = ".") {
  const { createHash } = await import("node:crypto");
  const { readdir, readFile } = await import("node:fs/promises");
  const path = await import("node:path");
  const hash = createHash("sha256");
  const sources = (await readdir(path.join(root, "src"), { recursive: true }))
    .filter((f) => f.endsWith(".ts"))
    .sort();
  for (const file of [
    ...sources.map((f) => path.join("src", f)),
    "package.json",
    "package-lock.json",
  ]) {
    hash.update(`${file}\0`);
    hash.update(await readFile(path.join(root, file)));
    hash.update("\0");
  }
  return { __NETPOL_BUILD__: JSON.stringify(hash.digest("hex").slice(0, 32)) };
}
