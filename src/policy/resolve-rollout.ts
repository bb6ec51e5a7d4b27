import type { Report } from "./diagnostic.js";
import type { RolloutIntent, TunnelIntent } from "./intent.js";
import type { RolloutDocument } from "./schema.js";

const DEFAULTS: RolloutDocument = { waves: [], failureBudget: 0, healthSeconds: 30 };

/**
 * The waves a fleet rollout takes. Declared waves come first, in order; every site they do not
 * name goes into one last wave. Without declared waves the hubs of hub-and-spoke tunnels go
 * first (a spoke's new config often needs its hub's), then the rest. No wave is empty.
 */
export function resolveRollout(
  doc: RolloutDocument | undefined,
  siteNames: readonly string[],
  tunnels: readonly TunnelIntent[],
  report: Report,
): RolloutIntent {
  const { waves, failureBudget, healthSeconds } = doc ?? DEFAULTS;
  const known = new Set(siteNames);
  const placed = new Map<string, number>();
  waves.forEach((wave, w) => {
    wave.forEach((site, i) => {
      const path = ["rollout", "waves", w, i];
      const earlier = placed.get(site);
      if (!known.has(site)) report({ path, message: `no site ${site} in this policy` });
      else if (earlier !== undefined)
        report({ path, message: `${site} is already in wave ${earlier}; name a site once` });
      else placed.set(site, w);
    });
  });
  const declared = waves.length > 0 ? waves : hubsFirst(tunnels);
  const named = new Set(declared.flat());
  const rest = siteNames.filter((s) => !named.has(s));
  return {
    waves: [...declared, rest].filter((w) => w.length > 0),
    failureBudget,
    healthSeconds,
  };
}

function hubsFirst(tunnels: readonly TunnelIntent[]): string[][] {
  const hubs = [...new Set(tunnels.flatMap((t) => (t.hub !== undefined ? [t.hub] : [])))].sort();
  return hubs.length > 0 ? [hubs] : [];
}
