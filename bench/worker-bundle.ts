import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { build } from "esbuild";
import { BUNDLE_BANNER, bundleDefine } from "../deploy/bundle-banner.mjs";

/**
 * bench/netpol-worker.ts of the tree at `root`, bundled as the CLI is (deploy/bundle.mjs), so
 * its RSS is netpol's and not a TypeScript loader's. Returns the file, in a temporary directory
 * of its own (the caller removes it).
 */
export async function bundleWorker(
  root: string,
  nodePaths: readonly string[] = [],
): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-bench-worker-"));
  const outfile = path.join(dir, "worker.mjs");
  await build({
    entryPoints: [path.join(root, "bench", "netpol-worker.ts")],
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "warning",
    banner: { js: BUNDLE_BANNER },
    define: await bundleDefine(root),
    nodePaths: [...nodePaths],
  });
  return outfile;
}
