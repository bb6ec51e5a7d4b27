import { describe, expect, it } from "vitest";
import { compileSite } from "../../src/compile/compile.js";
import { FAIL_CLOSED_METRIC } from "../../src/compile/desired.js";
import { siteMarks } from "../../src/compile/egress-groups.js";
import { formatCidr } from "../../src/net/cidr.js";
import { parsePolicy } from "../../src/policy/load.js";
import { routeArgs, ruleArgs } from "../../src/render/ip.js";
import { KEYS } from "../policy/fixtures.js";

/** VLAN 6 leaves by the provider while it works, by the VPS tunnel otherwise, dual-stack. */
const CHAIN_POLICY = `version: 1
sites:
  home:
    wan: wan
    interfaces: [{ name: vl6, kind: physical }, { name: wan, kind: physical }]
    networks:
      - { name: files, cidr: 192.168.6.0/24, interface: vl6, address: 192.168.6.1 }
      - { name: files6, cidr: "2001:db8:6::/64", interface: vl6 }
    external: [{ name: tun-hma, gateway: 10.66.0.1 }]
    egress:
      - name: vpn
        from: [files, files6]
        via: [tun-hma, wg-vps]
        except: [192.168.0.0/16]
        masquerade: true
        table: 3
        priority: 200
        health: { targets: [192.0.2.80], hold: 10 }
  vps:
    wan: eth0
    interfaces: [{ name: eth0, kind: physical }]
tunnels:
  - name: wg-vps
    members:
      - { site: vps, address: 10.99.0.1/24, endpoint: "203.0.113.70:51821", publicKey: "${KEYS.vps}", privateKeyFile: keys/vps.key }
      - { site: home, address: 10.99.0.2/24, publicKey: "${KEYS.home}", privateKeyFile: keys/home.key }
`;

const intent = () => parsePolicy(CHAIN_POLICY, "chain.yaml").intent;
const routes = (table: number) =>
  compileSite(intent(), "home")
    .routes.filter((r) => r.table === table)
    .map((r) => routeArgs("add", r, 77).slice(2).join(" "));

describe("an egress with a chain of paths", () => {
  it("routes the egress by its preferred path, with the others as the slot's choices", () => {
    const state = compileSite(intent(), "home");
    const slot = state.routes.find(
      (r) => r.table === 3 && r.type === "unicast" && r.dst.family === 4,
    );
    expect(slot).toMatchObject({ device: "tun-hma", gateway: { family: 4 } });
    expect(slot?.type === "unicast" && slot.choices?.map((c) => c.device)).toEqual([
      "tun-hma",
      "wg-vps",
    ]);
    expect(routes(3)).toEqual([
      "table 3 0.0.0.0/0 via 10.66.0.1 dev tun-hma proto 77",
      `table 3 unreachable 0.0.0.0/0 metric ${FAIL_CLOSED_METRIC} proto 77`,
      `table 3 unreachable 192.168.0.0/16 metric ${FAIL_CLOSED_METRIC} proto 77`,
      // The site's own tunnel subnet is always an exception.
      `table 3 unreachable 10.99.0.0/24 metric ${FAIL_CLOSED_METRIC} proto 77`,
      // The IPv6 slot: the provider has no IPv6 gateway, so it is the device alone.
      "table 3 ::/0 dev tun-hma proto 77",
      `table 3 unreachable ::/0 metric ${FAIL_CLOSED_METRIC} proto 77`,
    ]);
  });

  it("gives each path a fail-closed table of its own, which its mark looks up", () => {
    const site = intent().sites.find((s) => s.name === "home");
    expect(site?.pathTables).toEqual([
      { device: "tun-hma", table: 100 },
      { device: "wg-vps", table: 101 },
    ]);
    expect(routes(101)).toEqual([
      "table 101 0.0.0.0/0 dev wg-vps proto 77",
      `table 101 unreachable 0.0.0.0/0 metric ${FAIL_CLOSED_METRIC} proto 77`,
      "table 101 ::/0 dev wg-vps proto 77",
      `table 101 unreachable ::/0 metric ${FAIL_CLOSED_METRIC} proto 77`,
    ]);
    const marks = site ? siteMarks(intent().settings, site) : undefined;
    const rules = compileSite(intent(), "home").rules.map((r) => ruleArgs("add", r, 77).join(" "));
    for (const p of marks?.paths ?? []) {
      expect(rules).toContain(
        `rule add priority 201 from 0.0.0.0/0 fwmark 0x${p.mark.toString(16)}/0xff000000 lookup ${p.table} protocol 77`,
      );
    }
  });

  it("masquerades, clamps and guards on every path of the chain, and on nothing else", () => {
    const state = compileSite(intent(), "home");
    const masq = state.nftSets.find((s) => s.name === "masquerade4");
    expect(masq?.elements).toEqual(['"tun-hma" . 192.168.6.0/24', '"wg-vps" . 192.168.6.0/24']);
    const rules = state.nftChains.flatMap((c) => c.rules);
    expect(rules.filter((r) => r.includes("maxseg"))).toEqual([
      'oifname { "tun-hma", "wg-vps" } tcp flags syn tcp option maxseg size set rt mtu',
      'iifname { "tun-hma", "wg-vps" } tcp flags syn tcp option maxseg size set rt mtu',
    ]);
    const guards = rules.filter((r) => r.includes("fail-closed"));
    expect(guards).toHaveLength(2);
    for (const g of guards) expect(g).toContain('oifname != { "tun-hma", "wg-vps" } counter drop');
    // Connections get the chain's mark, so a switch clears exactly them.
    expect(state.nftChains.find((c) => c.name === "egress_1")?.rules).toContain(
      "ct state new ct mark set ct mark & 0x00ffffff | 0x02000000",
    );
  });

  it("sets loose rp_filter on the tunnel path and lets the VPS masquerade the chain's exit", () => {
    expect(compileSite(intent(), "home").sysctls).toContainEqual([
      "net.ipv4.conf.wg-vps.rp_filter",
      "2",
    ]);
    const vps = compileSite(intent(), "vps");
    expect(vps.nftChains.flatMap((c) => c.rules)).toContain(
      'iifname "wg-vps" oifname "eth0" masquerade comment "exit"',
    );
    const peer = vps.wireguard[0]?.peers[0];
    expect(peer?.allowedIps.map(formatCidr)).toContain("10.99.0.2/32");
    const home = compileSite(intent(), "home").wireguard[0]?.peers[0];
    expect(home?.allowedIps.map(formatCidr)).toEqual(expect.arrayContaining(["0.0.0.0/0", "::/0"]));
  });

  it("compiles a one-element list exactly as the plain device name", () => {
    const plain = CHAIN_POLICY.replace("via: [tun-hma, wg-vps]", "via: tun-hma").replace(
      "        health: { targets: [192.0.2.80], hold: 10 }\n",
      "",
    );
    const listed = plain.replace("via: tun-hma", "via: [tun-hma]");
    expect(compileSite(parsePolicy(listed, "a.yaml").intent, "home")).toEqual(
      compileSite(parsePolicy(plain, "b.yaml").intent, "home"),
    );
  });
});
