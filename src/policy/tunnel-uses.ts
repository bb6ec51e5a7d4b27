import type { EgressIntent, Intent, ServiceIntent, SiteIntent, TunnelIntent } from "./intent.js";

/** An egress path through a tunnel: the site whose egress it is, the egress, the exit. */
export interface TunnelEgress {
  readonly site: SiteIntent;
  readonly egress: EgressIntent;
  readonly exit: string;
}

/** What one tunnel carries beyond its members' addresses, looked up by site. */
interface Uses {
  /** Egress paths through the tunnel, by the site whose egress it is. */
  readonly from: ReadonlyMap<string, readonly TunnelEgress[]>;
  /** The same paths, by their exit site. */
  readonly to: ReadonlyMap<string, readonly TunnelEgress[]>;
  readonly services: readonly ServiceIntent[];
}

const NONE: readonly never[] = [];

function push<V>(map: Map<string, V[]>, key: string, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/**
 * By intent: a publish compiles each of 10,000 sites against one intent, and each looked
 * through every site's egress and every service (a scan per site, quadratic in all). An intent
 * is never changed once made: a changed policy is a new one.
 */
const made = new WeakMap<Intent, Map<string, Uses>>();

function usesOf(intent: Intent): Map<string, Uses> {
  let uses = made.get(intent);
  if (uses) return uses;
  const from = new Map<string, Map<string, TunnelEgress[]>>();
  const to = new Map<string, Map<string, TunnelEgress[]>>();
  const services = new Map<string, ServiceIntent[]>();
  const of = <V>(maps: Map<string, Map<string, V[]>>, tunnel: string) => {
    let m = maps.get(tunnel);
    if (!m) {
      m = new Map();
      maps.set(tunnel, m);
    }
    return m;
  };
  for (const site of intent.sites)
    for (const egress of site.egress)
      for (const via of egress.paths) {
        if (via.kind !== "tunnel") continue;
        const use = { site, egress, exit: via.exit };
        push(of(from, via.tunnel), site.name, use);
        push(of(to, via.tunnel), via.exit, use);
      }
  for (const s of intent.services) push(services, s.target.tunnel, s);
  uses = new Map();
  for (const name of new Set([...from.keys(), ...services.keys()]))
    uses.set(name, {
      from: from.get(name) ?? new Map(),
      to: to.get(name) ?? new Map(),
      services: services.get(name) ?? NONE,
    });
  made.set(intent, uses);
  return uses;
}

/** The egress paths through `tunnel` of `site`'s own egress. */
export function egressFrom(intent: Intent, tunnel: string, site: string): readonly TunnelEgress[] {
  return usesOf(intent).get(tunnel)?.from.get(site) ?? NONE;
}

/** The egress paths through `tunnel` that exit at `site`, whoever's egress they are. */
export function egressTo(intent: Intent, tunnel: string, site: string): readonly TunnelEgress[] {
  return usesOf(intent).get(tunnel)?.to.get(site) ?? NONE;
}

/** The tunnels some egress path exits through at `site`. */
export function tunnelsExitingAt(intent: Intent, site: string): string[] {
  return [...usesOf(intent)].flatMap(([tunnel, uses]) => (uses.to.has(site) ? [tunnel] : []));
}

/** The services whose target is reached through `tunnel`. */
export function servicesThrough(intent: Intent, tunnel: string): readonly ServiceIntent[] {
  return usesOf(intent).get(tunnel)?.services ?? NONE;
}

/** Members of `tunnel` that advertise networks, in member order (few, of thousands). */
const advertising = new WeakMap<TunnelIntent["members"], TunnelIntent["members"]>();

export function advertisers(tunnel: TunnelIntent): TunnelIntent["members"] {
  let list = advertising.get(tunnel.members);
  if (!list) {
    list = tunnel.members.filter((m) => m.advertise.length > 0);
    advertising.set(tunnel.members, list);
  }
  return list;
}
