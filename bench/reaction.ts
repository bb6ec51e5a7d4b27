/**
 * A device coming back: netpol's resident process (`netpol watch`, the built CLI) against the
 * one-line script a person would write,
 *
 *   ip -o monitor link | while read -r l; do case "$l" in *"ext0: "*[,\<]UP[,\>]*) ip route replace …;; esac; done
 *
 * each in a namespace of its own with the same policy applied (made here, removed after).
 * Returns alternate between the two, RETURNS each. A return is timed by an observer in the
 * namespace (`ip -o monitor link route`, started here): from the line saying the device is up
 * to the line of the last route through it, so both are seen the same way (on a loaded machine
 * the observer itself may be late: take figures when the load is low).
 *
 * Two scenarios: the main one (an egress through a tun taken down and up), and one held out
 * from the design of the reaction (the device deleted and created again, as OpenVPN does on a
 * reconnect, with two egresses through it: two routes to put back).
 * Targets (issue 19): netpol ≤ 2× the script at p50, ≤ 3× at p99.
 *
 *   npx tsx bench/reaction.ts            # RETURNS=20
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { lineSplitter } from "../src/system/session.js";
import { suffix } from "./namespace.js";

const RETURNS = Number(process.env.RETURNS ?? 20);
const BIN = path.join(import.meta.dirname, "..", "bin", "netpol.js");

interface Scenario {
  readonly name: string;
  readonly policy: string;
  /** The tables whose default route goes through ext0. */
  readonly tables: readonly number[];
  /** `ip` commands (in the namespace) that take the device away and bring it back. */
  readonly away: readonly string[][];
  readonly back: readonly string[][];
}

// Egresses with the same device and except list share one table: the second has none.
const egress = (name: string, net: string, table: number, prio: number, except = true) =>
  `      - { name: ${name}, from: [${net}], via: ext0,${except ? " except: [192.168.0.0/16]," : ""} table: ${table}, priority: ${prio} }`;

const policy = (two: boolean) => `version: 1
sites:
  home:
    interfaces: [{ name: lan0, kind: physical }]
    networks:
      - { name: a, cidr: 192.168.6.0/24, interface: lan0, address: 192.168.6.1 }
      - { name: b, cidr: 192.168.7.0/24, interface: lan0, address: 192.168.7.1 }
    external: [{ name: ext0 }]
    egress:
${egress("out-a", two ? "a" : "a, b", 3, 200)}
${two ? egress("out-b", "b", 4, 300, false) : ""}
`;

const SCENARIOS: Scenario[] = [
  {
    name: "tun taken down and up, one egress",
    policy: policy(false),
    tables: [3],
    away: [["link", "set", "ext0", "down"]],
    back: [["link", "set", "ext0", "up"]],
  },
  {
    name: "held out: tun deleted and created again (OpenVPN), two egresses",
    policy: policy(true),
    tables: [3, 4],
    away: [["tuntap", "del", "ext0", "mode", "tun"]],
    back: [
      ["tuntap", "add", "ext0", "mode", "tun"],
      ["link", "set", "ext0", "up"],
    ],
  },
];

/** A namespace with lan0 (a veth) and ext0 (a tun), the scenario's policy applied by netpol. */
async function site(s: Scenario, dir: string) {
  const ns = `npreact-${suffix()}`;
  await execa("ip", ["netns", "add", ns]);
  const ip = (args: readonly string[]) => execa("ip", ["-n", ns, ...args]);
  for (const args of [
    ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"],
    ["tuntap", "add", "ext0", "mode", "tun"],
    ["link", "set", "lan0", "up"],
    ["link", "set", "lan1", "up"],
    ["link", "set", "ext0", "up"],
    ["link", "set", "lo", "up"],
  ])
    await ip(args);
  const file = path.join(dir, `${ns}.yaml`);
  await writeFile(file, s.policy);
  const target = ["--site", "home", "--netns", ns, "--state-dir", path.join(dir, ns)];
  await execa(process.execPath, [BIN, "apply", file, ...target]);
  return { ns, file, target, ip };
}

/** The lines of a process's stdout, as they come. */
function lines(child: ChildProcess, each: (line: string) => void) {
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", lineSplitter(each));
}

/** Watches a namespace: when ext0 came up, and when each route through it came back. */
function observe(ns: string, tables: readonly number[]) {
  const child = spawn("ip", ["-n", ns, "-o", "monitor", "link", "route"], { stdio: "pipe" });
  let up: number | undefined;
  let routes = new Map<number, number>();
  lines(child, (line) => {
    const now = performance.now();
    if (/^\d+: ext0: <[^>]*\bUP\b/.test(line) && up === undefined) up = now;
    const route = /^default dev ext0 table (\d+) /.exec(line);
    if (route && up !== undefined) routes.set(Number(route[1]), now);
  });
  return {
    child,
    reset() {
      up = undefined;
      routes = new Map();
    },
    /** ms from the device's return to its last route back, once all are back. */
    async elapsed(): Promise<number> {
      const giveUp = performance.now() + 10_000;
      while (performance.now() < giveUp) {
        if (up !== undefined && tables.every((t) => routes.has(t)))
          return Math.max(...routes.values()) - up;
        await sleep(1);
      }
      throw new Error(
        `${ns}: the routes did not come back (saw ${[...routes.keys()].join(",") || "none"})`,
      );
    },
  };
}

/** The one-line script, running in the namespace. */
function script(ns: string, tables: readonly number[]) {
  const replace = tables.map((t) => `route replace default dev ext0 table ${t} proto 77`);
  const run =
    replace.length === 1 ? `ip ${replace[0]}` : `printf '${replace.join("\\n")}\\n' | ip -batch -`;
  const line = `ip -o monitor link | while read -r l; do case "$l" in *"ext0: "*[,\\<]UP[,\\>]*) ${run};; esac; done`;
  return spawn("ip", ["netns", "exec", ns, "sh", "-c", line], { stdio: "ignore", detached: true });
}

async function watcher(target: readonly string[], file: string) {
  const child = spawn(
    process.execPath,
    [BIN, "watch", file, ...target, "--interval", "0", "--json"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const events: Record<string, unknown>[] = [];
  lines(child, (line) => {
    if (line.startsWith("{")) events.push(JSON.parse(line));
  });
  while (!events.some((e) => e.event === "watching")) await sleep(10);
  return { child, events };
}

const percentile = (xs: readonly number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
};

async function measure(s: Scenario) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-bench-react-"));
  const sides: Awaited<ReturnType<typeof site>>[] = [];
  const stop: (() => void)[] = [];
  try {
    const mine = await site(s, dir);
    const theirs = await site(s, dir);
    sides.push(mine, theirs);
    const resident = await watcher(mine.target, mine.file);
    stop.push(() => resident.child.kill("SIGTERM"));
    const floor = script(theirs.ns, s.tables);
    // The script's shell, its ip monitor and its loop: the whole group.
    stop.push(() => floor.pid !== undefined && process.kill(-floor.pid, "SIGTERM"));
    const watch = [mine, theirs].map((side) => observe(side.ns, s.tables));
    for (const w of watch) stop.push(() => w.child.kill("SIGTERM"));
    await sleep(500);
    const times = { netpol: [] as number[], script: [] as number[] };
    const processes: number[] = [];
    for (let i = 0; i < RETURNS; i++) {
      for (const [who, side, seen] of [
        ["script", theirs, watch[1]],
        ["netpol", mine, watch[0]],
      ] as const) {
        if (!seen) throw new Error("unreachable");
        for (const args of s.away) await side.ip(args);
        await sleep(150);
        seen.reset();
        const from = resident.events.length;
        for (const args of s.back) await side.ip(args);
        times[who].push(
          await seen.elapsed().catch((e) => {
            throw new Error(`${who}: ${e.message}`);
          }),
        );
        if (who === "netpol") {
          // Its reconcile confirms the reaction: the processes both started.
          const giveUp = Date.now() + 5000;
          let confirmed: Record<string, unknown> | undefined;
          while (!confirmed && Date.now() < giveUp) {
            confirmed = resident.events.slice(from).find((e) => e.event === "confirmed");
            await sleep(5);
          }
          processes.push(Number(confirmed?.processes ?? Number.NaN));
        }
        await sleep(250);
      }
    }
    return { times, processes };
  } finally {
    for (const f of stop) {
      try {
        f();
      } catch {
        // Already gone.
      }
    }
    await sleep(100);
    for (const side of sides) await execa("ip", ["netns", "del", side.ns], { reject: false });
    await rm(dir, { recursive: true, force: true });
  }
}

const f = (ms: number) => ms.toFixed(1);
console.log(
  `\n${RETURNS} returns each, alternating; ${os.cpus().length} CPUs, load ${os.loadavg()[0]?.toFixed(1)} at the start\n`,
);
console.log(
  "| scenario | netpol p50 ms | script p50 ms | ratio p50 | netpol p99 ms | script p99 ms | ratio p99 | processes per reaction (netpol) | targets (≤ 2× p50, ≤ 3× p99) |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
for (const s of SCENARIOS) {
  const { times, processes } = await measure(s);
  const [n50, s50, n99, s99] = [
    percentile(times.netpol, 0.5),
    percentile(times.script, 0.5),
    percentile(times.netpol, 0.99),
    percentile(times.script, 0.99),
  ];
  const met = n50 <= 2 * s50 && n99 <= 3 * s99 ? "met" : "**missed**";
  console.log(
    `| ${s.name} | ${f(n50)} | ${f(s50)} | ${(n50 / s50).toFixed(2)}× | ${f(n99)} | ${f(s99)} | ${(n99 / s99).toFixed(2)}× | ${Math.max(...processes)} | ${met} |`,
  );
}
