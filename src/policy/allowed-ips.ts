import {
  type Cidr,
  compareCidr,
  defaultRoute,
  type Family,
  formatCidr,
  hostPrefix,
  nestedPairs,
  networkOf,
} from "../net/cidr.js";
import type { Diagnostic } from "./diagnostic.js";
import { type Intent, keepsClientAddress, type MemberIntent, type SiteTunnel } from "./intent.js";

export interface PeerAllowedIps {
  readonly peer: MemberIntent;
  readonly allowedIps: readonly Cidr[];
}

function uniqueSorted(cidrs: readonly Cidr[]): Cidr[] {
  const sorted = [...cidrs].sort(compareCidr);
  return sorted.filter((c, i) => i === 0 || compareCidr(c, sorted[i - 1] as Cidr) !== 0);
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
 * too; the hub forwards between spokes. One pass over the services and egresses, so a hub
 * with n spokes costs n log n.
 */
export function allowedIpsOf(intent: Intent, st: SiteTunnel): PeerAllowedIps[] {
  const { tunnel, local } = st;
  const me = local.site;
  const lists = new Map<string, Cidr[]>(
    st.peers.map((p) => [p.site, [hostPrefix(p.address), ...p.advertise]]),
  );
  const hubList = tunnel.hub === undefined ? undefined : lists.get(tunnel.hub);
  /** Where traffic for a member's site goes from here: to it, or for a spoke, to the hub. */
  const toward = (site: string) => lists.get(site) ?? hubList;
  if (hubList) {
    hubList.push(networkOf(local.address));
    for (const m of tunnel.members) {
      if (m !== local && m.site !== tunnel.hub) hubList.push(...m.advertise);
    }
  }
  for (const s of intent.services) {
    if (s.target.tunnel !== tunnel.name) continue;
    // The hub carries what one spoke publishes of another's network.
    const carried = s.publishOn === me || me === tunnel.hub;
    if (carried && s.target.site !== me) toward(s.target.site)?.push(s.target.network);
    // Replies to clients the peer forwarded unchanged go to any address.
    if (keepsClientAddress(s) && s.target.site === me) {
      toward(s.publishOn)?.push(defaultRoute(s.target.address.family));
    }
  }
  for (const site of intent.sites) {
    for (const e of site.egress) {
      for (const via of e.paths) {
        if (via.kind !== "tunnel" || via.tunnel !== tunnel.name) continue;
        if (site.name === me) toward(via.exit)?.push(...families(e.sources).map(defaultRoute));
        if (via.exit === me && !e.masquerade) toward(site.name)?.push(...e.sources);
      }
    }
  }
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
      const order = new Map(st.tunnel.members.map((m, i) => [m, i]));
      const claims = allowedIpsOf(intent, st).flatMap(({ peer, allowedIps }) =>
        allowedIps.map((cidr) => ({ peer, cidr, order: order.get(peer) ?? -1 })),
      );
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
