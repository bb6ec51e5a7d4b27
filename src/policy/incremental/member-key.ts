import type { Intent, MemberIntent, SiteIntent, SiteTunnel, TunnelIntent } from "../intent.js";
import type { PolicyDocument } from "../schema.js";
import type { Region } from "./region.js";

/** One member's key (or key file) changed alone (withMemberKey). */
export interface KeyChange {
  readonly tunnel: TunnelIntent;
  readonly before: MemberIntent;
  readonly after: MemberIntent;
}

/**
 * Fields of a tunnel member that resolving only copies into its MemberIntent, and checks
 * nowhere but for a public key used twice: a change of them alone changes that one member,
 * found by the member's place (resolve keeps the order of tunnels and members).
 */
const COPIED = new Set(["publicKey", "privateKeyFile"]);

/**
 * Where an intent made here came from: an intent whose sites are made (`base`), and the
 * members and tunnels changed since, each by the base's own object. Its sites are made from
 * these only when something reads them (compiling a site, the property test): a hub's key
 * change otherwise copies every site of the tunnel (each holds the tunnel) for nobody.
 */
interface Swapped {
  readonly base: Intent;
  readonly members: ReadonlyMap<MemberIntent, MemberIntent>;
  readonly tunnels: ReadonlyMap<TunnelIntent, TunnelIntent>;
}
const swappedOf = new WeakMap<Intent, Swapped>();

/**
 * Members changed before the sites are made: past this many, the next change makes them (one
 * copy of the tunnel's sites), so what an intent keeps alive stays small.
 */
const MAX_SWAPPED = 64;

/**
 * How many members of all tunnels hold each public key, by intent: a new key must be no other
 * member's. Made once, then carried from an intent to the next one made here.
 */
const keysOf = new WeakMap<Intent, Map<string, number>>();

function keyCounts(intent: Intent): Map<string, number> {
  let keys = keysOf.get(intent);
  if (!keys) {
    keys = new Map();
    for (const tunnel of intent.tunnels)
      for (const m of tunnel.members) keys.set(m.publicKey, (keys.get(m.publicKey) ?? 0) + 1);
    keysOf.set(intent, keys);
  }
  return keys;
}

/**
 * The intent of the held one with one member's key (or key file) changed, exactly as resolving
 * the new data would give it; undefined for any other change, or a key another member holds
 * (resolve names that problem). Its sites are made when first read (see Swapped).
 */
export function withMemberKey(
  data: PolicyDocument,
  intent: Intent,
  region: Region,
  entries: readonly unknown[],
): { intent: Intent; change: KeyChange } | undefined {
  const [top, t, field] = region.path;
  if (region.path.length !== 3 || top !== "tunnels" || field !== "members") return undefined;
  if (region.oldCount !== 1 || region.newCount !== 1 || typeof t !== "number") return undefined;
  const before = data.tunnels[t]?.members[region.index] as Record<string, unknown> | undefined;
  const after = entries[0] as Record<string, unknown>;
  if (!before) return undefined;
  const keys = Object.keys(after);
  if (keys.length !== Object.keys(before).length) return undefined;
  for (const k of keys)
    if (!(k in before) || (!COPIED.has(k) && !same(before[k], after[k]))) return undefined;
  const key = after.publicKey as string;
  const tunnel = intent.tunnels[t];
  const member = tunnel?.members[region.index];
  if (!tunnel || !member) return undefined;
  const counts = keyCounts(intent);
  if (key !== member.publicKey && (counts.get(key) ?? 0) > 0) return undefined;
  const changed: MemberIntent = {
    ...member,
    publicKey: key,
    privateKeyFile: after.privateKeyFile as string,
  };
  const members = [...tunnel.members];
  members[region.index] = changed;
  const next: TunnelIntent = { ...tunnel, members };

  let was = swappedOf.get(intent) ?? { base: intent, members: new Map(), tunnels: new Map() };
  if (was.members.size >= MAX_SWAPPED)
    was = { base: withSites(intent), members: new Map(), tunnels: new Map() };
  const baseTunnel = was.base.tunnels[t] as TunnelIntent;
  const swapped: Swapped = {
    base: was.base,
    members: new Map(was.members).set(baseTunnel.members[region.index] as MemberIntent, changed),
    tunnels: new Map(was.tunnels).set(baseTunnel, next),
  };
  const result = lazySites(
    intent,
    intent.tunnels.map((x) => (x === tunnel ? next : x)),
    swapped,
  );
  // The counts move to the new intent: the held one is not read from again.
  keysOf.delete(intent);
  counts.set(member.publicKey, (counts.get(member.publicKey) ?? 1) - 1);
  if (counts.get(member.publicKey) === 0) counts.delete(member.publicKey);
  counts.set(key, (counts.get(key) ?? 0) + 1);
  keysOf.set(result, counts);
  return { intent: result, change: { tunnel: next, before: member, after: changed } };
}

/**
 * `intent` with `tunnels`, its fields in their order, and `sites` made from `swapped` when first
 * read, once.
 */
function lazySites(intent: Intent, tunnels: readonly TunnelIntent[], swapped: Swapped): Intent {
  const result: Record<string, unknown> = {};
  const made = result as unknown as Intent;
  for (const k of Object.keys(intent)) {
    if (k === "sites")
      Object.defineProperty(result, "sites", {
        enumerable: true,
        configurable: true,
        get() {
          const sites = sitesOf(swapped);
          Object.defineProperty(result, "sites", { value: sites, enumerable: true });
          swappedOf.delete(made);
          return sites;
        },
      });
    else result[k] = k === "tunnels" ? tunnels : (intent as unknown as Record<string, unknown>)[k];
  }
  swappedOf.set(made, swapped);
  return made;
}

/** `intent` with its sites made (see Swapped). */
function withSites(intent: Intent): Intent {
  void intent.sites;
  return intent;
}

/** The base's sites with the swapped tunnels and members in them. */
function sitesOf({ base, members, tunnels }: Swapped): readonly SiteIntent[] {
  const swap = (m: MemberIntent) => members.get(m) ?? m;
  const siteTunnel = (st: SiteTunnel): SiteTunnel => {
    const tunnel = tunnels.get(st.tunnel);
    return tunnel ? { ...st, tunnel, local: swap(st.local), peers: st.peers.map(swap) } : st;
  };
  return base.sites.map((site) =>
    site.tunnels.some((st) => tunnels.has(st.tunnel))
      ? { ...site, tunnels: site.tunnels.map(siteTunnel) }
      : site,
  );
}

/**
 * The site named `name` of `intent`, or of the intent its sites will be made from: the same
 * but for members' keys and key files (what a caller that reads neither may take).
 */
export function siteOfKeyless(intent: Intent, name: string): SiteIntent | undefined {
  const from = swappedOf.get(intent)?.base ?? intent;
  return from.sites.find((s) => s.name === name);
}

/** Deep equality of schema output: plain objects, arrays, strings, numbers, bigints. */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return ka.every((k) => k in rb && same(ra[k], rb[k]));
}
