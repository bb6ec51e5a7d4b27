import type { ProxyRoute, ProxySpec } from "../compile/desired.js";

/** The prefix of the `@id` of every route netpol puts into Caddy: what it owns there. */
export const ROUTE_ID_PREFIX = "netpol-";
/** The server netpol adds when no server of the user's listens on the port it needs. */
export const OWN_SERVER = "netpol";
/** The `@id` of netpol's TLS automation policy: a ':' no route's `netpol-<service>` can hold. */
export const TLS_POLICY_ID = "netpol:acme";
/** The name of the log Caddy writes certificate events to, for `netpol status`. */
export const ACME_LOG = "netpol-acme";
/** Caddy 2.6's loggers for obtaining and renewing certificates and for its ACME client. */
export const ACME_LOGGERS = ["tls.obtain", "tls.renew", "tls.issuance", "http.acme_client"];

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
 * How Caddy gets certificates for netpol's hostnames (`tls: auto`): one automation policy for
 * exactly those names, so the user's own sites keep theirs. HTTP-01 only: a certificate that
 * cannot be had then has one cause to look for, the CA not reaching Caddy on port 80.
 */
export function tlsPolicy(proxy: ProxySpec): Record<string, unknown> | undefined {
  if (proxy.settings.tls !== "auto" || proxy.routes.length === 0) return undefined;
  const { acme } = proxy.settings;
  return {
    "@id": TLS_POLICY_ID,
    subjects: proxy.routes.map((r) => r.hostname),
    issuers: [
      {
        module: "acme",
        ca: acme.ca,
        ...(acme.email !== undefined ? { email: acme.email } : {}),
        ...(acme.trustedRoots.length > 0 ? { trusted_roots_pem_files: acme.trustedRoots } : {}),
        challenges: { "tls-alpn": { disabled: true } },
      },
    ],
  };
}

/** The log of certificate events that `netpol status` reads the last issuance error from. */
export function acmeLog(proxy: ProxySpec): Record<string, unknown> | undefined {
  if (!tlsPolicy(proxy)) return undefined;
  return {
    writer: { output: "file", filename: proxy.settings.acme.log, roll_size_mb: 1, roll_keep: 1 },
    encoder: { format: "json" },
    include: ACME_LOGGERS,
  };
}

/**
 * Caddy's native JSON config for a Caddy of netpol's alone (what `caddy run --config` reads):
 * one server, one route per hostname. A running Caddy is not given this: netpol merges its
 * routes into the running config instead (plan/proxy.ts).
 */
export function caddyConfig(proxy: ProxySpec): unknown {
  const policy = tlsPolicy(proxy);
  const log = acmeLog(proxy);
  return {
    admin: { listen: proxy.settings.adminListen },
    ...(log ? { logging: { logs: { [ACME_LOG]: log } } } : {}),
    apps: {
      http: {
        servers: { [OWN_SERVER]: ownServer(proxy, proxy.routes.map(caddyRoute)) },
        ...httpPorts(proxy),
      },
      ...(policy ? { tls: { automation: { policies: [policy] } } } : {}),
    },
  };
}

export function renderCaddy(proxy: ProxySpec): string {
  return `${JSON.stringify(caddyConfig(proxy), null, 2)}\n`;
}
