/**
 * What `netpol publish` does before it writes to etcd, at N sites of bench/fleet.ts's fleet
 * (two hubs, N spokes): validate the whole policy, then cut, compile and check each site's part
 * (src/fleet/prepare.ts). CPU time of the one call, several rounds; the keys are generated once.
 * To compare two trees, run this file from each in turn (alternating), as the figures in
 * bench/RESULTS.md were made.
 *
 *   npx tsx bench/fleet-publish.ts [--sites 10000] [--rounds 2]
 */
import os from "node:os";
import { preparePolicy } from "../src/fleet/prepare.js";
import { generateKeyPair } from "../src/system/keys.js";
import { fleetPolicy } from "./fleet-policy.js";

const option = (name: string, fallback: number) =>
  process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : fallback;
const SITES = option("--sites", 10_000);
const ROUNDS = option("--rounds", 2);

const keys = Array.from({ length: SITES + 2 }, () => generateKeyPair().publicKey);
const text = fleetPolicy(SITES, keys);
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
console.log(`preparePolicy, ${SITES + 2} sites (${text.length} bytes); load ${load()}`);
console.log("| round | CPU (s) | wall (s) | parts cut smaller than the whole policy |");
console.log("| --- | ---: | ---: | ---: |");
for (let round = 1; round <= ROUNDS; round++) {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  const prepared = preparePolicy(text, "fleet.yaml");
  const used = process.cpuUsage(cpu);
  const cut = prepared.sites.size - prepared.whole.length;
  console.log(
    `| ${round} | ${((used.user + used.system) / 1e6).toFixed(2)} | ${((performance.now() - wall) / 1000).toFixed(2)} | ${cut} of ${prepared.sites.size} |`,
  );
}
console.log(`load ${load()}`);
