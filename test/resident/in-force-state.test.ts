import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect, it } from "vitest";
import { targetOf } from "../../src/apply/target.js";
import { NetpolError } from "../../src/errors.js";
import { parsePolicy } from "../../src/policy/load.js";
import type { Runner } from "../../src/system/runner.js";
import { fakeNode } from "../support/node.js";
import { runningResident } from "../support/resident.js";

/** Three fail-closed egress networks; `cidr` is the third one's prefix. */
const policyText = (cidr: string) => `version: 1
sites:
  r:
    interfaces: [{ name: lan0, kind: physical }]
    external: [{ name: ext0 }]
    networks:
      - { name: n0, cidr: 10.0.0.0/24, interface: lan0 }
      - { name: n1, cidr: 10.0.1.0/24, interface: lan0 }
      - { name: n2, cidr: ${cidr}, interface: lan0 }
    egress:
      - { name: e0, from: [n0], via: ext0 }
      - { name: e1, from: [n1], via: ext0 }
      - { name: e2, from: [n2], via: ext0 }
`;
const input = (cidr: string) => ({
  ...parsePolicy(policyText(cidr), "policy.yaml"),
  keyDir: "",
  site: "r",
});

async function site() {
  const node = fakeNode();
  await node.run("ip", ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
  await node.run("ip", ["tuntap", "add", "ext0", "mode", "tun"]);
  for (const d of ["lo", "lan0", "lan1", "ext0"]) await node.run("ip", ["link", "set", d, "up"]);
  const stateDir = await mkdtemp(path.join(os.tmpdir(), "netpol-inforce-"));
  return { node, stateDir };
}

it("loads a change of netpol's table without listing it first, and puts the table it loaded back on a rollback", async () => {
  const { node, stateDir } = await site();
  const inner = node.kernel.runner();
  const commands: string[] = [];
  const runner: Runner = {
    netns: inner.netns,
    get spawned() {
      return inner.spawned;
    },
    run: (tool, args, options) => {
      commands.push(`${tool} ${args.join(" ")}`);
      return inner.run(tool, args, options);
    },
    session: (tool, args, options) => inner.session(tool, args, options),
    start: (tool, args, options) => inner.start(tool, args, options),
  };
  const target = targetOf(runner, stateDir);
  const first = input("10.0.2.0/24");
  const { resident, stop } = await runningResident(target, first);
  const table = async () => node.run("nft", ["list", "table", "inet", "netpol"]);
  try {
    await resident.apply(input("10.250.0.0/24"), "test");
    const loaded = await table();
    expect(loaded).toContain("10.250.0.0/24");
    // The next change (e2 goes: the fail-closed rule's comment, so a rule, changes, and the
    // table's skeleton is read back after its write) is stopped once its table is loaded: it is
    // rolled back.
    commands.length = 0;
    const withoutE2 = policyText("10.250.0.0/24").replace(/ {6}- \{ name: e2,.*\n/, "");
    const stopped = resident.apply(
      { ...parsePolicy(withoutE2, "policy.yaml"), keyDir: "", site: "r" },
      "test",
      {
        stop: () => (commands.some((c) => c.startsWith("nft -f")) ? "SIGTERM" : undefined),
      },
    );
    await expect(stopped).rejects.toThrow(NetpolError);
    await expect(stopped).rejects.toMatchObject({ code: "NETPOL_E_INTERRUPTED" });
    const write = commands.findIndex((c) => c.startsWith("nft -f"));
    expect(write).toBeGreaterThanOrEqual(0);
    // Its snapshot is the table the resident loaded last, not a listing read before the write.
    expect(commands.slice(0, write).filter((c) => c.startsWith("nft"))).toEqual([]);
    expect(await table()).toBe(loaded);
  } finally {
    await stop();
    await rm(stateDir, { recursive: true, force: true });
  }
});

it("plans a change through the resident against the state it applied last, guards included", async () => {
  const { node, stateDir } = await site();
  const target = targetOf(node.kernel.runner(), stateDir);
  const { resident, events, stop } = await runningResident(target, input("10.0.2.0/24"));
  try {
    // n2 moves and its egress goes: its old prefix keeps a guard while lan0 is here (a set and a
    // rule that are not in the policy's own render); then n2 and e2 are back as they were, which
    // takes the guard out again.
    const moved = policyText("10.250.0.0/24").replace(/ {6}- \{ name: e2,.*\n/, "");
    await resident.apply({ ...parsePolicy(moved, "policy.yaml"), keyDir: "", site: "r" }, "test");
    const { plan } = await resident.apply(input("10.0.2.0/24"), "test");
    const nft = plan.changes.find((c) => c.kind === "nft");
    // The table in force was loaded from the guarded state: only that state names its rules
    // (the policy in force compiled again has no guard, so its render is not the table's).
    expect(nft && "details" in nft ? nft.details : []).toContain(
      'chain filter_forward: - iifname . ip saddr @retired4 counter drop comment "retired networks"',
    );
    expect(events.filter((e) => e.event === "error")).toEqual([]);
  } finally {
    await stop();
    await rm(stateDir, { recursive: true, force: true });
  }
});
