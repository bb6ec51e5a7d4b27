import {
  type Cidr,
  contains,
  type Family,
  formatAddress,
  formatCidr,
  hostPrefix,
} from "../../../src/net/cidr.js";
import { findLink, hasCarrier } from "./links.js";
import {
  type FakeNexthop,
  type FakeRoute,
  type FakeRule,
  type KernelState,
  malformed,
  PROTO,
  Refused,
  type RouteType,
  RTN,
  SCOPE,
  TABLE,
} from "./state.js";
import {
  garbage,
  matches,
  next,
  protocolName,
  readAddress,
  readPrefix,
  readProtocol,
  readTable,
  readU32,
  tableName,
} from "./words.js";

/** Routes and rules: what `ip route` and `ip rule` add, delete and print. */

const ROUTE_TYPES: readonly RouteType[] = [
  "unicast",
  "unreachable",
  "blackhole",
  "prohibit",
  "throw",
];

interface RouteArgs {
  type?: RouteType;
  dst?: Cidr;
  table?: number;
  dev?: string;
  gateway?: bigint;
  metric?: number;
  protocol?: number;
  nexthops: FakeNexthop[];
}

function parseRouteArgs(args: readonly string[], family: Family | undefined): RouteArgs {
  const out: RouteArgs = { nexthops: [] };
  let fam = family;
  for (let i = 0; i < args.length; i++) {
    const w = args[i] as string;
    if (w === "table") out.table = readTable(next(args, i++));
    else if (w === "dev" || w === "oif") out.dev = next(args, i++);
    else if (w === "via") {
      const gw = next(args, i++);
      out.gateway = readAddress(gw, fam);
    } else if (w === "metric" || w === "priority" || w === "preference")
      out.metric = readU32(next(args, i++), "metric");
    else if (w === "proto" || w === "protocol") out.protocol = readProtocol(next(args, i++));
    else if (w === "scope" || w === "src") i++;
    else if (w === "onlink") continue;
    else if (w === "nexthop") {
      const hop: { gateway?: bigint; dev?: string; weight: number } = { weight: 1 };
      for (i++; i < args.length && args[i] !== "nexthop"; i++) {
        const h = args[i] as string;
        if (h === "via") hop.gateway = readAddress(next(args, i++), fam);
        else if (h === "dev") hop.dev = next(args, i++);
        else if (h === "weight") hop.weight = readU32(next(args, i++), "weight");
        else if (h !== "onlink") throw garbage(h);
      }
      i--;
      if (hop.gateway === undefined || hop.dev === undefined)
        throw malformed("Error: fake kernel: a nexthop needs via and dev.");
      out.nexthops.push({ gateway: hop.gateway, dev: hop.dev, weight: hop.weight });
    } else if (
      ROUTE_TYPES.includes(w as RouteType) &&
      out.type === undefined &&
      out.dst === undefined
    )
      out.type = w as RouteType;
    else if (out.dst === undefined) {
      out.dst = readPrefix(w === "to" ? next(args, i++) : w, fam);
      fam = out.dst.family;
    } else throw garbage(w);
  }
  return out;
}

const sameDst = (a: Cidr, b: Cidr) =>
  a.family === b.family && a.address === b.address && a.prefix === b.prefix;

/** The connected route through which a gateway is reached, as the kernel checks a nexthop. */
function resolveGateway(
  state: KernelState,
  family: Family,
  gateway: bigint,
  table: number,
  dev?: string,
): string {
  const target = hostPrefix({ family, address: gateway });
  const link = state.routes.find(
    (r) =>
      r.family === family &&
      (r.table === TABLE.main || r.table === table) &&
      r.type === "unicast" &&
      r.gateway === undefined &&
      r.dev !== undefined &&
      (dev === undefined || r.dev === dev) &&
      contains(r.dst, target),
  );
  if (link?.dev === undefined)
    throw family === 4
      ? new Refused("Error: Nexthop has invalid gateway.", 2)
      : new Refused("RTNETLINK answers: No route to host", 2);
  return link.dev;
}

function buildRoute(state: KernelState, family: Family, a: RouteArgs): FakeRoute {
  if (a.dst === undefined) throw malformed("Error: fake kernel: a route needs a destination.");
  const type = a.type ?? "unicast";
  const table = a.table ?? TABLE.main;
  const common = {
    family,
    table,
    type,
    dst: a.dst,
    metric: a.metric ?? (family === 6 ? 1024 : 0),
    protocol: a.protocol ?? PROTO.boot,
    scope: SCOPE.universe,
  };
  if (type !== "unicast") return { ...common, ...(family === 6 ? { dev: "lo" } : {}) };
  const downError =
    family === 4 ? "Error: Device for nexthop is not up." : "Error: Nexthop device is not up.";
  if (a.nexthops.length > 0) {
    for (const hop of a.nexthops) {
      if (!findLink(state, hop.dev).up) throw new Refused(downError, 2);
      resolveGateway(state, family, hop.gateway, table, hop.dev);
    }
    return { ...common, nexthops: a.nexthops };
  }
  if (a.dev !== undefined && !findLink(state, a.dev).up) throw new Refused(downError, 2);
  if (a.gateway === undefined && a.dev === undefined)
    throw new Refused("RTNETLINK answers: No such device", 2);
  const dev =
    a.gateway !== undefined ? resolveGateway(state, family, a.gateway, table, a.dev) : a.dev;
  return {
    ...common,
    dev,
    ...(a.gateway !== undefined ? { gateway: a.gateway } : {}),
    scope: a.gateway === undefined && family === 4 ? SCOPE.link : SCOPE.universe,
  };
}

/** The kernel's key of a route: one per table, destination and metric. */
const sameSlot = (a: FakeRoute, b: FakeRoute) =>
  a.family === b.family && a.table === b.table && sameDst(a.dst, b.dst) && a.metric === b.metric;

export function routeCommand(
  state: KernelState,
  family: Family | undefined,
  verb: string,
  args: readonly string[],
): void {
  const a = parseRouteArgs(args, family);
  const fam = family ?? a.dst?.family ?? 4;
  if (matches(verb, "add") || verb === "append") {
    const route = buildRoute(state, fam, a);
    if (state.routes.some((r) => sameSlot(r, route)))
      throw new Refused("RTNETLINK answers: File exists", 2);
    state.routes.push(route);
  } else if (matches(verb, "replace")) {
    const route = buildRoute(state, fam, a);
    const at = state.routes.findIndex((r) => sameSlot(r, route));
    if (at >= 0) state.routes[at] = route;
    else state.routes.push(route);
  } else if (matches(verb, "delete")) {
    if (a.dst === undefined) throw malformed("Error: fake kernel: a route needs a destination.");
    const dst = a.dst;
    const table = a.table ?? TABLE.main;
    const found = [...state.routes]
      .sort((x, y) => x.metric - y.metric)
      .find(
        (r) =>
          r.family === fam &&
          r.table === table &&
          sameDst(r.dst, dst) &&
          (a.type === undefined || r.type === a.type) &&
          (a.metric === undefined || r.metric === a.metric) &&
          (a.dev === undefined || r.dev === a.dev || r.nexthops?.some((n) => n.dev === a.dev)) &&
          (a.gateway === undefined || r.gateway === a.gateway) &&
          (a.protocol === undefined || r.protocol === a.protocol),
      );
    if (!found) throw new Refused("RTNETLINK answers: No such process", 2);
    state.routes = state.routes.filter((r) => r !== found);
  } else throw malformed(`Command "${verb}" is unknown, try "ip route help".`);
}

const prefixText = (c: Cidr) =>
  c.prefix === 0
    ? "default"
    : c.prefix === (c.family === 4 ? 32 : 128)
      ? formatAddress(c)
      : formatCidr(c);

const SCOPE_NAMES: Record<number, string> = { 0: "global", 253: "link", 254: "host" };

/** One route as `ip -json` prints it; -d adds what it otherwise leaves out as the default. */
export function routeJson(state: KernelState, r: FakeRoute, numeric: boolean, details: boolean) {
  const linkdown = (dev: string | undefined) => {
    const link = state.links.find((l) => l.name === dev);
    return link !== undefined && dev !== "lo" && !hasCarrier(state, link) ? ["linkdown"] : [];
  };
  const gw = (g: bigint) => formatAddress({ family: r.family, address: g });
  return {
    ...(r.type !== "unicast" || details ? { type: numeric ? String(RTN[r.type]) : r.type } : {}),
    dst: prefixText(r.dst),
    ...(r.gateway !== undefined ? { gateway: gw(r.gateway) } : {}),
    ...(r.dev !== undefined ? { dev: r.dev } : {}),
    ...(r.table !== TABLE.main || details ? { table: tableName(r.table, numeric) } : {}),
    ...(r.protocol !== PROTO.boot || details
      ? { protocol: protocolName(r.protocol, numeric) }
      : {}),
    ...((r.family === 4 && r.scope !== SCOPE.universe) || details
      ? { scope: numeric ? String(r.scope) : SCOPE_NAMES[r.scope] }
      : {}),
    ...(r.prefsrc !== undefined ? { prefsrc: gw(r.prefsrc) } : {}),
    ...(r.family === 6 || r.metric !== 0 ? { metric: r.metric } : {}),
    flags: r.nexthops ? [] : linkdown(r.dev),
    ...(r.nexthops
      ? {
          nexthops: r.nexthops.map((n) => ({
            gateway: gw(n.gateway),
            dev: n.dev,
            weight: n.weight,
            flags: linkdown(n.dev),
          })),
        }
      : {}),
    ...(r.family === 6 ? { pref: "medium" } : {}),
  };
}

const byRouteOrder = (a: FakeRoute, b: FakeRoute) =>
  a.family - b.family ||
  a.table - b.table ||
  (a.dst.address < b.dst.address ? -1 : a.dst.address > b.dst.address ? 1 : 0) ||
  a.dst.prefix - b.dst.prefix ||
  a.metric - b.metric;

/** `ip route show [table T|all]`; the fake keeps no local table (netpol never reads it). */
export function showRoutes(
  state: KernelState,
  family: Family | undefined,
  args: readonly string[],
  numeric: boolean,
  details: boolean,
) {
  let table: number | "all" = TABLE.main;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "table") {
      const t = next(args, i++);
      table = t === "all" ? "all" : readTable(t);
    } else throw malformed(`Error: fake kernel: \`route show ${args[i]}\` is not emulated.`);
  }
  // With no family given, a dump of every table lists both; of one table, IPv4 only.
  const families = family !== undefined ? [family] : table === "all" ? [4, 6] : [4];
  return state.routes
    .filter((r) => families.includes(r.family) && (table === "all" || r.table === table))
    .sort(byRouteOrder)
    .map((r) => routeJson(state, r, numeric, details));
}

interface RuleArgs {
  priority?: number;
  src?: Cidr;
  dst?: Cidr;
  fwmark?: number;
  fwmask?: number;
  table?: number;
  suppressPrefixLength?: number;
  protocol?: number;
}

function parseRuleArgs(args: readonly string[], family: Family | undefined): RuleArgs {
  const out: RuleArgs = {};
  for (let i = 0; i < args.length; i++) {
    const w = args[i] as string;
    const prefix = () => {
      const p = readPrefix(next(args, i++), family);
      return p.prefix > 0 ? p : undefined;
    };
    if (w === "priority" || w === "pref" || w === "preference" || w === "order")
      out.priority = readU32(next(args, i++), "preference");
    else if (w === "from") {
      const p = prefix();
      if (p) out.src = p;
    } else if (w === "to") {
      const p = prefix();
      if (p) out.dst = p;
    } else if (w === "fwmark") {
      const [mark = "", mask] = next(args, i++).split("/");
      out.fwmark = readU32(mark, "fwmark");
      out.fwmask = mask === undefined ? 0xffffffff : readU32(mask, "fwmask");
    } else if (w === "lookup" || w === "table") out.table = readTable(next(args, i++));
    else if (w === "suppress_prefixlength")
      out.suppressPrefixLength = readU32(next(args, i++), "suppress_prefixlength");
    else if (w === "protocol" || w === "proto") out.protocol = readProtocol(next(args, i++));
    else throw malformed(`Error: fake kernel: rule word "${w}" is not emulated.`);
  }
  return out;
}

const sameCidr = (a: Cidr | undefined, b: Cidr | undefined) =>
  a === undefined || b === undefined ? a === b : sameDst(a, b);

export function ruleCommand(
  state: KernelState,
  family: Family | undefined,
  verb: string,
  args: readonly string[],
): void {
  const a = parseRuleArgs(args, family);
  const fam = family ?? a.src?.family ?? a.dst?.family ?? 4;
  if (matches(verb, "add")) {
    const mine = state.rules.filter((r) => r.family === fam);
    const priority =
      a.priority ?? Math.max(0, (mine.find((r) => r.priority > 0)?.priority ?? 32766) - 1);
    const rule: FakeRule = {
      family: fam,
      priority,
      ...(a.src ? { src: a.src } : {}),
      ...(a.dst ? { dst: a.dst } : {}),
      ...(a.fwmark !== undefined ? { fwmark: a.fwmark, fwmask: a.fwmask ?? 0xffffffff } : {}),
      table: a.table ?? TABLE.main,
      ...(a.suppressPrefixLength !== undefined
        ? { suppressPrefixLength: a.suppressPrefixLength }
        : {}),
      protocol: a.protocol ?? PROTO.unspec,
    };
    const exists = mine.some(
      (r) =>
        r.priority === rule.priority &&
        r.table === rule.table &&
        sameCidr(r.src, rule.src) &&
        sameCidr(r.dst, rule.dst) &&
        r.fwmark === rule.fwmark &&
        r.fwmask === rule.fwmask &&
        r.suppressPrefixLength === rule.suppressPrefixLength &&
        r.protocol === rule.protocol,
    );
    if (exists) throw new Refused("RTNETLINK answers: File exists", 2);
    // After every rule of the same or a lower priority, as the kernel inserts.
    const at = state.rules.findIndex((r) => r.family === fam && r.priority > priority);
    if (at < 0) state.rules.push(rule);
    else state.rules.splice(at, 0, rule);
  } else if (matches(verb, "delete")) {
    const found = state.rules.find(
      (r) =>
        r.family === fam &&
        (a.priority === undefined || r.priority === a.priority) &&
        (a.table === undefined || r.table === a.table) &&
        (a.src === undefined || sameCidr(r.src, a.src)) &&
        (a.dst === undefined || sameCidr(r.dst, a.dst)) &&
        (a.fwmark === undefined || (r.fwmark === a.fwmark && r.fwmask === a.fwmask)) &&
        (a.suppressPrefixLength === undefined ||
          r.suppressPrefixLength === a.suppressPrefixLength) &&
        (a.protocol === undefined || r.protocol === a.protocol),
    );
    if (!found) throw new Refused("RTNETLINK answers: No such file or directory", 2);
    state.rules = state.rules.filter((r) => r !== found);
  } else throw malformed(`Command "${verb}" is unknown, try "ip rule help".`);
}

const hex = (n: number) => `0x${n.toString(16)}`;

export function ruleJson(r: FakeRule, numeric: boolean, details: boolean) {
  return {
    priority: r.priority,
    src: r.src ? formatAddress(r.src) : "all",
    ...(r.src ? { srclen: r.src.prefix } : {}),
    ...(r.dst ? { dst: formatAddress(r.dst), dstlen: r.dst.prefix } : {}),
    ...(r.fwmark !== undefined ? { fwmark: hex(r.fwmark) } : {}),
    ...(r.fwmask !== undefined && r.fwmask !== 0xffffffff ? { fwmask: hex(r.fwmask) } : {}),
    table: tableName(r.table, numeric),
    ...(r.suppressPrefixLength !== undefined ? { suppress_prefixlen: r.suppressPrefixLength } : {}),
    ...((r.protocol !== PROTO.unspec && r.protocol !== PROTO.kernel) || details
      ? { protocol: protocolName(r.protocol, numeric) }
      : {}),
  };
}

export function showRules(state: KernelState, family: Family, numeric: boolean, details: boolean) {
  return state.rules.filter((r) => r.family === family).map((r) => ruleJson(r, numeric, details));
}
