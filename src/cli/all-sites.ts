import { parseInForce } from "../apply/source/in-force.js";
import { loadRecord } from "../apply/state/record.js";
import type { Target } from "../apply/target.js";
import { NetpolError } from "../errors.js";
import type { PlanJson } from "../plan/format.js";
import type { Intent } from "../policy/intent.js";
import type { SiteStatus } from "../status/collect.js";
import { type ControlEndpoint, callSite } from "../system/control.js";
import { resolveKeyPath } from "../system/keys.js";
import type { Runner } from "../system/runner.js";

export interface RemoteSite {
  readonly name: string;
  readonly control: ControlEndpoint;
}

/**
 * The other sites of a policy that `--all` reaches through their `netpol serve`, in policy order,
 * and those it cannot (no `control`): they are applied where they are, e.g. the VPS before the
 * tunnel to it exists.
 */
export function otherSites(
  intent: Intent,
  local: string,
  keyDir: string,
): { remote: RemoteSite[]; unreachable: string[] } {
  const others = intent.sites.filter((s) => s.name !== local);
  return {
    remote: others.flatMap((s) =>
      s.control
        ? [
            {
              name: s.name,
              control: {
                url: s.control.url,
                tokenFile: resolveKeyPath(keyDir, s.control.tokenFile),
              },
            },
          ]
        : [],
    ),
    unreachable: others.filter((s) => !s.control).map((s) => s.name),
  };
}

/**
 * The sites `status --all` and the page ask for their status: those of the policy in force
 * here that declare `control`. The policy is parsed again only when another one is in force.
 */
export function controlSitesInForce(target: Target, keyDir: string): () => Promise<RemoteSite[]> {
  let known: { hash: string; remote: RemoteSite[] } | undefined;
  return async () => {
    const record = await loadRecord(target.files);
    if (!record) return [];
    if (known?.hash !== record.policyHash) {
      const { intent } = parseInForce(target.files, record);
      known = { hash: record.policyHash, remote: otherSites(intent, record.site, keyDir).remote };
    }
    return known.remote;
  };
}

/**
 * A site's status through its `netpol serve`, asked from `runner`'s namespace; `timeoutMs`
 * bounds a dead tunnel's wait.
 */
export function askStatus(
  runner: Runner,
  site: RemoteSite,
  timeoutMs?: number,
): Promise<SiteStatus> {
  return callSite<SiteStatus>(runner, site.name, site.control, "/status", undefined, timeoutMs);
}

export interface RemoteApplied {
  readonly site: string;
  readonly changed: boolean;
  readonly plan: PlanJson;
  readonly confirmWithinSeconds?: number;
}

/**
 * Applies the policy at each remote site in turn (requests from `runner`'s namespace), stopping at the first failure (a
 * NETPOL_E_REMOTE_FAILED naming the site); the caller applies its own site only after all of
 * them succeeded.
 */
export async function applyRemote(
  runner: Runner,
  sites: readonly RemoteSite[],
  policyText: string,
  confirmSeconds: number | undefined,
  local: string,
): Promise<RemoteApplied[]> {
  const done: RemoteApplied[] = [];
  for (const s of sites) {
    const query = new URLSearchParams({ site: s.name });
    if (confirmSeconds !== undefined) query.set("confirm", String(confirmSeconds));
    try {
      const r = await callSite<Omit<RemoteApplied, "site">>(
        runner,
        s.name,
        s.control,
        `/apply?${query}`,
        policyText,
      );
      done.push({ site: s.name, ...r });
    } catch (err) {
      if (!(err instanceof NetpolError)) throw err;
      const before = done.map((d) => d.site).join(", ");
      throw new NetpolError(
        err.code,
        `${err.message}\nsite ${local} was not applied${before ? `; already applied: ${before}` : ""}`,
      );
    }
  }
  return done;
}

/** What `confirm --all` did at one site. */
export interface SiteConfirmed {
  readonly site: string;
  /** False: nothing was waiting for confirmation there (an apply made without --confirm). */
  readonly confirmed: boolean;
}

/**
 * `netpol confirm --all`: keeps the remote applies made with `apply --all --confirm`. A site
 * with nothing waiting is said so, not a failure: `apply --all` arms a revert only where it
 * changed something.
 */
export async function confirmRemote(
  runner: Runner,
  sites: readonly RemoteSite[],
): Promise<SiteConfirmed[]> {
  const done: SiteConfirmed[] = [];
  for (const s of sites) {
    try {
      await callSite(runner, s.name, s.control, "/confirm", "");
      done.push({ site: s.name, confirmed: true });
    } catch (err) {
      if (!(err instanceof NetpolError) || err.details.remoteCode !== "NETPOL_E_NO_CONFIRM_PENDING")
        throw err;
      done.push({ site: s.name, confirmed: false });
    }
  }
  return done;
}

/** What each remote site would change under this policy (its dry run). */
export function planRemote(
  runner: Runner,
  sites: readonly RemoteSite[],
  policyText: string,
): Promise<PlanJson[]> {
  return Promise.all(
    sites.map(async (s) => {
      const query = new URLSearchParams({ site: s.name, dryRun: "1" });
      return (
        await callSite<{ plan: PlanJson }>(runner, s.name, s.control, `/apply?${query}`, policyText)
      ).plan;
    }),
  );
}
