import { type Cidr, type Family, formatAddress, formatCidr } from "../net/cidr.js";
import type { Intent, ServiceIntent, SiteIntent } from "../policy/intent.js";
import { tunnelsExitingAt } from "../policy/tunnel-uses.js";
import { probePort } from "./chains.js";
import type { NftChain, NftSet } from "./desired.js";
import { compileDns, type DnsNft } from "./dns.js";
import { type EgressGroup, ofFamily, pathMarksOf, type SiteMarks } from "./egress-groups.js";
import { matchMark, setMark } from "./marks.js";

/**
 * netpol's nftables table. Every list that grows with the policy (sources, `except` prefixes,
 * published ports, masqueraded networks) is a named set or map, so the number of rules grows
 * only with the number of egress groups, reply paths and exit tunnels: a packet meets a few
 * hashed or interval lookups instead of a rule per item.
 */

const IP: Record<Family, string> = { 4: "ip", 6: "ip6" };
const ADDR: Record<Family, string> = { 4: "ipv4_addr", 6: "ipv6_addr" };
const NFPROTO: Record<Family, string> = { 4: "ipv4", 6: "ipv6" };
const FAMILIES = [4, 6] as const;
const quote = (name: string) => JSON.stringify(name);

/** `"a"` for one device, an anonymous set for several. */
function devices(names: readonly string[]): string {
  return names.length === 1 ? quote(names[0] ?? "") : `{ ${names.map(quote).join(", ")} }`;
}

/**
 * The comment of a group's fail-closed guard rules, which status reads the counters by. Rule
 * comments are limited to 128 bytes: a group names its first egress and a count.
 */
export function guardComment(g: EgressGroup): string {
  const first = g.egress[0]?.name ?? "";
  return `fail-closed ${g.egress.length === 1 ? first : `${first} +${g.egress.length - 1}`}`;
}

function deviceOn(site: SiteIntent, tunnel: string): string {
  return site.tunnels.find((t) => t.tunnel.name === tunnel)?.local.device ?? tunnel;
}

function tunnelDevices(site: SiteIntent): string[] {
  return site.tunnels.map((t) => t.local.device);
}

/** Named sets, and a lookup that skips them when they would be empty. */
class Sets {
  readonly all: NftSet[] = [];
  add(set: NftSet): string | undefined {
    if (set.elements.length === 0) return undefined;
    this.all.push(set);
    return `@${set.name}`;
  }
  prefixes(name: string, family: Family, cidrs: readonly Cidr[]): string | undefined {
    return this.add({
      name,
      kind: "set",
      type: ADDR[family],
      interval: true,
      elements: cidrs.map(formatCidr),
    });
  }
}

const chainOf = (n: number) => `egress_${n}`;

/**
 * A path's TCP or HTTP probe leaves from its own local port (chains.ts's probePort) and gets the
 * path's mark here, in output, so it is routed by the path's table as `ping -m` is.
 */
function probeMarks(marks: SiteMarks): string[] {
  return marks.groups.flatMap((g, i) => {
    const probes = g.egress[0]?.health?.probes ?? [];
    const pathMarks = pathMarksOf(marks, g);
    return probes.flatMap((probe, p) => {
      if (!probe) return [];
      const ip = IP[probe.host.family];
      const mark = pathMarks[p] ?? g.mark;
      return [
        `${ip} daddr ${formatAddress(probe.host)} tcp dport ${probe.port} tcp sport ${probePort(i, p)} ${setMark("meta", marks.layout.mask, mark)}`,
      ];
    });
  });
}

/**
 * Marks for policy routing (see routing.ts): replies to connections that came in through a
 * tunnel get their reply path's mark back; packets from an egress's sources get the group's
 * mark, with the flag for `except` destinations. Packets that already carry a netpol mark
 * keep it, so a reply stays on its reply path even from an egress's source.
 */
function marking(
  marks: SiteMarks,
  sets: Sets,
  dns: DnsNft,
): { prerouting: string[]; output: string[]; groups: NftChain[] } {
  const { mask, flag } = marks.layout;
  const prerouting = marks.replies.flatMap((r) => [
    `iifname ${quote(r.device)} ct state new ${setMark("ct", mask, r.mark)}`,
    `iifname != ${quote(r.device)} ${matchMark("ct", mask, [r.mark])} ${setMark("meta", mask, r.mark)}`,
  ]);
  const output = [
    ...marks.replies.map(
      (r) => `${matchMark("ct", mask, [r.mark])} ${setMark("meta", mask, r.mark)}`,
    ),
    // The leak canary's request, from the router's address in the egress's network, carries
    // the egress's mark: it is routed exactly as that network's traffic is.
    ...probeMarks(marks),
    ...marks.groups.flatMap((g) => {
      const c = g.egress[0]?.canary;
      if (!c) return [];
      const ip = IP[c.host.family];
      return [
        `${ip} saddr ${formatAddress(c.source)} ${ip} daddr ${formatAddress(c.host)} tcp dport ${c.port} ${setMark("meta", mask, g.mark)}`,
      ];
    }),
  ];
  const groups = marks.groups.map((g, i): NftChain => {
    const local = FAMILIES.flatMap((family) => {
      const except = sets.prefixes(
        `${chainOf(i + 1)}_except${family}`,
        family,
        ofFamily(g.except, family),
      );
      return except
        ? [`${IP[family]} daddr ${except} ${setMark("meta", mask, (g.mark | flag) >>> 0)} return`]
        : [];
    });
    // A chain's connections carry its mark too, so a path switch clears exactly them
    // (conntrack): their address translation belongs to the path they started on.
    const pinned = g.paths.length > 1 ? [`ct state new ${setMark("ct", mask, g.mark)}`] : [];
    return {
      name: chainOf(i + 1),
      rules: [...(dns.marking.get(i) ?? []), ...local, ...pinned, setMark("meta", mask, g.mark)],
    };
  });
  for (const family of FAMILIES) {
    const from = sets.add({
      name: `egress_from${family}`,
      kind: "map",
      type: `${ADDR[family]} : verdict`,
      interval: true,
      elements: marks.groups.flatMap((g, i) =>
        ofFamily(g.sources, family).map((c) => `${formatCidr(c)} : jump ${chainOf(i + 1)}`),
      ),
    });
    if (from) prerouting.push(`${matchMark("meta", mask, [0])} ${IP[family]} saddr vmap ${from}`);
  }
  return { prerouting, output, groups };
}

/**
 * Fail-closed guard in the forward path: traffic from a group's sources that is not for an
 * `except` destination may only leave by the group's device. Routing already fails closed;
 * this catches what a stray route elsewhere (or a mark another tool overwrote) would let
 * through, and counts it. Replies on a reply path are not leaks.
 */
function guard(site: SiteIntent, marks: SiteMarks, sets: Sets): string[] {
  const replies = marks.replies.map((r) => r.mark);
  const notReply =
    replies.length > 0 ? ` ${matchMark("ct", marks.layout.mask, replies, "!=")}` : "";
  const networkOf = new Map(site.networks.map((n) => [formatCidr(n.cidr), n]));
  return marks.groups.flatMap((g, i) => {
    if (!g.failClosed) return [];
    const out = `${notReply} oifname != ${devices(g.paths.map((p) => p.device))} counter drop`;
    return FAMILIES.flatMap((family) => {
      const except = ofFamily(g.except, family).length > 0;
      const notExcept = except ? ` ${IP[family]} daddr != @${chainOf(i + 1)}_except${family}` : "";
      const sources = sets.prefixes(
        `${chainOf(i + 1)}_src${family}`,
        family,
        ofFamily(g.sources, family),
      );
      if (sources) {
        return [
          `${IP[family]} saddr ${sources}${notExcept}${out} comment ${quote(guardComment(g))}`,
        ];
      }
      // Hosts on the sources' links may have addresses of a family the policy does not list
      // (IPv6 by SLAAC or DHCPv6 on an IPv4 VLAN): those must not leave by the uplink either.
      const links = unlisted(site, g, family, networkOf);
      if (links.length === 0) return [];
      return [
        `iifname ${devices(links)} meta nfproto ${NFPROTO[family]}${notExcept}${out} comment ${quote(`${guardComment(g)}, unlisted IPv${family}`)}`,
      ];
    });
  });
}

/** Links of a group's source networks on which the site declares no network of `family`. */
function unlisted(
  site: SiteIntent,
  g: EgressGroup,
  family: Family,
  networkOf: ReadonlyMap<string, SiteIntent["networks"][number]>,
): string[] {
  // A loop, not flatMap: a group may have 10,000 sources, and this runs for each apply.
  const links = new Set<string>();
  for (const c of g.sources) {
    const network = networkOf.get(formatCidr(c));
    if (network) links.add(network.interface);
  }
  for (const n of site.networks) if (n.cidr.family === family) links.delete(n.interface);
  return [...links].sort();
}

/** Masquerade for egress that asks for it, and on an exit site for what arrives from the tunnel. */
function masquerade(intent: Intent, site: SiteIntent, sets: Sets): string[] {
  const rules = FAMILIES.flatMap((family) => {
    const set = sets.add({
      name: `masquerade${family}`,
      kind: "set",
      type: `ifname . ${ADDR[family]}`,
      interval: true,
      elements: site.egress
        .filter((e) => e.masquerade)
        .flatMap((e) =>
          e.paths.flatMap((via) =>
            ofFamily(e.sources, family).map((c) => `${quote(via.device)} . ${formatCidr(c)}`),
          ),
        ),
    });
    return set ? [`oifname . ${IP[family]} saddr ${set} masquerade comment "egress"`] : [];
  });
  // Looked up by exit, not scanned: a publish compiles all 10,000 sites of a fleet.
  const exits = new Set<string>();
  for (const tunnel of tunnelsExitingAt(intent, site.name)) exits.add(deviceOn(site, tunnel));
  if (exits.size > 0) {
    rules.push(
      `iifname ${devices([...exits].sort())} oifname ${quote(site.wan ?? "")} masquerade comment "exit"`,
    );
  }
  return rules;
}

type PortService = Extract<ServiceIntent, { kind: "tcp" | "udp" }>;

/**
 * Published ports: the publishing site rewrites the destination to the target behind the
 * tunnel by one map lookup per family. Connections to a port whose service does not keep the
 * client's address get the flag in their connection mark, and are masqueraded on the way out
 * (matched per connection, so a second service with the same target but keeping client
 * addresses is not masqueraded too).
 */
function publish(
  intent: Intent,
  site: SiteIntent,
  marks: SiteMarks,
  sets: Sets,
): { prerouting: string[]; postrouting: string[] } {
  // A port with `proxyProtocol` is held by the relay, which opens its own connection: no DNAT.
  const services = intent.services.filter(
    (s): s is PortService =>
      s.kind !== "http" && s.publishOn === site.name && s.proxyProtocol === undefined,
  );
  if (services.length === 0 || !site.wan) return { prerouting: [], postrouting: [] };
  const wan = `iifname ${quote(site.wan)}`;
  const { flag } = marks.layout;
  const prerouting: string[] = [];
  // Per family: a port may keep client addresses on one family and not on the other.
  const proxied = FAMILIES.flatMap((family) => {
    const set = sets.add({
      name: `proxied${family}`,
      kind: "set",
      type: "inet_proto . inet_service",
      interval: false,
      elements: [
        ...new Set(
          services
            .filter((s) => s.clientAddress === "proxy" && s.target.address.family === family)
            .map((s) => `${s.kind} . ${s.port}`),
        ),
      ],
    });
    return set
      ? [
          `${wan} meta nfproto ${NFPROTO[family]} meta l4proto . th dport ${set} ${setMark("ct", flag, flag)}`,
        ]
      : [];
  });
  prerouting.push(...proxied);
  for (const family of FAMILIES) {
    const map = sets.add({
      name: `published${family}`,
      kind: "map",
      type: `inet_proto . inet_service : ${ADDR[family]} . inet_service`,
      interval: false,
      elements: services
        .filter((s) => s.target.address.family === family)
        .map(
          (s) => `${s.kind} . ${s.port} : ${formatAddress(s.target.address)} . ${s.target.port}`,
        ),
    });
    if (map) {
      prerouting.push(
        `${wan} meta nfproto ${NFPROTO[family]} dnat ${IP[family]} to meta l4proto . th dport map ${map} comment "published"`,
      );
    }
  }
  const postrouting =
    proxied.length > 0
      ? [`ct status dnat ${matchMark("ct", flag, [flag])} masquerade comment "published, proxied"`]
      : [];
  return { prerouting, postrouting };
}

/** Devices whose path MTU is below the LAN's: clamp MSS both ways (stalls over WireGuard otherwise). */
function clamp(site: SiteIntent): string[] {
  const list = [
    ...new Set([
      ...tunnelDevices(site),
      ...site.egress.flatMap((e) => e.paths.map((via) => via.device)),
    ]),
  ].sort();
  if (list.length === 0) return [];
  return ["oifname", "iifname"].map(
    (dir) => `${dir} ${devices(list)} tcp flags syn tcp option maxseg size set rt mtu`,
  );
}

/**
 * From the uplink into a tunnel, only connections to published ports (DNAT) may start: the
 * home's networks are routed into the tunnel, and nothing else from the internet should be.
 */
function onlyPublished(site: SiteIntent): string[] {
  const list = tunnelDevices(site);
  if (!site.wan || list.length === 0) return [];
  return [
    `iifname ${quote(site.wan)} oifname ${devices(list)} ct state new ct status ! dnat counter drop comment ${quote(`unpublished into ${list.join(", ")}`)}`,
  ];
}

export function compileNftables(
  intent: Intent,
  site: SiteIntent,
  marks: SiteMarks,
): { sets: NftSet[]; chains: NftChain[] } {
  const sets = new Sets();
  const dns = compileDns(marks);
  const mark = marking(marks, sets, dns);
  const published = publish(intent, site, marks, sets);
  const chains: NftChain[] = [
    {
      name: "mangle_prerouting",
      base: { type: "filter", hook: "prerouting", priority: "mangle" },
      rules: mark.prerouting,
    },
    ...mark.groups,
    ...dns.chains,
    {
      name: "mangle_output",
      base: { type: "route", hook: "output", priority: "mangle" },
      rules: mark.output,
    },
    {
      name: "nat_prerouting",
      base: { type: "nat", hook: "prerouting", priority: "dstnat" },
      rules: [...published.prerouting, ...dns.nat],
    },
    {
      name: "nat_postrouting",
      base: { type: "nat", hook: "postrouting", priority: "srcnat" },
      rules: [...masquerade(intent, site, sets), ...published.postrouting],
    },
    {
      name: "mangle_forward",
      base: { type: "filter", hook: "forward", priority: "mangle" },
      rules: clamp(site),
    },
    {
      name: "filter_forward",
      base: { type: "filter", hook: "forward", priority: "filter" },
      rules: [...guard(site, marks, sets), ...onlyPublished(site)],
    },
  ];
  for (const set of dns.sets) sets.add(set);
  return { sets: sets.all, chains: chains.filter((c) => c.rules.length > 0) };
}
