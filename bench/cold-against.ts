/**
 * A cold `netpol apply` of this tree against the same apply of another commit, alternating in
 * one run, against the floor (issue 19: a cold apply at 10,000 objects, beyond validation,
 * ≤ 1.5× the floor). The before/after claim of a change to the cold apply path comes from here.
 *
 *   npx tsx bench/cold-against.ts REF [--sizes 10000] [--shapes a,b] [--reps 3]
 *
 * REF's src/ (`git archive` into a temporary directory, this tree's node_modules) and this
 * tree's are each bundled with this tree's bench/netpol-worker.ts, as bench/apply.ts bundles it. Each
 * repetition runs REF's cold apply, this tree's and the floor (bench/floor.ts), each in a fresh
 * namespace, in an order that rotates with the repetition, so the machine's load falls on all
 * three alike. "beyond validation" is bench/apply.ts's: the apply less the validation measured
 * inside it (the live read runs during validation). Medians over the repetitions. The floor is
 * mostly the tools' own time, so the ratios to it are of wall time; the last columns are netpol's
 * own CPU time beyond validation (its process, every thread, not the tools), which a loaded
 * machine disturbs less than wall time.
 */
import { execSync } from "node:child_process";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { generateKeyPair } from "../src/system/keys.js";
import { cliNodeFlags } from "./cli-node-flags.js";
import { coldFloor, readRendered } from "./floor.js";
import { createBenchNs, suffix } from "./namespace.js";
import { makeShape, SHAPES, type ShapeName } from "./shapes.js";
import { bundleWorker } from "./worker-bundle.js";

const argv = process.argv.slice(2);
const option = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const ref = argv[0];
if (!ref || ref.startsWith("--"))
  throw new Error("usage: cold-against.ts REF [--sizes N,…] [--shapes a,…] [--reps N]");
const sizes = (option("--sizes") ?? "10000").split(",").map(Number);
const shapes = (option("--shapes")?.split(",") ?? [...SHAPES]) as ShapeName[];
const REPS = Number(option("--reps") ?? 3);

const root = path.join(import.meta.dirname, "..");
const commit = (r: string) =>
  execSync(`git rev-parse --short ${r}`, { cwd: root }).toString().trim();

interface Applied {
  readonly ms: number;
  readonly validateMs: number;
  readonly cached: boolean;
  readonly rssMb: number;
  readonly cpuMs: number;
  readonly validateCpuMs: number;
}

async function run<T>(worker: string, job: object): Promise<T> {
  const r = await execa(process.execPath, [...nodeFlags, worker, JSON.stringify(job)]);
  return JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as T;
}

const median = (xs: readonly number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? Number.NaN;

async function refWorker(): Promise<{ worker: string; dir: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-bench-ref-"));
  execSync(
    `git archive ${ref} src bench deploy package.json package-lock.json | tar -x -C ${dir}`,
    { cwd: root },
  );
  // This tree's worker, so both sides report the same measures.
  await copyFile(
    path.join(root, "bench", "netpol-worker.ts"),
    path.join(dir, "bench", "netpol-worker.ts"),
  );
  return { worker: await bundleWorker(dir, [path.join(root, "node_modules")]), dir };
}

const nodeFlags = await cliNodeFlags();
const before = await refWorker();
const after = await bundleWorker(root);
const hubKey = generateKeyPair();
const head = `${commit("HEAD")}${execSync("git status --porcelain src bench", { cwd: root }).length > 0 ? "+changes" : ""}`;
console.log(
  `\nbefore ${commit(ref)}, after ${head}; ${REPS} repetitions, alternating; ${os.cpus().length} CPUs, load average at the start ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}\n`,
);
console.log(
  "| shape | N | floor s | before: cold s | before: validate s | before: beyond s | after: cold s | after: validate s | after: beyond s | before: beyond/floor | after: beyond/floor | after/before (beyond) | peak RSS MB: before / after | CPU beyond validation ms: before / after | after/before (CPU) |",
);
console.log(`| --- |${" ---: |".repeat(14)}`);
try {
  for (const n of sizes) {
    for (const name of shapes) {
      const shape = makeShape(name, n, suffix(), hubKey);
      const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-bench-"));
      const file = (f: string) => path.join(dir, f);
      try {
        await writeFile(file("policy.yaml"), shape.policy);
        await writeFile(file("changed.yaml"), shape.changed);
        for (const [f, text] of shape.keyFiles) await writeFile(file(f), text, { mode: 0o600 });
        await run(after, {
          op: "validate",
          policy: file("policy.yaml"),
          keyDir: dir,
          render: { changed: file("changed.yaml"), out: dir },
        });
        const rendered = await readRendered(file("policy"), shape.wireguard);
        const runs = { before: [] as Applied[], after: [] as Applied[], floor: [] as number[] };
        const steps = [
          async () =>
            runs.floor.push(await inNs(shape, (ns) => coldFloor(ns, rendered, file("policy")))),
          ...(["before", "after"] as const).map((who) => async () => {
            const worker = who === "before" ? before.worker : after;
            const applied = await inNs(shape, (ns) =>
              run<Applied>(worker, {
                op: "apply",
                policy: file("policy.yaml"),
                netns: ns.name,
                stateDir: file(`state-${ns.name}`),
                keyDir: dir,
              }),
            );
            if (applied.cached)
              throw new Error("bench bug: a cold apply used the compiled-policy cache");
            runs[who].push(applied);
          }),
        ];
        for (let rep = 0; rep < REPS; rep++) {
          for (let i = 0; i < steps.length; i++) await steps[(i + rep) % steps.length]?.();
        }
        const floor = median(runs.floor);
        const cold = (who: "before" | "after") => median(runs[who].map((a) => a.ms)) / 1000;
        const validate = (who: "before" | "after") =>
          median(runs[who].map((a) => a.validateMs)) / 1000;
        const beyond = (who: "before" | "after") =>
          median(runs[who].map((a) => a.ms - a.validateMs)) / 1000;
        const cpu = (who: "before" | "after") =>
          median(runs[who].map((a) => a.cpuMs - a.validateCpuMs));
        const rss = (who: "before" | "after") => Math.max(...runs[who].map((a) => a.rssMb));
        const s = (x: number) => x.toFixed(3);
        const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
        console.log(
          `| ${name} | ${n} | ${s(floor)} | ${s(cold("before"))} | ${s(validate("before"))} | ${s(beyond("before"))} | ${s(cold("after"))} | ${s(validate("after"))} | ${s(beyond("after"))} | ${x(beyond("before"), floor)} | ${x(beyond("after"), floor)} | ${x(beyond("after"), beyond("before"))} | ${rss("before")} / ${rss("after")} | ${cpu("before").toFixed(0)} / ${cpu("after").toFixed(0)} | ${x(cpu("after"), cpu("before"))} |`,
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
} finally {
  await rm(before.dir, { recursive: true, force: true });
  await rm(path.dirname(before.worker), { recursive: true, force: true });
  await rm(path.dirname(after), { recursive: true, force: true });
}
console.log(
  `\n(load average at the end ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")})`,
);

async function inNs<T>(
  shape: Parameters<typeof createBenchNs>[0],
  work: (ns: Awaited<ReturnType<typeof createBenchNs>>) => Promise<T>,
): Promise<T> {
  const ns = await createBenchNs(shape);
  try {
    return await work(ns);
  } finally {
    await ns.destroy();
  }
}
