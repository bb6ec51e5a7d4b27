import type { ProxyRoute, ProxySpec } from "../compile/desired.js";

/** The prefix of the `@id` of every route netpol puts into Caddy: what it owns there. */
export const ROUTE_ID_PREFIX = "netpol-";
/** The server netpol adds when no server of the user's listens on the port it needs. */
export const OWN_SERVER = "netpol";

/**
 * One hostname's route: reverse_proxy to the target over the tunnel. Caddy sets
 * X-Forwarded-For (and -Proto, -Host), so the home service still learns the client's address.
 */
export function caddyRoute(r: ProxyRoute): Record<string, unknown> {
  return {
    "@id": `${ROUTE_ID_PREFIX}${r.service}`,
    match: [{ host: [r.hostname] }],
    handle: [{ handler: "reverse_proxy", upstreams: [{ dial: r.upstream }] }],
    terminal: true,
  };
}

/** The port the routes are served on: HTTPS with automatic TLS, plain HTTP without. */
export function proxyPort(proxy: ProxySpec): number {
  return proxy.settings.tls === "auto" ? proxy.settings.httpsPort : proxy.settings.httpPort;
}

/** netpol's own server, for when no server listens on the port yet. */
export function ownServer(proxy: ProxySpec, routes: readonly unknown[]): Record<string, unknown> {
  return {
    listen: [`:${proxyPort(proxy)}`],
    routes,
    ...(proxy.settings.tls === "auto" ? {} : { automatic_https: { disable: true } }),
  };
}

/** The ports of the http app, set only where they differ from Caddy's defaults. */
export function httpPorts(proxy: ProxySpec): Record<string, number> {
  const { settings } = proxy;
  if (settings.tls !== "auto") return {};
  return {
    ...(settings.httpPort !== 80 ? { http_port: settings.httpPort } : {}),
    ...(settings.httpsPort !== 443 ? { https_port: settings.httpsPort } : {}),
  };
}

/**
 * Caddy's native JSON config for a Caddy of netpol's alone (what `caddy run --config` reads):
 * one server, one route per hostname. A running Caddy is not given this: netpol merges its
 * routes into the running config instead (plan/proxy.ts).
 */
export function caddyConfig(proxy: ProxySpec): unknown {
  return {
    admin: { listen: proxy.settings.adminListen },
    apps: {
      http: {
        servers: { [OWN_SERVER]: ownServer(proxy, proxy.routes.map(caddyRoute)) },
        ...httpPorts(proxy),
      },
    },
  };
}

export function renderCaddy(proxy: ProxySpec): string {
  return `${JSON.stringify(caddyConfig(proxy), null, 2)}\n`;
}
