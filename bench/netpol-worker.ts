/**
 * One netpol operation in a process of its own, as the CLI runs it, so its peak RSS is that
 * operation's alone. Prints one JSON line. Started (bundled) by bench/apply.ts with a job:
 *
 * - `{op: "validate", policy, keyDir, render?: {changed, out}}`: validates and compiles `policy`,
 *   timed in full and by share (the YAML read, from the text in memory to the plain data, with
 *   parsePolicy's size check of well under a ms; the schema; resolving and the checks;
 *   compiling), and with `render` writes the rendered files of both policies to out/policy and
 *   out/changed for the floor;
 * - `{op: "apply", policy, netns, stateDir, keyDir}`: applies `policy` as `netpol apply` does,
 *   timed from reading the file to the verified apply, so it includes validation (also reported
 *   on its own as validateMs; cpuMs and validateCpuMs are the same spans in this process's CPU
 *   time, without the tools') or, for a text the last apply applied, reading the state that
 *   apply compiled (src/apply/state/compiled-cache.ts).
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { applySite } from "../src/apply/apply.js";
import { fromFile } from "../src/apply/source/file.js";
import { targetOf } from "../src/apply/target.js";
import { compileSite } from "../src/compile/compile.js";
import type { SiteState } from "../src/compile/desired.js";
import { type PolicyStep, parsePolicy } from "../src/policy/load.js";
import { renderSiteFiles } from "../src/render/site-files.js";
import { readPrivateKeys } from "../src/system/private-keys.js";
import { createRunner } from "../src/system/runner.js";

type Job =
  | {
      op: "validate";
      policy: string;
      keyDir: string;
      render?: { changed: string; out: string };
    }
  | { op: "apply"; policy: string; netns: string; stateDir: string; keyDir: string };

const SITE = "r";
const job = JSON.parse(process.argv[2] ?? "{}") as Job;

// As bin/netpol.js gives the CLI (its node flags are gone): `gc` made on first use, so an apply
// here collects once after validating, as `netpol apply` does (src/apply/site/plan-site.ts).
globalThis.gc = (() => {
  setFlagsFromString("--expose-gc");
  globalThis.gc = runInNewContext("gc");
  globalThis.gc?.();
}) as typeof globalThis.gc;
/** This process's CPU time (every thread of it, not the tools it starts), in ms. */
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
const rssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

/** parsePolicy's steps, with the file read before them and the parse and compile after them. */
type Step = "read" | PolicyStep | "parsed" | "compiled";

async function compiled(file: string, lap?: (step: Step) => void): Promise<SiteState> {
  const text = await readFile(file, "utf8");
  lap?.("read");
  const { intent } = parsePolicy(text, path.basename(file), { lap });
  lap?.("parsed");
  const state = compileSite(intent, SITE);
  lap?.("compiled");
  return state;
}

async function render(state: SiteState, dir: string): Promise<void> {
  const files = renderSiteFiles(state, await readPrivateKeys(state, job.keyDir));
  for (const [name, text] of files) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text, { mode: 0o600 });
  }
}

async function run(): Promise<object> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  if (job.op === "validate") {
    const at = new Map<Step, number>();
    const state = await compiled(job.policy, (step) => at.set(step, performance.now()));
    const rss = rssMb();
    if (job.render) {
      await render(state, path.join(job.render.out, "policy"));
      await render(await compiled(job.render.changed), path.join(job.render.out, "changed"));
    }
    const time = (step: Step) => at.get(step) ?? Number.NaN;
    return {
      ms: time("compiled") - t0,
      yamlMs: time("yaml") - time("read"),
      schemaMs: time("schema") - time("yaml"),
      resolveMs: time("parsed") - time("schema"),
      compileMs: time("compiled") - time("parsed"),
      rssMb: rss,
    };
  }
  const runner = createRunner(job.netns);
  const target = targetOf(runner, job.stateDir);
  // As `netpol apply` does: the apply asks for the policy once its live read is under way.
  let validateMs = Number.NaN;
  let validateCpuMs = Number.NaN;
  let cached = false;
  const result = await applySite(
    target,
    async () => {
      const t = performance.now();
      const cpu = process.cpuUsage();
      const policy = await fromFile(target.files, job.policy, { site: SITE, keyDir: job.keyDir });
      validateMs = performance.now() - t;
      validateCpuMs = cpuMs(process.cpuUsage(cpu));
      cached = "cached" in policy;
      return policy;
    },
    "bench",
  );
  return {
    ms: performance.now() - t0,
    cpuMs: cpuMs(process.cpuUsage(cpu0)),
    validateCpuMs,
    validateMs,
    cached,
    processes: runner.spawned,
    changes: result.plan.changes.length,
    rssMb: rssMb(),
  };
}

process.stdout.write(`${JSON.stringify(await run())}\n`);
