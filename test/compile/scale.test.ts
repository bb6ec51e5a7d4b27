import { describe, expect, it } from "vitest";
import { compileSite } from "../../src/compile/compile.js";
import type { SiteState } from "../../src/compile/desired.js";
import { DEFAULT_PROXY } from "../../src/compile/proxy.js";
import type { Cidr } from "../../src/net/cidr.js";
import type {
  EgressIntent,
  Intent,
  NetworkIntent,
  ServiceIntent,
  SiteIntent,
  TunnelIntent,
} from "../../src/policy/intent.js";
import { tunnelsOfSite } from "../../src/policy/resolve-tunnels.js";
import { policySchema } from "../../src/policy/schema.js";
import { KEYS } from "../policy/fixtures.js";

/**
 * What grows with the policy must land in nft sets and maps, not in rules: the number of nft
 * rules and `ip rule`s stays the same from 10 to 10,000 networks, `except` prefixes and
 * published ports. Intents are built directly (compiling is what is measured here, not
 * validating); the counts are printed for the benchmark's table.
 */

const SIZES = [10, 100, 1000, 10000];

const v4 = (n: number, prefix: number): Cidr => ({ family: 4, address: BigInt(n), prefix });
/** The i-th /24 in 10.0.0.0/8, and the i-th host in 172.16.0.0/12. */
const net = (i: number) => v4((10 << 24) + (i << 8), 24);
const host = (i: number) => v4(((172 << 24) + (16 << 16) + i) >>> 0, 32);

const PROXY = DEFAULT_PROXY;

function site(name: string, extra: Partial<SiteIntent>): SiteIntent {
  return {
    name,
    wan: "eth1",
    interfaces: [],
    networks: [],
    external: [{ name: "tun0" }],
    egress: [],
    pathTables: [],
    replyPaths: [],
    proxy: PROXY,
    tunnels: [],
    providers: [],
    ...extra,
  };
}

function intentOf(sites: SiteIntent[], services: ServiceIntent[] = []): Intent {
  const tunnels = wg0();
  const bySite = tunnelsOfSite(tunnels);
  return {
    settings: policySchema.parse({ version: 1, sites: { x: {} } }).settings,
    sites: sites.map((s) => ({ ...s, tunnels: bySite.get(s.name) ?? [] })),
    services,
    tunnels,
  };
}

function wg0(): TunnelIntent[] {
  return [
    {
      name: "wg0",
      mtu: 1420,
      keepalive: 25,
      members: [
        {
          site: "edge",
          device: "wg0",
          address: v4((10 << 24) + (99 << 16) + 1, 24),
          publicKey: KEYS.vps,
          privateKeyFile: "edge.key",
          endpoint: { host: "203.0.113.10", port: 51820 },
          advertise: [],
        },
        {
          site: "home",
          device: "wg0",
          address: v4((10 << 24) + (99 << 16) + 2, 24),
          publicKey: KEYS.home,
          privateKeyFile: "home.key",
          advertise: [],
        },
      ],
    },
  ];
}

const networks = (n: number): NetworkIntent[] =>
  Array.from({ length: n }, (_, i) => ({ name: `n${i}`, cidr: net(i), interface: "eth0" }));

function egress(name: string, sources: Cidr[], except: Cidr[], table: number, priority: number) {
  return {
    name,
    sources,
    except,
    paths: [{ kind: "device", device: "tun0" }],
    masquerade: true,
    failClosed: true,
    table,
    priority,
  } satisfies EgressIntent;
}

/** Mixed: one egress from n networks with n `except` prefixes, and n ports published. */
function mixed(n: number): SiteState[] {
  const home = site("home", {
    networks: networks(n),
    replyPaths: [{ tunnel: "wg0", device: "wg0", table: 200, priority: 100 }],
    egress: [
      egress(
        "out",
        networks(n).map((x) => x.cidr),
        Array.from({ length: n }, (_, i) => host(i)),
        100,
        1000,
      ),
    ],
  });
  const services = Array.from(
    { length: n },
    (_, i): ServiceIntent => ({
      kind: i % 2 === 0 ? "tcp" : "udp",
      name: `s${i}`,
      publishOn: "edge",
      port: 1024 + i,
      clientAddress: i % 3 === 0 ? "preserve" : "proxy",
      target: {
        // Targets in the first networks: WireGuard's AllowedIPs search is not what is counted.
        address: { family: 4, address: net(i % 10).address + BigInt(1 + (i % 250)) },
        port: 80,
        site: "home",
        tunnel: "wg0",
        via: "wg0",
        network: net(i % 10),
      },
    }),
  );
  const intent = intentOf([site("edge", {}), home], services);
  return [compileSite(intent, "home"), compileSite(intent, "edge")];
}

/** One egress per network, every one by the same device: they share one table. */
function perNetwork(n: number): SiteState {
  const home = site("home", {
    networks: networks(n),
    egress: networks(n).map((x, i) => egress(`e${i}`, [x.cidr], [], 100 + i, 1000 + 2 * i)),
  });
  return compileSite(intentOf([site("edge", {}), home]), "home");
}

const nftRules = (s: SiteState) => s.nftChains.reduce((sum, c) => sum + c.rules.length, 0);
const elements = (s: SiteState) => s.nftSets.reduce((sum, x) => sum + x.elements.length, 0);

describe("rule counts stay flat as a policy grows", () => {
  it("an egress from many networks with many `except` prefixes and many published ports", () => {
    const rows = SIZES.map((n) => {
      const [home, edge] = mixed(n) as [SiteState, SiteState];
      return {
        n,
        homeNftRules: nftRules(home),
        homeIpRules: home.rules.length,
        homeRoutes: home.routes.filter((r) => r.table !== "main").length,
        edgeNftRules: nftRules(edge),
        setElements: elements(home) + elements(edge),
      };
    });
    console.table(rows);
    for (const r of rows) {
      expect(r).toMatchObject({
        homeNftRules: rows[0]?.homeNftRules,
        homeIpRules: rows[0]?.homeIpRules,
        edgeNftRules: rows[0]?.edgeNftRules,
      });
    }
    // Two rules route the egress (except → main, the rest → its table), one the replies.
    expect(rows[0]?.homeIpRules).toBe(3);
    // The items went into sets: networks (map, guard, masquerade), excepts, ports (map, proxied).
    expect(rows.at(-1)?.setElements).toBeGreaterThan(3 * 10000);
  });

  it("one egress per network, all by one device", () => {
    const rows = SIZES.map((n) => {
      const home = perNetwork(n);
      return {
        n,
        nftRules: nftRules(home),
        ipRules: home.rules.length,
        routes: home.routes.length,
      };
    });
    console.table(rows);
    for (const r of rows) expect(r).toMatchObject({ nftRules: 8, ipRules: 1, routes: 2 });
  });
});
