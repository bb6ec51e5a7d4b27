import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { takeDown } from "../../src/apply/down.js";
import { type Target, targetOf } from "../../src/apply/target.js";
import { createRunner } from "../../src/system/runner.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";
import { homeInput, WITH_GUEST, WITHOUT_GUEST } from "../support/retired.js";

/**
 * Issue 18, item 7, measured: a guest network that failed closed (egress by ext0 only) leaves
 * the policy; its port stays up and forwarding stays on for the LAN. A guest host that has the
 * router's MAC cached sends on: before, the main table routed it out of the ISP link (3 packets
 * per probe on the ISP's meter). Now the network's guard drops it at the port.
 *
 *   guest ns  gh0 10.66.0.2 ── guest0 [router ns] wan0 198.51.100.2 ── isp0 198.51.100.1 [isp ns]
 */
describeLive("a fail-closed network removed from the policy does not leak", () => {
  let router: Netns;
  let guest: Netns;
  let isp: Netns;
  let dir: string;
  let target: Target;
  const input = (text: string) => homeInput(text, dir);

  beforeAll(async () => {
    router = await createNetns("npr");
    guest = await createNetns("npg");
    isp = await createNetns("npi");
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-retired-e2e-"));
    await router.exec(
      ["ip", "-batch", "-"],
      [
        `link add guest0 type veth peer name gh0 netns ${guest.name}`,
        `link add wan0 type veth peer name isp0 netns ${isp.name}`,
        "link add lan0 type veth peer name lan0p",
        "tuntap add ext0 mode tun",
        ...["guest0", "wan0", "lan0", "lan0p", "ext0", "lo"].map((d) => `link set dev ${d} up`),
        "address add 198.51.100.2/24 dev wan0",
        // The guest port's address is the distro's: it stays when the network leaves the policy.
        "address add 10.66.0.1/24 dev guest0",
        "route add default via 198.51.100.1",
        "",
      ].join("\n"),
    );
    await router.exec(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    await isp.exec(
      ["ip", "-batch", "-"],
      "link set dev isp0 up\nlink set dev lo up\naddress add 198.51.100.1/24 dev isp0\n",
    );
    // The ISP's meter: whatever reaches it from the guest network.
    await isp.exec(
      ["nft", "-f", "-"],
      'table inet ispmeter {\n chain pre { type filter hook prerouting priority 0; ip saddr 10.66.0.0/24 counter comment "guest"; }\n}\n',
    );
    await guest.exec(
      ["ip", "-batch", "-"],
      "link set dev gh0 up\nlink set dev lo up\naddress add 10.66.0.2/24 dev gh0\nroute add default via 10.66.0.1\n",
    );
    target = targetOf(createRunner(router.name), path.join(dir, "state"));
  });
  afterAll(async () => {
    if (target) await takeDown(target, "test").catch(() => undefined);
    for (const ns of [guest, isp, router]) await ns?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const counted = async (ns: Netns, table: string, comment: string) => {
    const listing = (await ns.exec(["nft", "list", "table", "inet", table])).stdout;
    const line = listing.split("\n").find((l) => l.includes(`comment "${comment}"`)) ?? "";
    return Number(/counter packets (\d+)/.exec(line)?.[1] ?? Number.NaN);
  };

  it("the guest's probes after the removal reach the ISP's meter 0 times; the guard counts them", async () => {
    await applySite(target, input(WITH_GUEST), "test");
    // The guest host learns the router's MAC while its network is in force.
    await guest.exec(["ping", "-c", "1", "-W", "1", "10.66.0.1"]);
    const before = await counted(isp, "ispmeter", "guest");
    expect(before).toBe(0);

    await applySite(target, input(WITHOUT_GUEST), "test");
    const mac = JSON.parse((await router.exec(["ip", "-j", "link", "show", "guest0"])).stdout)[0]
      .address as string;
    // Cached for good, as a host that was there keeps it.
    await guest.exec([
      "ip",
      "neigh",
      "replace",
      "10.66.0.1",
      "lladdr",
      mac,
      "dev",
      "gh0",
      "nud",
      "permanent",
    ]);
    await guest.run(["ping", "-c", "3", "-i", "0.2", "-W", "1", "203.0.113.5"]);
    expect(await counted(isp, "ispmeter", "guest")).toBe(0);
    expect(await counted(router, "netpol", "retired networks")).toBeGreaterThanOrEqual(3);
  });
});
