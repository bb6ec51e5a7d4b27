import {
  type Cidr,
  compareCidr,
  contains,
  defaultRoute,
  type Family,
  hostPrefix,
} from "../net/cidr.js";
import type { Intent, MemberIntent, TunnelIntent } from "../policy/intent.js";
import type { WireguardPeer, WireguardSpec } from "./desired.js";

function uniqueSorted(cidrs: readonly Cidr[]): Cidr[] {
  const sorted = [...cidrs].sort(compareCidr);
  return sorted.filter((c, i) => i === 0 || compareCidr(c, sorted[i - 1] as Cidr) !== 0);
}

function families(items: readonly { family: Family }[]): Family[] {
  return [...new Set(items.map((c) => c.family))].sort();
}

/**
 * What `local` sends to `peer` through tunnel `t`: WireGuard's AllowedIPs for that peer. It is
 * the peer's tunnel address, the networks it advertises, the networks holding targets that
 * `local` publishes, a default route where `local` exits through the peer or answers clients
 * the peer forwarded unchanged, and the sources the peer sends out through `local`.
 */
export function allowedIps(
  intent: Intent,
  t: TunnelIntent,
  local: MemberIntent,
  peer: MemberIntent,
): Cidr[] {
  const out: Cidr[] = [hostPrefix(peer.address), ...peer.advertise];
  const peerSite = intent.sites.find((s) => s.name === peer.site);
  for (const s of intent.services) {
    if (s.publishOn !== local.site || s.target.site !== peer.site || s.target.tunnel !== t.name)
      continue;
    const net = peerSite?.networks.find((n) => contains(n.cidr, hostPrefix(s.target.address)));
    if (net) out.push(net.cidr);
  }
  const localSite = intent.sites.find((s) => s.name === local.site);
  for (const e of localSite?.egress ?? []) {
    if (e.via.kind === "tunnel" && e.via.tunnel === t.name && e.via.exit === peer.site) {
      out.push(...families(e.sources).map(defaultRoute));
    }
  }
  const preservedByPeer = intent.services.filter(
    (s) =>
      s.kind !== "http" &&
      s.clientAddress === "preserve" &&
      s.publishOn === peer.site &&
      s.target.site === local.site &&
      s.target.tunnel === t.name,
  );
  // Replies to clients the peer forwarded unchanged go to any address.
  out.push(...families(preservedByPeer.map((s) => s.target.address)).map(defaultRoute));
  for (const e of peerSite?.egress ?? []) {
    if (
      e.via.kind === "tunnel" &&
      e.via.tunnel === t.name &&
      e.via.exit === local.site &&
      !e.masquerade
    ) {
      out.push(...e.sources);
    }
  }
  return uniqueSorted(out);
}

export function compileWireguard(intent: Intent, site: string): WireguardSpec[] {
  return intent.tunnels.flatMap((t): WireguardSpec[] => {
    const local = t.members.find((m) => m.site === site);
    if (!local) return [];
    const peers: WireguardPeer[] = t.members
      .filter((m) => m !== local)
      .map((peer) => ({
        site: peer.site,
        publicKey: peer.publicKey,
        allowedIps: allowedIps(intent, t, local, peer),
        ...(peer.endpoint ? { endpoint: peer.endpoint } : {}),
        // Only the side that dials keeps the NAT mapping open.
        ...(peer.endpoint && !local.endpoint && t.keepalive > 0 ? { keepalive: t.keepalive } : {}),
      }));
    return [
      {
        name: local.device,
        privateKeyFile: local.privateKeyFile,
        publicKey: local.publicKey,
        ...(local.listenPort !== undefined ? { listenPort: local.listenPort } : {}),
        peers,
      },
    ];
  });
}
