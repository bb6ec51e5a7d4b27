import type { SiteState } from "../compile/desired.js";
import { NetpolError } from "../errors.js";
import type { LiveState, Ownership, Plan } from "../plan/types.js";
import { readPrivateKeys } from "../system/private-keys.js";
import { execute } from "./execute.js";
import { isoTime } from "./host.js";
import { interruptedBy, type StopRequest, stoppable } from "./interrupt.js";
import { clearLeftovers, finishedNote, markInFlight } from "./interrupted.js";
import { armRevert, type ConfirmRequest, restartDeadline } from "./rollback/confirm.js";
import { rollBack } from "./rollback/restore.js";
import { takeSnapshot } from "./rollback/snapshot.js";
import { ownershipAfter } from "./site/ownership.js";
import { once, planSite, retiredNote } from "./site/plan-site.js";
import type { LiveReader } from "./site/read-live.js";
import { verify } from "./site/verify.js";
import type { PolicySource } from "./source/input.js";
import { cachePath, saveCached } from "./state/compiled-cache.js";
import { removeState, secretDirOf } from "./state/files.js";
import { clearJournal, writeJournal } from "./state/journal.js";
import { withLock } from "./state/lock.js";
import type { Pending } from "./state/pending.js";
import { type ApplyRecord, sameNetworks, writeRecord, writeRecordText } from "./state/record.js";
import type { Target } from "./target.js";

export interface ApplyResult {
  readonly plan: Plan;
  readonly changed: boolean;
  readonly record: ApplyRecord;
  /** What the operator should know besides the plan: an interrupted apply finished, a revert. */
  readonly notes: readonly string[];
  /** The revert armed by `--confirm`, if any. */
  readonly pending: Pending | undefined;
  /** The state the site was compiled to, and the live state read (after a change: verified). */
  readonly desired: SiteState;
  readonly live: LiveState;
}

export interface ApplyOptions {
  /** `--confirm`: arm a revert before the first change. */
  readonly confirm?: ConfirmRequest;
  /**
   * `netpol down`: the (empty) policy's record and compiled state are removed instead of
   * written, under the apply's lock, so no apply can start between the two and lose its record.
   */
  readonly forget?: boolean;
  /** How the plan reads the live state (a resident process: what changed since its last read). */
  readonly read?: LiveReader;
  /**
   * Asked once the plan is made, before anything changes: false gives the apply up as busy
   * (NETPOL_E_LOCKED), nothing changed. A resident process lets a reaction go first this way.
   */
  readonly proceed?: () => boolean;
  /** A real rename: apply a site other than the one the record says runs here (`--replace-site`). */
  readonly replaceSite?: boolean;
  /** The state last applied, where the caller holds it (PlanOptions.inForce). */
  readonly inForce?: () => SiteState | undefined;
  /**
   * Asked before the first change and before each command of it (SIGINT/SIGTERM from the CLI):
   * a stop before the journal is written changes nothing; one during the change or its
   * verification rolls back. Once verified, the apply finishes (record, cache).
   */
  readonly stop?: StopRequest;
}

/**
 * Plan, apply, verify; on any failure put the previous owned state back and say which step
 * failed. Nothing is touched before the keys are read and the plan is free of conflicts; the
 * journal of what is about to be created is on disk before the first change.
 */
export async function applySite(
  target: Target,
  source: PolicySource,
  appliedBy: string,
  options: ApplyOptions = {},
): Promise<ApplyResult> {
  const files = target.files;
  const input = once(source);
  return withLock(
    target,
    async () => {
      const notes: string[] = [];
      // A pending revert is settled (perhaps reverted) only for a policy that validated.
      const settled = await clearLeftovers(target, input);
      if (settled) notes.push(settled);
      const planned = await planSite(target, input, true, options.read, {
        replaceSite: options.replaceSite,
        releaseRetired: options.forget,
        inForce: options.inForce,
      });
      const policy = await input();
      const { desired, owned, plan, record, journal, interrupted, wanted } = planned;
      if (options.proceed && !options.proceed())
        throw new NetpolError("NETPOL_E_LOCKED", "a change made by this process came first");
      if (plan.conflicts.length > 0) {
        throw new NetpolError(
          "NETPOL_E_FOREIGN_STATE",
          `nothing applied; state netpol does not own is in the way:\n  ${plan.conflicts.join("\n  ")}`,
        );
      }
      const keys = await readPrivateKeys(desired, policy.keyDir);
      const live = await markInFlight(target.runner, planned.live, owned, policy.site);
      if (interrupted) notes.push(finishedNote(interrupted, policy.hash, record));
      const stamp = (ownership: Ownership): ApplyRecord => ({
        site: policy.site,
        policyHash: policy.hash,
        policyText: policy.text,
        appliedAt: isoTime(target.host),
        appliedBy,
        protocol: desired.protocol,
        ownership,
        ...(planned.guarded.length > 0 ? { guarded: planned.guarded } : {}),
      });
      const keep = (kept: ApplyRecord, links: LiveState["links"]) =>
        options.forget ? writeRecordText(files, undefined) : writeRecord(files, kept, links);
      const keepCache = () =>
        options.forget
          ? removeState(cachePath(files))
          : saveCached(files, policy, planned.compiled);
      notes.push(...planned.retired.map(retiredNote));
      if (plan.changes.length === 0) {
        const same =
          !journal &&
          record?.policyHash === policy.hash &&
          record.site === policy.site &&
          record.protocol === desired.protocol &&
          sameNetworks(record.guarded, planned.guarded);
        const kept = same && record ? record : stamp(ownershipAfter(owned, desired, plan, live));
        if (!same || options.forget) await keep(kept, live.links);
        await clearJournal(files);
        await keepCache();
        return { plan, changed: false, record: kept, notes, pending: undefined, desired, live };
      }
      const asked = options.stop?.();
      if (asked) throw interruptedBy(asked, "before any change: nothing applied");
      const snapshot = await takeSnapshot(target.runner, {
        live,
        owned,
        // Asked only for an owned link the kernel does not describe whole.
        knownLinks: () => [...(planned.inForce()?.links ?? []), ...desired.links],
        enslaves: plan.changes.flatMap((c) => (c.kind === "port" ? [c.port.device] : [])),
        sysctlKeys: wanted.sysctlKeys,
        protocol: desired.protocol,
        recordText: planned.recordText,
        ...(plan.proxy ? { proxy: plan.proxy } : {}),
        ...(plan.relay ? { relay: plan.relay } : {}),
      });
      const pending = options.confirm
        ? await armRevert(
            target,
            snapshot,
            { site: policy.site, policyHash: policy.hash, appliedBy },
            options.confirm,
          )
        : undefined;
      try {
        // Inside the rollback: a journal that cannot be written takes the armed revert away.
        await writeJournal(target, plan, policy.hash, appliedBy);
        // Until the record is written the change can still be undone: a stop asked during
        // it or its verification rolls back.
        const changing = options.stop
          ? { ...target, runner: stoppable(target.runner, options.stop) }
          : target;
        await execute(plan, changing.runner, keys, secretDirOf(files), live);
        const after = await verify(changing, desired, owned, plan, wanted, live);
        const applied = stamp(ownershipAfter(owned, desired, plan, after));
        // The cache is no part of the record's durability (it never fails an apply): it is
        // written while the record and the journal's removal wait on their fsyncs.
        await Promise.all([
          (async () => {
            await keep(applied, after.links);
            await clearJournal(files);
          })(),
          keepCache(),
        ]);
        const armed =
          pending && options.confirm
            ? await restartDeadline(target, pending, options.confirm.seconds)
            : undefined;
        return {
          plan,
          changed: true,
          record: applied,
          notes,
          pending: armed,
          desired,
          live: after,
        };
      } catch (err) {
        throw await rollBack(target, err, {
          snapshot,
          site: plan.site,
          ...(pending ? { pending } : {}),
        });
      }
    },
    { command: `apply (${appliedBy})` },
  ).catch(async (err: unknown) => {
    // Busy with another apply: a bad policy is still said to be bad first.
    if (err instanceof NetpolError && err.code === "NETPOL_E_LOCKED") await input();
    throw err;
  });
}
