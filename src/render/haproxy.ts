import type { RelayPort, RelayRoute, RelaySpec } from "../compile/desired.js";

/**
 * netpol's PROXY-protocol relay as haproxy's configuration. Each published port is one `listen`
 * per family, bound to the uplink (`interface`) as the DNAT it replaces matched it, IPv6 with
 * `v6only` so the IPv4 listener of the same port is a socket of its own. The HTTP services
 * share one loopback frontend: Caddy sends them there, haproxy picks the target by host name
 * and takes the client's address from the `X-Forwarded-For` Caddy set (its last value: what
 * Caddy saw, whatever the client sent); one connection per request both ways (Caddy pools its
 * upstream connections), so each carries the header of its own client.
 */

const SEND = { v1: "send-proxy", v2: "send-proxy-v2" } as const;

const server = (target: string, version: RelayRoute["version"]) =>
  `    server target ${target} ${SEND[version]}`;

function listenPort(p: RelayPort, wan: string): string[] {
  const bind = p.family === 4 ? `0.0.0.0:${p.port}` : `[::]:${p.port} v6only`;
  return [
    `listen netpol-${p.service}-${p.family}`,
    "    mode tcp",
    `    bind ${bind} interface ${wan}`,
    server(p.target, p.version),
  ];
}

/** `-m str` for a host name, a one-label match for a wildcard (as Caddy's `*.example.org`). */
function hostMatch(hostname: string): string {
  if (!hostname.startsWith("*.")) return `-m str ${hostname}`;
  return `-m reg ^[^.]+${hostname.slice(1).replaceAll(".", "\\\\.")}$`;
}

function httpRelay(port: number, routes: readonly RelayRoute[]): string[] {
  return [
    "frontend netpol-http",
    "    mode http",
    `    bind 127.0.0.1:${port}`,
    "    option httpclose",
    "    http-request set-src hdr_ip(x-forwarded-for,-1)",
    ...routes.map(
      (r) =>
        `    use_backend netpol-${r.service} if { hdr(host),field(1,:),lower ${hostMatch(r.hostname)} }`,
    ),
    ...routes.flatMap((r) => [
      "",
      `backend netpol-${r.service}`,
      "    mode http",
      server(r.target, r.version),
    ]),
  ];
}

export function renderRelay(site: string, relay: RelaySpec): string {
  const wan = relay.wan ?? "";
  const sections = [
    [
      `# netpol's PROXY-protocol relay for site ${site}: written by netpol at each apply.`,
      "global",
      "    maxconn 4096",
      // An old relay finishing its connections after a reload is gone within this.
      "    hard-stop-after 30s",
      "",
      "defaults",
      "    timeout connect 5s",
      "    timeout client 1h",
      "    timeout server 1h",
    ],
    ...relay.ports.map((p) => listenPort(p, wan)),
    ...(relay.http ? [httpRelay(relay.http.port, relay.http.routes)] : []),
  ];
  return `${sections.map((s) => s.join("\n")).join("\n\n")}\n`;
}
