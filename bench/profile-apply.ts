/**
 * Profiles netpol's apply path alone (validation done once, before): a cold apply and a no-op
 * re-apply of one shape, in a namespace made here. Run under `node --cpu-prof --import tsx`.
 *
 *   node --cpu-prof --import tsx bench/profile-apply.ts egress-per-network 10000
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { applySite } from "../src/apply/apply.js";
import { targetOf } from "../src/apply/target.js";
import { parsePolicy } from "../src/policy/load.js";
import { generateKeyPair } from "../src/system/keys.js";
import { createRunner, withRun } from "../src/system/runner.js";
import { createBenchNs, suffix } from "./namespace.js";
import { makeShape, type ShapeName } from "./shapes.js";

const [name = "egress-per-network", n = "10000"] = process.argv.slice(2);
const shape = makeShape(name as ShapeName, Number(n), suffix(), generateKeyPair());
const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-prof-"));
const ns = await createBenchNs(shape);
try {
  for (const [file, text] of shape.keyFiles)
    await writeFile(path.join(dir, file), text, { mode: 0o600 });
  let t = performance.now();
  const policy = { ...parsePolicy(shape.policy, "policy.yaml"), keyDir: dir, site: "r" };
  const changed = { ...parsePolicy(shape.changed, "changed.yaml"), keyDir: dir, site: "r" };
  console.log(`validate ×2 ${((performance.now() - t) / 1000).toFixed(2)} s`);
  const inner = createRunner(ns.name);
  // Each command's wall time, to tell the tools' share from netpol's own.
  const runner = withRun(inner, async (tool, args, options) => {
    const t0 = performance.now();
    try {
      return await inner.run(tool, args, options);
    } finally {
      const lines = options?.input?.split("\n").length ?? 0;
      console.log(
        `  ${(performance.now() - t0).toFixed(0).padStart(6)} ms  ${tool} ${args.join(" ")} (${lines} lines in)`,
      );
    }
  });
  const target = targetOf(runner, path.join(dir, "state"));
  for (const [what, p] of [
    ["cold", policy],
    ["no-op", policy],
    ["change", changed],
  ] as const) {
    t = performance.now();
    await applySite(target, p, "profile");
    console.log(`${what} ${((performance.now() - t) / 1000).toFixed(2)} s`);
  }
} finally {
  await ns.destroy();
  await rm(dir, { recursive: true, force: true });
}
