import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import { type Target, targetOf } from "../../src/apply/target.js";
import { chainsOf } from "../../src/compile/chains.js";
import { parsePolicy } from "../../src/policy/load.js";
import { switchPath } from "../../src/system/path-switch.js";
import { FakeKernel } from "../support/fake-kernel/kernel.js";

/** A dual-stack network leaving by ext0 while it works, by ext1 otherwise; no keys. */
const POLICY = `version: 1
sites:
  home:
    interfaces: [{ name: lan0, kind: physical }]
    networks:
      - { name: files, cidr: 192.168.6.0/24, interface: lan0, address: 192.168.6.1 }
      - { name: files6, cidr: "2001:db8:6::/64", interface: lan0 }
    external: [{ name: ext0, gateway: 10.1.0.1 }, { name: ext1, gateway: 10.2.0.1 }]
    egress:
      - { name: out, from: [files, files6], via: [ext0, ext1], table: 3, priority: 200 }
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
  /** Table 3's default route of each family other than the fail-closed one, as `type dev`. */
  const slot = (family: 4 | 6 = 4) => {
    const json = JSON.parse(
      kernel.must("ip", [`-${family}`, "-json", "route", "show", "table", "3"]),
    ) as { type?: string; dst: string; dev?: string; metric?: number }[];
    const r = json.find((x) => x.dst === "default" && x.metric !== 4294967295);
    return r
      ? `${r.type ?? "unicast"} ${r.type === "unreachable" ? "-" : (r.dev ?? "-")}`
      : "empty";
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

  it("starts on the preferred path, in both families", () => {
    expect(slot(4)).toBe("unicast ext0");
    expect(slot(6)).toBe("unicast ext0");
  });

  it("takes a switch to another path, or to none, as in force: a re-apply keeps it", async () => {
    await switchPath(target.runner, chain(), 1, 77);
    expect(slot(4)).toBe("unicast ext1");
    expect(slot(6)).toBe("unicast ext1");
    expect(await changes()).toEqual([]);
    expect((await applySite(target, loaded(), "test")).changed).toBe(false);
    expect(slot()).toBe("unicast ext1");

    await switchPath(target.runner, chain(), "none", 77);
    expect(slot(4)).toBe("unreachable -");
    expect(slot(6)).toBe("unreachable -");
    expect(await changes()).toEqual([]);
  });

  it("fills an empty slot with the first path whose device is up", async () => {
    kernel.must("ip", ["route", "del", "table", "3", "default", "dev", "ext0"]);
    kernel.must("ip", ["link", "set", "dev", "ext0", "down"]);
    // The IPv6 route through ext0 went down with its device: both families move.
    const adds = (await changes()).filter((c) => c.kind === "route" && c.op === "add");
    expect(
      adds.map((c) => c.kind === "route" && c.route.type === "unicast" && c.route.device),
    ).toEqual(["ext1", "ext1"]);
    await applySite(target, loaded(), "test");
    expect(slot(4)).toBe("unicast ext1");
    expect(slot(6)).toBe("unicast ext1");
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

  it("names routes another program pushed into main through an egress device, with the fix", async () => {
    for (const half of ["0.0.0.0/1", "128.0.0.0/1"])
      kernel.must("ip", ["route", "add", half, "dev", "ext1"]);
    kernel.must("ip", ["route", "add", "10.9.0.0/16", "dev", "ext1"]);
    const { warnings } = (await planSite(target, loaded())).plan;
    expect(warnings).toEqual([
      expect.stringMatching(
        /^route 0\.0\.0\.0\/1 dev ext1 in main is not netpol's: .* add route-noexec/,
      ),
      expect.stringMatching(/^route 128\.0\.0\.0\/1 dev ext1 in main/),
    ]);
  });
});
