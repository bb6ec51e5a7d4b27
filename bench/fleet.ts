/**
 * The fleet at scale: 1,000 and 10,000 agents in a few processes (bench/fleet-worker.ts), each
 * agent with a fake kernel behind the Runner, against one etcd member that runs in a namespace
 * this script creates (and removes). A hub-and-spoke fleet: two hubs, a canary, the spokes; the
 * policy's rollout is canary → hubs → the rest, as docs/fleet.md suggests.
 *
 * For each size it publishes (the real `netpol publish`, in the namespace) and measures, from
 * the moment etcd holds the new head to each site's ledger showing the revision: p50, p99 and
 * the last site; etcd's write rate meanwhile (its revision counts every write); memory per agent
 * (the workers' resident memory above their baseline, over the agents); how many agents applied
 * a revision twice (must be 0); the workers' CPU time per agent in each rollout (CPU, which the
 * other processes on a loaded machine move less than the wall time). A second publish changes one spoke only. One real `netpol agent` process's
 * idle memory is bench/agent-memory.ts's.
 *
 *   npm run bench:fleet              # 1,000 and 10,000
 *   npm run bench:fleet -- --quick   # 1,000 only
 *   … --sites N --workers W --node-flags "--max-semi-space-size=64" --profile DIR --own-watches
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { execa, type ResultPromise } from "execa";
import { generateKeyPair, writePrivateKey } from "../src/system/keys.js";
import { ENDPOINT, kill, startEtcd } from "../test/support/etcd-member.js";
import { fleetPolicy as fleetPolicyOf, spoke } from "./fleet-policy.js";
import { suffix } from "./namespace.js";

const option = (name: string) =>
  process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined;
/** --sites N: one run at N spokes (a profile, a flag tried at a smaller size). */
const SIZES = option("--sites")
  ? [Number(option("--sites"))]
  : process.argv.includes("--quick")
    ? [1_000]
    : [1_000, 10_000];
/** --workers N: the processes the agents share. */
const WORKERS = Number(option("--workers") ?? 4);
/** --node-flags "…": V8 flags for the workers (the agents' GC settings). */
const NODE_FLAGS = (option("--node-flags") ?? "").split(" ").filter(Boolean);
/**
 * --lean: spokes are tunnel members only, no LAN of their own (but s7, which the second publish
 * changes): at 10,000 sites the full policy is 2.8 MB, past the 2 MiB netpol reads.
 */
const LEAN = process.argv.includes("--lean");
/**
 * --own-watches: each agent with its etcd client and watch streams of its own, as before the
 * workers shared one client and one watch stream each (bench/fleet-worker.ts).
 */
const OWN_WATCHES = process.argv.includes("--own-watches");
/** --profile DIR: the first worker writes a CPU profile there. */
const PROFILE = option("--profile") ? path.resolve(option("--profile") ?? "") : undefined;

interface Worker {
  readonly child: ResultPromise;
  readonly lines: AsyncIterator<string>;
}

const fleetPolicy = (n: number, keys: readonly string[], change = "") =>
  fleetPolicyOf(n, keys, { change, lean: LEAN });

async function startWorker(
  ns: string,
  dir: string,
  keyDir: string,
  sites: readonly string[],
  profile: readonly string[] = [],
): Promise<Worker> {
  const child = execa(
    "ip",
    [
      ...["netns", "exec", ns, "prlimit", "--nofile=20000", "--"],
      ...[process.execPath, ...NODE_FLAGS, ...profile],
      ...["--import", "tsx", "bench/fleet-worker.ts"],
      ...[ENDPOINT, dir, keyDir, sites.join(","), ...(OWN_WATCHES ? ["--own-watches"] : [])],
    ],
    { stdin: "pipe", stdout: "pipe", stderr: "inherit", buffer: false, reject: false },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[
    Symbol.asyncIterator
  ]();
  return { child, lines };
}

async function ask(w: Worker, line?: string): Promise<Record<string, number>> {
  if (line) w.child.stdin?.write(`${line}\n`);
  const next = await w.lines.next();
  if (next.done) throw new Error("a worker ended");
  return JSON.parse(next.value) as Record<string, number>;
}

const netpol = (ns: string, args: readonly string[]) =>
  execa("ip", ["netns", "exec", ns, process.execPath, "bin/netpol.js", ...args], { reject: false });

/** Times each site's ledger reaching `serial`, from when the head did (a watch, in the namespace). */
async function timeRollout(ns: string, sites: number, publish: () => Promise<void>) {
  const watcher = execa(
    "ip",
    [
      "netns",
      "exec",
      ns,
      process.execPath,
      "--import",
      "tsx",
      "bench/fleet-watch.ts",
      ENDPOINT,
      String(sites),
    ],
    { stdout: "pipe", stderr: "inherit", reject: false, buffer: false },
  );
  const lines = createInterface({ input: watcher.stdout as NodeJS.ReadableStream })[
    Symbol.asyncIterator
  ]();
  await lines.next(); // watching
  await publish();
  const result = await lines.next();
  await watcher;
  return JSON.parse(String(result.value)) as {
    p50: number;
    p99: number;
    last: number;
    writes: number;
    seconds: number;
  };
}

async function measure(n: number) {
  const ns = `npfleet-${suffix()}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-bench-fleet-"));
  const shm = await mkdtemp("/dev/shm/netpol-bench-fleet-");
  await execa("ip", ["netns", "add", ns]);
  await execa("ip", ["-n", ns, "link", "set", "lo", "up"]);
  const etcd = await startEtcd(ns, dir).catch(async (err: unknown) => {
    await execa("ip", ["netns", "del", ns], { reject: false });
    throw err;
  });
  const workers: Worker[] = [];
  try {
    const keyDir = path.join(dir, "keys");
    await mkdir(keyDir, { mode: 0o700 });
    const keys: string[] = [];
    const names = [...Array.from({ length: n }, (_, i) => spoke(i)), "hub0", "hub1"];
    for (const name of names) {
      const pair = generateKeyPair();
      await writePrivateKey(path.join(keyDir, `${name}.key`), pair.privateKey);
      keys.push(pair.publicKey);
    }
    const file = path.join(dir, "policy.yaml");
    await writeFile(file, fleetPolicy(n, keys));
    const started = Date.now();
    for (let w = 0; w < WORKERS; w++) {
      const mine = names.filter((_, i) => i % WORKERS === w);
      // The agents' state on tmpfs: each site has a disk of its own, and a thousand sites' fsyncs
      // queued on this machine's one disk would measure the disk, not the fleet.
      // --profile DIR: the first worker writes a CPU profile there (where an agent's time goes).
      const profile = PROFILE && w === 0 ? ["--cpu-prof", "--cpu-prof-dir", PROFILE] : [];
      workers.push(await startWorker(ns, path.join(shm, `w${w}`), keyDir, mine, profile));
    }
    const ready = await Promise.all(workers.map((w) => ask(w)));
    const startup = (Date.now() - started) / 1000;
    const idle = await Promise.all(workers.map((w) => ask(w, "report")));
    const perAgent = idle.reduce((s, r) => s + ((r.rss ?? 0) - (r.baseline ?? 0)), 0) / (n + 2);
    const publish = (text: string) => async () => {
      await writeFile(file, text);
      const r = await netpol(ns, ["publish", file, "--etcd", ENDPOINT, "--json"]);
      if (r.exitCode !== 0) throw new Error(`publish: ${r.stderr}${r.stdout}`);
    };
    const publishStart = Date.now();
    const first = await timeRollout(ns, n + 2, publish(fleetPolicy(n, keys)));
    const publishSeconds = (Date.now() - publishStart) / 1000 - first.seconds;
    const mid = await Promise.all(workers.map((w) => ask(w, "report")));
    const second = await timeRollout(ns, n + 2, publish(fleetPolicy(n, keys, "10.250.0.0/24")));
    const after = await Promise.all(workers.map((w) => ask(w, "report")));
    /** The workers' CPU between two reports (less their own collections), per agent, in ms. */
    const cpuPerAgent = (from: Record<string, number>[], to: Record<string, number>[]) =>
      to.reduce((sum, r, i) => sum + (r.cpu ?? 0) - (from[i]?.cpuAfter ?? 0), 0) / 1000 / (n + 2);
    const cpu = { first: cpuPerAgent(idle, mid), second: cpuPerAgent(mid, after) };
    const twice = after.reduce((s, r) => s + (r.twice ?? 0), 0);
    const applies = after.reduce((s, r) => s + (r.applies ?? 0), 0);
    const errors = after.reduce((s, r) => s + (r.errors ?? 0), 0);
    const rss = after.reduce((s, r) => s + (r.rss ?? 0), 0);
    void ready;
    return {
      n,
      startup,
      perAgent,
      first,
      second,
      twice,
      applies,
      errors,
      rss,
      publishSeconds,
      cpu,
    };
  } catch (err) {
    console.error(`bench at ${n} agents failed: ${err instanceof Error ? err.stack : String(err)}`);
    throw err;
  } finally {
    for (const w of workers) w.child.stdin?.write("stop\n");
    await Promise.all(workers.map((w) => Promise.race([w.child, sleep(10_000)])));
    for (const w of workers) kill(w.child.pid);
    await etcd.stop();
    await execa("ip", ["netns", "del", ns], { reject: false });
    await rm(dir, { recursive: true, force: true });
    await rm(shm, { recursive: true, force: true });
  }
}

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const s = (x: number) => x.toFixed(2);
console.log(
  `fleet bench: ${WORKERS} worker processes${NODE_FLAGS.length > 0 ? ` (node ${NODE_FLAGS.join(" ")})` : ""}${LEAN ? ", lean spokes (no LAN)" : ""}${OWN_WATCHES ? ", a client and watches per agent" : ", one client and watch per worker"}, one etcd ${(await execa("etcd", ["--version"])).stdout.split("\n")[0]}, load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}`,
);
console.log(
  "| agents | publish → all reported: p50 / p99 / last (s) | etcd writes/s | one spoke changed: p50 / p99 / last (s) | agent memory (above the process's own) | applies / twice | start-up (s) | workers' CPU per agent: first / second rollout (ms) |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const n of SIZES) {
  const r = await measure(n);
  console.log(
    `| ${n + 2} | ${s(r.first.p50)} / ${s(r.first.p99)} / ${s(r.first.last)} | ${Math.round(r.first.writes / r.first.seconds)} | ${s(r.second.p50)} / ${s(r.second.p99)} / ${s(r.second.last)} | ${(r.perAgent / 1024).toFixed(0)} KiB (workers ${mb(r.rss)} MB in all) | ${r.applies} / ${r.twice} | ${s(r.startup)} | ${r.cpu.first.toFixed(1)} / ${r.cpu.second.toFixed(1)} |`,
  );
  if (r.errors > 0) console.log(`  (${r.errors} agent errors; see stderr)`);
  console.log(
    `  publish itself (validate, cut ${n + 2} parts, write): ${s(r.publishSeconds)} s; load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
}
