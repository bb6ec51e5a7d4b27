import type { ProxySpec } from "../compile/desired.js";
import {
  caddyRoute,
  httpPorts,
  OWN_SERVER,
  ownServer,
  proxyPort,
  ROUTE_ID_PREFIX,
} from "../render/caddy.js";
import { canonical, child, dropEmpty, isObj, type Obj } from "./caddy-json.js";
import type { CaddyLive } from "./live.js";
import { mergeTls } from "./proxy-tls.js";
import type { Change, ProxyWrite } from "./types.js";

const routeId = (route: unknown) =>
  isObj(route) && typeof route["@id"] === "string" ? route["@id"] : undefined;
const isOurs = (route: unknown) => routeId(route)?.startsWith(ROUTE_ID_PREFIX) ?? false;

/** The ports a Caddy listen address covers: ":80", "0.0.0.0:80", "tcp/[::]:80", ":8000-8010". */
function listensOn(address: unknown, port: number): boolean {
  if (typeof address !== "string") return false;
  const m = /:(\d+)(?:-(\d+))?$/.exec(address);
  if (!m) return false;
  const from = Number(m[1]);
  return port >= from && port <= Number(m[2] ?? from);
}

function hostsOf(route: unknown): string[] {
  if (!isObj(route) || !Array.isArray(route.match)) return [];
  return route.match.flatMap((m) =>
    isObj(m) && Array.isArray(m.host) ? m.host.map((h) => String(h).toLowerCase()) : [],
  );
}

export interface ProxyPlan {
  readonly changes: Change[];
  readonly waiting: string[];
  readonly conflicts: string[];
  readonly write?: ProxyWrite;
}

const describe = (route: Obj) => {
  const handle = Array.isArray(route.handle) && isObj(route.handle[0]) ? route.handle[0] : {};
  const upstream =
    Array.isArray(handle.upstreams) && isObj(handle.upstreams[0]) ? handle.upstreams[0].dial : "";
  return `${hostsOf(route).join(",")} → ${String(upstream)}`;
};

/**
 * netpol's routes merged into the running Caddy config. Pure. Only routes tagged
 * `@id: netpol-…` are netpol's; they go into whichever server already listens on the port (two
 * servers cannot share one), or into a server of netpol's own when none does. Everything else
 * in the config is carried over as it was, and the result is written whole, in one request.
 */
export function proxyPlan(desired: ProxySpec | undefined, live: CaddyLive | undefined): ProxyPlan {
  const none: ProxyPlan = { changes: [], waiting: [], conflicts: [] };
  if (!desired || !live) return none;
  const admin = desired.settings.adminListen;
  if (!live.reachable) {
    return {
      ...none,
      waiting: desired.routes.map(
        (r) =>
          `proxy route ${r.hostname} (Caddy's admin API at ${admin} does not answer: ${live.error})`,
      ),
    };
  }
  const config: Obj = isObj(live.config) ? structuredClone(live.config) : {};
  const apps = child(config, "apps");
  const fresh = !isObj(apps.http);
  const http = child(apps, "http");
  const servers = child(http, "servers");

  // Take netpol's routes out of every server, remembering what and where they were.
  const before = new Map<string, { server: string; route: Obj }>();
  for (const [name, server] of Object.entries(servers)) {
    if (!isObj(server) || !Array.isArray(server.routes)) continue;
    const theirs = server.routes.filter((route) => !isOurs(route));
    if (theirs.length === server.routes.length) continue;
    for (const route of server.routes.filter(isOurs) as Obj[])
      before.set(routeId(route) ?? "", { server: name, route });
    if (theirs.length > 0) server.routes = theirs;
    else if (name === OWN_SERVER) delete servers[name];
    else delete server.routes;
  }

  const port = proxyPort(desired);
  const host =
    Object.entries(servers).find(
      ([name, s]) =>
        name !== OWN_SERVER &&
        isObj(s) &&
        Array.isArray(s.listen) &&
        s.listen.some((a) => listensOn(a, port)),
    )?.[0] ?? OWN_SERVER;
  const wanted = desired.routes.map(caddyRoute);
  const conflicts: string[] = [];
  const changes: Change[] = [];
  const server = servers[host];
  for (const [i, route] of wanted.entries()) {
    const spec = desired.routes[i];
    if (!spec) continue;
    const taken =
      isObj(server) &&
      Array.isArray(server.routes) &&
      server.routes.some((r) => hostsOf(r).includes(spec.hostname.toLowerCase()));
    if (taken)
      conflicts.push(
        `Caddy server ${host} already routes ${spec.hostname} with a route netpol did not make; remove it there or publish another hostname`,
      );
    const had = before.get(`${ROUTE_ID_PREFIX}${spec.service}`);
    const detail = `${describe(route)} in server ${host}`;
    if (!had) changes.push({ kind: "proxy", op: "add", service: spec.service, detail });
    else if (had.server !== host || canonical(had.route) !== canonical(route))
      changes.push({ kind: "proxy", op: "set", service: spec.service, detail });
  }
  const ids = new Set(wanted.map(routeId));
  for (const [id, had] of before) {
    if (!ids.has(id))
      changes.push({
        kind: "proxy",
        op: "remove",
        service: id.slice(ROUTE_ID_PREFIX.length),
        detail: `${describe(had.route)} in server ${had.server}`,
      });
  }
  const tls = mergeTls(config, desired);
  changes.push(...tls.changes);
  conflicts.push(...tls.conflicts);
  if (changes.length === 0) return { ...none, conflicts };

  if (wanted.length > 0) {
    if (isObj(server))
      server.routes = [...wanted, ...(Array.isArray(server.routes) ? server.routes : [])];
    else servers[host] = ownServer(desired, wanted);
  }
  // Leave out only what is empty because netpol's part left it.
  if (fresh) Object.assign(http, httpPorts(desired));
  dropEmpty(http, "servers");
  dropEmpty(apps, "http");
  dropEmpty(config, "apps");
  if (!isObj(live.config)) config.admin = { listen: admin };
  return {
    changes,
    waiting: [],
    conflicts,
    write: { admin, etag: live.etag, config, previous: live.config },
  };
}
