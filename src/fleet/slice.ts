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

const sitesOfMember = (members: readonly Raw[]) => members.map((m) => String(m.site));

/** The part of `doc` (the policy as read) that `site` needs, as policy text (JSON). */
export function sliceText(doc: Raw, intent: Intent, site: string): string {
  const keep = new Set([site]);
  const tunnels = ((doc.tunnels ?? []) as Raw[]).flatMap((t): Raw[] => {
    const members = (t.members ?? []) as Raw[];
    if (!sitesOfMember(members).includes(site)) return [];
    // A spoke peers with its hub only; other spokes matter through the networks they advertise.
    const spoke = t.hub !== undefined && t.hub !== site;
    const kept = spoke
      ? members.filter((m) => m.site === site || m.site === t.hub || (m.advertise ?? []).length > 0)
      : members;
    for (const s of sitesOfMember(kept)) keep.add(s);
    return [{ ...t, members: kept }];
  });
  const ofSite = new Set(
    intent.services
      .filter((s) => s.publishOn === site || s.target.site === site)
      .map((s) => s.name),
  );
  const services = ((doc.services ?? []) as Raw[]).filter((s) => ofSite.has(String(s.name)));
  for (const s of intent.services.filter((s) => ofSite.has(s.name))) {
    keep.add(s.publishOn);
    keep.add(s.target.site);
  }
  const sites = Object.fromEntries(
    Object.entries(doc.sites as Raw).filter(([name]) => keep.has(name)),
  );
  const part: Raw = { version: doc.version, sites };
  if (doc.settings !== undefined) part.settings = doc.settings;
  if (tunnels.length > 0) part.tunnels = tunnels;
  if (services.length > 0) part.services = services;
  return JSON.stringify(part);
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
