import { formatAddress } from "../net/cidr.js";
import { checkUnique, type Path, type Report } from "./diagnostic.js";
import {
  type Address,
  keepsClientAddress,
  type ServiceIntent,
  type ServiceTarget,
  type SiteTunnel,
  type TunnelIntent,
} from "./intent.js";
import type { MemberNetworks, NetworkHolding } from "./member-networks.js";
import type { PolicyDocument } from "./schema.js";

/** Where sites' networks are: each site's own lookup, and per tunnel its members'. */
export interface SiteNetworks {
  readonly holding: NetworkHolding;
  readonly ofMembers: (tunnel: TunnelIntent) => MemberNetworks;
}

/** The first member, in tunnels shared with `site`, whose site has a network holding `address`. */
function findTarget(
  site: string,
  address: Address,
  tunnels: readonly SiteTunnel[],
  networks: SiteNetworks,
): Omit<ServiceTarget, "port" | "address"> | undefined {
  for (const { tunnel, local } of tunnels) {
    const found = networks.ofMembers(tunnel).first(site, address, networks.holding);
    if (found) {
      const { member, network } = found;
      return { site: member.site, tunnel: tunnel.name, via: local.device, network: network.cidr };
    }
  }
  return undefined;
}

/** The ports a site's Caddy holds, by protocol: what a raw port published there would steal. */
function caddyPorts(doc: PolicyDocument): Map<string, string> {
  const held = new Map<string, string>();
  for (const [name, site] of Object.entries(doc.sites)) {
    const serves =
      site.proxy !== undefined ||
      doc.services.some((s) => s.kind === "http" && s.publishOn === name);
    if (!serves) continue;
    const { tls, httpPort, httpsPort } = site.proxy ?? {
      tls: "auto",
      httpPort: 80,
      httpsPort: 443,
    };
    held.set(
      `${name} tcp ${httpPort}`,
      tls === "auto"
        ? "Caddy's HTTP port, where the CA's HTTP-01 challenges and the redirects to HTTPS arrive"
        : "Caddy's HTTP port, where the published hostnames are served",
    );
    if (tls !== "auto") continue;
    held.set(
      `${name} tcp ${httpsPort}`,
      "Caddy's HTTPS port, where the published hostnames are served",
    );
    held.set(`${name} udp ${httpsPort}`, "Caddy's HTTP/3 port");
  }
  return held;
}

export function resolveServices(
  doc: PolicyDocument,
  tunnelsBySite: ReadonlyMap<string, readonly SiteTunnel[]>,
  networks: SiteNetworks,
  report: Report,
): ServiceIntent[] {
  const listeners = new Map<string, string>();
  const names = new Set<string>();
  const caddy = caddyPorts(doc);
  return doc.services.flatMap((s, idx): ServiceIntent[] => {
    const path: Path = ["services", idx];
    checkUnique(names, "service", s.name, path, report);
    const site = doc.sites[s.publishOn];
    if (!site) {
      report({
        path: [...path, "publishOn"],
        message: `unknown site ${s.publishOn}; declare it under sites`,
      });
      return [];
    }
    const listener =
      s.kind === "http"
        ? `${s.publishOn} http ${s.hostname.toLowerCase()}`
        : `${s.publishOn} ${s.kind} ${s.port}`;
    const taken = listeners.get(listener);
    if (taken !== undefined) {
      report({
        path: [...path, s.kind === "http" ? "hostname" : "port"],
        message: `service ${taken} already listens there on ${s.publishOn}; pick another ${s.kind === "http" ? "hostname" : "port"}`,
      });
    }
    listeners.set(listener, s.name);
    const held = caddy.get(listener);
    if (held !== undefined && s.kind !== "http") {
      report({
        path: [...path, "port"],
        message: `${s.kind} port ${s.port} of ${s.publishOn} is ${held}; publish the service on another port`,
      });
    }
    if (s.kind !== "http" && site.wan === undefined) {
      report({
        path: [...path, "publishOn"],
        message: `site ${s.publishOn} publishes a ${s.kind} port but has no wan interface; set sites.${s.publishOn}.wan`,
      });
    }
    const address = s.target.address;
    if (!address) {
      report({
        path: [...path, "target"],
        message: "the target must be an IP address, not a host name",
      });
      return [];
    }
    const tunnels = tunnelsBySite.get(s.publishOn) ?? [];
    const found = findTarget(s.publishOn, address, tunnels, networks);
    if (!found) {
      report({
        path: [...path, "target"],
        message: `${formatAddress(address)} is not in a network of any site joined to ${s.publishOn} by a tunnel, so ${s.publishOn} cannot reach it; declare the network on the target's site and join the sites with a tunnel`,
      });
      return [];
    }
    const shared = tunnels.find((t) => t.tunnel.name === found.tunnel);
    const front = shared?.local;
    // Only SNAT and the reverse proxy need a source address of the target's family; a port
    // that keeps the client's address forwards the client's own.
    const keepsClient = s.kind !== "http" && s.clientAddress === "preserve";
    if (front && front.address.family !== address.family && !keepsClient) {
      report({
        path: [...path, "target"],
        message: `the target is IPv${address.family} but ${s.publishOn}'s address on ${found.tunnel} is IPv${front.address.family}, so ${s.publishOn} has no source address to reach it; use an IPv${front.address.family} target`,
      });
      return [];
    }
    const hub = shared?.tunnel.hub;
    const spokes = hub !== undefined && hub !== s.publishOn && hub !== found.site;
    if (spokes && keepsClientAddress(s)) {
      report({
        path: [...path, "clientAddress"],
        message: `${s.publishOn} and ${found.site} are both spokes of ${found.tunnel}: replies keeping the client's address would need a default route through the hub for one spoke only; publish it on the hub ${hub}, or use clientAddress: proxy`,
      });
    }
    const target: ServiceTarget = { address, port: s.target.port, ...found };
    if (s.kind === "http") {
      return [
        {
          kind: "http",
          name: s.name,
          publishOn: s.publishOn,
          hostname: s.hostname.toLowerCase(),
          target,
        },
      ];
    }
    return [
      {
        kind: s.kind,
        name: s.name,
        publishOn: s.publishOn,
        port: s.port,
        clientAddress: s.clientAddress,
        target,
      },
    ];
  });
}
