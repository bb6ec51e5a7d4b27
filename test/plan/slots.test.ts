import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { applySite, planSite } from "../../src/apply/apply.js";
import { type Target, targetOf } from "../../src/apply/target.js";
import { chainsOf } from "../../src/compile/chains.js";
import { parsePolicy } from "../../src/policy/load.js";
import { switchPath } from "../../src/system/path-switch.js";
import { FakeKernel } from "../support/fake-kernel/kernel.js";

/** One network leaving by ext0 while it works, by ext1 otherwise; no keys. */
const POLICY = `version: 1
sites:
  home:
    interfaces: [{ name: lan0, kind: physical }]
    networks: [{ name: files, cidr: 192.168.6.0/24, interface: lan0, address: 192.168.6.1 }]
    external: [{ name: ext0, gateway: 10.1.0.1 }, { name: ext1, gateway: 10.2.0.1 }]
    egress:
      - { name: out, from: [files], via: [ext0, ext1], table: 3, priority: 200 }
`;

const loaded = () => ({ ...parsePolicy(POLICY, "chain.yaml"), keyDir: "", site: "home" });
const chain = () => {
  const { intent } = loaded();
  const site = intent.sites[0];
  if (!site) throw new Error("no site");
  const found = chainsOf(intent, site)[0];
  if (!found) throw new Error("no chain");
  return found;
};

describe("the active path of a chain (its slot) on a fake kernel", () => {
  let kernel: FakeKernel;
  let target: Target;
  let dir: string;
  /** Table 3's default route other than the fail-closed one, as `type dev`. */
  const slot = () => {
    const json = JSON.parse(kernel.must("ip", ["-json", "route", "show", "table", "3"])) as {
      type?: string;
      dst: string;
      dev?: string;
      metric?: number;
    }[];
    const r = json.find((x) => x.dst === "default" && x.metric !== 4294967295);
    return r ? `${r.type ?? "unicast"} ${r.dev ?? "-"}` : "empty";
  };
  const changes = async () => (await planSite(target, loaded())).plan.changes;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-slots-"));
    kernel = new FakeKernel();
    kernel.must("ip", ["link", "set", "dev", "lo", "up"]);
    kernel.plug("lan0");
    kernel.plug("ext0", "10.1.0.2/24");
    kernel.plug("ext1", "10.2.0.2/24");
    target = targetOf(kernel.runner("slots"), dir);
    await applySite(target, loaded(), "test");
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("starts on the preferred path", () => {
    expect(slot()).toBe("unicast ext0");
  });

  it("takes a switch to another path, or to none, as in force: a re-apply keeps it", async () => {
    await switchPath(target.runner, chain(), 1, 77);
    expect(slot()).toBe("unicast ext1");
    expect(await changes()).toEqual([]);
    expect((await applySite(target, loaded(), "test")).changed).toBe(false);
    expect(slot()).toBe("unicast ext1");

    await switchPath(target.runner, chain(), "none", 77);
    expect(slot()).toBe("unreachable -");
    expect(await changes()).toEqual([]);
  });

  it("fills an empty slot with the first path whose device is up", async () => {
    kernel.must("ip", ["route", "del", "table", "3", "default", "dev", "ext0"]);
    kernel.must("ip", ["link", "set", "dev", "ext0", "down"]);
    expect(await changes()).toEqual([
      expect.objectContaining({
        kind: "route",
        op: "add",
        route: expect.objectContaining({ device: "ext1" }),
      }),
    ]);
    await applySite(target, loaded(), "test");
    expect(slot()).toBe("unicast ext1");
  });

  it("replaces a route in the slot that is not a path of the chain", async () => {
    kernel.must("ip", ["route", "replace", "table", "3", "default", "dev", "lan0", "proto", "77"]);
    const planned = await changes();
    expect(planned).toContainEqual(
      expect.objectContaining({ op: "remove", route: expect.objectContaining({ device: "lan0" }) }),
    );
    expect(planned).toContainEqual(
      expect.objectContaining({ op: "add", route: expect.objectContaining({ device: "ext0" }) }),
    );
  });
});
