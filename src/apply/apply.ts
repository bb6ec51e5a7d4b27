import { compileSite } from "../compile/compile.js";
import type { SiteState } from "../compile/desired.js";
import { NetpolError } from "../errors.js";
import { diff } from "../plan/diff.js";
import { describeChange } from "../plan/format.js";
import { addressKey } from "../plan/keys.js";
import type { LiveState, Ownership, Plan } from "../plan/types.js";
import type { Intent } from "../policy/intent.js";
import { readPrivateKeys } from "../system/private-keys.js";
import type { Runner } from "../system/runner.js";
import { execute } from "./execute.js";
import { withLock } from "./lock.js";
import { checkProtocol } from "./protocol.js";
import { readAfter, readLive } from "./read-live.js";
import { type ApplyRecord, EMPTY_OWNERSHIP, loadRecord, saveRecord } from "./record.js";
import { computeRestore, type RestoreScript, runRestore, takeSnapshot } from "./restore.js";

/** Everything an apply or a plan needs, passed in: the core reads nothing behind your back. */
export interface Target {
  readonly runner: Runner;
  readonly stateDir: string;
  /** Names the namespace in records and locks: the netns name, or "host". */
  readonly scope: string;
}

/** A policy to plan or apply: its intent, or the site's state compiled already (the server compiles off-thread). */
export type PolicyInput = {
  readonly hash: string;
  readonly text: string;
  readonly keyDir: string;
  readonly site: string;
} & ({ readonly intent: Intent } | { readonly desired: SiteState });

export interface Planned {
  readonly desired: SiteState;
  readonly live: LiveState;
  readonly owned: Ownership;
  readonly plan: Plan;
  readonly record: ApplyRecord | undefined;
}

export async function planSite(target: Target, policy: PolicyInput): Promise<Planned> {
  const desired = "desired" in policy ? policy.desired : compileSite(policy.intent, policy.site);
  const record = await loadRecord(target.stateDir, target.scope);
  await checkProtocol(target, desired, record?.protocol);
  const owned = record?.ownership ?? EMPTY_OWNERSHIP;
  const live = await readLive(target.runner, desired, owned);
  return { desired, live, owned, plan: diff(desired, live, owned), record };
}

export interface ApplyResult {
  readonly plan: Plan;
  readonly changed: boolean;
  readonly record: ApplyRecord;
  /** What undoes this apply: kept for `--confirm`. */
  readonly restore: RestoreScript | undefined;
}

function ownershipAfter(
  before: Ownership,
  desired: SiteState,
  plan: Plan,
  created: readonly string[],
  after: LiveState,
): Ownership {
  const removedLinks = new Set(
    plan.changes.flatMap((c) => (c.kind === "link" && c.op === "remove" ? [c.name] : [])),
  );
  const desiredKeys = new Set(desired.addresses.map(addressKey));
  const added = plan.changes.flatMap((c) =>
    c.kind === "address" && c.op === "add" ? [c.address] : [],
  );
  const kept = before.addresses.filter((a) => desiredKeys.has(addressKey(a)));
  const keptKeys = new Set(kept.map(addressKey));
  return {
    links: [...new Set([...before.links.filter((l) => !removedLinks.has(l)), ...created])].sort(),
    addresses: [...kept, ...added.filter((a) => !keptKeys.has(addressKey(a)))],
    ...(after.nftListing !== undefined ? { nftListing: after.nftListing } : {}),
  };
}

/**
 * Plan, apply, verify; on any failure put the previous owned state back and say which step
 * failed. Nothing is touched before the keys are read and the plan is free of conflicts.
 */
export async function applySite(
  target: Target,
  policy: PolicyInput,
  appliedBy: string,
  /** Runs while the lock is still held, e.g. to arm a `--confirm` revert. */
  afterApply?: (result: ApplyResult) => Promise<void>,
): Promise<ApplyResult> {
  return withLock(target.stateDir, target.scope, async () => {
    const { desired, live, owned, plan, record } = await planSite(target, policy);
    if (plan.conflicts.length > 0) {
      throw new NetpolError(
        "NETPOL_E_FOREIGN_STATE",
        `nothing applied; state netpol does not own is in the way:\n  ${plan.conflicts.join("\n  ")}`,
      );
    }
    const keys = await readPrivateKeys(desired, policy.keyDir);
    const stamp = (ownership: Ownership): ApplyRecord => ({
      site: policy.site,
      policyHash: policy.hash,
      appliedAt: new Date().toISOString(),
      appliedBy,
      protocol: desired.protocol,
      ownership,
    });
    if (plan.changes.length === 0) {
      const same =
        record?.policyHash === policy.hash &&
        record.site === policy.site &&
        record.protocol === desired.protocol;
      const kept = same && record ? record : stamp(owned);
      if (!same) await saveRecord(target.stateDir, target.scope, kept, policy.text);
      return { plan, changed: false, record: kept, restore: undefined };
    }
    const snapshot = await takeSnapshot(target.runner, live, plan);
    const created: string[] = [];
    try {
      await execute(plan, target.runner, keys, created);
      const after = await readAfter(target.runner, desired, owned, live, plan);
      const ownership = ownershipAfter(owned, desired, plan, created, after);
      const left = diff(desired, after, ownership).changes;
      if (left.length > 0) {
        const what = left.map((c) => describeChange(c, plan.protocol)).join("; ");
        throw new NetpolError(
          "NETPOL_E_VERIFY_FAILED",
          `after apply the live state still differs: ${what}`,
        );
      }
      const applied = stamp(ownership);
      await saveRecord(target.stateDir, target.scope, applied, policy.text);
      const result = {
        plan,
        changed: true,
        record: applied,
        restore: computeRestore(snapshot, after, plan, created),
      };
      await afterApply?.(result);
      return result;
    } catch (err) {
      const now = await readLive(target.runner, desired, owned);
      const failures = await runRestore(
        target.runner,
        computeRestore(snapshot, now, plan, created),
      );
      const cause = err instanceof Error ? err.message : String(err);
      if (failures.length > 0) {
        throw new NetpolError(
          "NETPOL_E_ROLLBACK_FAILED",
          `apply failed: ${cause}\nrollback incomplete:\n  ${failures.join("\n  ")}`,
          [],
          { cause: err },
        );
      }
      throw new NetpolError(
        "NETPOL_E_APPLY_FAILED",
        `apply failed: ${cause}\nthe previous state was restored`,
        [],
        { cause: err },
      );
    }
  });
}
