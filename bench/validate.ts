/**
 * Validate and compile generated policies of growing size, each size in a fresh process so its
 * peak RSS is its own, and fit the growth exponent over the sizes (time ∝ n^k: k = 1 is linear,
 * n log n fits a little above 1, quadratic is 2). Pure work: no namespace, no root.
 *
 *   npx tsx bench/validate.ts            # 1k, 10k, 100k networks; 100, 1k, 10k hub spokes
 *   npx tsx bench/validate.ts --quick    # 1k and 10k only
 *   npx tsx bench/validate.ts --json     # one JSON object per row, for a bench harness
 *
 * Shapes: `egress` is one site with n networks, each leaving by its own egress (2n objects);
 * `hub` is a hub-and-spoke tunnel with n spoke sites, compiled for the hub and for one spoke.
 * Times are medians of RUNS runs in one process (the first run also counts JIT warm-up, so it
 * is reported apart); RSS is the process's peak, including Node and the loader.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { compileSite } from "../src/compile/compile.js";
import { parsePolicy } from "../src/policy/load.js";
import { egressPolicy, hubPolicy } from "../test/support/large-policy.js";

const RUNS = 3;

interface Row {
  readonly shape: string;
  readonly n: number;
  readonly bytes: number;
  readonly firstMs: number;
  readonly validateMs: number;
  readonly compileMs: number;
  readonly peakRssMb: number;
}

const SHAPES = {
  egress: { generate: egressPolicy, sites: ["home"] },
  hub: { generate: hubPolicy, sites: ["vps", "s0"] },
} as const;
type Shape = keyof typeof SHAPES;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/** One size of one shape, in this process. */
function measure(shape: Shape, n: number): Row {
  const { generate, sites } = SHAPES[shape];
  const text = generate(n);
  const validate: number[] = [];
  const compile: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const t0 = performance.now();
    const { intent } = parsePolicy(text, `${shape}-${n}.yaml`, {
      maxBytes: Number.MAX_SAFE_INTEGER,
    });
    const t1 = performance.now();
    for (const site of sites) compileSite(intent, site);
    validate.push(t1 - t0);
    compile.push(performance.now() - t1);
  }
  return {
    shape,
    n,
    bytes: Buffer.byteLength(text),
    firstMs: Math.round(validate[0] ?? 0),
    validateMs: Math.round(median(validate.slice(1))),
    compileMs: Math.round(median(compile.slice(1))),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
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

async function inChild(shape: Shape, n: number): Promise<Row> {
  const script = fileURLToPath(import.meta.url);
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [...process.execArgv, script, "--one", shape, String(n)],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout) as Row;
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === "--one") {
    process.stdout.write(JSON.stringify(measure(args[1] as Shape, Number(args[2]))));
    return;
  }
  const quick = args.includes("--quick");
  const sizes: Record<Shape, number[]> = quick
    ? { egress: [1000, 10000], hub: [100, 1000] }
    : { egress: [1000, 10000, 100000], hub: [100, 1000, 10000] };
  const rows: Row[] = [];
  for (const shape of Object.keys(SHAPES) as Shape[]) {
    for (const n of sizes[shape]) rows.push(await inChild(shape, n));
  }
  if (args.includes("--json")) {
    for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  const table = [
    "| shape | n | policy bytes | validate (first run) ms | validate ms | compile ms | peak RSS MB |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| ${r.shape} | ${r.n} | ${r.bytes} | ${r.firstMs} | ${r.validateMs} | ${r.compileMs} | ${r.peakRssMb} |`,
    ),
  ];
  process.stdout.write(`${table.join("\n")}\n\n`);
  for (const shape of Object.keys(SHAPES) as Shape[]) {
    const mine = rows.filter((r) => r.shape === shape);
    const v = fittedExponent(mine, (r) => r.validateMs).toFixed(2);
    const c = fittedExponent(mine, (r) => r.compileMs).toFixed(2);
    process.stdout.write(`${shape}: validate grows as n^${v}, compile as n^${c}\n`);
  }
}

await main();
