/**
 * One shape at one size, in a process of its own so its peak RSS is netpol's alone: validate,
 * cold apply, no-op re-apply and a one-line change, each timed from reading the policy file to
 * the verified apply. It also writes the rendered files the floor runs. Prints one JSON line.
 *
 * Started by bench/apply.ts with: {policy, changed, netns, stateDir, keyDir, out}.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { applySite } from "../src/apply/apply.js";
import { compileSite } from "../src/compile/compile.js";
import type { SiteState } from "../src/compile/desired.js";
import { parsePolicy } from "../src/policy/load.js";
import { renderSiteFiles } from "../src/render/site-files.js";
import { readPrivateKeys } from "../src/system/private-keys.js";
import { createRunner } from "../src/system/runner.js";

interface Job {
  readonly policy: string;
  readonly changed: string;
  readonly netns: string;
  readonly stateDir: string;
  readonly keyDir: string;
  /** The rendered files of both policies go to out/policy and out/changed. */
  readonly out: string;
}

const SITE = "r";
const job = JSON.parse(process.argv[2] ?? "{}") as Job;
const rssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

async function load(file: string) {
  const text = await readFile(file, "utf8");
  return { ...parsePolicy(text, path.basename(file)), keyDir: job.keyDir, site: SITE };
}

async function render(state: SiteState, dir: string): Promise<void> {
  const files = renderSiteFiles(state, await readPrivateKeys(state, job.keyDir));
  for (const [name, text] of files) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text, { mode: 0o600 });
  }
}

/** Milliseconds from reading the file to the verified apply, and what it cost. */
async function apply(file: string) {
  const runner = createRunner(job.netns);
  const t0 = performance.now();
  const policy = await load(file);
  const validated = performance.now() - t0;
  const result = await applySite(
    { runner, stateDir: job.stateDir, scope: job.netns },
    policy,
    "bench",
  );
  return {
    ms: performance.now() - t0,
    validateMs: validated,
    processes: runner.spawned,
    changes: result.plan.changes.length,
  };
}

const t0 = performance.now();
const state = compileSite((await load(job.policy)).intent, SITE);
const validateMs = performance.now() - t0;
const validateRssMb = rssMb();
await render(state, path.join(job.out, "policy"));
await render(compileSite((await load(job.changed)).intent, SITE), path.join(job.out, "changed"));
const cold = await apply(job.policy);
const noop = await apply(job.policy);
const change = await apply(job.changed);
process.stdout.write(
  `${JSON.stringify({ validateMs, validateRssMb, cold, noop, change, rssMb: rssMb() })}\n`,
);
