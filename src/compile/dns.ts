import { type Family, formatAddress } from "../net/cidr.js";
import type { Address } from "../policy/intent.js";
import type { NftChain, NftSet } from "./desired.js";
import { type EgressGroup, pathMarksOf, type SiteMarks } from "./egress-groups.js";
import { hexMark, setMark } from "./marks.js";

/**
 * DNS follows the egress. The plain DNS (UDP and TCP port 53) of an egress's networks that
 * asks the router, or any server when the policy says `other: redirect`, meets a verdict map in
 * the egress's marking chain whose one element sends it to the chain of the ACTIVE path: that
 * chain gives it the path's own mark (so it leaves by that path's table, whichever path the
 * rest of the egress uses), and the destination NAT, keyed by that mark, sends it to the path's
 * resolver. A switch replaces the map's element in one nft transaction: the resolver and the
 * route to it change together. With no path up the element leads to a drop (fail closed).
 */

const IP: Record<Family, string> = { 4: "ip", 6: "ip6" };
const ADDR: Record<Family, string> = { 4: "ipv4_addr", 6: "ipv6_addr" };
const NFPROTO: Record<Family, string> = { 4: "ipv4", 6: "ipv6" };
const FAMILIES = [4, 6] as const;
const DNS = "meta l4proto { tcp, udp } th dport";

export const dnsMapName = (group: number) => `egress_${group + 1}_dns`;
/** The chain of one path's DNS (by index), or of none (fail closed). */
export const dnsChainName = (group: number, path: number | "none") =>
  `egress_${group + 1}_dns_${path}`;
/** The map element that sends port 53 to the chain of a path, or of none. */
export const dnsElement = (group: number, path: number | "none") =>
  `53 : goto ${dnsChainName(group, path)}`;

const firstOf = (list: readonly Address[], family: Family) => list.find((a) => a.family === family);

export interface DnsNft {
  readonly sets: NftSet[];
  /** Rules at the head of each group's marking chain, by group index. */
  readonly marking: ReadonlyMap<number, string[]>;
  readonly chains: NftChain[];
  readonly nat: string[];
}

/** The rules that turn a group's DNS aside, before its `except` and marking rules. */
function diverted(i: number, g: EgressGroup, resolverSets: Partial<Record<Family, string>>) {
  const dns = g.egress[0]?.dns;
  if (!dns) return [];
  const name = g.egress[0]?.name ?? "";
  const map = `@${dnsMapName(i)}`;
  const dot = dns.blockDoT
    ? FAMILIES.map((f) => {
        const set = resolverSets[f];
        const to = set ? `${IP[f]} daddr != ${set}` : `meta nfproto ${NFPROTO[f]}`;
        return `${to} meta l4proto { tcp, udp } th dport 853 counter drop comment "DoT elsewhere, egress ${name}"`;
      })
    : [];
  if (dns.other === "redirect") return [...dot, `${DNS} vmap ${map}`];
  const toResolvers = FAMILIES.flatMap((f) => {
    const set = resolverSets[f];
    return set ? [`${IP[f]} daddr ${set} ${DNS} vmap ${map}`] : [];
  });
  return [
    ...dot,
    `fib daddr type local ${DNS} vmap ${map}`,
    ...toResolvers,
    `${DNS} 53 counter drop comment "DNS elsewhere, egress ${name}"`,
  ];
}

export function compileDns(marks: SiteMarks): DnsNft {
  const { mask } = marks.layout;
  const sets: NftSet[] = [];
  const marking = new Map<number, string[]>();
  const chains: NftChain[] = [];
  const targets: Record<Family, Map<string, string>> = { 4: new Map(), 6: new Map() };
  marks.groups.forEach((g, i) => {
    const dns = g.egress[0]?.dns;
    if (!dns) return;
    const name = g.egress[0]?.name ?? "";
    const pathMarks = pathMarksOf(marks, g);
    const chain = g.paths.length > 1;
    const resolverSets: Partial<Record<Family, string>> = {};
    for (const f of FAMILIES) {
      const all = [
        ...new Set(
          dns.resolvers
            .flat()
            .filter((a) => a.family === f)
            .map(formatAddress),
        ),
      ];
      if (all.length === 0) continue;
      const setName = `${dnsMapName(i)}_resolvers${f}`;
      sets.push({ name: setName, kind: "set", type: ADDR[f], interval: false, elements: all });
      resolverSets[f] = `@${setName}`;
    }
    sets.push({
      name: dnsMapName(i),
      kind: "map",
      type: "inet_service : verdict",
      interval: false,
      elements: [dnsElement(i, 0)],
      ...(chain
        ? {
            follows: {
              table: g.table,
              paths: g.paths.map((p, pi) => ({ device: p.device, element: dnsElement(i, pi) })),
              none: dnsElement(i, "none"),
            },
          }
        : {}),
    });
    marking.set(i, diverted(i, g, resolverSets));
    // A chain's DNS connections carry its connection mark: a switch clears them with the rest,
    // since their NAT points at the resolver of the path they started on.
    const pinned = chain ? [`ct state new ${setMark("ct", mask, g.mark)}`] : [];
    g.paths.forEach((p, pi) => {
      const mark = pathMarks[pi] ?? g.mark;
      const missing = FAMILIES.flatMap((f) => {
        const resolver = firstOf(dns.resolvers[pi] ?? [], f);
        if (resolver) {
          targets[f].set(String(mark >>> 0), formatAddress(resolver));
          return [];
        }
        return [
          `meta nfproto ${NFPROTO[f]} counter drop comment "no IPv${f} resolver through ${p.device}, egress ${name}"`,
        ];
      });
      chains.push({
        name: dnsChainName(i, pi),
        rules: [...missing, ...pinned, setMark("meta", mask, mark)],
      });
    });
    if (chain) {
      chains.push({
        name: dnsChainName(i, "none"),
        rules: [`counter drop comment "DNS of egress ${name}: no path is up"`],
      });
    }
  });
  const nat = FAMILIES.flatMap((f) => {
    if (targets[f].size === 0) return [];
    const name = `dns_to${f}`;
    sets.push({
      name,
      kind: "map",
      type: `mark : ${ADDR[f]}`,
      interval: false,
      elements: [...targets[f]].map(([mark, to]) => `${hexMark(Number(mark))} : ${to}`),
    });
    return [
      `meta nfproto ${NFPROTO[f]} ${DNS} 53 dnat ${IP[f]} to meta mark & ${hexMark(mask)} map @${name} comment "DNS follows the egress"`,
    ];
  });
  return { sets, marking, chains, nat };
}
