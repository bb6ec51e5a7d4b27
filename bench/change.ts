/**
 * One thing changed through the resident process (issue 19), against the bare command that
 * change needs, in the same run:
 *
 * - **hub one-peer change**: a hub of N spokes (bench/shapes.ts's wireguard-hub, wireguard-go),
 *   one spoke's key changed in the policy text, handed to the resident as serve's POST /apply
 *   does (`resident.apply` of the text: cache look-up, validation, plan over the live model,
 *   the change over wireguard-go's control socket, verify, record). Against one `wg set` that
 *   swaps the same peer on a second wireguard-go interface holding the same N peers, in the
 *   same namespace (so the resident's site is not changed behind its back). Alternated, CHANGES
 *   of each; p50 and the ratio (target ≤ 3×).
 * - **one-line change**: the egress-per-network shape at the largest size, one network's prefix
 *   edited, through the resident; against the kernel command the change needs: one `nft -f`
 *   swapping that prefix in netpol's sets and maps (see bareCommands), made back and forth on a
 *   second namespace holding the same policy (target ≤ 2×).
 * - **processes per change**: what the resident's runner started for one change (the tools
 *   without a session).
 * - **netpol CPU**: the CPU this process spent on each change (the resident runs here), p50.
 * - **validated in full (before)**: each change above is made twice: first CHANGES in a row
 *   through `resident.applyText` (the text read from the last one the resident read, only the
 *   entries that changed: policy/incremental), then CHANGES as before it existed (the whole
 *   text validated). The bare command is interleaved with both.
 *   After the runs, the same texts are validated alone both ways, in CPU ms.
 *
 * Everything runs in namespaces made here (removed after). The resident runs in this process,
 * as it does in `netpol serve`.
 *
 *   npx tsx bench/change.ts            # hubs of 1,000 and 10,000; one-line change at 10,000
 *   npx tsx bench/change.ts --quick    # 1,000 only
 *   npx tsx bench/change.ts --only hub --hubs 1000,10000 --no-full
 *       # rows to run: --only hub|line, the hubs' sizes (--hubs) and the one-line change's
 *       # (--line 1000,10000); --no-full: without the "validated in full" rows
 *   npx tsx bench/change.ts --only hub --hubs 10000 --no-full --profile DIR
 *       # a CPU profile of each change read incrementally (not the set-up or the bare side),
 *       # DIR/change-K.cpuprofile
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { execa } from "execa";
import { applySite } from "../src/apply/apply.js";
import { routingLines } from "../src/apply/execute.js";
import { fromText } from "../src/apply/source/text.js";
import { type Target, targetOf } from "../src/apply/target.js";
import type { Plan } from "../src/plan/types.js";
import { IncrementalPolicy } from "../src/policy/incremental/policy.js";
import { parsePolicy } from "../src/policy/load.js";
import type { Stamped } from "../src/resident/events.js";
import { inForceFeed } from "../src/resident/policy-feed.js";
import { Resident } from "../src/resident/resident.js";
import { generateKeyPair } from "../src/system/keys.js";
import { createRunner } from "../src/system/runner.js";
import { UapiClient } from "../src/system/wireguard-uapi.js";
import { type BenchNs, createBenchNs, suffix } from "./namespace.js";
import { makeShape, type Shape } from "./shapes.js";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
/** The value after `flag`, if given. */
const option = (flag: string) => {
  const at = args.indexOf(flag);
  if (at < 0) return undefined;
  const value = args[at + 1];
  if (value === undefined || value.startsWith("--")) throw new Error(`${flag} needs a value`);
  return value;
};
const sizes = (flag: string, fallback: number[]) =>
  option(flag)
    ?.split(",")
    .map((n) => {
      const size = Number(n);
      if (!Number.isInteger(size) || size < 1) throw new Error(`${flag}: not a size: ${n}`);
      return size;
    }) ?? fallback;
const only = option("--only");
if (only !== undefined && only !== "hub" && only !== "line")
  throw new Error(`--only takes hub or line, not ${only}`);
const CHANGES = Number(process.env.CHANGES ?? (quick ? 3 : 7));
const HUBS = only === "line" ? [] : sizes("--hubs", quick ? [1000] : [1000, 10_000]);
const LINES = only === "hub" ? [] : sizes("--line", [quick ? 1000 : 10_000]);
/** Without the "validated in full" rows: only the changes read incrementally. */
const FULL = !args.includes("--no-full");
/** --profile DIR: the V8 CPU profile of each change read incrementally, written there. */
const PROFILE = option("--profile");
const inspector = PROFILE ? new Session() : undefined;
let profiled = 0;
if (inspector) {
  inspector.connect();
  await inspector.post("Profiler.enable");
  await inspector.post("Profiler.setSamplingInterval", { interval: 100 });
}

const p50 = (xs: readonly number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const round = (ms: number) => Math.round(ms * 10) / 10;
/** The most any change started, and each change's count where they differ. */
const processes = (counts: readonly number[]) =>
  counts.every((c) => c === counts[0])
    ? `${counts[0] ?? 0}`
    : `${Math.max(...counts)} (in order: ${counts.join(", ")})`;
const randomKey = () => randomBytes(32).toString("base64");

async function timed(work: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await work();
  return performance.now() - t;
}

/**
 * A change through the resident, timed, and the CPU this process spent on it (the resident's
 * own work: less moved by the machine's load than the wall time). Pushed to `row`.
 */
async function timedChange(row: Row, work: () => Promise<unknown>): Promise<void> {
  const profiling = inspector && !row.what.endsWith("(before)");
  if (profiling) await inspector.post("Profiler.start");
  const cpu = process.cpuUsage();
  row.netpol.push(await timed(work));
  const d = process.cpuUsage(cpu);
  row.cpu.push((d.user + d.system) / 1000);
  if (profiling) {
    const { profile } = await inspector.post("Profiler.stop");
    await mkdir(PROFILE ?? "", { recursive: true });
    const file = path.join(PROFILE ?? "", `change-${++profiled}.cpuprofile`);
    await writeFile(file, JSON.stringify(profile));
  }
}

interface Site {
  readonly ns: BenchNs;
  readonly target: Target;
  readonly keyDir: string;
  policyAt(text: string): ReturnType<typeof fromText>;
  destroy(): Promise<void>;
}

/** A namespace with the shape's devices (and `more` WireGuard names), its policy applied cold. */
async function site(shape: Shape, more: readonly string[] = []): Promise<Site> {
  const ns = await createBenchNs({
    physical: shape.physical,
    external: shape.external,
    wireguard: [...shape.wireguard, ...more],
  });
  const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-change-"));
  const destroy = async () => {
    await ns.destroy();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const [file, text] of shape.keyFiles)
      await writeFile(path.join(dir, file), text, { mode: 0o600 });
    const target = targetOf(createRunner(ns.name), path.join(dir, "state"));
    const policyAt = (text: string) =>
      fromText(target.files, { text, name: "bench.yaml", site: "r", keyDir: dir });
    await applySite(target, await policyAt(shape.policy), "bench");
    return { ns, target, keyDir: dir, policyAt, destroy };
  } catch (err) {
    await destroy();
    throw err;
  }
}

/** The resident of `s`, running in this process as serve runs it; stop() ends it. */
async function residentOf(s: Site) {
  const wireguard = new UapiClient();
  const resident = new Resident({
    target: s.target,
    feed: inForceFeed(s.target, { keyDir: s.keyDir }),
    by: "bench",
    intervalMs: 0,
    wireguard,
  });
  const events: Stamped[] = [];
  resident.bus.on((e) => events.push(e));
  const stop = new AbortController();
  const running = resident.run(stop.signal);
  while (!events.some((e) => e.event === "watching")) await new Promise((r) => setTimeout(r, 10));
  // The first reconcile's own events settle.
  await new Promise((r) => setTimeout(r, 500));
  return {
    resident,
    errors: () => events.filter((e) => e.event === "error"),
    async stop() {
      stop.abort();
      await running;
      wireguard.close();
    },
  };
}

interface Row {
  readonly what: string;
  readonly netpol: number[];
  /** The CPU this process spent on each change, in ms. */
  readonly cpu: number[];
  readonly bare: number[];
  readonly processes: number[];
  readonly target: number;
  readonly bareName: string;
}

/**
 * The k-th change's row and how it is made: the first CHANGES through `applyText`, one after
 * the other as a serve receiving texts makes them (the resident reads each text from the last
 * one it read, policy/incremental, and compares only the peers that are not the objects of the
 * state before, plan/wg-made.ts); then CHANGES as before this existed (the text validated in
 * full as the source is asked). Not alternated: a change validated in full between two read
 * incrementally gives the second a state that shares nothing, which is not a resident's path.
 * The incremental ones go first, in the colder process.
 */
function ways(
  k: number,
  resident: Resident,
  s: Site,
  text: string,
  rows: { incremental: Row; full: Row },
): [Row, () => ReturnType<Resident["apply"]>] {
  if (k < CHANGES)
    return [
      rows.incremental,
      () => resident.applyText({ text, name: "bench.yaml", site: "r", keyDir: s.keyDir }, "bench"),
    ];
  return [rows.full, () => resident.apply(() => s.policyAt(text), "bench")];
}

/**
 * Validation alone, in this process: each text of a run read by parsePolicy and by the
 * incremental reader (from the text before it), alternating, in CPU ms (one thread, no I/O).
 */
function validationCpu(texts: readonly string[]): { full: number[]; incremental: number[] } {
  const reader = new IncrementalPolicy();
  reader.load(texts[0] ?? "", "bench.yaml");
  const cpu = (work: () => unknown) => {
    const t = process.cpuUsage();
    work();
    const d = process.cpuUsage(t);
    return (d.user + d.system) / 1000;
  };
  const full: number[] = [];
  const incremental: number[] = [];
  for (const text of texts.slice(1)) {
    full.push(cpu(() => parsePolicy(text, "bench.yaml")));
    incremental.push(cpu(() => reader.load(text, "bench.yaml")));
  }
  return { full, incremental };
}

/**
 * The last spoke's key in a hub policy's text, read from its last member's line: a match of
 * every member would leave the bench's garbage of 10,000 matches to netpol's changes.
 */
const lastKey = (text: string) => {
  const line = /site: s\d+, address: [^,]+, publicKey: ([^,]+),/y;
  line.lastIndex = text.lastIndexOf("site: s");
  const key = line.exec(text)?.[1];
  if (!key) throw new Error("no spoke key in the hub policy");
  return key;
};

async function hub(n: number, texts: string[]): Promise<Row[]> {
  const shape = makeShape("wireguard-hub", n, suffix(), generateKeyPair());
  const bareWg = `wgx${suffix()}`;
  const s = await site(shape, [bareWg]);
  try {
    // The bare side: wireguard-go with the same N peers, each `wg set` swapping one peer's key.
    await s.ns.run(["wireguard-go", bareWg]);
    const peers = [
      ...shape.policy.matchAll(/address: (10\.100\.[\d.]+)\/16, publicKey: ([^,]+),/g),
    ];
    const conf = [
      "[Interface]",
      `PrivateKey = ${generateKeyPair().privateKey}`,
      ...peers.flatMap(([, ip, key]) => ["[Peer]", `PublicKey = ${key}`, `AllowedIPs = ${ip}/32`]),
    ].join("\n");
    const confFile = path.join(s.keyDir, "bare.conf");
    await writeFile(confFile, `${conf}\n`, { mode: 0o600 });
    await s.ns.run(["wg", "setconf", bareWg, confFile]);
    let bareKey = lastKey(shape.policy);
    const bareIp = peers.at(-1)?.[1] ?? "";

    texts.push(shape.policy);
    const r = await residentOf(s);
    const row: Row = {
      what: `hub of ${n.toLocaleString("en")} spokes: one spoke's key`,
      netpol: [],
      cpu: [],
      bare: [],
      processes: [],
      target: 3,
      bareName: "one `wg set`",
    };
    const full: Row = {
      ...row,
      what: `${row.what}, validated in full (before)`,
      netpol: [],
      cpu: [],
      processes: [],
    };
    let text = shape.policy;
    try {
      for (let k = 0; k < (FULL ? CHANGES * 2 : CHANGES); k++) {
        const fresh = randomKey();
        const next = text.replace(lastKey(text), fresh);
        const spawned = r.resident.target.runner.spawned;
        // Alternated: the resident reading the text from the last it read, or validating it whole.
        const [into, change] = ways(k, r.resident, s, next, { incremental: row, full });
        let plan: Plan | undefined;
        await timedChange(into, async () => {
          plan = (await change()).plan;
        });
        into.processes.push(r.resident.target.runner.spawned - spawned);
        if (plan?.changes.length !== 1 || plan.changes[0]?.kind !== "wireguard")
          throw new Error(`expected one WireGuard change, planned ${plan?.changes.length}`);
        text = next;
        texts.push(next);
        // One `wg set` per two changes, or per change when there are only the incremental ones.
        if (FULL && k % 2 === 0) continue;
        const bareFresh = randomKey();
        const argv = ["wg", "set", bareWg, "peer", bareKey, "remove"];
        argv.push("peer", bareFresh, "allowed-ips", `${bareIp}/32`);
        row.bare.push(await timed(() => execa("ip", ["netns", "exec", s.ns.name, ...argv])));
        bareKey = bareFresh;
      }
      // Read back: the hub holds the last key, and N peers.
      const dump = await s.ns.run(["wg", "show", shape.wireguard[0] ?? "", "peers"]);
      const held = dump.split("\n").filter(Boolean);
      if (held.length !== n || !held.includes(lastKey(text)))
        throw new Error(
          `the hub holds ${held.length} peers, the new key ${held.includes(lastKey(text))}`,
        );
      if (r.errors().length > 0) throw new Error(JSON.stringify(r.errors()));
    } finally {
      await r.stop();
    }
    return FULL ? [row, { ...full, bare: row.bare }] : [row];
  } finally {
    await s.destroy();
  }
}

/** The plan's routing and nft changes as the bare commands: one `ip -batch` and one `nft -f`. */
async function lineChange(n: number, texts: string[]): Promise<Row[]> {
  const shape = makeShape("egress-per-network", n, suffix(), generateKeyPair());
  const s = await site(shape);
  const bare = await site(shape);
  try {
    const r = await residentOf(s);
    const row: Row = {
      what: `one-line change at ${n.toLocaleString("en")} objects (egress-per-network)`,
      netpol: [],
      cpu: [],
      bare: [],
      processes: [],
      target: 2,
      bareName: "one `nft -f`: the element swapped",
    };
    const full: Row = {
      ...row,
      what: `${row.what}, validated in full (before)`,
      netpol: [],
      cpu: [],
      processes: [],
    };
    try {
      // Back and forth between the two texts: each change is one line, one network's prefix.
      const both = [shape.changed, shape.policy];
      texts.push(shape.policy);
      const cidrs = (t: string) => new Set(t.match(/cidr: [\d./]+/g));
      const edit = [
        [...cidrs(shape.policy)].find((c) => !cidrs(shape.changed).has(c)),
        [...cidrs(shape.changed)].find((c) => !cidrs(shape.policy).has(c)),
      ].map((c) => c?.slice("cidr: ".length) ?? "") as [string, string];
      for (let k = 0; k < (FULL ? CHANGES * 2 : CHANGES); k++) {
        const text = both[k % 2] ?? shape.policy;
        texts.push(text);
        const spawned = r.resident.target.runner.spawned;
        const [into, change] = ways(k, r.resident, s, text, { incremental: row, full });
        let plan: Plan | undefined;
        await timedChange(into, async () => {
          plan = (await change()).plan;
        });
        into.processes.push(r.resident.target.runner.spawned - spawned);
        // The same change on the twin namespace by hand: the commands the plan's changes are.
        const [from, to] = k % 2 === 0 ? edit : [edit[1], edit[0]];
        const commands = bareCommands(plan, from, to);
        row.bare.push(
          await timed(async () => {
            for (const [argv, input] of commands)
              await execa("ip", ["netns", "exec", bare.ns.name, ...argv], { input });
          }),
        );
      }
      if (r.errors().length > 0) throw new Error(JSON.stringify(r.errors()));
    } finally {
      await r.stop();
    }
    return FULL ? [row, full] : [row];
  } finally {
    await s.destroy();
    await bare.destroy();
  }
}

/**
 * The one kernel command a one-line edit of a network's prefix (`from` → `to`) needs: one
 * `nft -f` that swaps the element in each map of netpol's table that holds it and adds it to
 * each set (as the plan's table text holds `to`), plus one `ip -batch` of the plan's routing
 * lines if it has any.
 */
function bareCommands(plan: Plan | undefined, from: string, to: string): [string[], string][] {
  if (!plan) return [];
  const commands: [string[], string][] = [];
  const v4 = routingLines(plan, 4);
  if (v4.length > 0) commands.push([["ip", "-batch", "-"], `${v4.join("\n")}\n`]);
  const lines: string[] = [];
  for (const c of plan.changes) {
    if (c.kind === "nft") {
      let set: { name: string; map: boolean } | undefined;
      for (const line of c.text.split("\n")) {
        const head = /^\s*(set|map) (\S+) \{/.exec(line);
        if (head) set = { name: head[2] ?? "", map: head[1] === "map" };
        const m = new RegExp(`(?:^|[\\s,{])${to.replaceAll(".", "\\.")}( : [^,]+)?(?:,|$)`).exec(
          line,
        );
        // A set netpol declares auto-merge holds the old prefix inside a merged range, which
        // nft cannot take a piece out of: there the bare change only adds (less work than the
        // real change, so the ratio errs against netpol).
        if (m && set) {
          if (set.map) lines.push(`delete element inet netpol ${set.name} { ${from} }`);
          lines.push(`add element inet netpol ${set.name} { ${to}${m[1] ?? ""} }`);
        }
      }
    } else if (c.kind !== "route" && c.kind !== "rule")
      throw new Error(`a one-line change planned a ${c.kind} change`);
  }
  if (lines.length > 0) commands.push([["nft", "-f", "-"], `${lines.join("\n")}\n`]);
  return commands;
}

const rows: Row[] = [];
/** The texts each run applied in order, to time their validation alone after the runs. */
const runs: { what: string; texts: string[] }[] = [];
for (const n of HUBS) {
  const texts: string[] = [];
  rows.push(...(await hub(n, texts)));
  runs.push({ what: `hub of ${n.toLocaleString("en")} spokes: one spoke's key`, texts });
}
for (const n of LINES) {
  const texts: string[] = [];
  rows.push(...(await lineChange(n, texts)));
  runs.push({ what: `one line at ${n.toLocaleString("en")} objects`, texts });
}
const validation = runs.map(({ what, texts }) => ({ what, ...validationCpu(texts) }));

const load = (await execa("uptime")).stdout.replace(/.*load average: /, "");
console.log(
  `CHANGES=${CHANGES} of each, read incrementally in a row${FULL ? ", then validated in full" : ""}; load average ${load}\n`,
);
console.log(
  "| change through the resident | netpol p50 ms | netpol p50 CPU ms | bare | bare p50 ms | ratio | processes per change | target |",
);
console.log("| --- | ---: | ---: | --- | ---: | ---: | ---: | --- |");
for (const r of rows) {
  const ratio = p50(r.netpol) / p50(r.bare);
  console.log(
    `| ${r.what} | ${round(p50(r.netpol))} | ${round(p50(r.cpu))} | ${r.bareName} | ${round(p50(r.bare))} | ${ratio.toFixed(2)}× | ${processes(r.processes)} | ≤ ${r.target}×: ${ratio <= r.target ? "met" : "**missed**"} |`,
  );
}
console.log(
  "\n| validation of the same texts, in this process | parsePolicy p50 CPU ms | incremental p50 CPU ms | ratio |",
);
console.log("| --- | ---: | ---: | ---: |");
for (const v of validation) {
  const ratio = p50(v.full) / p50(v.incremental);
  console.log(
    `| ${v.what} | ${round(p50(v.full))} | ${round(p50(v.incremental))} | ${ratio.toFixed(1)}× less |`,
  );
}
