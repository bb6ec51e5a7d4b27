import { type Cidr, contains, defaultRoute, type Family, networkOf } from "../net/cidr.js";
import {
  type EgressIntent,
  type Intent,
  keepsClientAddress,
  type ReplyPath,
  type SiteIntent,
} from "../policy/intent.js";
import {
  FAIL_CLOSED_METRIC,
  type RouteSpec,
  type RuleSpec,
  type WireguardSpec,
} from "./desired.js";

function familiesOf(cidrs: readonly { family: Family }[]): Family[] {
  return [...new Set(cidrs.map((c) => c.family))].sort();
}

/**
 * Source routing for one egress: `except` destinations are looked up in main first, then the
 * sources use the egress table. The table ends in an unreachable default with the highest
 * metric: while the device is gone its route is gone too, and lookups stop there instead of
 * falling through to main (and the ISP).
 *
 * The `except` lookup ignores main's default route (suppress_prefixlength 0): an `except`
 * address with no local route must not leave by the ISP either. Fail-closed egress tables
 * hold it as unreachable.
 */
export function compileEgress(e: EgressIntent): { rules: RuleSpec[]; routes: RouteSpec[] } {
  const rules: RuleSpec[] = [];
  for (const from of e.sources) {
    for (const to of e.except) {
      if (to.family === from.family)
        rules.push({
          family: from.family,
          priority: e.priority,
          from,
          to,
          table: "main",
          // Only fail-closed tables hold `except` as unreachable, where the lookup then ends.
          ...(e.failClosed && to.prefix > 0 ? { suppressPrefixLength: 0 } : {}),
        });
    }
    rules.push({ family: from.family, priority: e.priority + 1, from, table: e.table });
  }
  const routes: RouteSpec[] = familiesOf(e.sources).flatMap((family): RouteSpec[] => {
    const dst = defaultRoute(family);
    const gateway =
      e.via.kind === "device" && e.via.gateway?.family === family ? e.via.gateway : undefined;
    const up: RouteSpec = {
      type: "unicast",
      table: e.table,
      dst,
      device: e.via.device,
      ...(gateway ? { gateway } : {}),
    };
    const closed: RouteSpec = {
      type: "unreachable",
      table: e.table,
      dst,
      metric: FAIL_CLOSED_METRIC,
    };
    const local: RouteSpec[] = e.except
      .filter((x) => x.family === family && x.prefix > 0)
      .map((x) => ({ type: "unreachable", table: e.table, dst: x, metric: FAIL_CLOSED_METRIC }));
    return e.failClosed ? [up, closed, ...local] : [up];
  });
  return { rules, routes };
}

/** Marked replies (see nftables reply marks) go back into the tunnel they came from. */
export function compileReplyPath(
  intent: Intent,
  site: string,
  r: ReplyPath,
): { rules: RuleSpec[]; routes: RouteSpec[] } {
  const fams = familiesOf(
    intent.services
      .filter(
        (s) => keepsClientAddress(s) && s.target.site === site && s.target.tunnel === r.tunnel,
      )
      .map((s) => s.target.address),
  );
  return {
    rules: fams.map((family) => ({ family, priority: r.priority, fwmark: r.mark, table: r.table })),
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

export function compileRouting(intent: Intent, site: SiteIntent, wg: readonly WireguardSpec[]) {
  const parts = [
    ...site.egress.map(compileEgress),
    ...site.replyPaths.map((r) => compileReplyPath(intent, site.name, r)),
  ];
  return {
    rules: parts.flatMap((p) => p.rules),
    routes: [...parts.flatMap((p) => p.routes), ...compileTunnelRoutes(site, wg)],
  };
}
