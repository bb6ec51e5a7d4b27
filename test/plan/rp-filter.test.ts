import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import { type Target, targetOf } from "../../src/apply/target.js";
import { parsePolicy } from "../../src/policy/load.js";
import { FakeKernel } from "../support/fake-kernel/kernel.js";
import { VLAN_EGRESS_POLICY } from "../support/vlan-egress.js";

// An external egress device (OpenVPN's tun) gets loose rp_filter, and so does `default`, which
// the device takes each time OpenVPN makes it anew; while it is absent, its own key waits.
describe("loose rp_filter on an external egress device (fake kernel)", () => {
  let kernel: FakeKernel;
  let target: Target;
  let dir: string;
  const loaded = () => ({ ...parsePolicy(VLAN_EGRESS_POLICY, "a.yaml"), keyDir: "", site: "home" });
  const sysctl = (key: string) => kernel.must("sysctl", [key]).split(" = ")[1]?.trim();

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-rp-"));
    kernel = new FakeKernel();
    kernel.must("ip", ["link", "set", "dev", "lo", "up"]);
    kernel.plug("lan0");
    target = targetOf(kernel.runner("rp"), dir);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("applies with the device absent, and a device made afterwards is loose from the start", async () => {
    kernel.must("sysctl", ["-w", "net.ipv4.conf.all.rp_filter=1"]);
    await applySite(target, loaded(), "test");
    expect(sysctl("net.ipv4.conf.default.rp_filter")).toBe("2");
    kernel.plug("ext0", "10.1.0.2/24");
    expect(sysctl("net.ipv4.conf.ext0.rp_filter")).toBe("2");
    // Only its route is to add now (the device came back); its rp_filter is already right.
    const changes = (await planSite(target, loaded())).plan.changes;
    expect(changes.filter((c) => c.kind === "sysctl")).toEqual([]);
  });

  it("sets the device's own key when it is there, and plans it back after someone made it strict", async () => {
    kernel.plug("ext0", "10.1.0.2/24");
    await applySite(target, loaded(), "test");
    expect(sysctl("net.ipv4.conf.ext0.rp_filter")).toBe("2");
    kernel.must("sysctl", ["-w", "net.ipv4.conf.ext0.rp_filter=1"]);
    expect((await planSite(target, loaded())).plan.changes).toEqual([
      { kind: "sysctl", op: "set", key: "net.ipv4.conf.ext0.rp_filter", from: "1", to: "2" },
    ]);
  });
});
