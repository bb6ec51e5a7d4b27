import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type NetlinkEvent,
  parseMonitorLine,
  startMonitor,
} from "../../src/system/iproute2/monitor.js";
import { withSessions } from "../../src/system/session-runner.js";
import { describeLive } from "../support/layers.js";
import { newNode, type TestNode } from "../support/node.js";

/** Lines a real `ip -o monitor link address route rule` printed (iproute2 6.1), as they came. */
const CAPTURED: [string, NetlinkEvent][] = [
  [
    "4: ext0: <NO-CARRIER,POINTOPOINT,MULTICAST,NOARP,UP> mtu 1500 qdisc pfifo_fast state DOWN group default \\    link/none ",
    { kind: "link", name: "ext0", up: true, gone: false },
  ],
  [
    "3: d0@d1: <BROADCAST,MULTICAST,M-DOWN> mtu 1500 qdisc noop state DOWN group default \\    link/ether ea:02:75:56:ba:ac brd ff:ff:ff:ff:ff:ff",
    { kind: "link", name: "d0", up: false, gone: false },
  ],
  [
    "Deleted 4: ext0: <POINTOPOINT,MULTICAST,NOARP> mtu 1500 qdisc noop state DOWN group default \\    link/none ",
    { kind: "link", name: "ext0", up: false, gone: true },
  ],
  [
    "3: d0    inet 10.9.0.1/24 scope global d0\\       valid_lft forever preferred_lft forever",
    { kind: "address", gone: false },
  ],
  [
    "3: d0    inet6 2001:db8::1/64 scope global tentative \\       valid_lft forever preferred_lft forever",
    { kind: "address", gone: false },
  ],
  ["unreachable default table 3 proto 77 metric 4294967295 ", { kind: "route", gone: false }],
  ["default dev ext0 table 3 proto 77 scope link linkdown ", { kind: "route", gone: false }],
  ["Deleted 10.8.0.0/24 dev d0 table 3 proto 77 scope link ", { kind: "route", gone: true }],
  ["201:\tfrom all fwmark 0x2000000/0xfe000000 lookup 3 proto 77", { kind: "rule", gone: false }],
];

describe("ip monitor's lines", () => {
  it.each(CAPTURED)("reads %s", (line, event) => {
    expect(parseMonitorLine(line)).toEqual(event);
  });
});

const wait = async (what: () => boolean) => {
  for (let i = 0; i < 1000 && !what(); i++) await new Promise((r) => setTimeout(r, 5));
};

for (const kind of ["fake", "live"] as const) {
  (kind === "live" ? describeLive : describe)(`long-lived tools, on a ${kind} namespace`, () => {
    let node: TestNode;
    beforeAll(async () => {
      node = await newNode(kind, "npses");
    });
    afterAll(async () => {
      await node?.destroy();
    });

    it("runs reads and changes through one ip process, and a new one after a line failed", async () => {
      const runner = withSessions(node.runner());
      try {
        const batch = (input: string, ...flags: string[]) =>
          runner.run("ip", [...flags, "-batch", "-"], { input, step: "test" });
        await batch("link add s0 type veth peer name s1\nlink set dev s0 up\n");
        await batch("address add 10.77.0.1/24 dev s0\n");
        const read = await batch("link show\naddress show\n", "-4", "-N", "-json");
        const [links, addresses] = read.stdout.split("\n").map((l) => JSON.parse(l));
        expect(links.map((l: { ifname: string }) => l.ifname)).toEqual(
          expect.arrayContaining(["lo", "s0", "s1"]),
        );
        expect(JSON.stringify(addresses)).toContain("10.77.0.1");
        // Two option sets, two processes, however many requests.
        expect(runner.spawned).toBe(2);
        const failed = batch(
          "link set dev s0 mtu 1400\nlink set dev nosuch0 up\nlink set dev s1 mtu 1400\n",
        );
        await expect(failed).rejects.toMatchObject({ code: "NETPOL_E_TOOL_FAILED" });
        await expect(failed).rejects.toThrow(/nosuch0/);
        // As a batch of its own: the lines before the failing one ran, those after it did not.
        const mtu = async (dev: string) =>
          JSON.parse((await batch(`link show dev ${dev}\n`, "-json")).stdout)[0].mtu;
        expect(await mtu("s0")).toBe(1400);
        expect(await mtu("s1")).toBe(1500);
        expect(runner.spawned).toBe(3);
        // Requests made at once are answered in order, each with its own lines.
        const many = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            batch(`link show dev ${i % 2 ? "s0" : "s1"}\n`, "-json"),
          ),
        );
        expect(many.map((r) => JSON.parse(r.stdout)[0].ifname)).toEqual(
          Array.from({ length: 20 }, (_, i) => (i % 2 ? "s0" : "s1")),
        );
        await batch("link delete dev s0\n");
      } finally {
        runner.close();
      }
    });

    it("opens no session once closed: a late request runs as a process of its own", async () => {
      const runner = withSessions(node.runner());
      const show = () =>
        runner.run("ip", ["-json", "-batch", "-"], { input: "link show dev lo\n", step: "test" });
      await show();
      expect(runner.spawned).toBe(1);
      runner.close();
      // A session opened now would outlive its owner, which stopped them all.
      const [a, b] = [await show(), await show()];
      expect(JSON.parse(a.stdout)[0].ifname).toBe("lo");
      expect(JSON.parse(b.stdout)[0].ifname).toBe("lo");
      expect(runner.spawned).toBe(3);
    });

    it("reports link changes as they happen, and that addresses, routes and rules changed", async () => {
      const runner = node.runner();
      const events: NetlinkEvent[] = [];
      const monitor = startMonitor(runner, (e) => events.push(e));
      try {
        // The monitor listens some time after it starts: until a change of lo is heard.
        for (let i = 0; !events.some((e) => e.kind === "link" && e.name === "lo"); i++) {
          await node.run("ip", ["link", "set", "dev", "lo", "alias", `probe${i}`]);
          await new Promise((r) => setTimeout(r, 20));
        }
        await node.run("ip", ["link", "add", "m0", "type", "veth", "peer", "name", "m1"]);
        await node.run("ip", ["link", "set", "dev", "m1", "up"]);
        await node.run("ip", ["link", "set", "dev", "m0", "up"]);
        await node.run("ip", ["address", "add", "10.78.0.1/24", "dev", "m0"]);
        await node.run("ip", [
          "route",
          "add",
          "10.79.0.0/24",
          "dev",
          "m0",
          "table",
          "7",
          "proto",
          "77",
        ]);
        await node.run("ip", [
          "rule",
          "add",
          "from",
          "10.80.0.0/16",
          "lookup",
          "7",
          "priority",
          "700",
          "protocol",
          "77",
        ]);
        await node.run("ip", ["rule", "del", "priority", "700"]);
        await node.run("ip", ["link", "set", "dev", "m0", "down"]);
        await node.run("ip", ["link", "delete", "dev", "m0"]);
        await wait(() => events.some((e) => e.kind === "link" && e.gone && e.name === "m0"));
        const m0 = events.filter((e) => e.kind === "link" && e.name === "m0");
        expect(m0.at(0)).toMatchObject({ up: false, gone: false });
        expect(m0.some((e) => e.kind === "link" && e.up)).toBe(true);
        expect(m0.at(-1)).toMatchObject({ gone: true });
        const others = new Set(
          events.filter((e) => e.kind !== "link").map((e) => `${e.kind} ${e.gone}`),
        );
        expect([...others]).toEqual(
          expect.arrayContaining(["address false", "route false", "rule false", "rule true"]),
        );
      } finally {
        monitor.stop();
        await monitor.exited;
      }
    });
  });
}
