import { formatHostPort } from "../net/host-port.js";
import { DEFAULT_ACME_LOG, LETS_ENCRYPT } from "../policy/acme-defaults.js";
import type { Intent, ProxySettings, SiteIntent } from "../policy/intent.js";
import type { ProxySpec } from "./desired.js";

/** Where Caddy sends an HTTP service that asks for the PROXY protocol: the relay's loopback port. */
const relayUpstream = (relayPort: number) => `127.0.0.1:${relayPort}`;

export const DEFAULT_PROXY: ProxySettings = {
  tls: "auto",
  httpPort: 80,
  httpsPort: 443,
  adminListen: "localhost:2019",
  relayPort: 9479,
  acme: { ca: LETS_ENCRYPT, trustedRoots: [], log: DEFAULT_ACME_LOG },
};

/**
 * HTTP services published on this site, as reverse-proxy routes by hostname. A site that
 * declares a proxy gets a spec even with no routes, so an apply removes routes netpol made before.
 */
export function compileProxy(intent: Intent, site: SiteIntent): ProxySpec | undefined {
  const settings = site.proxy ?? DEFAULT_PROXY;
  const routes = intent.services.flatMap((s) => {
    if (s.kind !== "http" || s.publishOn !== site.name) return [];
    // Caddy 2.6 cannot send the PROXY header: the relay does, picking the target by host name.
    const upstream =
      s.proxyProtocol !== undefined
        ? relayUpstream(settings.relayPort)
        : formatHostPort(s.target.address, s.target.port);
    return [{ service: s.name, hostname: s.hostname, upstream }];
  });
  if (routes.length === 0 && site.proxy === undefined) return undefined;
  return {
    settings,
    routes: routes.sort((a, b) => a.hostname.localeCompare(b.hostname)),
  };
}
