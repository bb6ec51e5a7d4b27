import { type Cidr, compareCidr, formatCidr, overlaps } from "../net/cidr.js";
import type { Diagnostic } from "../policy/diagnostic.js";
import type { Intent } from "../policy/intent.js";
import { allowedIps } from "./wireguard.js";

/**
 * A default route next to a more specific prefix is a catch-all WireGuard resolves by longest
 * match (an exit peer beside the others); the same prefix twice, or two overlapping networks,
 * is an address plan that sends traffic to the wrong site.
 */
function clashes(x: Cidr, y: Cidr): boolean {
  if (compareCidr(x, y) === 0) return true;
  return x.prefix > 0 && y.prefix > 0 && overlaps(x, y);
}

/**
 * WireGuard routes by AllowedIPs: a prefix claimed by two peers of one interface silently goes
 * to one of them. Checked on the compiled AllowedIPs, since most of them are derived.
 */
export function checkAllowedIps(intent: Intent): Diagnostic[] {
  const problems: Diagnostic[] = [];
  intent.tunnels.forEach((t, tidx) => {
    for (const local of t.members) {
      const peers = t.members
        .filter((m) => m !== local)
        .map((peer) => ({ peer, ips: allowedIps(intent, t, local, peer) }));
      peers.forEach((a, i) => {
        for (const b of peers.slice(i + 1)) {
          for (const x of a.ips) {
            const clash = b.ips.find((y) => clashes(x, y));
            if (!clash) continue;
            problems.push({
              path: ["tunnels", tidx, "members", t.members.indexOf(b.peer)],
              message: `on ${local.site}'s ${t.name}, AllowedIPs of peers ${a.peer.site} (${formatCidr(x)}) and ${b.peer.site} (${formatCidr(clash)}) overlap; each prefix may belong to one peer only`,
            });
          }
        }
      });
    }
  });
  return problems;
}
