import type { Family } from "../net/cidr.js";
import { formatHostPort } from "../net/host-port.js";
import type { Intent, ServiceIntent, SiteIntent } from "../policy/intent.js";
import type { RelayPort, RelayRoute, RelaySpec } from "./desired.js";
import { DEFAULT_PROXY } from "./proxy.js";

const FAMILIES: readonly Family[] = [4, 6];

/**
 * What the site's PROXY-protocol relay carries: the TCP services with `proxyProtocol` it
 * publishes (the relay holds their port on the uplink), and the HTTP services with it (Caddy
 * hands them to the relay on loopback).
 * Undefined where no service of the site asks for the header: no relay runs there.
 */
export function compileRelay(intent: Intent, site: SiteIntent): RelaySpec | undefined {
  const routes: RelayRoute[] = [];
  // A service with a target per family is one intent per target.
  const relayed = new Map<string, PortService[]>();
  for (const s of intent.services) {
    if (s.publishOn !== site.name || s.proxyProtocol === undefined) continue;
    if (s.kind === "http") {
      const target = formatHostPort(s.target.address, s.target.port);
      routes.push({ service: s.name, hostname: s.hostname, target, version: s.proxyProtocol });
    } else relayed.set(s.name, [...(relayed.get(s.name) ?? []), s]);
  }
  const ports = [...relayed.values()].flatMap(listenersOf);
  if (ports.length === 0 && routes.length === 0) return undefined;
  ports.sort((a, b) => a.port - b.port || a.family - b.family);
  routes.sort((a, b) => a.hostname.localeCompare(b.hostname));
  const port = (site.proxy ?? DEFAULT_PROXY).relayPort;
  return {
    ...(ports.length > 0 && site.wan ? { wan: site.wan } : {}),
    ports,
    ...(routes.length > 0 ? { http: { port, routes } } : {}),
  };
}

type PortService = Extract<ServiceIntent, { kind: "tcp" | "udp" }>;

/**
 * A relayed port listens on both families, each going to the target of its family, or to the
 * one target: the relay opens its own connection, so an IPv6 client reaches an IPv4 target
 * (an IPv4-only tunnel) and the header still carries its IPv6 address.
 */
function listenersOf(targets: readonly PortService[]): RelayPort[] {
  return FAMILIES.flatMap((family) => {
    const s = targets.find((t) => t.target.address.family === family) ?? targets[0];
    if (!s?.proxyProtocol) return [];
    const target = formatHostPort(s.target.address, s.target.port);
    return [{ service: s.name, family, port: s.port, target, version: s.proxyProtocol }];
  });
}
