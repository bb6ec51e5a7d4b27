import { formatAddress } from "../net/cidr.js";
import { checkUnique, type Path, type Report } from "./diagnostic.js";
import type { HostPort } from "./fields.js";
import {
  type Address,
  keepsClientAddress,
  type ServiceIntent,
  type ServiceTarget,
  type SiteTunnel,
  type TunnelIntent,
} from "./intent.js";
import type { MemberNetworks, NetworkHolding } from "./member-networks.js";
import type { PolicyDocument, ServiceDocument } from "./schema.js";

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

/** A target's address family, where it is an address at all. */
const familyOf = (t: HostPort) => t.address?.family;

/** At most one target per address family: a port publishes each family by its own DNAT. */
function checkFamilies(targets: readonly HostPort[], path: Path, report: Report): boolean {
  const families = targets.map(familyOf).filter((f) => f !== undefined);
  if (targets.length <= 2 && new Set(families).size === families.length) return true;
  report({
    path: [...path, "target"],
    message:
      "list at most one IPv4 and one IPv6 target: clients of each family reach the target of theirs",
  });
  return false;
}

/**
 * The PROXY header goes ahead of a stream, from netpol's relay, which opens a connection of its
 * own: not for UDP, and not with a port that keeps the client's address by routing instead.
 */
function checkProxyProtocol(s: ServiceDocument, path: Path, report: Report): boolean {
  if (s.proxyProtocol === undefined || s.kind === "http") return true;
  if (s.kind === "udp") {
    report({
      path: [...path, "proxyProtocol"],
      message:
        "the PROXY protocol goes ahead of a TCP stream: a udp service cannot carry it; remove proxyProtocol",
    });
    return false;
  }
  if (s.clientAddress !== "preserve") return true;
  report({
    path: [...path, "clientAddress"],
    message:
      "clientAddress: preserve keeps the client's address by routing, proxyProtocol sends it in a header from netpol's relay: keep one of them",
  });
  return false;
}

export function resolveServices(
  doc: PolicyDocument,
  tunnelsBySite: ReadonlyMap<string, readonly SiteTunnel[]>,
  networks: SiteNetworks,
  report: Report,
): ServiceIntent[] {
  const listeners = new Map<string, string>();
  const names = new Set<string>();
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
    const targets = s.kind === "http" ? [s.target] : s.target;
    // A port listens once per family it publishes: the same port may go elsewhere for the
    // other. netpol's relay (`proxyProtocol`) listens on both, whatever the targets.
    const families =
      s.kind === "tcp" && s.proxyProtocol !== undefined ? [4, 6] : targets.map(familyOf);
    const listening =
      s.kind === "http"
        ? [`${s.publishOn} http ${s.hostname.toLowerCase()}`]
        : [...new Set(families)].map((f) => `${s.publishOn} ${s.kind} ${s.port} ${f ?? "?"}`);
    const taken = listening.map((l) => listeners.get(l)).find((t) => t !== undefined);
    if (taken !== undefined) {
      report({
        path: [...path, s.kind === "http" ? "hostname" : "port"],
        message: `service ${taken} already listens there on ${s.publishOn}; pick another ${s.kind === "http" ? "hostname" : "port"}`,
      });
    }
    for (const l of listening) listeners.set(l, s.name);
    if (s.kind !== "http" && site.wan === undefined) {
      report({
        path: [...path, "publishOn"],
        message: `site ${s.publishOn} publishes a ${s.kind} port but has no wan interface; set sites.${s.publishOn}.wan`,
      });
    }
    if (!checkFamilies(targets, path, report) || !checkProxyProtocol(s, path, report)) return [];
    const header = s.proxyProtocol !== undefined ? { proxyProtocol: s.proxyProtocol } : {};
    return targets.flatMap((t, i): ServiceIntent[] => {
      const at: Path = targets.length > 1 ? [...path, "target", i] : [...path, "target"];
      const target = resolveTarget(s, t, at, tunnelsBySite, networks, report);
      if (!target) return [];
      if (s.kind === "http") {
        return [
          {
            kind: "http",
            name: s.name,
            publishOn: s.publishOn,
            hostname: s.hostname.toLowerCase(),
            target,
            ...header,
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
          ...header,
        },
      ];
    });
  });
}

/** Where one target of a service is: which site's network holds it, through which tunnel. */
function resolveTarget(
  s: ServiceDocument,
  t: HostPort,
  at: Path,
  tunnelsBySite: ReadonlyMap<string, readonly SiteTunnel[]>,
  networks: SiteNetworks,
  report: Report,
): ServiceTarget | undefined {
  const address = t.address;
  if (!address) {
    report({ path: at, message: "the target must be an IP address, not a host name" });
    return undefined;
  }
  const tunnels = tunnelsBySite.get(s.publishOn) ?? [];
  const found = findTarget(s.publishOn, address, tunnels, networks);
  if (!found) {
    report({
      path: at,
      message: `${formatAddress(address)} is not in a network of any site joined to ${s.publishOn} by a tunnel, so ${s.publishOn} cannot reach it; declare the network on the target's site and join the sites with a tunnel`,
    });
    return undefined;
  }
  const shared = tunnels.find((x) => x.tunnel.name === found.tunnel);
  const front = shared?.local;
  // Only SNAT and the reverse proxy need a source address of the target's family; a port
  // that keeps the client's address forwards the client's own.
  const keepsClient = keepsClientAddress(s);
  if (front && front.address.family !== address.family && !keepsClient) {
    report({
      path: at,
      message: `the target is IPv${address.family} but ${s.publishOn}'s address on ${found.tunnel} is IPv${front.address.family}, so ${s.publishOn} has no source address to reach it; use an IPv${front.address.family} target`,
    });
    return undefined;
  }
  const hub = shared?.tunnel.hub;
  const spokes = hub !== undefined && hub !== s.publishOn && hub !== found.site;
  if (spokes && keepsClient) {
    report({
      path: [...at.slice(0, 2), "clientAddress"],
      message: `${s.publishOn} and ${found.site} are both spokes of ${found.tunnel}: replies keeping the client's address would need a default route through the hub for one spoke only; publish it on the hub ${hub}, or use clientAddress: proxy`,
    });
  }
  return { address, port: t.port, ...found };
}
