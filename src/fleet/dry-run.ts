import { compileSite } from "../compile/compile.js";
import type { SiteState } from "../compile/desired.js";
import { parsePolicy } from "../policy/load.js";
import { desiredSchema, readValue } from "./documents.js";
import type { Etcd } from "./etcd/client.js";
import { ROOT } from "./keys.js";
import type { Prepared } from "./prepare.js";
import { stateChanges } from "./state-diff.js";
import { readFleet } from "./view.js";

export interface SitePlan {
  readonly site: string;
  readonly wave: number;
  /** The revision the site last reported, or null when it never did. */
  readonly from: number | null;
  readonly changes: readonly string[];
  /** Changes its agent last found and put right: the kernel may differ from the report. */
  readonly drift: number | null;
}

const stateOf = (text: string, site: string): SiteState | undefined => {
  try {
    return compileSite(parsePolicy(text, `policy for ${site}`).intent, site);
  } catch {
    return undefined;
  }
};

/**
 * Each site's plan under a prepared policy, from the agents' latest reports: the part each
 * site last applied (the ledger names its hash; etcd still holds it as the site's desired
 * value) against its new part. Nothing is written.
 */
export async function dryRun(
  etcd: Etcd,
  prepared: Prepared,
): Promise<{ serial: number; plans: SitePlan[] }> {
  const fleet = await readFleet(etcd);
  const { kvs } = await etcd.range(`${ROOT}sites/`, { prefix: true });
  const current = new Map(
    kvs.flatMap((kv) => {
      const site = kv.key.slice(`${ROOT}sites/`.length).split("/")[0] ?? "";
      const desired = readValue(desiredSchema, kv.value);
      return desired ? [[site, desired] as const] : [];
    }),
  );
  const waves = prepared.rollout.waves;
  const plans = [...prepared.sites].map(([site, part]): SitePlan => {
    const ledger = fleet.ledgers.get(site);
    const held = current.get(site);
    const before =
      ledger && held && held.hash === ledger.hash ? stateOf(held.text, site) : undefined;
    const after = stateOf(part.text, site);
    return {
      site,
      wave: Math.max(
        0,
        waves.findIndex((w) => w.includes(site)),
      ),
      from: ledger?.serial ?? null,
      changes: after ? (ledger?.hash === part.hash ? [] : stateChanges(before, after)) : [],
      drift: fleet.lives.get(site)?.drift ?? null,
    };
  });
  return { serial: fleet.head?.serial ?? 0, plans };
}

export function formatDryRun(serial: number, plans: readonly SitePlan[]): string {
  const out = [`dry run against revision ${serial} (nothing published):`];
  for (const p of plans) {
    const from = p.from === null ? "no report yet" : `at revision ${p.from}`;
    const drift = p.drift ? `, drift ${p.drift} changes at its last round` : "";
    out.push(`site ${p.site} (wave ${p.wave}, ${from}${drift}):`);
    if (p.changes.length === 0) out.push("  in sync: nothing to do");
    for (const c of p.changes) out.push(`  ${c}`);
  }
  out.push(`publish it with \`--expect ${serial}\` to refuse it if another revision lands first`);
  return `${out.join("\n")}\n`;
}
