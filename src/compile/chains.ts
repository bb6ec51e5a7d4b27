import type { Family } from "../net/cidr.js";
import type {
  Address,
  ConnectProbe,
  EgressCanary,
  HealthSettings,
  Intent,
  SiteIntent,
  SiteTunnel,
  Via,
} from "../policy/intent.js";
import type { NextHop } from "./desired.js";
import { type EgressGroup, pathMarksOf, siteMarks } from "./egress-groups.js";

/**
 * What the health monitor needs of each probed egress, compiled from the policy: its table
 * (whose default route is the active path of a chain), and each path's probe mark and targets.
 * Pure, like the rest of compile/.
 */
export interface ProbedPath {
  readonly device: string;
  /** The route to put in the egress table while this path is the active one, per family. */
  readonly hops: Readonly<Partial<Record<Family, NextHop>>>;
  /** The mark its probes carry: its own table's (a chain), or the egress's (a single path). */
  readonly mark: number;
  /** Its peer, then the egress's `health.targets`. */
  readonly targets: readonly Address[];
  /**
   * A WireGuard path (a tunnel of the policy, a provider): whose handshake counts, its exit
   * peer's public key (a provider's one peer: undefined, any peer of the device).
   */
  readonly wireguard?: { readonly peer: string | undefined };
  /** Its TCP or HTTP probe (its one target), from `localPort`, which nft marks (nftables.ts). */
  readonly probe?: ConnectProbe & { readonly localPort: number };
}

/**
 * The local port a path's TCP or HTTP probe leaves from: netpol's nft rule gives packets from
 * it to the probe's target the path's mark. Above the kernel's default ephemeral range
 * (32768–60999), so no other connection takes it by chance.
 */
export const probePort = (group: number, path: number): number => 61000 + group * 8 + path;

export interface ChainSpec {
  /** The first egress of the group, by which status and events name it. */
  readonly name: string;
  readonly table: number;
  readonly families: readonly Family[];
  /** In order of preference; more than one makes it a chain that switches. */
  readonly paths: readonly ProbedPath[];
  readonly health: HealthSettings;
  /** The connection mark of the egress's connections (a chain's), cleared on a switch. */
  readonly connMark: number;
  readonly mask: number;
  /** Its DNS follows the active path (compile/dns.ts): the index of its map's group. */
  readonly dnsGroup?: number;
  /** Its leak canary: asked with the egress's mark (compile/nftables.ts marks it). */
  readonly canary?: EgressCanary;
}

const exitOf = (via: Via, tunnels: readonly SiteTunnel[]) =>
  via.kind === "tunnel"
    ? tunnels.find((t) => t.tunnel.name === via.tunnel)?.peers.find((m) => m.site === via.exit)
    : undefined;

/**
 * A tunnel path's peer is its exit member's tunnel address; an external device's, its gateway;
 * a provider's, its resolver.
 */
function peerOf(via: Via, tunnels: readonly SiteTunnel[]): Address | undefined {
  if (via.kind === "device") return via.gateway;
  if (via.kind === "provider") return via.peer;
  const exit = exitOf(via, tunnels);
  return exit ? { family: exit.address.family, address: exit.address.address } : undefined;
}

function hopsOf(via: Via, families: readonly Family[]): Partial<Record<Family, NextHop>> {
  const hops: Partial<Record<Family, NextHop>> = {};
  for (const family of families) {
    const gateway =
      via.kind === "device" && via.gateway?.family === family ? via.gateway : undefined;
    hops[family] = { device: via.device, ...(gateway ? { gateway } : {}) };
  }
  return hops;
}

export function chainsOf(intent: Intent, site: SiteIntent): ChainSpec[] {
  const marks = siteMarks(intent.settings, site);
  return marks.groups.flatMap((g: EgressGroup, i): ChainSpec[] => {
    const health = g.egress[0]?.health;
    if (!health) return [];
    const families = [...new Set(g.sources.map((c) => c.family))].sort();
    const pathMarks = pathMarksOf(marks, g);
    const paths = g.paths.map((via, p): ProbedPath => {
      const peer = peerOf(via, site.tunnels);
      const exit = exitOf(via, site.tunnels);
      const probe = health.probes[p];
      return {
        device: via.device,
        hops: hopsOf(via, families),
        mark: pathMarks[p] ?? g.mark,
        targets: probe ? [probe.host] : [...(peer ? [peer] : []), ...health.targets],
        ...(probe ? { probe: { ...probe, localPort: probePort(i, p) } } : {}),
        ...(via.kind === "device" ? {} : { wireguard: { peer: exit?.publicKey } }),
      };
    });
    return [
      {
        name: g.egress[0]?.name ?? "",
        table: g.table,
        families,
        paths,
        health,
        connMark: g.mark,
        ...(g.egress[0]?.dns && g.paths.length > 1 ? { dnsGroup: i } : {}),
        ...(g.egress[0]?.canary ? { canary: g.egress[0].canary } : {}),
        mask: marks.layout.mask,
      },
    ];
  });
}
