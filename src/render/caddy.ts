import type { ProxySpec } from "../compile/desired.js";

/**
 * Caddy's native JSON config (what `caddy run --config` reads and `POST /load` takes): one
 * server, one route per hostname, reverse_proxy to the target over the tunnel. Caddy adds
 * X-Forwarded-For, so the home service still learns the client's address.
 */
export function caddyConfig(proxy: ProxySpec): unknown {
  const { settings } = proxy;
  const tls = settings.tls === "auto";
  return {
    admin: { listen: settings.adminListen },
    apps: {
      http: {
        servers: {
          netpol: {
            listen: [`:${tls ? settings.httpsPort : settings.httpPort}`],
            routes: proxy.routes.map((r) => ({
              "@id": `netpol-${r.service}`,
              match: [{ host: [r.hostname] }],
              handle: [{ handler: "reverse_proxy", upstreams: [{ dial: r.upstream }] }],
              terminal: true,
            })),
            ...(tls ? {} : { automatic_https: { disable: true } }),
          },
        },
        ...(tls ? { http_port: settings.httpPort, https_port: settings.httpsPort } : {}),
      },
    },
  };
}

export function renderCaddy(proxy: ProxySpec): string {
  return `${JSON.stringify(caddyConfig(proxy), null, 2)}\n`;
}
