/**
 * The read an apply makes of netpol's nft skeleton after a write (src/system/nftables.ts,
 * readNftSkeleton), against the two single commands it replaces, on netpol's own table of a
 * cold egress-per-network apply alone, then beside another tool's table of FOREIGN rules (a
 * kube-proxy's size). Everything runs in a namespace made here and removed after.
 *
 *   npx tsx bench/nft-skeleton.ts [--networks 10000] [--foreign 20000] [--rounds 9]
 *
 * Each round runs the three reads once, in an order that rotates with the round, each under
 * /usr/bin/time (the CPU time of nft and its `ip netns exec`, to 10 ms); wall and CPU medians.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { execa } from "execa";
import { applySite } from "../src/apply/apply.js";
import { targetOf } from "../src/apply/target.js";
import { parsePolicy } from "../src/policy/load.js";
import { generateKeyPair } from "../src/system/keys.js";
import { createRunner } from "../src/system/runner.js";
import { type BenchNs, createBenchNs, suffix } from "./namespace.js";
import { makeShape } from "./shapes.js";

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const networks = option("--networks", 10_000);
const foreign = option("--foreign", 20_000);
const rounds = option("--rounds", 9);

const READS = [
  ["-t list table (before 3828da0)", ["-t", "list", "table", "inet", "netpol"]],
  ["-t list ruleset (3828da0)", ["-t", "list", "ruleset"]],
  [
    "-t list table ; list ruleset (now)",
    ["-t", "list", "table", "inet", "netpol", ";", "list", "ruleset"],
  ],
] as const;

interface Timed {
  readonly wallMs: number;
  readonly cpuMs: number;
}

async function timed(ns: BenchNs, args: readonly string[]): Promise<Timed> {
  const t0 = performance.now();
  const r = await execa("/usr/bin/time", [
    "-f",
    "%U %S",
    "ip",
    "netns",
    "exec",
    ns.name,
    "nft",
    ...args,
  ]);
  const wallMs = performance.now() - t0;
  const [user, sys] = (r.stderr.trim().split("\n").at(-1) ?? "").split(" ").map(Number);
  return { wallMs, cpuMs: ((user ?? Number.NaN) + (sys ?? Number.NaN)) * 1000 };
}

const median = (xs: readonly number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? Number.NaN;
const load = () => os.loadavg()[0]?.toFixed(1);

async function measure(ns: BenchNs, label: string): Promise<void> {
  const runs = READS.map(() => [] as Timed[]);
  const loadBefore = load();
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < READS.length; k++) {
      const i = (round + k) % READS.length;
      runs[i]?.push(await timed(ns, READS[i]?.[1] ?? []));
    }
  }
  for (const [i, [name]] of READS.entries()) {
    const r = runs[i] ?? [];
    console.log(
      `| ${label} | \`nft ${name}\` | ${median(r.map((t) => t.wallMs)).toFixed(0)} | ${median(r.map((t) => t.cpuMs)).toFixed(0)} | ${loadBefore}–${load()} |`,
    );
  }
}

const shape = makeShape("egress-per-network", networks, suffix(), generateKeyPair());
const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-bench-"));
const ns = await createBenchNs(shape);
try {
  const policy = { ...parsePolicy(shape.policy, "policy.yaml"), keyDir: dir, site: "r" };
  await applySite(targetOf(createRunner(ns.name), path.join(dir, "state")), policy, "bench");
  console.log(
    `\n${rounds} rounds, medians; CPU to 10 ms (0: under 10); ${os.cpus().length} CPUs, Node ${process.version}\n`,
  );
  console.log("| netpol's table | read | wall ms | CPU ms (nft + ip netns exec) | load |");
  console.log("| --- | --- | ---: | ---: | --- |");
  const own = `${2 * networks} elements`;
  await measure(ns, `${own}, alone`);
  const rules = Array.from(
    { length: foreign },
    (_, i) =>
      `add rule ip kube services ip daddr 10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255} tcp dport 80 counter accept`,
  );
  const file = path.join(dir, "foreign.nft");
  await writeFile(
    file,
    `table ip kube {\n  chain services { type nat hook prerouting priority -100; policy accept; }\n}\n${rules.join("\n")}\n`,
  );
  await ns.run(["nft", "-f", file]);
  await measure(ns, `${own}, beside a table of ${foreign} rules`);
} finally {
  await ns.destroy();
  await rm(dir, { recursive: true, force: true });
}
