/**
 * One process of bench/fleet.ts: hosts many fleet agents, each with a fake kernel of its own
 * behind the Runner, its own state directory and its own etcd client, against one etcd. Reads
 * its sites from argv, says `ready` (one JSON line) once every agent follows etcd, answers
 * `report` on stdin with its memory and how many times each agent applied each revision.
 */
// First: the build id the agents' compiled cache needs, before src/ reads it.
import "./fleet-build.js";
import { setMaxListeners } from "node:events";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import v8 from "node:v8";
import vm from "node:vm";
import { targetOf } from "../src/apply/target.js";
import { Agent } from "../src/fleet/agent/agent.js";
import { Etcd } from "../src/fleet/etcd/client.js";
import { shareWatch } from "../src/fleet/etcd/watch-hub.js";
import { ROOT } from "../src/fleet/keys.js";
import { FakeKernel } from "../test/support/fake-kernel/kernel.js";

const [endpoint = "", dir = "", keyDir = "", list = ""] = process.argv.slice(2);
const sites = list.split(",").filter(Boolean);
const stop = new AbortController();
// Every agent of this process listens on it: as many listeners as agents is no leak.
setMaxListeners(0, stop.signal);
const agents: Agent[] = [];
let connected = 0;
let errors = 0;
// A full collection for the memory reports, out of the agents' sight: with `gc` global, each
// agent's apply collects the whole process after validating its part (plan-site.ts's
// compileFresh, right for one site's process of its own), and 1,000 full collections of a heap
// shared by 250 agents were three quarters of a worker's time (bench/fleet.ts --profile).
v8.setFlagsFromString("--expose-gc");
const collect = vm.runInNewContext("gc") as () => void;
const baseline = process.memoryUsage().rss;
const cpuOf = (u: NodeJS.CpuUsage) => u.user + u.system;
/**
 * The agents of this process share one etcd client (its pool of 16 connections) and one watch
 * stream: at 10,000 agents, a client each kept some 23,000 connections open to etcd's gateway
 * (one watch stream per agent, and the keep-alive sockets of its requests), and etcd stopped
 * answering. --own-watches: a client and watch streams of its own for each agent, as before.
 */
const OWN = process.argv.includes("--own-watches");
const newClient = () => new Etcd({ endpoints: [endpoint], timeoutMs: 30_000 });
const shared = OWN ? undefined : newClient();
const watches = shared ? await shareWatch(shared, ROOT, stop.signal) : undefined;

/** Agents start in groups, as machines would not all boot in the same millisecond. */
const GROUP = 200;
for (let i = 0; i < sites.length; i += GROUP) {
  await Promise.all(
    sites.slice(i, i + GROUP).map(async (site) => {
      const kernel = new FakeKernel();
      kernel.plug("eth0");
      const stateDir = path.join(dir, site);
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
      const agent = new Agent({
        site,
        target: targetOf(kernel.runner(site), stateDir),
        etcd: shared ?? newClient(),
        keyDir,
        appliedBy: `bench (${site})`,
        reportTtl: 60,
        interval: 0,
        signal: stop.signal,
        ...(watches ? { watches } : {}),
        event: (e) => {
          if (e.event === "connected") connected++;
          if (e.event === "error" || e.event === "failed") {
            errors++;
            if (errors <= 5) process.stderr.write(`${site}: ${JSON.stringify(e)}\n`);
          }
        },
      });
      agents.push(agent);
      void agent.run();
    }),
  );
}
while (connected < sites.length) await new Promise((r) => setTimeout(r, 100));
collect();
process.stdout.write(`${JSON.stringify({ ready: true, agents: sites.length, baseline })}\n`);

for await (const line of createInterface({ input: process.stdin })) {
  if (line === "report") {
    // The CPU up to now, before the collection below: the agents' work since the last report.
    const cpu = process.cpuUsage();
    collect();
    const twice = agents.filter((a) => [...a.applies.values()].some((n) => n > 1)).length;
    const applies = agents.reduce(
      (n, a) => n + [...a.applies.values()].reduce((x, y) => x + y, 0),
      0,
    );
    process.stdout.write(
      `${JSON.stringify({ rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed, baseline, twice, applies, errors, cpu: cpuOf(cpu), cpuAfter: cpuOf(process.cpuUsage()) })}\n`,
    );
  } else if (line === "stop") {
    stop.abort();
    break;
  }
}
process.exit(0);
