import type { NextHop, NftSet, RouteSpec, SiteState } from "../compile/desired.js";
import { type Family, formatAddress, formatCidr } from "../net/cidr.js";
import type { LiveState } from "./types.js";

/**
 * The active path of a chain lives in one route, its egress table's default (a "slot"): the
 * health monitor replaces it in place, by another path or by an unreachable route while no
 * path is healthy. A plan takes whatever the slot holds of those as in force, so an apply or a
 * `watch` round never undoes a switch. An empty slot (the device of its route went away) gets
 * the first path whose device is up: the preferred one when it is there.
 */

/** The metric the kernel gives a route added without one: the slot's, in either family. */
export const slotMetric = (family: Family): number => (family === 6 ? 1024 : 0);

const hopKey = (h: NextHop) =>
  `${h.device} ${h.gateway !== undefined ? formatAddress(h.gateway) : ""}`;

const placeKey = (table: RouteSpec["table"], dst: RouteSpec["dst"]) =>
  `${table} ${formatCidr(dst)}`;

/** What a slot holds now: a path of the chain, none healthy (unreachable), or nothing it knows. */
export type SlotOccupant =
  | { readonly kind: "path"; readonly hop: NextHop }
  | { readonly kind: "none" };

export function slotOccupant(
  slot: Extract<RouteSpec, { type: "unicast" }>,
  live: readonly RouteSpec[],
): SlotOccupant | undefined {
  const choices = new Set((slot.choices ?? []).map(hopKey));
  const place = placeKey(slot.table, slot.dst);
  for (const r of live) {
    if (placeKey(r.table, r.dst) !== place) continue;
    if (r.type === "unicast" && r.metric === undefined && choices.has(hopKey(r)))
      return {
        kind: "path",
        hop: { device: r.device, ...(r.gateway ? { gateway: r.gateway } : {}) },
      };
    if (r.type === "unreachable" && r.metric === slotMetric(r.dst.family)) return { kind: "none" };
  }
  return undefined;
}

/** The desired state with each slot as the live kernel holds it, or filled as an apply would. */
export function settleSlots(desired: SiteState, live: LiveState): SiteState {
  if (!desired.routes.some((r) => r.type === "unicast" && r.choices)) return desired;
  const up = new Set(live.links.filter((l) => l.up).map((l) => l.name));
  /** What each slot, by table, settled to: a path's device, or null (none). */
  const settled = new Map<RouteSpec["table"], string | null>();
  const routes = desired.routes.map((r): RouteSpec => {
    if (r.type !== "unicast" || !r.choices) return r;
    const held = slotOccupant(r, live.routes.owned);
    if (held?.kind === "none") {
      if (!settled.has(r.table)) settled.set(r.table, null);
      return { type: "unreachable", table: r.table, dst: r.dst, metric: slotMetric(r.dst.family) };
    }
    const hop = held?.hop ?? r.choices.find((c) => up.has(c.device)) ?? r;
    if (!settled.has(r.table)) settled.set(r.table, hop.device);
    const { gateway: _, ...bare } = r;
    return { ...bare, device: hop.device, ...(hop.gateway ? { gateway: hop.gateway } : {}) };
  });
  // A map that follows a slot (a chain's DNS) holds the element of the path the slot holds.
  const nftSets = desired.nftSets.map((s): NftSet => {
    const held = s.follows ? settled.get(s.follows.table) : undefined;
    if (!s.follows || held === undefined) return s;
    const element =
      held === null ? s.follows.none : s.follows.paths.find((p) => p.device === held)?.element;
    return element ? { ...s, elements: [element] } : s;
  });
  return { ...desired, routes, nftSets };
}
