import { formatHostPort } from "../net/host-port.js";
import type { Intent, SiteIntent } from "../policy/intent.js";
import type { ProxySpec } from "./desired.js";

/** HTTP services published on this site, as reverse-proxy routes by hostname. */
export function compileProxy(intent: Intent, site: SiteIntent): ProxySpec | undefined {
  const routes = intent.services.flatMap((s) => {
    if (s.kind !== "http" || s.publishOn !== site.name) return [];
    return [
      {
        service: s.name,
        hostname: s.hostname,
        upstream: formatHostPort(s.target.address, s.target.port),
      },
    ];
  });
  if (routes.length === 0) return undefined;
  return {
    settings: site.proxy,
    routes: routes.sort((a, b) => a.hostname.localeCompare(b.hostname)),
  };
}
