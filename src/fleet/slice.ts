import { compileSite } from "../compile/compile.js";
import type { SiteState } from "../compile/desired.js";
import type { Intent } from "../policy/intent.js";
import { parsePolicy } from "../policy/load.js";

/**
 * One site's part of a fleet policy: the policy with only the sites, tunnel members and
 * services that site's state depends on. Each agent receives and records its part, not the
 * whole policy, so a publish to thousands of sites sends each about what it needs instead of
 * the whole fleet to everyone. A part is used only once compiling it gives exactly the state
 * the whole policy gives that site; otherwise the site gets the whole policy.
 */

// biome-ignore lint/suspicious/noExplicitAny: the policy as read, already validated by parsePolicy
type Raw = Record<string, any>;

/** Appends `value` to the list under `key`. */
function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** The items of `all` at `at`, in `all`'s order, each once. */
function pick<T>(all: readonly T[], at: Iterable<number>): T[] {
  return [...new Set(at)].sort((a, b) => a - b).map((i) => all[i] as T);
}

/**
 * Cuts the parts of `doc` (the policy as read): `slicer(doc, intent)(site)` is the part `site`
 * needs, as policy text (JSON). Who is where is looked up once for all sites, so each part
 * costs about its own size: looking through the whole policy for each site made a publish of
 * 10,000 sites quadratic (most of its 401 s, bench/fleet.ts).
 */
export function slicer(doc: Raw, intent: Intent): (site: string) => string {
  const siteEntries = Object.entries(doc.sites as Raw);
  const siteAt = new Map(siteEntries.map(([name], i) => [name, i]));
  const tunnels = (doc.tunnels ?? []) as Raw[];
  /** Per tunnel: where each site is among its members, and who every spoke keeps. */
  const cut = tunnels.map((t) => {
    const members = (t.members ?? []) as Raw[];
    const at = new Map<string, number[]>();
    // A spoke peers with its hub only; other spokes matter through the networks they advertise.
    const always: number[] = [];
    for (const [i, m] of members.entries()) {
      push(at, String(m.site), i);
      if (m.site === t.hub || (m.advertise ?? []).length > 0) always.push(i);
    }
    return { t, members, at, always };
  });
  const tunnelsOf = new Map<string, number[]>();
  for (const [ti, { at }] of cut.entries()) for (const site of at.keys()) push(tunnelsOf, site, ti);
  const servicesOf = new Map<string, Set<string>>();
  for (const s of intent.services)
    for (const site of [s.publishOn, s.target.site]) {
      const names = servicesOf.get(site) ?? new Set<string>();
      names.add(s.name);
      servicesOf.set(site, names);
    }
  const docServices = (doc.services ?? []) as Raw[];
  const docServiceAt = new Map<string, number[]>();
  for (const [i, s] of docServices.entries()) push(docServiceAt, String(s.name), i);
  const intentServices = new Map<string, (typeof intent.services)[number][]>();
  for (const s of intent.services) push(intentServices, s.name, s);

  return (site) => {
    const keep = new Set([site]);
    const kept = (tunnelsOf.get(site) ?? []).map((ti): Raw => {
      const { t, members, at, always } = cut[ti] as (typeof cut)[number];
      const spoke = t.hub !== undefined && t.hub !== site;
      const mine = spoke ? pick(members, [...always, ...(at.get(site) ?? [])]) : members;
      for (const m of mine) keep.add(String(m.site));
      return { ...t, members: mine };
    });
    const names = [...(servicesOf.get(site) ?? [])];
    const services = pick(
      docServices,
      names.flatMap((n) => docServiceAt.get(n) ?? []),
    );
    for (const s of names.flatMap((n) => intentServices.get(n) ?? [])) {
      keep.add(s.publishOn);
      keep.add(s.target.site);
    }
    const sites = Object.fromEntries(
      pick(
        siteEntries,
        [...keep].flatMap((name) => siteAt.get(name) ?? []),
      ),
    );
    const part: Raw = { version: doc.version, sites };
    if (doc.settings !== undefined) part.settings = doc.settings;
    if (kept.length > 0) part.tunnels = kept;
    if (services.length > 0) part.services = services;
    return JSON.stringify(part);
  };
}

/** A state in a form two states compare equal in exactly when they are the same. */
export function stateKey(state: SiteState): string {
  return JSON.stringify(state, (_key, value: unknown) =>
    typeof value === "bigint" ? `${value}n` : value,
  );
}

/** Whether `text` compiles, for `site`, to exactly `expected`. */
export function sameState(text: string, site: string, expected: string): boolean {
  try {
    // Cut from a policy publish read within its own bound (prepare.ts): a hub's part holds its
    // spokes, and may be past the bound of a site's own policy.
    const { intent } = parsePolicy(text, `policy for ${site}`, {
      maxBytes: Number.MAX_SAFE_INTEGER,
    });
    return stateKey(compileSite(intent, site)) === expected;
  } catch {
    return false;
  }
}
