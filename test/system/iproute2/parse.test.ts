import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { type Cidr, parseAddress, parseCidr } from "../../../src/net/cidr.js";
import {
  parseAddresses,
  parseLinks,
  parseRoutes,
  parseRules,
  splitBatchJson,
} from "../../../src/system/iproute2/parse.js";
import { configsOfWgDump, parseWgDump } from "../../../src/system/wireguard.js";

/**
 * The readers on what the real tools printed (captured/capture.sh, run on the lab): the two
 * `ip -json` reads netpol makes, and `wg show all dump`, with the odd cases in them.
 */

const captured = (file: string) =>
  readFileSync(path.join(import.meta.dirname, "..", "captured", file), "utf8");
const cidr = (text: string): Cidr => {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
};
const address = (text: string) => {
  const parsed = parseAddress(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
};
const MAX = 4294967295;

describe("ip -4 -d -N -json (links, IPv4 addresses, routes and rules)", () => {
  const [links = [], addresses = [], routes = [], rules = []] = splitBatchJson(
    captured("ip4.json"),
  );

  it("reads netpol's IPv4 routes: via a device, via a gateway with a metric, unreachable", () => {
    const { owned } = parseRoutes(routes, 4, 77);
    expect(owned).toEqual([
      { type: "unicast", table: 3, dst: cidr("0.0.0.0/0"), device: "lan0" },
      { type: "unreachable", table: 3, dst: cidr("0.0.0.0/0"), metric: MAX },
      { type: "unreachable", table: 3, dst: cidr("192.168.0.0/16"), metric: MAX },
      {
        type: "unicast",
        table: 5,
        dst: cidr("198.51.100.0/24"),
        device: "lan0",
        gateway: address("192.0.2.254"),
        metric: 10,
      },
    ]);
  });

  it("leaves a multipath route out of what it owns: netpol never makes one", () => {
    const { owned } = parseRoutes(routes, 4, 77);
    expect(owned.some((r) => r.table === 6)).toBe(false);
  });

  it("counts tables holding routes of other protocols as foreign, main aside", () => {
    expect(parseRoutes(routes, 4, 77).foreign).toEqual([7, 255]);
  });

  it("reads rules with suppress_prefixlength, a masked fwmark and a full one", () => {
    const { owned, foreign } = parseRules(rules, 4, 77);
    expect(owned).toEqual([
      {
        family: 4,
        priority: 200,
        from: cidr("192.168.6.0/24"),
        to: cidr("192.168.0.0/16"),
        table: "main",
        suppressPrefixLength: 0,
      },
      { family: 4, priority: 201, from: cidr("192.168.6.0/24"), table: 3 },
      { family: 4, priority: 300, fwmark: 0x4e50, fwmask: 0xff00, table: 5 },
      { family: 4, priority: 301, fwmark: 0x4e51, table: 5 },
    ]);
    expect(foreign).toEqual([0, 5000, 32766, 32767]);
  });

  it("reads links: kinds, masters, state and MTU (wireguard-go's device is a tun)", () => {
    const byName = new Map(parseLinks(links).map((l) => [l.name, l]));
    expect(byName.get("lan1")).toMatchObject({ kind: "veth", master: "br0", up: true });
    expect(byName.get("br0")).toMatchObject({ kind: "bridge", up: true });
    expect(byName.get("wgcap0")).toMatchObject({ kind: "tun", up: true, mtu: 1420 });
    expect(byName.get("lo")).toMatchObject({ kind: undefined, up: true });
  });

  it("keeps global addresses, not loopback ones", () => {
    expect(parseAddresses(addresses)).toEqual([
      { device: "lan0", cidr: cidr("192.0.2.1/24") },
      { device: "lan0", cidr: cidr("10.66.0.2/32") },
    ]);
  });
});

describe("ip -N -json route show table all, with no family", () => {
  it("lists IPv6 routes too: a reader must name its family", () => {
    const [routes = []] = splitBatchJson(captured("ip-any-family.json"));
    expect(routes.map((r) => (r as { dst: string }).dst)).toContain("2001:db8:1::/48");
  });
});

describe("ip -6 -N -json (IPv6 addresses, routes and rules)", () => {
  const [addresses = [], routes = [], rules = []] = splitBatchJson(captured("ip6.json"));

  it("keeps global addresses, not loopback or link-local ones", () => {
    expect(parseAddresses(addresses)).toEqual([{ device: "lan0", cidr: cidr("2001:db8::1/64") }]);
  });

  it("reads IPv6 routes; the kernel's implicit metric 1024 reads as none, and unreachable ones carry lo", () => {
    expect(parseRoutes(routes, 6, 77).owned).toEqual([
      {
        type: "unicast",
        table: 3,
        dst: cidr("2001:db8:1::/48"),
        device: "lan0",
        gateway: address("2001:db8::ff"),
      },
      { type: "unicast", table: 3, dst: cidr("2001:db8:2::/48"), device: "lan0", metric: 20 },
      { type: "unreachable", table: 3, dst: cidr("::/0"), metric: MAX },
    ]);
  });

  it("reads IPv6 rules, a masked fwmark among them", () => {
    expect(parseRules(rules, 6, 77).owned).toEqual([
      { family: 6, priority: 200, from: cidr("2001:db8:6::/48"), table: 3 },
      { family: 6, priority: 202, fwmark: 0x4e50, fwmask: 0xff00, table: 3 },
    ]);
  });
});

describe("wg show all dump", () => {
  it("reads the interface and its peers, and drops the private key column", () => {
    const [wg, ...others] = parseWgDump(captured("wg-dump.txt"));
    expect(others).toEqual([]);
    expect(wg).toMatchObject({ name: "wgcap0", listenPort: 51999 });
    expect(JSON.stringify(wg)).not.toContain("(private)");
    const peers = [...(wg?.peers ?? [])].sort((a, b) => b.allowedIps.length - a.allowedIps.length);
    expect(peers).toEqual([
      expect.objectContaining({
        endpoint: "198.51.100.7:51820",
        allowedIps: ["10.9.0.1/32", "192.168.6.0/24", "2001:db8:6::/48"],
        latestHandshake: 0,
        keepalive: 25,
      }),
      expect.objectContaining({
        endpoint: undefined,
        allowedIps: ["0.0.0.0/0"],
        keepalive: undefined,
      }),
    ]);
  });

  it("keeps to the interfaces asked about: other namespaces' wireguard-go shows in the same dump", () => {
    const mine = captured("wg-dump.txt");
    // Another namespace's interface, as wireguard-go's machine-wide sockets list it too.
    const theirs = mine.replaceAll("wgcap0", "wgother1");
    const both = `${mine}\n${theirs}`;
    expect(parseWgDump(both).map((w) => w.name)).toEqual(["wgcap0", "wgother1"]);
    expect(parseWgDump(both, new Set(["wgcap0"]))).toEqual(parseWgDump(mine));
    expect(configsOfWgDump(both, new Set(["wgcap0"]))).toEqual(configsOfWgDump(mine));
  });

  it("gives each interface's config as `wg showconf` prints it, for the rollback snapshot", () => {
    // The capture replaced the private key with "(private)"; its place in the config is the point.
    expect(configsOfWgDump(captured("wg-dump.txt"))).toEqual(
      new Map([
        [
          "wgcap0",
          [
            "[Interface]",
            "ListenPort = 51999",
            "PrivateKey = (private)",
            "",
            "[Peer]",
            "PublicKey = T8aiZgrOWFXk4sNTzCMZLL1I7lH991tGBrWfFtNzsmA=",
            "AllowedIPs = 10.9.0.1/32, 192.168.6.0/24, 2001:db8:6::/48",
            "Endpoint = 198.51.100.7:51820",
            "PersistentKeepalive = 25",
            "",
            "[Peer]",
            "PublicKey = TPcxuJFIG8Db43JeX2SJah26lcayiJLMEsgIS0b6WU4=",
            "AllowedIPs = 0.0.0.0/0",
            "",
          ].join("\n"),
        ],
      ]),
    );
  });
});
