import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileSite } from "../../src/compile/compile.js";
import {
  FAIL_CLOSED_METRIC,
  type RouteSpec,
  type RuleSpec,
  type SiteState,
  type TableRef,
} from "../../src/compile/desired.js";
import { siteMarks } from "../../src/compile/egress-groups.js";
import {
  bits,
  type Cidr,
  contains,
  defaultRoute,
  type Family,
  formatAddress,
  formatCidr,
  hostPrefix,
  networkOf,
  overlaps,
} from "../../src/net/cidr.js";
import type { EgressIntent, Intent } from "../../src/policy/intent.js";
import { parsePolicy } from "../../src/policy/load.js";
import { renderSiteFiles } from "../../src/render/site-files.js";
import { KEYS, type PolicyObject, toYaml, tunnelMembers } from "../policy/fixtures.js";

/*
 * Random valid policies. The generator builds a policy document the way a user would write
 * it, so every property also checks that netpol accepts what it should.
 *
 * Kept out of the generator on purpose (each is reported as a bug or limitation):
 * - settings.firstTable near 253 and priorities near 32766: automatic ids run into the
 *   kernel's reserved ones.
 * - a third tunnel member together with a tunnel egress or a client-address-preserving
 *   service: the AllowedIPs check refuses the default route next to the other peer's /32.
 */

const MAX_ADDRESS = (1n << 128n) - 1n;
const seed = fc.bigInt({ min: 0n, max: MAX_ADDRESS });

type NetChoice = { kind: "lan" | "big"; x: number } | { kind: "v6"; x: number };

function netCidr(n: NetChoice): Cidr {
  switch (n.kind) {
    case "lan":
      return { family: 4, address: (0xc0a8n << 16n) | (BigInt(n.x) << 8n), prefix: 24 };
    case "big":
      return { family: 4, address: (10n << 24n) | (BigInt(n.x) << 16n), prefix: 16 };
    case "v6":
      return { family: 6, address: (0x20010db8n << 96n) | (BigInt(n.x) << 80n), prefix: 64 };
  }
}

function size(c: Cidr): bigint {
  return 1n << BigInt(bits(c.family) - c.prefix);
}

/** An address in `c` chosen by `s`. */
function addressIn(c: Cidr, s: bigint): bigint {
  return networkOf(c).address + (s % size(c));
}

const exceptSpec = fc.oneof(
  fc.record({
    kind: fc.constant("random" as const),
    family: fc.constantFrom<Family>(4, 6),
    address: seed,
    prefix: fc.nat(128),
  }),
  fc.record({ kind: fc.constant("super" as const), source: fc.nat(), up: fc.nat(16) }),
  fc.record({ kind: fc.constant("sub" as const), source: fc.nat(), down: fc.nat(8), at: seed }),
  fc.record({ kind: fc.constant("same" as const), source: fc.nat() }),
  fc.constant({ kind: "local" as const }),
);
type ExceptSpec = typeof exceptSpec extends fc.Arbitrary<infer T> ? T : never;

function exceptCidr(spec: ExceptSpec, sources: readonly Cidr[]): Cidr {
  const pick = (i: number) => sources[i % sources.length] as Cidr;
  switch (spec.kind) {
    case "random": {
      const prefix = spec.prefix % (bits(spec.family) + 1);
      const address = spec.address & ((1n << BigInt(bits(spec.family))) - 1n);
      return networkOf({ family: spec.family, address, prefix });
    }
    case "super": {
      const src = pick(spec.source);
      return networkOf({ ...src, prefix: Math.max(0, src.prefix - spec.up) });
    }
    case "sub": {
      const src = pick(spec.source);
      const prefix = Math.min(bits(src.family), src.prefix + spec.down);
      return networkOf({ family: src.family, address: addressIn(src, spec.at), prefix });
    }
    case "same":
      return pick(spec.source);
    case "local":
      return { family: 4, address: 0xc0a8n << 16n, prefix: 16 };
  }
}

const egressSpec = fc.record({
  via: fc.nat(),
  except: fc.array(exceptSpec, { maxLength: 4 }),
  masquerade: fc.boolean(),
  failClosed: fc.boolean(),
  table: fc.option(fc.integer({ min: 1, max: 240 }), { nil: undefined }),
  priority: fc.option(fc.integer({ min: 100, max: 15000 }), { nil: undefined }),
});

const serviceSpec = fc.record({
  kind: fc.constantFrom("http" as const, "tcp" as const, "udp" as const),
  target: fc.nat(),
  host: seed,
  port: fc.integer({ min: 1, max: 65535 }),
  targetPort: fc.integer({ min: 1, max: 65535 }),
  preserve: fc.boolean(),
});

const policySpec = fc.record({
  networks: fc.uniqueArray(
    fc.oneof(
      fc.record({ kind: fc.constant("lan" as const), x: fc.integer({ min: 0, max: 255 }) }),
      // 10.99.0.0/24 is the tunnel's subnet.
      fc.record({
        kind: fc.constant("big" as const),
        x: fc.integer({ min: 0, max: 255 }).filter((x) => x !== 99),
      }),
    ),
    { minLength: 1, maxLength: 6, selector: (n) => `${n.kind}${n.x}` },
  ),
  v6: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }),
  routerAddress: fc.array(fc.boolean(), { minLength: 7, maxLength: 7 }),
  /** For each network, the egress (0..3) it is a source of, or -1. */
  owners: fc.array(fc.integer({ min: -1, max: 3 }), { minLength: 7, maxLength: 7 }),
  external: fc.array(fc.option(fc.integer({ min: 1, max: 254 }), { nil: undefined }), {
    maxLength: 3,
  }),
  egress: fc.array(egressSpec, { minLength: 4, maxLength: 4 }),
  settings: fc.record(
    {
      firstTable: fc.integer({ min: 1, max: 240 }),
      firstPriority: fc.integer({ min: 200, max: 30000 }),
    },
    { requiredKeys: [] },
  ),
  vps: fc.boolean(),
  vps2: fc.boolean(),
  advertise: fc.tuple(fc.boolean(), fc.boolean()),
  services: fc.array(serviceSpec, { maxLength: 3 }),
});
type PolicySpec = typeof policySpec extends fc.Arbitrary<infer T> ? T : never;

/** The policy document for a spec; always valid. */
function buildPolicy(spec: PolicySpec): PolicyObject {
  const nets: { name: string; cidr: Cidr }[] = [
    ...spec.networks.map((n, i) => ({ name: `net${i}`, cidr: netCidr(n) })),
    ...(spec.v6 !== undefined ? [{ name: "net6", cidr: netCidr({ kind: "v6", x: spec.v6 }) }] : []),
  ];
  const external = spec.external.map((gw, i) => ({
    name: `ext${i}`,
    ...(gw !== undefined ? { gateway: `198.51.100.${gw}` } : {}),
  }));
  const devices = [...external.map((e) => e.name), ...(spec.vps ? ["wg-home"] : [])];

  const tables = new Set<number>();
  const priorities = new Set<number>();
  const egress = spec.egress.flatMap((e, idx) => {
    const from = nets.filter((_, n) => spec.owners[n] === idx);
    if (from.length === 0 || devices.length === 0) return [];
    const table = e.table !== undefined && !tables.has(e.table) ? e.table : undefined;
    if (table !== undefined) tables.add(table);
    // Even numbers only, so the pairs (p, p+1) of two egresses never overlap.
    const priority =
      e.priority !== undefined && !priorities.has(e.priority * 2) ? e.priority * 2 : undefined;
    if (priority !== undefined) priorities.add(priority);
    return [
      {
        name: `egress${idx}`,
        from: from.map((n) => n.name),
        via: devices[e.via % devices.length],
        except: e.except.map((x) =>
          formatCidr(
            exceptCidr(
              x,
              from.map((n) => n.cidr),
            ),
          ),
        ),
        masquerade: e.masquerade,
        failClosed: e.failClosed,
        ...(table !== undefined ? { table } : {}),
        ...(priority !== undefined ? { priority } : {}),
      },
    ];
  });

  const policy: PolicyObject = {
    version: 1,
    settings: spec.settings,
    sites: {
      home: {
        wan: "eth1",
        interfaces: [
          { name: "eth0", kind: "physical" },
          { name: "eth1", kind: "physical" },
        ],
        networks: nets.map((n, i) => ({
          name: n.name,
          cidr: formatCidr(n.cidr),
          interface: "eth0",
          ...(spec.routerAddress[i]
            ? { address: formatAddress({ ...n.cidr, address: n.cidr.address + 1n }) }
            : {}),
        })),
        external,
        egress,
      },
    },
  };
  if (!spec.vps) return policy;

  const v4 = nets.filter((n) => n.cidr.family === 4);
  const listeners = new Set<string>();
  const services = spec.services.flatMap((s, i): PolicyObject[] => {
    const net = v4[s.target % v4.length] as (typeof v4)[number];
    const host = net.cidr.address + 1n + (s.host % (size(net.cidr) - 2n));
    const target = `${formatAddress({ family: 4, address: host })}:${s.targetPort}`;
    if (s.kind === "http") {
      return [
        {
          name: `svc${i}`,
          kind: "http",
          publishOn: "vps",
          hostname: `svc${i}.example.org`,
          target,
        },
      ];
    }
    const listener = `${s.kind} ${s.port}`;
    if (listeners.has(listener)) return [];
    listeners.add(listener);
    return [
      {
        name: `svc${i}`,
        kind: s.kind,
        publishOn: "vps",
        port: s.port,
        target,
        clientAddress: s.preserve ? "preserve" : "proxy",
      },
    ];
  });
  const tunnelEgress = egress.some((e) => e.via === "wg-home");
  const preserves = services.some((s) => s.clientAddress === "preserve");
  const third = spec.vps2 && !tunnelEgress && !preserves;

  const physical = [{ name: "eth0", kind: "physical" }];
  policy.sites.vps = { wan: "eth0", interfaces: physical };
  const members = tunnelMembers();
  if (third) {
    policy.sites.vps.networks = [{ name: "dmz", cidr: "172.16.1.0/24", interface: "eth0" }];
    policy.sites.vps2 = {
      wan: "eth0",
      interfaces: physical,
      networks: [{ name: "dmz", cidr: "172.16.2.0/24", interface: "eth0" }],
    };
    members.push({
      site: "vps2",
      address: "10.99.0.3/24",
      endpoint: "198.51.100.20:51820",
      publicKey: KEYS.vps2,
      privateKeyFile: "keys/vps2.key",
    });
    if (spec.advertise[0]) (members[0] as PolicyObject).advertise = ["dmz"];
    if (spec.advertise[1]) (members[2] as PolicyObject).advertise = ["dmz"];
  }
  policy.tunnels = [{ name: "wg-home", members }];
  policy.services = services;
  return policy;
}

/**
 * The generated policies as text for parsePolicy, written as JSON (which is YAML): the
 * properties are about the compiler, the YAML writer took a quarter of this file's time, and
 * block-style policies are what every other policy test reads.
 */
const validPolicyText = policySpec.map((spec) => JSON.stringify(buildPolicy(spec)));

function intentOf(text: string): Intent {
  return parsePolicy(text, "generated.yaml").intent;
}

function compileAll(intent: Intent): SiteState[] {
  return intent.sites.map((s) => compileSite(intent, s.name));
}

const fakeKeys = (state: SiteState) =>
  new Map(state.wireguard.map((w) => [w.privateKeyFile, `FAKE-KEY-${state.site}-${w.name}`]));

interface Packet {
  readonly family: Family;
  readonly src: bigint;
  readonly dst: bigint;
  readonly mark?: number;
}

/** Where the kernel sends a packet: the table whose route was used, and that route. */
interface Decision {
  readonly table: TableRef;
  readonly route: RouteSpec;
}

/**
 * A model of one site's routing: netpol's rules and routes, plus what the kernel and the
 * distro put in main (a route per local network and tunnel subnet, and the ISP's default by
 * the wan).
 */
function routingModel(intent: Intent, siteName: string, state: SiteState) {
  const site = intent.sites.find((s) => s.name === siteName);
  if (!site) throw new Error(`no site ${siteName}`);
  const connected: RouteSpec[] = [
    ...site.networks.map(
      (n): RouteSpec => ({ type: "unicast", table: "main", dst: n.cidr, device: n.interface }),
    ),
    ...intent.tunnels.flatMap((t) =>
      t.members
        .filter((m) => m.site === siteName)
        .map(
          (m): RouteSpec => ({
            type: "unicast",
            table: "main",
            dst: networkOf(m.address),
            device: m.device,
          }),
        ),
    ),
    ...([4, 6] as const).map(
      (family): RouteSpec => ({
        type: "unicast",
        table: "main",
        dst: defaultRoute(family),
        device: site.wan ?? "isp",
      }),
    ),
  ];
  const routes = [...connected, ...state.routes];
  const marks = siteMarks(intent.settings, site);

  /** What netpol's nft marking gives a forwarded packet: its group's mark, flagged for `except`. */
  function markOf(p: Packet): number {
    const at = (address: bigint) => hostPrefix({ family: p.family, address });
    const g = marks.groups.find((x) => x.sources.some((c) => contains(c, at(p.src))));
    if (!g) return 0;
    const local = g.except.some((c) => contains(c, at(p.dst)));
    return local ? (g.mark | marks.layout.flag) >>> 0 : g.mark;
  }
  const metric = (r: RouteSpec) => (r.type === "unreachable" ? r.metric : (r.metric ?? 0));

  /** Longest prefix first, then lowest metric. */
  function resolve(table: TableRef, p: Packet): RouteSpec | undefined {
    const dst = hostPrefix({ family: p.family, address: p.dst });
    return routes
      .filter((r) => r.table === table && contains(r.dst, dst))
      .sort((x, y) => y.dst.prefix - x.dst.prefix || metric(x) - metric(y))[0];
  }

  const has = (c: Cidr | undefined, family: Family, address: bigint) =>
    c === undefined || contains(c, hostPrefix({ family, address }));

  /**
   * The rule walk: by priority (ties in the order added); a rule whose table has no route, or
   * only one as short as its suppress_prefixlength, lets the walk go on. Then the kernel's
   * own main rule.
   */
  function decide(p: Packet): Decision | undefined {
    const ordered = [...state.rules].sort((a, b) => a.priority - b.priority);
    const walk: RuleSpec[] = [...ordered, { family: p.family, priority: 32766, table: "main" }];
    const mark = p.mark ?? markOf(p);
    for (const r of walk) {
      if (r.family !== p.family) continue;
      if (!has(r.from, p.family, p.src) || !has(r.to, p.family, p.dst)) continue;
      if (r.fwmark !== undefined && (mark & (r.fwmask ?? 0xffffffff)) >>> 0 !== r.fwmark) continue;
      const route = resolve(r.table, p);
      if (!route) continue;
      if (r.suppressPrefixLength !== undefined && route.dst.prefix <= r.suppressPrefixLength)
        continue;
      return { table: r.table, route };
    }
    return undefined;
  }

  /** The routing table an egress's traffic is sent to: its group's. */
  const tableOf = (e: EgressIntent) => marks.groups.find((g) => g.egress.includes(e))?.table;
  return { decide, resolve, tableOf };
}

const homeOf = (intent: Intent) => {
  const home = intent.sites.find((s) => s.name === "home");
  if (!home) throw new Error("no home site");
  return home;
};

const families = (cidrs: readonly Cidr[]) => [...new Set(cidrs.map((c) => c.family))].sort();

describe("generated policies", () => {
  it("are accepted", () => {
    fc.assert(
      fc.property(validPolicyText, (text) => {
        expect(() => intentOf(text)).not.toThrow();
      }),
      { numRuns: 200 },
    );
  });

  it("cover egresses, tunnels, services and third members", () => {
    // The generator must reach the cases the properties are about.
    const samples = fc.sample(policySpec.map(buildPolicy), { numRuns: 300, seed: 42 });
    const count = (f: (p: PolicyObject) => boolean) => samples.filter(f).length;
    expect(count((p) => p.sites.home.egress.length >= 2)).toBeGreaterThan(10);
    expect(
      count((p) => p.sites.home.egress.some((e: PolicyObject) => e.except.length > 0)),
    ).toBeGreaterThan(10);
    expect(
      count((p) => p.sites.home.egress.some((e: PolicyObject) => e.via === "wg-home")),
    ).toBeGreaterThan(10);
    expect(
      count((p) => (p.services ?? []).some((s: PolicyObject) => s.clientAddress === "preserve")),
    ).toBeGreaterThan(10);
    expect(count((p) => p.tunnels?.[0]?.members.length === 3)).toBeGreaterThan(5);
  });
});

describe("compiler properties", () => {
  it("(1) is deterministic: same policy, same state, byte-identical files", () => {
    fc.assert(
      fc.property(validPolicyText, (text) => {
        const intent = intentOf(text);
        const before = structuredClone(intent);
        const first = compileAll(intent);
        const second = compileAll(intent);
        const fromFreshParse = compileAll(intentOf(text));
        expect(second).toEqual(first);
        expect(fromFreshParse).toEqual(first);
        // Compiling does not change its input.
        expect(intent).toEqual(before);
        for (const [i, state] of first.entries()) {
          const again = fromFreshParse[i] as SiteState;
          const a = renderSiteFiles(state, fakeKeys(state));
          const b = renderSiteFiles(again, fakeKeys(again));
          expect([...b.keys()]).toEqual([...a.keys()]);
          for (const [name, body] of a) expect(b.get(name) === body).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });

  /** Random packets from each egress's sources: to an `except` CIDR and to anywhere. */
  const probes = fc.array(fc.record({ src: seed, pick: fc.nat(), dst: seed, outside: seed }), {
    minLength: 1,
    maxLength: 8,
  });

  function forEachProbe(
    text: string,
    samples: readonly { src: bigint; pick: number; dst: bigint; outside: bigint }[],
    check: (
      e: EgressIntent,
      kernel: ReturnType<typeof routingModel>,
      probe: { excepted?: { packet: Packet; except: Cidr }; anywhere: Packet },
    ) => void,
  ) {
    const intent = intentOf(text);
    const kernel = routingModel(intent, "home", compileSite(intent, "home"));
    for (const e of homeOf(intent).egress) {
      for (const s of samples) {
        const from = e.sources[s.pick % e.sources.length] as Cidr;
        const src = addressIn(from, s.src);
        const excepts = e.except.filter((x) => x.family === from.family);
        const except = excepts[s.pick % Math.max(1, excepts.length)];
        const anywhere = {
          family: from.family,
          src,
          dst: addressIn(defaultRoute(from.family), s.outside),
        };
        check(e, kernel, {
          ...(except
            ? {
                excepted: {
                  packet: { family: from.family, src, dst: addressIn(except, s.dst) },
                  except,
                },
              }
            : {}),
          anywhere,
        });
      }
    }
  }

  function label(e: EgressIntent, p: Packet, d: Decision | undefined): string {
    const at = (address: bigint) => formatAddress({ family: p.family, address });
    const how = d ? `table ${d.table} ${d.route.type} ${formatCidr(d.route.dst)}` : "no route";
    return `egress ${e.name}: ${at(p.src)} → ${at(p.dst)}: ${how}`;
  }

  it("(2) routes every destination outside `except` into the egress table, out by its device", () => {
    fc.assert(
      fc.property(validPolicyText, probes, (text, samples) => {
        forEachProbe(text, samples, (e, kernel, { anywhere: p }) => {
          const excepted = e.except.some((x) =>
            contains(x, hostPrefix({ family: p.family, address: p.dst })),
          );
          if (excepted) return;
          const d = kernel.decide(p);
          expect(d?.table, label(e, p, d)).toBe(kernel.tableOf(e));
          expect(d?.route, label(e, p, d)).toMatchObject({
            type: "unicast",
            device: e.paths[0].device,
          });
        });
      }),
      { numRuns: 200 },
    );
  });

  it("(2) routes an `except` destination by main wherever main has a route of its own", () => {
    fc.assert(
      fc.property(validPolicyText, probes, (text, samples) => {
        forEachProbe(text, samples, (e, kernel, { excepted }) => {
          if (!excepted) return;
          const local = kernel.resolve("main", excepted.packet);
          if (!local || local.dst.prefix === 0) return; // only the ISP's default
          const d = kernel.decide(excepted.packet);
          expect(d?.table, label(e, excepted.packet, d)).toBe("main");
          expect(d?.route, label(e, excepted.packet, d)).toEqual(local);
        });
      }),
      { numRuns: 200 },
    );
  });

  it("(2) never sends an `except` destination out by a fail-closed egress's own route", () => {
    fc.assert(
      fc.property(validPolicyText, probes, (text, samples) => {
        forEachProbe(text, samples, (e, kernel, { excepted }) => {
          // failClosed: false and except /0 are the bugs shown below.
          if (!excepted || !e.failClosed || excepted.except.prefix === 0) return;
          const d = kernel.decide(excepted.packet);
          const out =
            d !== undefined && d.table === kernel.tableOf(e) && d.route.type === "unicast";
          expect(out, label(e, excepted.packet, d)).toBe(false);
        });
      }),
      { numRuns: 200 },
    );
  });

  describe("(2) except destinations with no route in main", () => {
    const policy = (egress: PolicyObject) =>
      toYaml({
        version: 1,
        sites: {
          home: {
            interfaces: [{ name: "eth0", kind: "physical" }],
            networks: [{ name: "lan", cidr: "10.0.0.0/16", interface: "eth0" }],
            external: [{ name: "ext0" }],
            egress: [{ name: "out", from: ["lan"], via: "ext0", ...egress }],
          },
        },
      });
    const decide = (text: string, dst: string) => {
      const intent = intentOf(text);
      const kernel = routingModel(intent, "home", compileSite(intent, "home"));
      const to = intent.sites[0]?.egress[0]?.except[0];
      const address = BigInt(dst.split(".").reduce((n, o) => n * 256 + Number(o), 0));
      return { decision: kernel.decide({ family: 4, src: 10n << 24n, dst: address }), to };
    };

    // An except address main has no route for must not fall through to the egress table.
    it("are not sent out by a non-fail-closed egress's device", () => {
      const { decision } = decide(
        policy({ except: ["10.0.0.0/11"], failClosed: false }),
        "10.1.0.1",
      );
      expect(decision?.route).not.toMatchObject({ type: "unicast", device: "ext0" });
    });

    // An except of prefix 0 keeps everything in main.
    it("are not sent out by the device when except is the default route", () => {
      const { decision } = decide(policy({ except: ["0.0.0.0/0"] }), "203.0.113.9");
      expect(decision?.route).not.toMatchObject({ type: "unicast", device: "ext0" });
    });
  });

  it("(2b) leaves traffic from networks without an egress in main", () => {
    fc.assert(
      fc.property(validPolicyText, seed, seed, (text, s, d) => {
        const intent = intentOf(text);
        const home = homeOf(intent);
        const state = compileSite(intent, "home");
        const kernel = routingModel(intent, "home", state);
        const sourced = home.egress.flatMap((e) => e.sources);
        for (const n of home.networks) {
          if (sourced.some((c) => overlaps(c, n.cidr))) continue;
          const packet = {
            family: n.cidr.family,
            src: addressIn(n.cidr, s),
            dst: addressIn(defaultRoute(n.cidr.family), d),
          };
          expect(kernel.decide(packet)?.table).toBe("main");
        }
      }),
      { numRuns: 100 },
    );
  });

  it("(3) gives every fail-closed egress table an unreachable default per source family", () => {
    fc.assert(
      fc.property(validPolicyText, (text) => {
        const intent = intentOf(text);
        const { routes } = compileSite(intent, "home");
        const groups = siteMarks(intent.settings, homeOf(intent)).groups;
        for (const e of homeOf(intent).egress) {
          // Egresses with identical tables share their group's (see egress-groups).
          const group = groups.find((g) => g.egress.includes(e));
          const table = group?.table;
          // A shared table serves every family of the group's sources.
          const fams = families(group?.sources ?? e.sources);
          const inTable = routes.filter((r) => r.table === table);
          const closedDefaults = inTable.filter(
            (r) => r.type === "unreachable" && r.dst.prefix === 0,
          );
          if (!e.failClosed) {
            expect(closedDefaults).toEqual([]);
          } else {
            for (const family of fams) {
              expect(closedDefaults).toContainEqual({
                type: "unreachable",
                table,
                dst: defaultRoute(family),
                metric: FAIL_CLOSED_METRIC,
              });
            }
            expect(closedDefaults).toHaveLength(fams.length);
            expect(FAIL_CLOSED_METRIC).toBe(4294967295);
          }
          // And the way out while the device is up, per family.
          for (const family of fams) {
            expect(inTable).toContainEqual(
              expect.objectContaining({
                type: "unicast",
                dst: defaultRoute(family),
                device: e.paths[0].device,
              }),
            );
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it("(4) never uses the kernel's table ids or rule priorities", () => {
    fc.assert(
      fc.property(validPolicyText, (text) => {
        for (const state of compileAll(intentOf(text))) {
          const tables = [...state.rules.map((r) => r.table), ...state.routes.map((r) => r.table)];
          for (const t of tables) {
            if (t === "main") continue;
            expect(Number.isInteger(t)).toBe(true);
            expect(t).toBeGreaterThanOrEqual(1);
            expect(t).toBeLessThanOrEqual(0xfffffffe);
            expect([0, 253, 254, 255]).not.toContain(t);
          }
          for (const r of state.rules) {
            expect(r.priority).toBeGreaterThanOrEqual(1);
            expect(r.priority).toBeLessThanOrEqual(32765);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it("(5) never gives two peers of one interface overlapping AllowedIPs", () => {
    fc.assert(
      fc.property(validPolicyText, (text) => {
        for (const state of compileAll(intentOf(text))) {
          for (const wg of state.wireguard) {
            wg.peers.forEach((a, i) => {
              for (const b of wg.peers.slice(i + 1)) {
                for (const x of a.allowedIps) {
                  for (const y of b.allowedIps) {
                    expect(
                      overlaps(x, y),
                      `${state.site} ${wg.name}: ${a.site} ${formatCidr(x)} / ${b.site} ${formatCidr(y)}`,
                    ).toBe(false);
                  }
                }
              }
            });
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it("(6) writes and matches marks only in settings.markMask, keeping every other bit", () => {
    fc.assert(
      fc.property(validPolicyText, (text) => {
        const intent = intentOf(text);
        const mask = intent.settings.markMask >>> 0;
        const inMask = (n: number) => ((n >>> 0) & ~mask) >>> 0 === 0;
        for (const state of compileAll(intent)) {
          const rules = state.nftChains.flatMap((c) => c.rules);
          for (const rule of rules) {
            // Every write keeps the bits outside the mask it names, and that mask is ours.
            for (const m of rule.matchAll(/(meta|ct) mark set ([^|]*)\| (0x[0-9a-f]+)/g)) {
              const keep = /^(meta|ct) mark & (0x[0-9a-f]+) $/.exec(m[2] ?? "");
              expect(keep?.[1], rule).toBe(m[1]);
              const written = (~Number(keep?.[2]) >>> 0) as number;
              expect(inMask(written), rule).toBe(true);
              expect(inMask(Number(m[3])), rule).toBe(true);
            }
            // Every match looks at bits of the mask only.
            for (const m of rule.matchAll(/(meta|ct) mark & (0x[0-9a-f]+) (==|!=)/g))
              expect(inMask(Number(m[2])), rule).toBe(true);
            expect(rule).not.toMatch(/mark set (ct|meta) mark(?! &)/);
          }
          for (const r of state.rules) {
            if (r.fwmark === undefined) continue;
            expect(r.fwmask, JSON.stringify(r)).toBeDefined();
            expect(inMask(r.fwmask ?? 0)).toBe(true);
            expect((r.fwmark & ~(r.fwmask ?? 0)) >>> 0 === 0).toBe(true);
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});
