/**
 * netpol against the bare tools, per shape of issue 11, at 1,000 and 10,000 objects. Every
 * shape runs in namespaces made here and removed again, never in the root namespace.
 *
 *   npm run bench:apply -- [--quick] [--shapes a,b] [--sizes 1000,10000] [--profile DIR]
 *
 * Per shape and size: netpol's validate, in a fresh process of the bundled worker, and its
 * shares: the YAML read alone (src/policy/read-yaml.ts, from the text in memory to the plain
 * data: a bound no apply that reads the text can beat, so it is shown against the floor too),
 * the schema, resolving and checks, compiling; its cold apply, no-op re-apply and one-line change
 * (each way), each in a process of its own (the bundled worker with bin/netpol.js's node flags,
 * as the CLI runs) timed from reading the policy to the verified apply, so they include
 * validation but not Node's start-up (the no-op, as `netpol apply` of the policy in force, reads
 * the state its last apply compiled instead: src/apply/state/compiled-cache.ts; the cold apply and the
 * change validate in full);
 * the floor (wireguard-go, `ip -batch`, `sysctl -p`, `nft -f`, `wg setconf` on netpol's own
 * rendered files); the bare change (the live read plus only the lines that differ); one process
 * per kernel object (sampled and scaled beyond PER_OBJECT_SAMPLE); the cold apply's own CPU time
 * beyond validation (the worker's, not the tools': a loaded machine disturbs it less); peak RSS;
 * processes per apply; the nft rule count and the `ip rule` count. Timings are medians of REPS runs, netpol's
 * and the floor's alternating, so a change in the machine's load hits both. `--profile DIR`
 * writes a CPU profile of every worker.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { generateKeyPair } from "../src/system/keys.js";
import { cliNodeFlags } from "./cli-node-flags.js";
import { changeFloor, coldFloor, type PerObject, perObject, readRendered } from "./floor.js";
import { type BenchNs, createBenchNs, suffix } from "./namespace.js";
import { makeShape, SHAPES, type Shape, type ShapeName } from "./shapes.js";
import { bundleWorker } from "./worker-bundle.js";

const argv = process.argv.slice(2);
const option = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = argv.includes("--quick");
const sizes = (option("--sizes") ?? (quick ? "1000" : "1000,10000")).split(",").map(Number);
const shapes = (option("--shapes")?.split(",") ?? [...SHAPES]) as ShapeName[];
const profileDir = option("--profile");
/** Processes run one by one for the per-object column; beyond this it is sampled and scaled. */
const PER_OBJECT_SAMPLE = quick ? 100 : 200;
/** A worker that takes longer than this is stopped and its row says so. */
const WORKER_TIMEOUT_MS = quick ? 60_000 : 240_000;

/** Each measurement is taken this many times, alternating netpol and the floor; the median counts. */
const REPS = quick ? 1 : 3;

interface Applied {
  readonly ms: number;
  /** Reading and validating the policy, or reading the state cached by the apply before. */
  readonly validateMs: number;
  /** Whether the policy came from that cache: only a no-op re-apply's may. */
  readonly cached: boolean;
  readonly processes: number;
  readonly changes: number;
  readonly rssMb: number;
  /** The worker's own CPU time (not the tools'), in all and in validation. */
  readonly cpuMs: number;
  readonly validateCpuMs: number;
}

/** One validate run of the worker: in all, and its shares. */
interface Validated {
  readonly ms: number;
  readonly yamlMs: number;
  readonly schemaMs: number;
  readonly resolveMs: number;
  readonly compileMs: number;
  readonly rssMb: number;
}

interface Netpol {
  /** Each the median of its own over the runs. */
  readonly validate: Validated;
  readonly cold: Applied;
  readonly noop: Applied;
  /** A one-line change, each way (policy → changed → policy). */
  readonly change: Applied;
  /** The highest peak RSS of any apply process. */
  readonly rssMb: number;
}

interface Row {
  readonly shape: Shape;
  readonly netpol: Netpol | string;
  readonly floor: number;
  readonly changeFloor: number;
  readonly perObject: PerObject;
  readonly nftRules: number;
  readonly ipRules: number;
}

class WorkerFailed extends Error {}

async function runWorker<T>(job: object, label: string): Promise<T> {
  const prof = profileDir
    ? ["--cpu-prof", "--cpu-prof-dir", profileDir, "--cpu-prof-name", `${label}.cpuprofile`]
    : [];
  const r = await execa(process.execPath, [...nodeFlags, ...prof, worker, JSON.stringify(job)], {
    reject: false,
    timeout: WORKER_TIMEOUT_MS,
  });
  if (r.timedOut) throw new WorkerFailed(`stopped after ${WORKER_TIMEOUT_MS / 1000} s`);
  if (r.exitCode !== 0)
    throw new WorkerFailed(`failed: ${(r.stderr || r.stdout).split("\n").slice(0, 3).join(" ")}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as T;
}

async function counts(ns: BenchNs): Promise<{ nftRules: number; ipRules: number }> {
  const nft = await ns
    .run(["nft", "-j", "list", "table", "inet", "netpol"])
    .catch(() => '{"nftables":[]}');
  const items = (JSON.parse(nft) as { nftables: Record<string, unknown>[] }).nftables;
  const rules = async (f: string) =>
    (JSON.parse(await ns.run(["ip", f, "-j", "rule", "show"])) as unknown[]).length;
  return {
    nftRules: items.filter((i) => "rule" in i).length,
    ipRules: (await rules("-4")) + (await rules("-6")),
  };
}

/** Runs `work` in a fresh namespace for the shape, and removes it (and its wireguard-go) after. */
async function inNamespace<T>(shape: Shape, work: (ns: BenchNs) => Promise<T>): Promise<T> {
  const ns = await createBenchNs(shape);
  try {
    return await work(ns);
  } finally {
    await ns.destroy();
  }
}

/** The median of each field on its own. */
function medians(runs: readonly Validated[]): Validated {
  const m = (key: keyof Validated) => median(runs, (r) => r[key])[key];
  return {
    ms: m("ms"),
    yamlMs: m("yamlMs"),
    schemaMs: m("schemaMs"),
    resolveMs: m("resolveMs"),
    compileMs: m("compileMs"),
    rssMb: Math.max(...runs.map((r) => r.rssMb)),
  };
}

function median<T>(xs: readonly T[], by: (x: T) => number): T {
  const sorted = [...xs].sort((a, b) => by(a) - by(b));
  const m = sorted[Math.floor((sorted.length - 1) / 2)];
  if (m === undefined) throw new Error("median of nothing");
  return m;
}

async function measure(
  name: ShapeName,
  n: number,
  hubKey: { privateKey: string; publicKey: string },
): Promise<Row> {
  const shape = makeShape(name, n, suffix(), hubKey);
  const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-bench-"));
  const file = (f: string) => path.join(dir, f);
  const label = `${name}-${n}`;
  try {
    await writeFile(file("policy.yaml"), shape.policy);
    await writeFile(file("changed.yaml"), shape.changed);
    for (const [f, text] of shape.keyFiles) await writeFile(file(f), text, { mode: 0o600 });
    const validate = (rep: number, render?: { changed: string; out: string }) =>
      runWorker<Validated>(
        { op: "validate", policy: file("policy.yaml"), keyDir: dir, render },
        `${label}-validate-${rep}`,
      );
    // The first run also renders both policies for the floor.
    const validated = [await validate(0, { changed: file("changed.yaml"), out: dir })];
    const from = await readRendered(file("policy"), shape.wireguard);
    const to = await readRendered(file("changed"), shape.wireguard);
    const cold: Applied[] = [];
    const noop: Applied[] = [];
    const change: Applied[] = [];
    const floor: number[] = [];
    const bare: number[] = [];
    let kernel = { nftRules: 0, ipRules: 0 };
    for (let rep = 0; rep < REPS; rep++) {
      if (rep > 0) validated.push(await validate(rep));
      await inNamespace(shape, async (ns) => {
        const apply = (policy: string, what: string) =>
          runWorker<Applied>(
            {
              op: "apply",
              policy: file(policy),
              netns: ns.name,
              stateDir: file("state"),
              keyDir: dir,
            },
            `${label}-${what}-${rep}`,
          );
        cold.push(await apply("policy.yaml", "cold"));
        kernel = await counts(ns);
        noop.push(await apply("policy.yaml", "noop"));
        change.push(await apply("changed.yaml", "change"));
        change.push(await apply("policy.yaml", "change-back"));
        // A changed text is validated in full, so "(beyond validation)" subtracts a validation.
        if ([...cold, ...change].some((a) => a.cached))
          throw new Error("bench bug: a cold apply or a change used the compiled-policy cache");
      });
      await inNamespace(shape, async (ns) => {
        floor.push(await coldFloor(ns, from, file("policy")));
        bare.push(await changeFloor(ns, from, to, file("changed")));
        bare.push(await changeFloor(ns, to, from, file("policy")));
      });
    }
    // --quick leaves out the slowest column: a few hundred processes, one by one.
    const each = quick
      ? { seconds: Number.NaN, objects: 0, sampled: 0 }
      : await inNamespace(shape, (ns) => perObject(ns, from, file("policy"), PER_OBJECT_SAMPLE));
    const ms = (a: Applied) => a.ms;
    return {
      shape,
      netpol: {
        validate: medians(validated),
        cold: median(cold, ms),
        noop: median(noop, ms),
        change: median(change, ms),
        rssMb: Math.max(...[...cold, ...noop, ...change].map((a) => a.rssMb)),
      },
      floor: median(floor, Number),
      changeFloor: median(bare, Number),
      perObject: each,
      ...kernel,
    };
  } catch (err) {
    if (!(err instanceof WorkerFailed)) throw err;
    const none = { seconds: Number.NaN, objects: 0, sampled: 0 };
    return {
      shape,
      netpol: err.message,
      floor: Number.NaN,
      changeFloor: Number.NaN,
      perObject: none,
      nftRules: 0,
      ipRules: 0,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const s = (ms: number) => (ms / 1000).toFixed(3);
const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

function print(rows: readonly Row[]): void {
  console.log(
    "\n| shape | N | validate s | YAML read alone s | cold apply s | floor s | yaml/floor | cold/floor | (beyond validation) | (beyond validation: netpol's CPU ms) | no-op s | change s | bare change s | change/bare | (beyond validation) | per object s | per object/floor |",
  );
  console.log(`|${" --- |".repeat(1)}${" ---: |".repeat(16)}`);
  for (const r of rows) {
    const head = `| ${r.shape.name} | ${r.shape.objects}`;
    if (typeof r.netpol === "string") {
      console.log(`${head} | ${r.netpol} |${" |".repeat(14)}`);
      continue;
    }
    const p = r.netpol;
    const po = r.perObject;
    const sampled = po.sampled < po.objects ? ` (${po.sampled} of ${po.objects} run, scaled)` : "";
    const bare = (t: Applied) => (t.ms - t.validateMs) / 1000;
    console.log(
      [
        head,
        s(p.validate.ms),
        s(p.validate.yamlMs),
        s(p.cold.ms),
        r.floor.toFixed(3),
        x(p.validate.yamlMs / 1000, r.floor),
        x(p.cold.ms / 1000, r.floor),
        x(bare(p.cold), r.floor),
        (p.cold.cpuMs - p.cold.validateCpuMs).toFixed(0),
        s(p.noop.ms),
        s(p.change.ms),
        r.changeFloor.toFixed(3),
        x(p.change.ms / 1000, r.changeFloor),
        x(bare(p.change), r.changeFloor),
        // --quick does not run the per-object column.
        Number.isNaN(po.seconds) ? "not run" : `${po.seconds.toFixed(2)}${sampled}`,
        `${Number.isNaN(po.seconds) ? "" : x(po.seconds, r.floor)} |`,
      ].join(" | "),
    );
  }
  console.log(
    "\n| shape | N | validate s: YAML / schema / resolve + checks / compile | peak RSS MB: validate / apply | processes: cold / no-op / change | plan changes: cold / change | nft rules | ip rules (v4+v6, with the kernel's 6) |",
  );
  console.log(`|${" --- |".repeat(1)}${" ---: |".repeat(7)}`);
  for (const r of rows) {
    if (typeof r.netpol === "string") continue;
    const p = r.netpol;
    const v = p.validate;
    const shares = [v.yamlMs, v.schemaMs, v.resolveMs, v.compileMs].map(s).join(" / ");
    console.log(
      `| ${r.shape.name} | ${r.shape.objects} | ${shares} | ${v.rssMb} / ${p.rssMb} | ${p.cold.processes} / ${p.noop.processes} / ${p.change.processes} | ${p.cold.changes} / ${p.change.changes} | ${r.nftRules} | ${r.ipRules} |`,
    );
  }
}

const started = Date.now();
const worker = await bundleWorker(path.join(import.meta.dirname, ".."));
const nodeFlags = await cliNodeFlags();
const hubKey = generateKeyPair();
const rows: Row[] = [];
for (const n of sizes) {
  for (const name of shapes) {
    const t0 = Date.now();
    rows.push(await measure(name, n, hubKey));
    console.error(`${name} ${n}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}
await rm(path.dirname(worker), { recursive: true, force: true });
console.log(
  `\n${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), Linux ${os.release()}, Node ${process.version}; load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}; total ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
print(rows);
