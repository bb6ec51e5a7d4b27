import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { targetOf } from "../../src/apply/target.js";
import { parsePolicy } from "../../src/policy/load.js";
import type { Runner } from "../../src/system/runner.js";
import { describeLive } from "../support/layers.js";
import { newNode, type TestNode } from "../support/node.js";
import { runningResident } from "../support/resident.js";

const NETWORKS = 12;

/** Adjacent fail-closed networks (nft merges them into one range); the last one's prefix is `last`. */
const policyText = (last: string) => {
  const cidr = (i: number) => (i === NETWORKS - 1 ? last : `10.0.${i}.0/24`);
  const networks = Array.from(
    { length: NETWORKS },
    (_, i) => `      - { name: n${i}, cidr: ${cidr(i)}, interface: lan0 }`,
  );
  const egress = Array.from(
    { length: NETWORKS },
    (_, i) => `      - { name: e${i}, from: [n${i}], via: ext0 }`,
  );
  return `version: 1\nsites:\n  r:\n    interfaces: [{ name: lan0, kind: physical }]\n    external: [{ name: ext0 }]\n    networks:\n${networks.join("\n")}\n    egress:\n${egress.join("\n")}\n`;
};

describeLive("a one-line change through the resident", () => {
  let node: TestNode;
  let stateDir: string;

  beforeAll(async () => {
    node = await newNode("live", "nponeline");
    await node.run("ip", ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
    await node.run("ip", ["tuntap", "add", "ext0", "mode", "tun"]);
    for (const d of ["lan0", "lan1", "ext0"]) await node.run("ip", ["link", "set", d, "up"]);
    stateDir = await mkdtemp(path.join(os.tmpdir(), "netpol-one-line-"));
  });
  afterAll(async () => {
    await node?.destroy();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("swaps the prefix in netpol's sets with element commands in one `nft -f`, and the kernel holds the policy's elements", async () => {
    const inner = node.runner();
    const loads: string[] = [];
    const runner: Runner = {
      netns: inner.netns,
      get spawned() {
        return inner.spawned;
      },
      run: (tool, args, options) => {
        if (tool === "nft" && args.includes("-f")) loads.push(options?.input ?? "");
        return inner.run(tool, args, options);
      },
      session: (tool, args, options) => inner.session(tool, args, options),
      start: (tool, args, options) => inner.start(tool, args, options),
    };
    const target = targetOf(runner, stateDir);
    const first = policyText(`10.0.${NETWORKS - 1}.0/24`);
    const { resident, events, stop } = await runningResident(target, {
      ...parsePolicy(first, "policy.yaml"),
      keyDir: "",
      site: "r",
    });
    const text = (t: string) => ({ text: t, name: "policy.yaml", site: "r", keyDir: "" });
    const set = async (name: string) => node.run("nft", ["list", "set", "inet", "netpol", name]);
    const map = async () => node.run("nft", ["list", "map", "inet", "netpol", "egress_from4"]);
    try {
      // The first move retires the old prefix (its guard is new to the table); then back and forth.
      for (const [k, last] of [
        "10.250.0.0/24",
        `10.0.${NETWORKS - 1}.0/24`,
        "10.250.0.0/24",
      ].entries()) {
        loads.length = 0;
        const before = runner.spawned;
        const { plan } = await resident.applyText(text(policyText(last)), "test");
        const spawned = runner.spawned - before;
        expect(plan.changes.map((c) => c.kind)).toEqual(["nft"]);
        const moved = last === "10.250.0.0/24";
        const other = moved ? `10.0.${NETWORKS - 1}.0/24` : "10.250.0.0/24";
        // The kernel's sets read back: the egress map and the merged source set hold `last`.
        const held = await map();
        expect(held).toContain(`${last} : jump egress_1`);
        expect(held).not.toContain(`${other} : jump`);
        const merged = await set("egress_1_src4");
        expect(merged).toContain(
          moved ? "10.0.0.0-10.0.10.255" : `10.0.0.0-10.0.${NETWORKS - 1}.255`,
        );
        if (moved) expect(merged).toContain("10.250.0.0/24");
        else expect(merged).not.toContain("10.250.0.0");
        if (k === 0) continue;
        // After the first: the table's rules stay, so one `nft -f` of element commands, and no
        // listing read back.
        expect(loads).toHaveLength(1);
        expect(loads[0]).toMatch(/^(delete|add) element inet netpol /);
        expect(loads[0]).not.toContain("table");
        expect(spawned).toBeLessThanOrEqual(1);
      }
      expect(events.filter((e) => e.event === "error")).toEqual([]);
    } finally {
      await stop();
    }
  });
});
