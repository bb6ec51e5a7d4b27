import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { targetOf } from "../../src/apply/target.js";
import { parsePolicy } from "../../src/policy/load.js";
import { inForceMemo } from "../../src/resident/in-force-memo.js";
import { fakeNode } from "../support/node.js";
import { VLAN_EGRESS_POLICY } from "../support/vlan-egress.js";

describe("the policy in force as a resident's status reads it", () => {
  let stateDir: string;
  beforeAll(async () => {
    stateDir = await mkdtemp(path.join(os.tmpdir(), "netpol-memo-"));
  });
  afterAll(async () => {
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("is parsed once while the record is the same file, and again after an apply replaced it", async () => {
    const node = fakeNode();
    await node.run("ip", ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
    await node.run("ip", ["tuntap", "add", "ext0", "mode", "tun"]);
    for (const d of ["lan0", "lan1", "ext0"]) await node.run("ip", ["link", "set", d, "up"]);
    const target = targetOf(node.runner(), stateDir);
    const memo = inForceMemo(target.files);
    expect(await memo()).toBeUndefined();
    const apply = (text: string) =>
      applySite(target, { ...parsePolicy(text, "p.yaml"), keyDir: "", site: "home" }, "test");
    await apply(VLAN_EGRESS_POLICY);
    const first = await memo();
    expect(first?.record.policyText).toBe(VLAN_EGRESS_POLICY);
    // The same object: not read and parsed again.
    expect(await memo()).toBe(first);
    const other = VLAN_EGRESS_POLICY.replace("table: 3", "table: 5");
    await apply(other);
    const second = await memo();
    expect(second).not.toBe(first);
    expect(second?.record.policyText).toBe(other);
    expect(await memo()).toBe(second);
  });
});
