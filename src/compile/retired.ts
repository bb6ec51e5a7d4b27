import { formatCidr } from "../net/cidr.js";
import type { SiteIntent } from "../policy/intent.js";
import type { NftChain, NftSet, SiteNetwork, SiteState } from "./desired.js";
import type { SiteMarks } from "./egress-groups.js";

/** The site's networks, each saying whether its egress fails closed. */
export function siteNetworks(site: SiteIntent, marks: SiteMarks): SiteNetwork[] {
  const closed = new Set(
    marks.groups.flatMap((g) => (g.failClosed ? g.sources.map(formatCidr) : [])),
  );
  return site.networks.map((n) => {
    const cidr = formatCidr(n.cidr);
    return { name: n.name, cidr, device: n.interface, failClosed: closed.has(cidr) };
  });
}

/**
 * The fail-closed networks that left the policy and still need their guard. A network that
 * failed closed was never routed by the main table; once it leaves the policy its address,
 * rules and routes go, but its port stays up and forwarding stays on (other networks need
 * it), so a host there that still has the router's MAC would be routed out of the uplink.
 * So each keeps a guard — its traffic dropped, counted, as it arrives on its port — for as
 * long as that port exists and netpol forwards for the site (the forwarding that would carry
 * the leak is netpol's). It ends when the port is gone, when a network with its prefix is back
 * in the policy (the operator's choice again), when the site no longer forwards (netpol then
 * puts forwarding back as it found it), or when netpol leaves (`down`).
 * `before`: the networks the record keeps (fail-closed ones in force, and retired ones).
 */
export function retiredNetworks(
  before: readonly SiteNetwork[],
  desired: SiteState,
  devices: ReadonlySet<string>,
): SiteNetwork[] {
  // No set of 10,000 prefixes for a site that never had a record (a cold apply).
  if (before.length === 0) return [];
  const now = desired.networks ?? [];
  const present = new Set(now.map((n) => n.cidr));
  const forwards = new Set(
    desired.sysctls.flatMap(([key, value]) => (value === "1" ? (FORWARDING[key] ?? []) : [])),
  );
  const seen = new Set<string>();
  return before.filter((n) => {
    const key = `${n.device} ${n.cidr}`;
    const family = n.cidr.includes(":") ? 6 : 4;
    if (!n.failClosed || !forwards.has(family) || present.has(n.cidr)) return false;
    if (!devices.has(n.device) || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The sysctls by which netpol forwards a family for the site (compile/sysctl.ts). */
const FORWARDING: Readonly<Record<string, number>> = {
  "net.ipv4.ip_forward": 4,
  "net.ipv6.conf.all.forwarding": 6,
};

/** The comment of the guard's rule: `status` and the tests count by it. */
export const retiredComment = (family: 4 | 6) =>
  family === 4 ? "retired networks" : "retired networks, IPv6";

/** The set of a family's retired networks, as `"PORT" . PREFIX` elements. */
export const retiredSet = (family: 4 | 6) => `retired${family}`;

/**
 * The desired state with the guard of the retired networks at the tail of the forward filter:
 * what arrives on a retired network's port from its prefix is dropped and counted, whichever
 * table would route it. Each network is an element of a set (its port and prefix) that one rule
 * per family matches, so a network retiring or coming back while another stays retired changes
 * elements, not rules: a one-line change of a prefix stays one element change. netpol's forward
 * rules only drop, so the order changes no verdict; last, a port that still carries a
 * fail-closed network of the policy has its packets counted by that egress's guard, which status
 * reports, and the retired one counts only what nothing else holds.
 */
export function guardRetired(desired: SiteState, retired: readonly SiteNetwork[]): SiteState {
  if (retired.length === 0) return desired;
  const sets: NftSet[] = [];
  const rules: string[] = [];
  for (const family of [4, 6] as const) {
    const of = retired.filter((n) => (n.cidr.includes(":") ? 6 : 4) === family);
    if (of.length === 0) continue;
    sets.push({
      name: retiredSet(family),
      kind: "set",
      type: `ifname . ${family === 4 ? "ipv4_addr" : "ipv6_addr"}`,
      interval: true,
      elements: of.map((n) => `${JSON.stringify(n.device)} . ${n.cidr}`),
    });
    rules.push(
      `iifname . ${family === 4 ? "ip" : "ip6"} saddr @${retiredSet(family)} counter drop comment ${JSON.stringify(retiredComment(family))}`,
    );
  }
  const forward = desired.nftChains.find((c) => c.name === FORWARD.name);
  const nftChains = forward
    ? desired.nftChains.map((c) => (c === forward ? { ...c, rules: [...c.rules, ...rules] } : c))
    : [...desired.nftChains, { ...FORWARD, rules }];
  return { ...desired, nftSets: [...desired.nftSets, ...sets], nftChains };
}

/** netpol's forward filter chain, as compileNftables names and hooks it. */
const FORWARD: NftChain = {
  name: "filter_forward",
  base: { type: "filter", hook: "forward", priority: "filter" },
  rules: [],
};
