import { type Cidr, contains, defaultRoute, type Family, networkOf } from "../net/cidr.js";
import {
  type Intent,
  keepsClientAddress,
  type ReplyPath,
  type SiteIntent,
  type Via,
} from "../policy/intent.js";
import {
  FAIL_CLOSED_METRIC,
  type NextHop,
  type RouteSpec,
  type RuleSpec,
  type WireguardSpec,
} from "./desired.js";
import { type EgressGroup, ofFamily, type SiteMarks } from "./egress-groups.js";
import type { MarkLayout } from "./marks.js";

function familiesOf(cidrs: readonly { family: Family }[]): Family[] {
  return [...new Set(cidrs.map((c) => c.family))].sort();
}

/**
 * Routing for one group of egresses (see egress-groups): nft marks the group's sources, with
 * a flag for `except` destinations. Flagged packets look in main first, then every marked
 * packet uses the group's table. The table ends in an unreachable default with the highest
 * metric: while the device is gone its route is gone too, and lookups stop there instead of
 * falling through to main (and the ISP).
 *
 * The `except` lookup ignores main's default route (suppress_prefixlength 0): an `except`
 * address with no local route must not leave by the ISP either. Fail-closed egress tables
 * hold it as unreachable. Two rules per table, however many sources and `except` prefixes.
 */
export function compileEgressGroup(
  g: EgressGroup,
  layout: MarkLayout,
): { rules: RuleSpec[]; routes: RouteSpec[] } {
  const rules = familiesOf(g.sources).flatMap((family): RuleSpec[] => {
    const except = ofFamily(g.except, family);
    // Only fail-closed tables hold `except` as unreachable, where the lookup then ends; an
    // `except` of everything keeps main's default.
    const suppress = g.failClosed && except.every((x) => x.prefix > 0);
    const local: RuleSpec = {
      family,
      priority: g.priority,
      fwmark: (g.mark | layout.flag) >>> 0,
      fwmask: layout.mask,
      table: "main",
      ...(suppress ? { suppressPrefixLength: 0 } : {}),
    };
    const egress: RuleSpec = {
      family,
      priority: g.priority + 1,
      // Either way of the flag: the table holds the `except` prefixes as unreachable.
      fwmark: g.mark,
      fwmask: (layout.mask & ~layout.flag) >>> 0,
      table: g.table,
    };
    return except.length > 0 ? [local, egress] : [egress];
  });
  const routes: RouteSpec[] = familiesOf(g.sources).flatMap((family): RouteSpec[] => {
    const dst = defaultRoute(family);
    const [preferred, ...others] = g.paths.map((via) => nextHop(via, family));
    const up: RouteSpec = {
      type: "unicast",
      table: g.table,
      dst,
      ...(preferred as NextHop),
      ...(others.length > 0 ? { choices: [preferred as NextHop, ...others] } : {}),
    };
    const closed: RouteSpec = {
      type: "unreachable",
      table: g.table,
      dst,
      metric: FAIL_CLOSED_METRIC,
    };
    const local: RouteSpec[] = ofFamily(g.except, family)
      .filter((x) => x.prefix > 0)
      .map((x) => ({ type: "unreachable", table: g.table, dst: x, metric: FAIL_CLOSED_METRIC }));
    return g.failClosed ? [up, closed, ...local] : [up];
  });
  return { rules, routes };
}

/** A path's device, with its gateway where it has one of this family. */
function nextHop(via: Via, family: Family): NextHop {
  const gateway = via.kind === "device" && via.gateway?.family === family ? via.gateway : undefined;
  return { device: via.device, ...(gateway ? { gateway } : {}) };
}

/**
 * Each path of a chain has a table of its own, which packets carrying the path's mark look up
 * (the health probes): they take that path whichever one the egress uses, and never the uplink.
 * The rule sits beside the first chain's egress rule; it matches nothing else.
 */
export function compilePathTables(marks: SiteMarks): { rules: RuleSpec[]; routes: RouteSpec[] } {
  const parts = marks.paths.flatMap((p) => {
    const chains = marks.groups.filter((g) => g.paths.some((via) => via.device === p.device));
    const first = chains[0];
    const via = first?.paths.find((v) => v.device === p.device);
    if (!first || !via) return [];
    return familiesOf(chains.flatMap((g) => g.sources)).map((family) => {
      const dst = defaultRoute(family);
      const rule: RuleSpec = {
        family,
        priority: first.priority + 1,
        fwmark: p.mark,
        fwmask: marks.layout.mask,
        table: p.table,
      };
      const routes: RouteSpec[] = [
        { type: "unicast", table: p.table, dst, ...nextHop(via, family) },
        { type: "unreachable", table: p.table, dst, metric: FAIL_CLOSED_METRIC },
      ];
      return { rule, routes };
    });
  });
  return { rules: parts.map((p) => p.rule), routes: parts.flatMap((p) => p.routes) };
}

/** Marked replies (see nftables reply marks) go back into the tunnel they came from. */
export function compileReplyPath(
  intent: Intent,
  site: string,
  r: ReplyPath & { readonly mark: number },
  layout: MarkLayout,
): { rules: RuleSpec[]; routes: RouteSpec[] } {
  const fams = familiesOf(
    intent.services
      .filter(
        (s) => keepsClientAddress(s) && s.target.site === site && s.target.tunnel === r.tunnel,
      )
      .map((s) => s.target.address),
  );
  return {
    rules: fams.map((family) => ({
      family,
      priority: r.priority,
      fwmark: r.mark,
      fwmask: layout.mask,
      table: r.table,
    })),
    // While the tunnel is gone, replies stop here rather than leave by the WAN.
    routes: fams.flatMap((family): RouteSpec[] => [
      { type: "unicast", table: r.table, dst: defaultRoute(family), device: r.device },
      {
        type: "unreachable",
        table: r.table,
        dst: defaultRoute(family),
        metric: FAIL_CLOSED_METRIC,
      },
    ]),
  };
}

/** Routes in main for what each peer carries, apart from defaults and the tunnel's own subnet. */
export function compileTunnelRoutes(site: SiteIntent, wg: readonly WireguardSpec[]): RouteSpec[] {
  return wg.flatMap((spec) => {
    const local = site.tunnels.find((t) => t.local.device === spec.name)?.local;
    const own: Cidr | undefined = local ? networkOf(local.address) : undefined;
    return spec.peers.flatMap((peer) =>
      peer.allowedIps
        .filter((dst) => dst.prefix > 0 && !(own && contains(own, dst)))
        .map((dst): RouteSpec => ({ type: "unicast", table: "main", dst, device: spec.name })),
    );
  });
}

export function compileRouting(
  intent: Intent,
  site: SiteIntent,
  marks: SiteMarks,
  wg: readonly WireguardSpec[],
) {
  const parts = [
    ...marks.groups.map((g) => compileEgressGroup(g, marks.layout)),
    ...marks.replies.map((r) => compileReplyPath(intent, site.name, r, marks.layout)),
    compilePathTables(marks),
  ];
  return {
    rules: parts.flatMap((p) => p.rules),
    routes: [...parts.flatMap((p) => p.routes), ...compileTunnelRoutes(site, wg)],
  };
}
