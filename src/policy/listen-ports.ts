import { DEFAULT_PROXY } from "../compile/proxy.js";
import type { Diagnostic, Path } from "./diagnostic.js";
import type { Intent, ServiceIntent, SiteIntent } from "./intent.js";

/** Something on a site that listens on a port, as the policy alone says. */
interface Claim {
  readonly proto: "tcp" | "udp";
  readonly port: number;
  /** Who holds it, in words. */
  readonly holder: string;
  /** Made only for a problem: finding a tunnel member's place is a search of the members. */
  readonly path: () => Path;
  readonly relay?: true;
}

/** A service a site publishes, with its place in the policy's list. */
interface Published {
  readonly s: ServiceIntent;
  readonly idx: number;
}

/**
 * The Caddy a site drives serves HTTP on `httpPort` and, with `tls: auto`, HTTPS on
 * `httpsPort` over TCP and HTTP/3 over UDP (Caddy 2.6's default).
 */
function proxyClaims(site: SiteIntent, published: readonly Published[]): Claim[] {
  const publishesHttp = published.some(({ s }) => s.kind === "http");
  if (!publishesHttp && !site.proxy) return [];
  const p = site.proxy ?? DEFAULT_PROXY;
  const path = (): Path => ["sites", site.name, "proxy"];
  return [
    { proto: "tcp", port: p.httpPort, holder: `${site.name}'s Caddy (proxy.httpPort)`, path },
    ...(p.tls === "auto"
      ? (["tcp", "udp"] as const).map((proto) => ({
          proto,
          port: p.httpsPort,
          holder: `${site.name}'s Caddy (proxy.httpsPort${proto === "udp" ? ", HTTP/3" : ""})`,
          path,
        }))
      : []),
  ];
}

/**
 * netpol's PROXY-protocol relay listens on `relayPort` (loopback) where an HTTP service asks
 * for the header; a port published on it would be refused by the relay's bind.
 */
function relayClaims(site: SiteIntent, published: readonly Published[]): Claim[] {
  const relayed = published.some(({ s }) => s.kind === "http" && s.proxyProtocol !== undefined);
  if (!relayed) return [];
  return [
    {
      proto: "tcp",
      port: (site.proxy ?? DEFAULT_PROXY).relayPort,
      holder: `${site.name}'s PROXY-protocol relay (proxy.relayPort)`,
      path: () => ["sites", site.name, "proxy", "relayPort"],
      relay: true,
    },
  ];
}

/** Each WireGuard interface of the site listens on its member's UDP port. */
function tunnelClaims(intent: Intent, site: SiteIntent): Claim[] {
  return site.tunnels.flatMap(({ tunnel, local }) =>
    local.listenPort === undefined
      ? []
      : [
          {
            proto: "udp" as const,
            port: local.listenPort,
            holder: `tunnel ${tunnel.name} (${local.device}'s WireGuard listen port)`,
            path: () => [
              "tunnels",
              intent.tunnels.indexOf(tunnel),
              "members",
              tunnel.members.indexOf(local),
              "listenPort",
            ],
          },
        ],
  );
}

/**
 * A port published with `kind: tcp|udp` is taken, by DNAT (or the relay's bind), from whatever
 * else listens on it there: the site's Caddy (its own sites and every published hostname would
 * fail), the relay's own port, or the tunnel that carries the published traffic. Two tunnels
 * cannot share a listen port either, nor the relay Caddy's.
 * What the policy alone shows is refused here; live listeners are refused by `plan`.
 */
export function checkListenPorts(intent: Intent): Diagnostic[] {
  const problems: Diagnostic[] = [];
  // The services each site publishes, grouped once: a policy with thousands of sites and
  // services would otherwise look at every service once per site.
  const publishedOn = new Map<string, Published[]>();
  intent.services.forEach((s, idx) => {
    const list = publishedOn.get(s.publishOn);
    if (list) list.push({ s, idx });
    else publishedOn.set(s.publishOn, [{ s, idx }]);
  });
  for (const site of intent.sites) {
    const published = publishedOn.get(site.name) ?? [];
    const claims = [
      ...proxyClaims(site, published),
      ...tunnelClaims(intent, site),
      ...relayClaims(site, published),
    ];
    // Nothing listens on most of a hub's spokes: nothing to clash with.
    if (claims.length === 0) continue;
    const held = new Map<string, Claim>();
    for (const claim of claims) {
      const key = `${claim.port}/${claim.proto}`;
      const first = held.get(key);
      if (first && claim.holder.startsWith("tunnel") && first.holder.startsWith("tunnel"))
        problems.push({
          path: claim.path(),
          message: `port ${key} on ${site.name} is already ${first.holder}; give this member another listenPort`,
        });
      if (first && claim.relay)
        problems.push({
          path: claim.path(),
          message: `port ${key} on ${site.name} is already ${first.holder}; give the relay another relayPort`,
        });
      if (!first) held.set(key, claim);
    }
    for (const { s, idx } of published) {
      if (s.kind === "http") continue;
      const claim = held.get(`${s.port}/${s.kind}`);
      if (!claim) continue;
      problems.push({
        path: ["services", idx, "port"],
        message: `port ${s.port}/${s.kind} on ${site.name} is ${claim.holder}; publishing it would take that port from it. Pick another port`,
      });
    }
  }
  return problems;
}
