import type { SiteState } from "../compile/desired.js";
import { batchLine, routeArgs } from "../render/ip.js";

/**
 * A change computed ahead of the event it answers, ready to be written the moment the event
 * comes: `ip -batch` lines, each family's apart (IPv6 lines go to `ip -6`). Only routes and
 * rules, which carry netpol's protocol number: they are netpol's by that mark alone, so a
 * reaction needs no journal, and a reaction cut short by a kill leaves nothing a later apply
 * would not recognise as netpol's.
 */
export interface PreparedChange {
  /** What it answers, for the event: `device tun-hma up`. */
  readonly trigger: string;
  readonly ip4: readonly string[];
  readonly ip6: readonly string[];
}

/**
 * For each device netpol does not make (an OpenVPN tun, an external link), the routes the
 * policy sends through it: a route dies with its device, so when the device comes back they
 * are written again at once (`route replace`: whatever is there already, the same route).
 * The fail-closed routes, which need no device, hold the line meanwhile.
 */
export function deviceReturns(desired: SiteState): ReadonlyMap<string, PreparedChange> {
  const made = new Set(desired.links.map((l) => l.name));
  const byDevice = new Map<string, { ip4: string[]; ip6: string[] }>();
  for (const r of desired.routes) {
    // A chain's slot is its health monitor's to fill: a path coming up does not take it back.
    if (r.type !== "unicast" || made.has(r.device) || r.choices) continue;
    let lines = byDevice.get(r.device);
    if (!lines) {
      lines = { ip4: [], ip6: [] };
      byDevice.set(r.device, lines);
    }
    const line = batchLine(routeArgs("replace", r, desired.protocol));
    (r.dst.family === 4 ? lines.ip4 : lines.ip6).push(line);
  }
  return new Map(
    [...byDevice].map(([device, lines]) => [device, { trigger: `device ${device} up`, ...lines }]),
  );
}
