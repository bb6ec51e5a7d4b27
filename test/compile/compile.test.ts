import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { compileSite } from "../../src/compile/compile.js";
import type { TableRef } from "../../src/compile/desired.js";
import { FAIL_CLOSED_METRIC, type NftChain, type SiteState } from "../../src/compile/desired.js";
import { siteMarks } from "../../src/compile/egress-groups.js";
import { NetpolError } from "../../src/errors.js";
import { type Cidr, contains, hostPrefix, parseCidr } from "../../src/net/cidr.js";
import type { Intent } from "../../src/policy/intent.js";
import { parsePolicy } from "../../src/policy/load.js";
import { renderSiteFiles } from "../../src/render/site-files.js";

function scenarioText(file: string): string {
  return readFileSync(new URL(`../../policies/${file}`, import.meta.url), "utf8");
}

function scenario(file: string) {
  return parsePolicy(scenarioText(file), `policies/${file}`).intent;
}

/**
 * The table Linux's rule walk picks for a forwarded IPv4 packet (main if no rule matches),
 * marked first as netpol's nft chains mark it: its egress group's mark, flagged for `except`.
 */
function lookup(intent: Intent, state: SiteState, src: string, dst: string): TableRef {
  const at = (addr: string) => hostPrefix(cidr(addr));
  const site = intent.sites.find((x) => x.name === state.site);
  if (!site) throw new Error(`no site ${state.site}`);
  const { groups, layout } = siteMarks(intent.settings, site);
  const g = groups.find((x) => x.sources.some((c) => contains(c, at(src))));
  const local = g?.except.some((c) => contains(c, at(dst)));
  const mark = g ? (local ? (g.mark | layout.flag) >>> 0 : g.mark) : 0;
  const has = (c: Cidr | undefined, addr: string) => c === undefined || contains(c, at(addr));
  const ordered = [...state.rules].sort((a, b) => a.priority - b.priority);
  const hit = ordered.find(
    (r) =>
      r.family === 4 &&
      (r.fwmark === undefined || (mark & (r.fwmask ?? 0xffffffff)) >>> 0 === r.fwmark) &&
      has(r.from, src) &&
      has(r.to, dst),
  );
  return hit?.table ?? "main";
}

const cidr = (text: string): Cidr => {
  const r = parseCidr(text);
  if (!r.ok) throw new Error(r.error);
  return r.value;
};

const chain = (state: SiteState, name: string): NftChain | undefined =>
  state.nftChains.find((c) => c.name === name);

const rulesOf = (state: SiteState, name: string) => chain(state, name)?.rules ?? [];
const set = (state: SiteState, name: string) => state.nftSets.find((x) => x.name === name);

const fakeKeys = (state: SiteState) =>
  new Map(state.wireguard.map((w) => [w.privateKeyFile, `FAKE-KEY-FOR-${w.name}`]));

describe("scenario A: a VLAN via a commercial VPN", () => {
  const intent = scenario("a-vlan-via-vpn.yaml");
  const home = compileSite(intent, "home");

  it("keeps local destinations in main at 200 and sends the rest to table 3 at 201", () => {
    // Marks in netpol's own bits (the default mask 0xff000000) select the rules.
    expect(home.rules).toEqual([
      {
        family: 4,
        priority: 200,
        fwmark: 0x03000000,
        fwmask: 0xff000000,
        table: "main",
        suppressPrefixLength: 0,
      },
      { family: 4, priority: 201, fwmark: 0x02000000, fwmask: 0xfe000000, table: 3 },
    ]);
    expect(lookup(intent, home, "192.168.6.5", "192.168.1.10")).toBe("main");
    expect(lookup(intent, home, "192.168.6.5", "198.51.100.7")).toBe(3);
    expect(lookup(intent, home, "192.168.1.5", "198.51.100.7")).toBe("main");
  });

  it("routes table 3 by tun-hma and fails closed behind it", () => {
    expect(home.routes).toContainEqual({
      type: "unicast",
      table: 3,
      dst: cidr("0.0.0.0/0"),
      device: "tun-hma",
    });
    expect(home.routes).toContainEqual({
      type: "unreachable",
      table: 3,
      dst: cidr("0.0.0.0/0"),
      metric: FAIL_CLOSED_METRIC,
    });
    expect(FAIL_CLOSED_METRIC).toBe(4294967295);
    // Nothing else goes anywhere but table 3, and nothing else there leads out of a device.
    for (const r of home.routes) {
      expect(r.table).toBe(3);
      if (r.type === "unicast") expect(r.device).toBe("tun-hma");
    }
  });

  it("marks VLAN 6 by a map lookup, keeping every other tool's mark bits", () => {
    expect(rulesOf(home, "mangle_prerouting")).toEqual([
      "meta mark & 0xff000000 == 0x00000000 ip saddr vmap @egress_from4",
    ]);
    expect(set(home, "egress_from4")?.elements).toEqual(["192.168.6.0/24 : jump egress_1"]);
    expect(rulesOf(home, "egress_1")).toEqual([
      "ip daddr @egress_1_except4 meta mark set meta mark & 0x00ffffff | 0x03000000 return",
      "meta mark set meta mark & 0x00ffffff | 0x02000000",
    ]);
    expect(set(home, "egress_1_except4")?.elements).toEqual(["192.168.0.0/16"]);
  });

  it("masquerades VLAN 6 on tun-hma and clamps MSS both ways", () => {
    expect(rulesOf(home, "nat_postrouting")).toEqual([
      'oifname . ip saddr @masquerade4 masquerade comment "egress"',
    ]);
    expect(set(home, "masquerade4")?.elements).toEqual(['"tun-hma" . 192.168.6.0/24']);
    expect(rulesOf(home, "mangle_forward")).toEqual([
      'oifname "tun-hma" tcp flags syn tcp option maxseg size set rt mtu',
      'iifname "tun-hma" tcp flags syn tcp option maxseg size set rt mtu',
    ]);
  });

  it("drops VLAN 6 traffic to the internet that would leave by another device", () => {
    expect(rulesOf(home, "filter_forward")).toEqual([
      'ip saddr @egress_1_src4 ip daddr != @egress_1_except4 oifname != "tun-hma" counter drop comment "fail-closed vpn"',
      // Hosts on VLAN 6 may get IPv6 addresses the policy does not list (SLAAC): kept in too.
      'iifname "eth0.6" meta nfproto ipv6 oifname != "tun-hma" counter drop comment "fail-closed vpn, unlisted IPv6"',
    ]);
  });

  it("creates VLAN 6 and its address, and renders the hand-written commands", () => {
    expect(home.links).toEqual([{ kind: "vlan", name: "eth0.6", parent: "eth0", vlanId: 6 }]);
    expect(home.addresses).toEqual([{ device: "eth0.6", cidr: cidr("192.168.6.1/24") }]);
    const batch = renderSiteFiles(home, new Map()).get("ip.batch")?.split("\n") ?? [];
    expect(batch.slice(0, 3)).toEqual([
      "link add link eth0 name eth0.6 type vlan id 6",
      "link set dev eth0.6 up",
      "address add 192.168.6.1/24 dev eth0.6",
    ]);
    expect(batch).toContain("route add table 3 0.0.0.0/0 dev tun-hma proto 77");
    expect(batch).toContain("route add table 3 unreachable 0.0.0.0/0 metric 4294967295 proto 77");
    expect(batch).toContain(
      "rule add priority 200 from 0.0.0.0/0 fwmark 0x3000000/0xff000000 lookup main suppress_prefixlength 0 protocol 77",
    );
    expect(batch).toContain(
      "rule add priority 201 from 0.0.0.0/0 fwmark 0x2000000/0xfe000000 lookup 3 protocol 77",
    );
  });

  it("has no WireGuard, proxy or reply marks", () => {
    expect(home.wireguard).toEqual([]);
    expect(home.proxy).toBeUndefined();
    expect(chain(home, "mangle_output")).toBeUndefined();
    // Loose rp_filter on the provider's device, and on `default`, which OpenVPN's recreated tun takes.
    expect(home.sysctls).toEqual([
      ["net.ipv4.ip_forward", "1"],
      ["net.ipv4.conf.default.rp_filter", "2"],
      ["net.ipv4.conf.tun-hma.rp_filter", "2"],
    ]);
  });

  it("refuses a site the policy does not have", () => {
    expect(() => compileSite(intent, "vps")).toThrow(NetpolError);
    expect(() => compileSite(intent, "vps")).toThrow(
      "no site vps in this policy; pick one of: home",
    );
  });
});

describe("scenario B: home services published through a VPS", () => {
  const intent = scenario("b-publish-via-vps.yaml");
  const home = compileSite(intent, "home");
  const vps = compileSite(intent, "vps");

  it("home dials the VPS's endpoint and keeps the NAT mapping open", () => {
    const [wg] = home.wireguard;
    expect(wg?.name).toBe("wg-home");
    expect(wg?.listenPort).toBeUndefined();
    expect(wg?.peers).toHaveLength(1);
    expect(wg?.peers[0]).toMatchObject({
      site: "vps",
      publicKey: "QwiYNlQXBHxjBEk/LGWJKlstzfZ2U4VtuI/o6GU2xHs=",
      endpoint: { host: "203.0.113.10", port: 51820 },
      keepalive: 25,
    });
  });

  it("the VPS listens, has no endpoint for home, and sends home's servers into the tunnel", () => {
    const [wg] = vps.wireguard;
    expect(wg?.listenPort).toBe(51820);
    const peer = wg?.peers[0];
    expect(peer?.site).toBe("home");
    expect(peer?.endpoint).toBeUndefined();
    expect(peer?.keepalive).toBeUndefined();
    expect(peer?.allowedIps.some((c) => contains(c, cidr("192.168.1.0/24")))).toBe(true);
    expect(peer?.allowedIps).toEqual([cidr("10.99.0.2/32"), cidr("192.168.1.0/24")]);
    expect(vps.routes).toEqual([
      { type: "unicast", table: "main", dst: cidr("192.168.1.0/24"), device: "wg-home" },
    ]);
  });

  it("home routes marked replies of the preserve-client DNS service back into the tunnel", () => {
    // The first slot above the flag in netpol's bits; the other 24 bits are left alone.
    const fwmarkRules = home.rules.filter((r) => r.fwmark !== undefined);
    expect(fwmarkRules).toHaveLength(1);
    const [rule] = fwmarkRules;
    expect(rule).toMatchObject({
      family: 4,
      fwmark: 0x02000000,
      fwmask: 0xff000000,
      priority: 100,
    });
    expect(rule?.from).toBeUndefined();
    expect(home.routes).toContainEqual({
      type: "unicast",
      table: rule?.table,
      dst: cidr("0.0.0.0/0"),
      device: "wg-home",
    });
    expect(rulesOf(home, "mangle_prerouting")).toEqual([
      'iifname "wg-home" ct state new ct mark set ct mark & 0x00ffffff | 0x02000000',
      'iifname != "wg-home" ct mark & 0xff000000 == 0x02000000 meta mark set meta mark & 0x00ffffff | 0x02000000',
    ]);
    expect(rulesOf(home, "mangle_output")).toEqual([
      "ct mark & 0xff000000 == 0x02000000 meta mark set meta mark & 0x00ffffff | 0x02000000",
    ]);
    expect(home.sysctls).toContainEqual(["net.ipv4.conf.wg-home.rp_filter", "2"]);
    // Replies go to any client address, so home's only peer takes the default route.
    expect(home.wireguard[0]?.peers[0]?.allowedIps).toContainEqual(cidr("0.0.0.0/0"));
  });

  it("the VPS DNATs DNS on udp and tcp 53 and ssh on tcp 2222 arriving on its wan", () => {
    expect(rulesOf(vps, "nat_prerouting")).toEqual([
      'iifname "eth0" meta nfproto ipv4 meta l4proto . th dport @proxied4 ct mark set ct mark & 0xfeffffff | 0x01000000',
      'iifname "eth0" meta nfproto ipv4 dnat ip to meta l4proto . th dport map @published4 comment "published"',
    ]);
    expect(set(vps, "published4")?.elements).toEqual([
      "udp . 53 : 192.168.1.53 . 53",
      "tcp . 53 : 192.168.1.53 . 53",
      "tcp . 2222 : 192.168.1.22 . 22",
    ]);
  });

  it("the VPS masquerades only the ssh path, keeping DNS clients' addresses", () => {
    // Connections to ssh's port carry the flag in their connection mark; only they are SNATed.
    expect(set(vps, "proxied4")?.elements).toEqual(["tcp . 2222"]);
    expect(rulesOf(vps, "nat_postrouting")).toEqual([
      'ct status dnat ct mark & 0x01000000 == 0x01000000 masquerade comment "published, proxied"',
    ]);
    expect(rulesOf(vps, "mangle_forward")).toEqual([
      'oifname "wg-home" tcp flags syn tcp option maxseg size set rt mtu',
      'iifname "wg-home" tcp flags syn tcp option maxseg size set rt mtu',
    ]);
  });

  it("the VPS proxies blog.example.org to the home web server, and wiki.example.org through its relay", () => {
    expect(vps.proxy?.routes).toEqual([
      { service: "blog", hostname: "blog.example.org", upstream: "192.168.1.20:80" },
      { service: "wiki", hostname: "wiki.example.org", upstream: "127.0.0.1:9479" },
    ]);
    expect(home.proxy).toBeUndefined();
  });

  it("the VPS's relay holds the PROXY-protocol port instead of a DNAT, and carries the HTTP service asking for it", () => {
    expect(vps.relay).toEqual({
      wan: "eth0",
      // Both families: an IPv6 client reaches the IPv4 target through the relay.
      ports: [
        { service: "imap", family: 4, port: 993, target: "192.168.1.25:993", version: "v2" },
        { service: "imap", family: 6, port: 993, target: "192.168.1.25:993", version: "v2" },
      ],
      http: {
        port: 9479,
        routes: [
          {
            service: "wiki",
            hostname: "wiki.example.org",
            target: "192.168.1.20:8080",
            version: "v1",
          },
        ],
      },
    });
    expect(vps.published?.ports).toContainEqual({
      service: "imap",
      kind: "tcp",
      port: 993,
      relay: true,
    });
    expect(home.relay).toBeUndefined();
  });

  it("renders WireGuard configs with the key given and the peer's endpoint", () => {
    const files = renderSiteFiles(home, fakeKeys(home));
    expect(files.get("wireguard/wg-home.conf")).toBe(
      [
        "[Interface]",
        "PrivateKey = FAKE-KEY-FOR-wg-home",
        "",
        "# site vps",
        "[Peer]",
        "PublicKey = QwiYNlQXBHxjBEk/LGWJKlstzfZ2U4VtuI/o6GU2xHs=",
        "AllowedIPs = 0.0.0.0/0, 10.99.0.1/32",
        "Endpoint = 203.0.113.10:51820",
        "PersistentKeepalive = 25",
        "",
      ].join("\n"),
    );
    const vpsFiles = renderSiteFiles(vps, fakeKeys(vps));
    expect(vpsFiles.get("wireguard/wg-home.conf")).toContain("ListenPort = 51820\n");
    expect(vpsFiles.get("wireguard/wg-home.conf")).not.toContain("Endpoint");
    expect([...vpsFiles.keys()].sort()).toEqual([
      "caddy.json",
      "haproxy-relay.cfg",
      "ip.batch",
      "nftables.nft",
      "sysctl.conf",
      "wireguard/wg-home.conf",
    ]);
  });
});

describe("scenario C: both, plus guests leaving through the VPS", () => {
  const intent = scenario("c-combined.yaml");
  const home = compileSite(intent, "home");
  const vps = compileSite(intent, "vps");

  it("gives the guest egress the first automatic table and priority", () => {
    expect(home.rules.filter((r) => r.table === 100)).toEqual([
      { family: 4, priority: 1001, fwmark: 0x06000000, fwmask: 0xfe000000, table: 100 },
    ]);
    expect(lookup(intent, home, "192.168.7.9", "198.51.100.7")).toBe(100);
    expect(home.routes).toContainEqual({
      type: "unicast",
      table: 100,
      dst: cidr("0.0.0.0/0"),
      device: "wg-home",
    });
    expect(home.routes).toContainEqual({
      type: "unreachable",
      table: 100,
      dst: cidr("0.0.0.0/0"),
      metric: FAIL_CLOSED_METRIC,
    });
  });

  it("puts the reply rule before every egress rule", () => {
    const reply = home.rules.find((r) => r.table === 101);
    const egress = home.rules.filter((r) => r.table !== 101);
    expect(reply).toBeDefined();
    for (const r of egress) expect(r.priority).toBeGreaterThan(reply?.priority ?? Infinity);
  });

  it("the VPS masquerades what leaves its wan from the tunnel", () => {
    expect(rulesOf(vps, "nat_postrouting")).toContain(
      'iifname "wg-home" oifname "eth0" masquerade comment "exit"',
    );
  });

  it("enables IPv6 forwarding where the site has an IPv6 network", () => {
    expect(home.sysctls).toContainEqual(["net.ipv6.conf.all.forwarding", "1"]);
    expect(vps.sysctls).not.toContainEqual(["net.ipv6.conf.all.forwarding", "1"]);
  });
});

describe("a published service whose target sits in an egress's sources", () => {
  // Scenario C with the SSH host moved into VLAN 6, which leaves through tun-hma.
  const doc = parse(scenarioText("c-combined.yaml"));
  doc.services[2].target = "192.168.6.22:22";
  const intent = parsePolicy(stringify(doc), "moved.yaml").intent;
  const home = compileSite(intent, "home");

  it("sends VLAN 6's internet traffic to table 3 and local traffic to main", () => {
    expect(lookup(intent, home, "192.168.6.22", "198.51.100.7")).toBe(3);
    expect(lookup(intent, home, "192.168.6.22", "192.168.1.10")).toBe("main");
  });

  // The VPS masquerades the SSH connection to its tunnel address 10.99.0.1: home must look
  // the reply up in main (into wg-home), not in table 3 (out through the commercial VPN).
  it("routes replies to the VPS's tunnel address by main, into wg-home", () => {
    expect(lookup(intent, home, "192.168.6.22", "10.99.0.1")).toBe("main");
  });
});

describe("a port published on the VPS's IPv4 and IPv6 addresses", () => {
  // Scenario B with an IPv6 network at home: DNS keeps client addresses on both families, SSH
  // keeps them over IPv6 only (a second service on the same port, for IPv6 clients).
  const doc = parse(scenarioText("b-publish-via-vps.yaml"));
  doc.sites.home.networks.push({ name: "servers6", cidr: "2001:db8:1::/64", interface: "eth0" });
  doc.services[1].target = ["192.168.1.53:53", "[2001:db8:1::53]:53"];
  doc.services.push({
    name: "ssh6",
    kind: "tcp",
    publishOn: "vps",
    port: 2222,
    target: "[2001:db8:1::22]:22",
    clientAddress: "preserve",
  });
  const intent = parsePolicy(stringify(doc), "dual.yaml").intent;
  const vps = compileSite(intent, "vps");
  const home = compileSite(intent, "home");

  it("DNATs each family to the target of its own family", () => {
    expect(rulesOf(vps, "nat_prerouting")).toEqual([
      'iifname "eth0" meta nfproto ipv4 meta l4proto . th dport @proxied4 ct mark set ct mark & 0xfeffffff | 0x01000000',
      'iifname "eth0" meta nfproto ipv4 dnat ip to meta l4proto . th dport map @published4 comment "published"',
      'iifname "eth0" meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @published6 comment "published"',
    ]);
    expect(set(vps, "published6")?.elements).toEqual([
      "udp . 53 : 2001:db8:1::53 . 53",
      "tcp . 2222 : 2001:db8:1::22 . 22",
    ]);
  });

  it("masquerades tcp 2222 for IPv4 clients only: IPv6 clients of the same port keep their address", () => {
    expect(set(vps, "proxied4")?.elements).toEqual(["tcp . 2222"]);
    expect(set(vps, "proxied6")).toBeUndefined();
  });

  it("routes marked replies back into the tunnel for both families at home", () => {
    const replies = home.rules.filter((r) => r.fwmark !== undefined);
    expect(replies.map((r) => r.family)).toEqual([4, 6]);
    expect(home.routes).toContainEqual(
      expect.objectContaining({ type: "unicast", table: replies[0]?.table, dst: cidr("::/0") }),
    );
    expect(home.wireguard[0]?.peers[0]?.allowedIps).toEqual(
      expect.arrayContaining([cidr("0.0.0.0/0"), cidr("::/0")]),
    );
  });
});
