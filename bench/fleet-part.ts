/**
 * What an agent does with its part before it applies it, per part, in CPU time: the part's text
 * validated and compiled at the agent (before the publisher handed the compiled state), against
 * the publisher's compiled state checked (src/fleet/agent/part.ts), alternating in one process.
 * Parts from bench/fleet.ts's shape (two hubs, N spokes): a spoke's and a hub's.
 *
 *   npx tsx bench/fleet-part.ts [--sites 1000] [--rounds 200]
 */
import os from "node:os";
import { compileSite } from "../src/compile/compile.js";
import { checkedPart } from "../src/fleet/agent/part.js";
import { desiredSchema } from "../src/fleet/documents.js";
import { preparePolicy } from "../src/fleet/prepare.js";
import { desiredOf } from "../src/fleet/publish.js";
import { parsePolicy } from "../src/policy/load.js";
import { hubPolicy } from "../test/support/large-policy.js";

const option = (name: string, fallback: number) =>
  process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : fallback;
const SITES = option("--sites", 1000);
const ROUNDS = option("--rounds", 200);

// Spokes that advertise nothing, as in bench/fleet.ts: each spoke's part is itself and its hub.
const prepared = preparePolicy(hubPolicy(SITES).replaceAll(", advertise: [lan]", ""), "fleet.yaml");
const head = { serial: 1, waves: [], failureBudget: 0, healthSeconds: 0, sites: [] } as never;
const wire = (site: string) => JSON.stringify(desiredOf(prepared, head, site));

const cpu = (f: () => void, rounds: number) => {
  const start = process.cpuUsage();
  for (let i = 0; i < rounds; i++) f();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / rounds;
};

console.log(
  `agent's work per part before applying (CPU ms per part, alternating, ${ROUNDS} rounds for a spoke, ${Math.max(1, ROUNDS / 20)} for the hub); hubPolicy(${SITES}), spokes advertising nothing; load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}; ${process.version}`,
);
console.log(
  "| part | bytes on the wire | validate + compile the text | check the compiled state | ratio |",
);
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const site of ["s7", "vps"]) {
  const text = wire(site);
  const rounds = site === "vps" ? Math.max(1, ROUNDS / 20) : ROUNDS;
  let validate = 0;
  let check = 0;
  for (let pass = 0; pass < 4; pass++) {
    validate += cpu(() => {
      const d = desiredSchema.parse(JSON.parse(text));
      compileSite(parsePolicy(d.text, "part").intent, site);
    }, rounds);
    check += cpu(() => {
      checkedPart(desiredSchema.parse(JSON.parse(text)), site);
    }, rounds);
  }
  console.log(
    `| ${site === "vps" ? `the hub (${SITES} peers)` : "a spoke"} | ${text.length} | ${(validate / 4).toFixed(3)} | ${(check / 4).toFixed(3)} | ${(validate / check).toFixed(1)}× |`,
  );
}
