import type { AddressSpec, RouteSpec, RuleSpec, TableRef } from "../../compile/desired.js";
import { type Cidr, defaultRoute, type Family, parseAddress, parseCidr } from "../../net/cidr.js";
import type { CatchAllRoute, LiveLink, Owned } from "../../plan/live.js";

/** Readers for `ip -N -json` output. They keep only what netpol models and ignore the rest. */

interface JsonRoute {
  type?: string;
  dst: string;
  dev?: string;
  gateway?: string;
  table?: string;
  protocol?: string;
  metric?: number;
  /** Router preference: the kernel reports it for every IPv6 route and never for IPv4. */
  pref?: string;
}

interface JsonRule {
  priority: number;
  src?: string;
  srclen?: number;
  dst?: string;
  dstlen?: number;
  fwmark?: string;
  fwmask?: string;
  table?: string;
  suppress_prefixlen?: number;
  protocol?: string;
}

/** `ip -batch -json` prints one JSON array per command, each on its own line. */
export function splitBatchJson(stdout: string): unknown[][] {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("["))
    .map((line) => JSON.parse(line) as unknown[]);
}

function tableOf(text: string | undefined): TableRef {
  return text === undefined || text === "254" || text === "main" ? "main" : Number(text);
}

function prefixOf(text: string, len: number | undefined, family: Family): Cidr | undefined {
  if (text === "default" || text === "all") return defaultRoute(family);
  const parsed = len === undefined ? parseCidr(text) : parseCidr(`${text}/${len}`);
  return parsed.ok ? parsed.value : undefined;
}

// With -N, ip prints route types as numbers too (rtnetlink.h: RTN_UNICAST = 1,
// RTN_UNREACHABLE = 7); unicast only shows with -d.
const RTN_UNICAST = "1";
const RTN_UNREACHABLE = "7";

// The kernel gives IPv6 routes metric 1024 when none is asked for; netpol asks for none.
const IMPLICIT_V6_METRIC = 1024;

export function parseRoutes(json: unknown[], family: Family, protocol: number): Owned<RouteSpec> {
  const owned: RouteSpec[] = [];
  const foreign = new Set<number>();
  for (const r of json as JsonRoute[]) {
    // readIp asks each family on its own (-4, -6), but a dump without a family lists both,
    // and "default" says neither: a route of the other family is never read as this one's.
    const routeFamily = r.pref !== undefined || r.dst.includes(":") ? 6 : 4;
    if (routeFamily !== family) continue;
    const table = tableOf(r.table);
    if (String(r.protocol) !== String(protocol)) {
      if (typeof table === "number") foreign.add(table);
      continue;
    }
    const dst = prefixOf(r.dst, undefined, family);
    if (!dst) continue;
    if (r.type === "unreachable" || r.type === RTN_UNREACHABLE) {
      owned.push({ type: "unreachable", table, dst, metric: r.metric ?? 0 });
    } else if (
      (r.type === undefined || r.type === "unicast" || r.type === RTN_UNICAST) &&
      r.dev !== undefined
    ) {
      const gw = r.gateway ? parseAddress(r.gateway) : undefined;
      const metric =
        r.metric !== undefined && !(family === 6 && r.metric === IMPLICIT_V6_METRIC)
          ? r.metric
          : undefined;
      owned.push({
        type: "unicast",
        table,
        dst,
        device: r.dev,
        ...(gw?.ok ? { gateway: gw.value } : {}),
        ...(metric !== undefined ? { metric } : {}),
      });
    }
  }
  return { owned, foreign: [...foreign].sort((a, b) => a - b) };
}

/**
 * Routes of other programs in main that catch all traffic by a device: a default route or one
 * of the /1 halves that OpenVPN's `redirect-gateway def1` pushes (they outrank the default).
 */
export function parseCatchAll(json: unknown[], family: Family, protocol: number): CatchAllRoute[] {
  return (json as JsonRoute[]).flatMap((r): CatchAllRoute[] => {
    const routeFamily = r.pref !== undefined || r.dst.includes(":") ? 6 : 4;
    if (routeFamily !== family || tableOf(r.table) !== "main" || r.dev === undefined) return [];
    if (String(r.protocol) === String(protocol)) return [];
    const dst = prefixOf(r.dst, undefined, family);
    if (
      !dst ||
      dst.prefix > 1 ||
      (r.type !== undefined && r.type !== "unicast" && r.type !== RTN_UNICAST)
    )
      return [];
    return [
      { dst: r.dst === "default" ? (family === 4 ? "0.0.0.0/0" : "::/0") : r.dst, device: r.dev },
    ];
  });
}

export function parseRules(json: unknown[], family: Family, protocol: number): Owned<RuleSpec> {
  const owned: RuleSpec[] = [];
  const foreign: number[] = [];
  for (const r of json as JsonRule[]) {
    if (String(r.protocol) !== String(protocol)) {
      foreign.push(r.priority);
      continue;
    }
    const from =
      r.src !== undefined && r.src !== "all" ? prefixOf(r.src, r.srclen, family) : undefined;
    const to =
      r.dst !== undefined && r.dst !== "all" ? prefixOf(r.dst, r.dstlen, family) : undefined;
    owned.push({
      family,
      priority: r.priority,
      ...(from && from.prefix > 0 ? { from } : {}),
      ...(to ? { to } : {}),
      ...(r.fwmark !== undefined ? { fwmark: Number(r.fwmark) } : {}),
      ...(r.fwmask !== undefined ? { fwmask: Number(r.fwmask) } : {}),
      table: tableOf(r.table),
      ...(r.suppress_prefixlen !== undefined ? { suppressPrefixLength: r.suppress_prefixlen } : {}),
    });
  }
  return { owned, foreign };
}

interface JsonLink {
  ifindex: number;
  ifname: string;
  /** The parent (a VLAN's) or peer (a veth's) device, when it is in the same namespace. */
  link?: string;
  ifalias?: string;
  master?: string;
  flags?: string[];
  mtu: number;
  linkinfo?: { info_kind?: string; info_data?: { id?: number } };
  addr_info?: { family: string; local: string; prefixlen: number; scope: string }[];
}

export function parseLinks(json: unknown[]): LiveLink[] {
  return (json as JsonLink[]).map((l) => {
    const kind = l.linkinfo?.info_kind;
    const vlanId = l.linkinfo?.info_data?.id;
    return {
      name: l.ifname,
      ifindex: l.ifindex,
      alias: l.ifalias,
      kind,
      master: l.master,
      up: l.flags?.includes("UP") ?? false,
      mtu: l.mtu,
      ...(kind === "vlan" && l.link !== undefined && vlanId !== undefined
        ? { vlan: { parent: l.link, id: vlanId } }
        : {}),
    };
  });
}

/** Global-scope addresses; link-local ones are the kernel's. */
export function parseAddresses(json: unknown[]): AddressSpec[] {
  return (json as JsonLink[]).flatMap((l) =>
    (l.addr_info ?? []).flatMap((a): AddressSpec[] => {
      if (a.scope !== "global" && a.scope !== "0") return [];
      const parsed = parseCidr(`${a.local}/${a.prefixlen}`);
      return parsed.ok ? [{ device: l.ifname, cidr: parsed.value }] : [];
    }),
  );
}
