/**
 * `npm run bench`: every benchmark in one run, one after the other so they do not share the
 * CPUs: the apply path against the bare tools (bench/apply.ts), validation scaling, command
 * start-up, the resident's reaction to a device coming back against a one-line script
 * (bench/reaction.ts) and GET /status against bare fastify (bench/status.ts). Arguments (`--quick`, `--shapes`, `--sizes`, `--profile DIR`) go to
 * the apply benchmark; `--quick` also shortens the others. It builds first (`npm run build`);
 * `--quick` skips the build when dist/ and lib/ were built from the sources as they are
 * (bench/build-stamp.ts). The total, the build included, is printed last.
 *
 *   npm run bench              # 1,000 and 10,000 objects
 *   npm run bench -- --quick   # 1,000 objects
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildIfStale } from "./build-stamp.js";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const here = import.meta.dirname;

/** The scripts run in this order; one that is not there (yet) is skipped with a note. */
const parts: { script: string; args: string[]; env?: Record<string, string> }[] = [
  { script: "apply.ts", args },
  { script: "validate.ts", args: quick ? ["--quick"] : [] },
  { script: "startup.ts", args: quick ? ["--quick"] : [], env: quick ? { RUNS: "5" } : {} },
  // Issue 19: the resident's reaction against the one-line script, and /status under load.
  // --quick: 3 returns each (its p99 is then their slowest), the full run 20.
  { script: "reaction.ts", args: [], env: quick ? { RETURNS: "3" } : {} },
  { script: "status.ts", args: [], env: quick ? { BENCH_SECONDS: "1", EXPIRED_MS: "1500" } : {} },
  // One peer (a hub of 1,000 and 10,000) and one line (10,000) changed through the resident.
  { script: "change.ts", args: quick ? ["--quick"] : [] },
];

const started = performance.now();
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
await buildIfStale(path.join(here, ".."), quick);
let failed = false;
for (const part of parts) {
  const file = path.join(here, part.script);
  if (!existsSync(file)) {
    console.log(`\n(bench/${part.script} is not there; skipped)`);
    continue;
  }
  console.log(`\n## bench/${part.script}\n`);
  const start = performance.now();
  const r = spawnSync(process.execPath, ["--import", "tsx", file, ...part.args], {
    stdio: "inherit",
    env: { ...process.env, ...part.env },
  });
  const seconds = ((performance.now() - start) / 1000).toFixed(1);
  console.log(`\n(bench/${part.script}: ${seconds} s; load average ${load()})`);
  if (r.status !== 0) {
    console.error(`bench/${part.script} exited ${r.status}`);
    failed = true;
  }
}
const total = ((performance.now() - started) / 1000).toFixed(1);
console.log(
  `\n(npm run bench${quick ? " -- --quick" : ""}: ${total} s in all; load average ${load()})`,
);
process.exitCode = failed ? 1 : 0;
