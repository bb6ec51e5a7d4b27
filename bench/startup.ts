/**
 * What a command costs before it does any work: wall time of `netpol <command>` against bare
 * `node`, and the import cost of each dependency and each command's module, each in a fresh
 * process (median of RUNS). Issue 11's targets: validate of a small policy < 0.25 s, plan < 0.4 s;
 * issue 19's, against bare node in the same run: validate ≤ 2× `node -e 0`, plan ≤ 3×, on the
 * wall clock (the CPU ratio is printed beside it: on a loaded machine the wall clock also counts
 * waiting for a CPU). Runs the built, bundled CLI (`npm run build` first) and, for comparison,
 * tsc's unbundled output; plan and status read a namespace this script creates and removes.
 * `--quick` (what `npm run bench -- --quick` runs) keeps the rows with a target and leaves out
 * the unbundled runs, help, completion and the import table.
 *
 *   npm run bench:startup            # or: RUNS=21 npx tsx bench/startup.ts
 *   hyperfine -N 'node bin/netpol.js validate policies/a-vlan-via-vpn.yaml'   # the same, by hand
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cliNodeFlags } from "./cli-node-flags.js";

const RUNS = Number(process.env.RUNS ?? 11);
const quick = process.argv.includes("--quick");
const root = fileURLToPath(new URL("../", import.meta.url));
/**
 * bin/netpol.js as its shebang line runs it: node flags there cost start-up time (they once
 * did, 15 ms of CPU: any V8 flag makes Node compile its built-in modules again).
 */
const bin = [...(await cliNodeFlags()), path.join(root, "bin/netpol.js")];
const POLICY = "policies/a-vlan-via-vpn.yaml";
/** tsc's output before deploy/bundle.mjs: one file per module, as node resolves them. */
const UNBUNDLED = "dist/cli/main.js";

if (!existsSync(path.join(root, "dist/cli/main.js"))) {
  throw new Error("dist/ is missing: run `npm run build` first");
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/**
 * One process, spawn to exit: wall time, and the CPU time (user + system) it used, read by
 * GNU time. On this shared machine the wall time swings with the load; the CPU time is the work.
 */
function run(args: string[], env?: NodeJS.ProcessEnv): { wall: number; cpu: number } {
  const start = process.hrtime.bigint();
  const r = spawnSync("/usr/bin/time", ["-f", "@cpu %U %S", process.execPath, ...args], {
    cwd: root,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
  });
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0 && r.status !== 2) {
    throw new Error(`node ${args.join(" ")} exited ${r.status}: ${r.stderr.toString()}`);
  }
  const [user, system] = (/@cpu ([\d.]+) ([\d.]+)/.exec(r.stderr.toString()) ?? []).slice(1);
  return { wall, cpu: (Number(user) + Number(system)) * 1000 };
}

/**
 * Each row's median of RUNS rounds, every round running each row once in turn (after one round
 * not counted, which reads the files into the page cache): bare node and the commands see the
 * same load, which on this shared machine drifts within a run. Rows measured one after another
 * compared the floor of the first second with commands of the next ones.
 */
function measureAlternating(
  rows: { args: string[]; env?: NodeJS.ProcessEnv | undefined }[],
): { wall: number; cpu: number }[] {
  const runs = rows.map(() => [] as { wall: number; cpu: number }[]);
  for (let round = 0; round <= RUNS; round++) {
    rows.forEach((row, i) => {
      const r = run(row.args, row.env);
      if (round > 0) runs[i]?.push(r);
    });
  }
  return runs.map((rs) => ({
    wall: median(rs.map((r) => r.wall)),
    cpu: median(rs.map((r) => r.cpu)),
  }));
}

/** Time spent inside `await import(spec)` in a fresh process (cached modules would lie). */
function importCost(spec: string): number {
  const code = `const t = performance.now(); await import(${JSON.stringify(spec)}); process.stdout.write(String(performance.now() - t));`;
  return median(
    Array.from({ length: RUNS }, () => {
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], { cwd: root });
      if (r.status !== 0) throw new Error(`import ${spec}: ${r.stderr.toString()}`);
      return Number(r.stdout.toString());
    }),
  );
}

const ns = `npstart-${process.pid}`;
const stateDir = mkdtempSync(path.join(os.tmpdir(), "netpol-startup-"));
const ms = (x: number) => x.toFixed(0);
try {
  spawnSync("ip", ["netns", "add", ns], { stdio: "inherit" });
  const target = ["--netns", ns, "--state-dir", stateDir];
  /**
   * Name, arguments, issue 11's wall limit (ms), issue 19's ratio to `node -e 0`, kept in --quick,
   * environment.
   */
  const commands: [
    string,
    string[],
    number | undefined,
    number | undefined,
    boolean,
    NodeJS.ProcessEnv?,
  ][] = [
    ["node -e 0 (floor)", ["-e", "0"], undefined, undefined, true],
    ["netpol --version", [...bin, "--version"], undefined, undefined, true],
    ["netpol --help (loads every command)", [...bin, "--help"], undefined, undefined, false],
    [`netpol validate ${POLICY}`, [...bin, "validate", POLICY], 250, 2, true],
    [
      "same, without the code cache (NETPOL_CODE_CACHE=off)",
      [...bin, "validate", POLICY],
      undefined,
      undefined,
      false,
      { NETPOL_CODE_CACHE: "off" },
    ],
    [
      `same, unbundled (node ${UNBUNDLED})`,
      [UNBUNDLED, "validate", POLICY],
      undefined,
      undefined,
      false,
    ],
    [
      `netpol plan ${POLICY} --site home`,
      [...bin, "plan", POLICY, "--site", "home", ...target],
      400,
      3,
      true,
    ],
    [
      "same, unbundled",
      [UNBUNDLED, "plan", POLICY, "--site", "home", ...target],
      undefined,
      undefined,
      false,
    ],
    ["netpol status", [...bin, "status", ...target], undefined, undefined, true],
    ["netpol completion bash", [...bin, "completion", "bash"], undefined, undefined, false],
  ];
  const load = os.loadavg()[0]?.toFixed(1);
  console.log(
    `startup, median of ${RUNS} rounds (each row once a round, in turn), ${os.cpus().length} CPUs, load ${load}, node ${process.version}\n`,
  );
  console.log(
    "| command | wall ms | CPU ms | CPU over bare node ms | wall / node | CPU / node | issue 11 (wall ms) | issue 19 (wall / node) |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |");
  let failed = false;
  const x = (r: number) => `${r.toFixed(2)}×`;
  const rows = commands.filter(([, , , , inQuick]) => inQuick || !quick);
  const times = measureAlternating(rows.map(([, args, , , , env]) => ({ args, env })));
  const floor = times[0] ?? { wall: NaN, cpu: NaN };
  for (const [i, [name, , limit, ratio]] of rows.entries()) {
    const t = times[i] ?? floor;
    const wallRatio = t.wall / floor.wall;
    const absolute = limit === undefined ? "" : `${limit}: ${t.wall < limit ? "ok" : "OVER"}`;
    const relative =
      ratio === undefined ? "" : `≤ ${ratio}×: ${wallRatio <= ratio ? "met" : "**missed**"}`;
    if (absolute.endsWith("OVER") || relative.endsWith("**missed**")) failed = true;
    console.log(
      `| \`${name}\` | ${ms(t.wall)} | ${ms(t.cpu)} | ${ms(t.cpu - floor.cpu)} | ${x(wallRatio)} | ${x(t.cpu / floor.cpu)} | ${absolute} | ${relative} |`,
    );
  }
  if (!quick) importTable();
  if (failed) process.exitCode = 1;
} finally {
  spawnSync("ip", ["netns", "del", ns]);
  rmSync(stateDir, { recursive: true, force: true });
}

/** Each dependency's and each command module's import cost, in a fresh process each. */
function importTable() {
  const modules = [
    "commander",
    "zod",
    "yaml",
    "ipaddr.js",
    "execa",
    "fastify",
    "prom-client",
    ...["validate", "render", "plan", "apply", "status", "watch", "serve", "demo"].map(
      (c) => `./dist/cli/commands/${c}.js`,
    ),
  ];
  console.log("\n| import (fresh process) | ms |");
  console.log("| --- | ---: |");
  for (const m of modules) console.log(`| \`${m}\` | ${ms(importCost(m))} |`);
}
