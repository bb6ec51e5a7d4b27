import {
  type Cidr,
  compareCidr,
  contains,
  defaultRoute,
  type Family,
  formatCidr,
  hostPrefix,
  nestedPairs,
  networkOf,
} from "../net/cidr.js";
import { type Diagnostic, formatPath, type Path } from "./diagnostic.js";
import { type Intent, keepsClientAddress, type MemberIntent, type SiteTunnel } from "./intent.js";
import { advertisers, egressFrom, egressTo, servicesThrough } from "./tunnel-uses.js";

export interface PeerAllowedIps {
  readonly peer: MemberIntent;
  readonly allowedIps: readonly Cidr[];
}

/** Sorted, each prefix once, in place: every list is allowedIpsOf's own (a hub has 10,000). */
function uniqueSorted(cidrs: Cidr[]): Cidr[] {
  if (cidrs.length < 2) return cidrs;
  // A spoke's list on the hub holds its address and its one network: sort copies even two.
  if (cidrs.length === 2) {
    const [a, b] = cidrs as [Cidr, Cidr];
    const order = compareCidr(a, b);
    if (order === 0) cidrs.length = 1;
    else if (order > 0) [cidrs[0], cidrs[1]] = [b, a];
    return cidrs;
  }
  cidrs.sort(compareCidr);
  let kept = 1;
  for (let i = 1; i < cidrs.length; i++) {
    const c = cidrs[i] as Cidr;
    if (compareCidr(c, cidrs[kept - 1] as Cidr) !== 0) cidrs[kept++] = c;
  }
  cidrs.length = kept;
  return cidrs;
}

function families(items: readonly { family: Family }[]): Family[] {
  return [...new Set(items.map((c) => c.family))].sort();
}

/**
 * What a site sends to each of its peers through one tunnel: WireGuard's AllowedIPs per peer.
 * For a peer that is the peer's tunnel address, the networks it advertises, the networks
 * holding targets this site publishes, a default route where this site exits through the peer
 * or answers clients the peer forwarded unchanged, and the sources the peer sends out through
 * this site. A spoke sends all of that for every other spoke to the hub, and the tunnel subnet
 * too; the hub forwards between spokes. The services and egress paths through the tunnel are
 * looked up by site (tunnel-uses.ts), so a hub with n spokes costs n log n, and a spoke its own.
 */
export function allowedIpsOf(intent: Intent, st: SiteTunnel): PeerAllowedIps[] {
  const { tunnel, local } = st;
  const me = local.site;
  const lists = new Map<string, Cidr[]>();
  for (const p of st.peers) lists.set(p.site, [hostPrefix(p.address), ...p.advertise]);
  const hubList = tunnel.hub === undefined ? undefined : lists.get(tunnel.hub);
  /** Where traffic for a member's site goes from here: to it, or for a spoke, to the hub. */
  const toward = (site: string) => lists.get(site) ?? hubList;
  if (hubList) {
    hubList.push(networkOf(local.address));
    for (const m of advertisers(tunnel)) {
      if (m !== local && m.site !== tunnel.hub) hubList.push(...m.advertise);
    }
  }
  for (const s of servicesThrough(intent, tunnel.name)) {
    // The hub carries what one spoke publishes of another's network.
    const carried = s.publishOn === me || me === tunnel.hub;
    if (carried && s.target.site !== me) toward(s.target.site)?.push(s.target.network);
    // Replies to clients the peer forwarded unchanged go to any address.
    if (keepsClientAddress(s) && s.target.site === me) {
      toward(s.publishOn)?.push(defaultRoute(s.target.address.family));
    }
  }
  for (const { egress, exit } of egressFrom(intent, tunnel.name, me))
    toward(exit)?.push(...families(egress.sources).map(defaultRoute));
  for (const { site, egress } of egressTo(intent, tunnel.name, me))
    if (!egress.masquerade) toward(site.name)?.push(...egress.sources);
  return st.peers.map((peer) => ({
    peer,
    allowedIps: uniqueSorted(lists.get(peer.site) ?? []),
  }));
}

/**
 * A default route next to a more specific prefix is a catch-all WireGuard resolves by longest
 * match (an exit peer beside the others); the same prefix twice, or two overlapping networks,
 * is an address plan that sends traffic to the wrong site.
 */
function clashes(outer: Cidr, inner: Cidr): boolean {
  return compareCidr(outer, inner) === 0 || outer.prefix > 0;
}

/**
 * WireGuard routes by AllowedIPs: a prefix claimed by two peers of one interface silently goes
 * to one of them. Checked on the compiled AllowedIPs, since most of them are derived; a spoke
 * has one peer and nothing to check.
 */
export function checkAllowedIps(intent: Intent): Diagnostic[] {
  const problems: Diagnostic[] = [];
  for (const site of intent.sites) {
    for (const st of site.tunnels) {
      if (st.peers.length < 2) continue;
      const tidx = intent.tunnels.indexOf(st.tunnel);
      // Each peer's place among the members, looked up once: a hub has thousands.
      const order = new Map<MemberIntent, number>();
      st.tunnel.members.forEach((m, i) => {
        order.set(m, i);
      });
      const claims: { peer: MemberIntent; cidr: Cidr; order: number }[] = [];
      for (const { peer, allowedIps } of allowedIpsOf(intent, st)) {
        const at = order.get(peer) ?? -1;
        for (const cidr of allowedIps) claims.push({ peer, cidr, order: at });
      }
      for (const [outer, inner] of nestedPairs(claims, (c) => c.cidr)) {
        if (outer.peer === inner.peer || !clashes(outer.cidr, inner.cidr)) continue;
        const [a, b] = outer.order < inner.order ? [outer, inner] : [inner, outer];
        problems.push({
          path: ["tunnels", tidx, "members", b.order],
          message: `on ${site.name}'s ${st.tunnel.name}, AllowedIPs of peers ${a.peer.site} (${formatCidr(a.cidr)}) and ${b.peer.site} (${formatCidr(b.cidr)}) overlap; each prefix may belong to one peer only`,
        });
      }
    }
  }
  return problems;
}

/** A prefix some site declares: one of its networks, or one a tunnel member advertises. */
interface Declared {
  readonly site: string;
  readonly cidr: Cidr;
  /** Made only for a problem: 10,000 sites declare 10,000 prefixes and clash in none. */
  readonly path: () => Path;
  readonly network: boolean;
}

const keyOf = (c: Cidr) => formatCidr(networkOf(c));

/**
 * A site's own network that overlaps a prefix one of its tunnels routes to a peer (a home
 * network the VPS publishes, one a member advertises): main would hold the network's route and
 * the tunnel's for one prefix, which the kernel refuses at apply ("RTNETLINK answers: File
 * exists"), or a nested one that takes part of the network into the tunnel. Only prefixes two
 * sites declare can clash, so the AllowedIPs are computed only for the sites in such a pair: at
 * 10,000 sites, computing every site's would be quadratic.
 */
export function checkRoutedOverOwn(intent: Intent): Diagnostic[] {
  const declared: Declared[] = [];
  // forEach, not `entries()`: that makes an [index, item] pair per prefix, 20,000 at a hub.
  for (const site of intent.sites) {
    site.networks.forEach((n, i) => {
      const path = (): Path => ["sites", site.name, "networks", i, "cidr"];
      declared.push({ site: site.name, cidr: n.cidr, path, network: true });
    });
  }
  intent.tunnels.forEach((t, ti) => {
    t.members.forEach((m, mi) => {
      m.advertise.forEach((cidr, ai) => {
        const path = (): Path => ["tunnels", ti, "members", mi, "advertise", ai];
        declared.push({ site: m.site, cidr, path, network: false });
      });
    });
  });
  /** Per site, each prefix its tunnels route to a peer: the tunnel and the peer's site. */
  const routed = new Map<string, Map<string, { tunnel: string; peer: string }>>();
  const routesOf = (site: string) => {
    let routes = routed.get(site);
    if (routes) return routes;
    routes = new Map();
    for (const st of intent.sites.find((s) => s.name === site)?.tunnels ?? []) {
      const own = networkOf(st.local.address);
      for (const { peer, allowedIps } of allowedIpsOf(intent, st))
        for (const cidr of allowedIps)
          if (cidr.prefix > 0 && !contains(own, cidr))
            routes.set(keyOf(cidr), { tunnel: st.tunnel.name, peer: peer.site });
    }
    routed.set(site, routes);
    return routes;
  };
  const problems: Diagnostic[] = [];
  // A network a member also advertises (by name) is said once, as the network.
  const said = new Set<string>();
  for (const [outer, inner] of nestedPairs(declared, (d) => d.cidr)) {
    if (outer.site === inner.site || !clashes(outer.cidr, inner.cidr)) continue;
    for (const [mine, theirs] of [
      [outer, inner],
      [inner, outer],
    ] as const) {
      if (!mine.network) continue;
      const route = routesOf(mine.site).get(keyOf(theirs.cidr));
      const once = `${formatPath(mine.path())} ${theirs.site} ${keyOf(theirs.cidr)}`;
      if (!route || said.has(once)) continue;
      said.add(once);
      problems.push({
        path: mine.path(),
        message: `${formatCidr(mine.cidr)} overlaps ${formatCidr(theirs.cidr)} of site ${theirs.site} (${formatPath(theirs.path())}), which ${mine.site} routes into tunnel ${route.tunnel} to ${route.peer}: one prefix would be routed both to this network and into the tunnel (the kernel refuses the second route at apply); renumber one of the two networks`,
      });
    }
  }
  return problems;
}
