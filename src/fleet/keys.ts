/**
 * Where the fleet lives in etcd. One prefix; the publisher writes the head, the policy history
 * and each site's desired state; each site writes only under its own reports key (etcd RBAC
 * grants exactly these ranges, see fleet/grant).
 */
export const ROOT = "/netpol/";

/** The revision in force: its number, the policy's hash, the waves. Written by `publish`. */
export const HEAD = `${ROOT}head`;

/** Every published policy's text, by revision: what `rollback --to` publishes again. */
export const POLICIES = `${ROOT}policies/`;
export const policyKey = (serial: number) => `${POLICIES}${String(serial).padStart(10, "0")}`;

/** What one site is to apply: its share of the policy, its wave and who goes before it. */
export const desiredKey = (site: string) => `${ROOT}sites/${site}/desired`;

/** Everything the sites report, read in one range by `status --fleet` and `rollout status`. */
export const REPORTS = `${ROOT}reports/`;
/** A site's own range: the only keys its role may write. */
export const reportsOf = (site: string) => `${REPORTS}${site}/`;
/** The revisions a site applied and how (kept: the rollout reads it). */
export const ledgerKey = (site: string) => `${reportsOf(site)}ledger`;
/** How the site is now, under its agent's lease: gone when the agent is. */
export const liveKey = (site: string) => `${reportsOf(site)}live`;

/** The site and the report a key under REPORTS holds, or undefined for any other key. */
export function reportKeyOf(key: string): { site: string; kind: "ledger" | "live" } | undefined {
  if (!key.startsWith(REPORTS)) return undefined;
  const [site, kind, ...rest] = key.slice(REPORTS.length).split("/");
  if (!site || rest.length > 0 || (kind !== "ledger" && kind !== "live")) return undefined;
  return { site, kind };
}

/** How many published policies etcd keeps for `rollback --to`. */
export const KEEP_POLICIES = 50;
