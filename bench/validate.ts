/**
 * Validate and compile generated policies of growing size, each size in a fresh plain Node
 * process on the compiled sources (bench/validate-child.mjs), so its peak RSS is its own, and
 * fit the growth exponent over the sizes (time ∝ n^k: k = 1 is linear, n log n fits a little
 * above 1, quadratic is 2). Pure work: no namespace, no root. Needs `npm run build` first
 * (`npm run bench` does it).
 *
 *   npx tsx bench/validate.ts            # up to 10k egresses, 100k networks, 10k hub spokes, 30k mixed
 *   npx tsx bench/validate.ts --quick    # 1k and 10k of egress, hub and mixed (issue 19's target is at 10k), fewer runs
 *   npx tsx bench/validate.ts --json     # one JSON object per row, for a bench harness
 *
 * Shapes: `egress` is one site with n networks, each leaving by its own egress (2n objects);
 * `networks` is one site with n networks and an egress for every ten (1.1n objects);
 * `hub` is a hub-and-spoke tunnel with n spoke sites, compiled for the hub and for one spoke;
 * `mixed` is bench/apply.ts's mixed shape (n objects: a quarter each of networks with an egress,
 * `except` prefixes, ports published to spokes' networks and hub spokes), compiled for the hub
 * and for one spoke. It stops at 30,000: its egresses take two rule priorities each, as above.
 * Times are medians of the runs after the first in one process (the first also pays JIT
 * warm-up; a run in a fresh process is shown apart), wall clock and CPU (user + system, all
 * threads: on a busy machine the wall clock also counts waiting for a CPU). RSS is the peak of
 * a process that validates and compiles once, Node's own (shown as "node alone") included.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { generateKeyPair } from "../src/system/keys.js";
import { egressPolicy, hubPolicy, networksPolicy } from "../test/support/large-policy.js";
import { cliNodeFlags } from "./cli-node-flags.js";
import { makeShape } from "./shapes.js";

/** Runs per process: the first, then the warm ones the medians are of (--quick: 2 of them). */
const RUNS = process.argv.includes("--quick") ? 3 : 4;
const hubKey = generateKeyPair();
const run = promisify(execFile);
const root = path.join(import.meta.dirname, "..");
const child = path.join(import.meta.dirname, "validate-child.mjs");
/** The CLI's node flags: the peak RSS measured is the one `netpol validate` has. */
const nodeFlags = await cliNodeFlags();

interface Run {
  readonly validateMs: number;
  readonly validateCpuMs: number;
  readonly compileMs: number;
  readonly compileCpuMs: number;
}

interface Row {
  readonly shape: string;
  readonly n: number;
  readonly objects: number;
  readonly bytes: number;
  readonly firstMs: number;
  readonly validateMs: number;
  readonly validateCpuMs: number;
  readonly compileMs: number;
  readonly compileCpuMs: number;
  readonly peakRssMb: number;
}

const SHAPES = {
  egress: { generate: egressPolicy, sites: ["home"], objects: (n: number) => 2 * n },
  networks: {
    generate: networksPolicy,
    sites: ["home"],
    objects: (n: number) => n + Math.ceil(n / 10),
  },
  hub: { generate: hubPolicy, sites: ["vps", "s0"], objects: (n: number) => 2 * n + 1 },
  mixed: {
    generate: (n: number) => makeShape("mixed", n, "v", hubKey).policy,
    sites: ["r", "s0"],
    objects: (n: number) => n,
  },
} as const;
type Shape = keyof typeof SHAPES;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function measure(dir: string, shape: Shape, n: number): Promise<Row> {
  const { generate, sites, objects } = SHAPES[shape];
  const text = generate(n);
  const file = path.join(dir, `${shape}-${n}.yaml`);
  await writeFile(file, text);
  const inChild = async (runs: number) => {
    const args = [...nodeFlags, child, file, String(runs), ...sites];
    const { stdout } = await run(process.execPath, args);
    return JSON.parse(stdout) as { runs: Run[]; peakRssMb: number };
  };
  // One run alone for the peak RSS of one validate-and-compile, as a command does it.
  const {
    runs: [first],
    peakRssMb,
  } = await inChild(1);
  const later = (await inChild(RUNS)).runs.slice(1);
  const med = (key: keyof Run) => Math.round(median(later.map((r) => r[key])));
  return {
    shape,
    n,
    objects: objects(n),
    bytes: Buffer.byteLength(text),
    firstMs: Math.round(first?.validateMs ?? 0),
    validateMs: med("validateMs"),
    validateCpuMs: med("validateCpuMs"),
    compileMs: med("compileMs"),
    compileCpuMs: med("compileCpuMs"),
    peakRssMb: Math.round(peakRssMb),
  };
}

/** The exponent k of time ≈ c·n^k, least squares over log–log points. */
function fittedExponent(rows: readonly Row[], time: (r: Row) => number): number {
  const pts = rows.filter((r) => time(r) > 0).map((r) => [Math.log(r.n), Math.log(time(r))]);
  const mean = (i: 0 | 1) => pts.reduce((s, p) => s + (p[i] as number), 0) / pts.length;
  const [mx, my] = [mean(0), mean(1)];
  const num = pts.reduce((s, [x, y]) => s + ((x as number) - mx) * ((y as number) - my), 0);
  const den = pts.reduce((s, [x]) => s + ((x as number) - mx) ** 2, 0);
  return den === 0 ? Number.NaN : num / den;
}

async function main() {
  const args = process.argv.slice(2);
  if (!existsSync(path.join(root, "dist/policy/load.js"))) {
    throw new Error("bench/validate.ts runs on dist/: run `npm run build` first");
  }
  const quick = args.includes("--quick");
  // One egress per network stops near 16,000: every egress takes two of the 32,765 rule
  // priorities. The networks shape (an egress per ten networks) goes to 100,000.
  const sizes: Record<Shape, number[]> = quick
    ? { egress: [1000, 10000], networks: [], hub: [1000, 10000], mixed: [1000, 10000] }
    : {
        egress: [1000, 3000, 10000],
        networks: [1000, 10000, 100000],
        hub: [100, 1000, 10000],
        mixed: [1000, 3000, 10000, 30000],
      };
  const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-bench-validate-"));
  const rows: Row[] = [];
  try {
    for (const shape of Object.keys(SHAPES) as Shape[]) {
      for (const n of sizes[shape]) rows.push(await measure(dir, shape, n));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (args.includes("--json")) {
    for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  const { stdout: alone } = await run(process.execPath, [
    "-e",
    "process.stdout.write(String(Math.round(process.resourceUsage().maxRSS / 1024)))",
  ]);
  const table = [
    "| shape | n | objects | policy bytes | validate, first run (ms) | validate (ms) | validate CPU (ms) | compile (ms) | compile CPU (ms) | peak RSS (MB) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| ${r.shape} | ${r.n} | ${r.objects} | ${r.bytes} | ${r.firstMs} | ${r.validateMs} | ${r.validateCpuMs} | ${r.compileMs} | ${r.compileCpuMs} | ${r.peakRssMb} |`,
    ),
  ];
  process.stdout.write(`${table.join("\n")}\n\nnode alone: peak RSS ${alone} MB\n`);
  for (const shape of Object.keys(SHAPES) as Shape[]) {
    const mine = rows.filter((r) => r.shape === shape);
    if (mine.length < 2) continue;
    const v = fittedExponent(mine, (r) => r.validateCpuMs).toFixed(2);
    const c = fittedExponent(mine, (r) => r.compileCpuMs).toFixed(2);
    process.stdout.write(`${shape}: validate CPU grows as n^${v}, compile CPU as n^${c}\n`);
  }
}

await main();
