import { setTimeout as sleep } from "node:timers/promises";
import { compileSite } from "../compile/compile.js";
import type { LinkSpec, SiteState } from "../compile/desired.js";
import { NetpolError } from "../errors.js";
import { diff } from "../plan/diff.js";
import { describeChange } from "../plan/format.js";
import type { LiveState, Ownership, Plan } from "../plan/types.js";
import type { Intent } from "../policy/intent.js";
import { parsePolicy } from "../policy/load.js";
import { batchLine, linkMark, linkMarkArgs } from "../render/ip.js";
import { runIpBatch } from "../system/iproute2/iproute2.js";
import { readPrivateKeys } from "../system/private-keys.js";
import type { Runner } from "../system/runner.js";
import { removeStaleSecrets } from "../system/secret-file.js";
import {
  armRevert,
  type ConfirmRequest,
  dropPending,
  restartDeadline,
  settlePending,
} from "./confirm.js";
import { execute } from "./execute.js";
import { currentOwnership, isMarked, ownershipAfter } from "./ownership.js";
import { checkProtocol } from "./protocol.js";
import {
  type LiveWanted,
  ownedNames,
  readAfter,
  readLive,
  readLiveWhile,
  wantedFor,
} from "./read-live.js";
import { computeRestore, runRestore, type Snapshot, takeSnapshot } from "./restore.js";
import type { PolicyInput, PolicySource } from "./source/input.js";
import { cachePath, saveCached } from "./state/compiled-cache.js";
import { removeState, secretDirOf } from "./state/files.js";
import {
  clearJournal,
  describeInterrupted,
  type Interrupted,
  interruptedBy,
  type Journal,
  loadJournal,
  writeJournal,
} from "./state/journal.js";
import { withLock } from "./state/lock.js";
import type { Pending } from "./state/pending.js";
import { type ApplyRecord, readRecord, recordText, writeRecordText } from "./state/record.js";
import type { Target } from "./target.js";

const protocolOf = (p: PolicyInput) =>
  "desired" in p ? p.desired.protocol : p.intent.settings.routeProtocol;

/**
 * The source read once, when first asked for, as a promise that never counts as unhandled:
 * it may fail (a bad policy) while the caller awaits something else, and is awaited, and its
 * error thrown, later.
 */
function once(source: PolicySource): () => Promise<PolicyInput> {
  if (typeof source !== "function") return () => Promise.resolve(source);
  let input: Promise<PolicyInput> | undefined;
  return () => {
    if (!input) {
      input = source();
      input.catch(() => undefined);
    }
    return input;
  };
}

export interface Planned {
  readonly desired: SiteState;
  readonly live: LiveState;
  readonly owned: Ownership;
  readonly plan: Plan;
  readonly record: ApplyRecord | undefined;
  /** The record file's text as read, for putting it back exactly on a revert. */
  readonly recordText: string | undefined;
  readonly journal: Journal | undefined;
  /** An apply that left its journal: under way, or killed. */
  readonly interrupted: Interrupted | undefined;
  readonly wanted: LiveWanted;
}

/**
 * The state compiled from a policy validated by this process, then one full garbage collection:
 * validating 10,000 objects leaves some 90 MB of garbage (the YAML reader's events and tree,
 * zod's copy) beside a few tens of MB kept, and V8 schedules its next full collection from the
 * heap it grew to, so the live read, verify and record that follow grew the heap 25–35 MB past
 * validation's peak first. The collection (some 20 ms) runs while ip and nft are read.
 * bin/netpol.js exposes `gc`; where it is not (tests, a library caller) it is skipped.
 */
function compileFresh(intent: Intent, site: string): SiteState {
  const desired = compileSite(intent, site);
  globalThis.gc?.();
  return desired;
}

export async function planSite(
  target: Target,
  source: PolicySource,
  /** An apply keeps what its rollback needs from the read (WireGuard configs). */
  forApply = false,
): Promise<Planned> {
  const files = target.files;
  // ip and nft, the slow part of the read, need only the protocol: they start first, and the
  // policy is validated and compiled and the record and the journal read while they run. What
  // netpol owns (the record, the journal) adds only sysctl keys and WireGuard names to the read.
  let reading!: () => void;
  const input = new Promise<void>((started) => {
    reading = started;
  }).then(once(source));
  const known = input.then(async (policy) => {
    const desired = "desired" in policy ? policy.desired : compileFresh(policy.intent, policy.site);
    const read = await readRecord(files);
    const journal = await loadJournal(files);
    await checkProtocol(target, desired, read?.record.protocol);
    const wanted = wantedFor(desired, ownedNames(read?.record.ownership, journal));
    return { desired, read, journal, wanted };
  });
  // Only this read keeps the WireGuard configs: the verify and rollback reads need none, and at
  // 10,000 peers each copy is megabytes of strings.
  const live = readLiveWhile(
    target.runner,
    input.then(protocolOf),
    known.then((k) => ({ ...k.wanted, wireguardConfigs: forApply })),
  );
  reading();
  const [liveState, { desired, read, journal, wanted }] = await Promise.all([live, known]).catch(
    async (err: unknown) => {
      // A read that failed (a tool missing, say) is said only of a policy that validated.
      await known;
      throw err;
    },
  );
  const record = read?.record;
  const owned = currentOwnership(record?.ownership, journal, liveState);
  return {
    desired,
    live: liveState,
    owned,
    plan: diff(desired, liveState, owned),
    record,
    recordText: read?.text,
    journal,
    interrupted: interruptedBy(journal),
    wanted,
  };
}

export interface ApplyResult {
  readonly plan: Plan;
  readonly changed: boolean;
  readonly record: ApplyRecord;
  /** What the operator should know besides the plan: an interrupted apply finished, a revert. */
  readonly notes: readonly string[];
  /** The revert armed by `--confirm`, if any. */
  readonly pending: Pending | undefined;
}

export interface ApplyOptions {
  /** `--confirm`: arm a revert before the first change. */
  readonly confirm?: ConfirmRequest;
  /**
   * `netpol down`: the (empty) policy's record and compiled state are removed instead of
   * written, under the apply's lock, so no apply can start between the two and lose its record.
   */
  readonly forget?: boolean;
}

/** Links and wireguard-go settle asynchronously: the read-back gets this long to agree. */
const VERIFY_MS = 2_000;

/** Links named by the policy in force, so one this apply removes can be recreated on revert. */
function linksInForce(record: ApplyRecord | undefined): readonly LinkSpec[] {
  if (!record) return [];
  try {
    return compileSite(parsePolicy(record.policyText, "policy in force").intent, record.site).links;
  } catch {
    return [];
  }
}

function outcome(interrupted: Interrupted, policyHash: string, record: ApplyRecord | undefined) {
  const which =
    policyHash === interrupted.policyHash
      ? "the policy that apply was bringing (the new one)"
      : policyHash === record?.policyHash
        ? "the policy in force before it (the old one)"
        : `policy ${policyHash.slice(0, 12)}`;
  return `${describeInterrupted({ ...interrupted, running: false }).split(";")[0]}; the site now holds ${which}`;
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
    files,
    async () => {
      await removeStaleSecrets(secretDirOf(files));
      const notes: string[] = [];
      // A pending revert is settled (perhaps reverted) only for a policy that validated.
      const settled = await settlePending(target, input);
      if (settled) notes.push(settled);
      const planned = await planSite(target, input, true);
      const policy = await input();
      const { desired, owned, plan, record, journal, interrupted, wanted } = planned;
      if (plan.conflicts.length > 0) {
        throw new NetpolError(
          "NETPOL_E_FOREIGN_STATE",
          `nothing applied; state netpol does not own is in the way:\n  ${plan.conflicts.join("\n  ")}`,
        );
      }
      const keys = await readPrivateKeys(desired, policy.keyDir);
      const live = await markOwned(target.runner, planned.live, owned, policy.site);
      if (interrupted) notes.push(outcome(interrupted, policy.hash, record));
      const stamp = (ownership: Ownership): ApplyRecord => ({
        site: policy.site,
        policyHash: policy.hash,
        policyText: policy.text,
        appliedAt: new Date().toISOString(),
        appliedBy,
        protocol: desired.protocol,
        ownership,
      });
      const keptText = (kept: ApplyRecord, links: LiveState["links"]) =>
        options.forget ? undefined : recordText(kept, links);
      const keepCache = () =>
        options.forget ? removeState(cachePath(files)) : saveCached(files, policy, desired);
      if (plan.changes.length === 0) {
        const same =
          !journal &&
          record?.policyHash === policy.hash &&
          record.site === policy.site &&
          record.protocol === desired.protocol;
        const kept = same && record ? record : stamp(ownershipAfter(owned, desired, plan, live));
        if (!same || options.forget) await writeRecordText(files, keptText(kept, live.links));
        await clearJournal(files);
        await keepCache();
        return { plan, changed: false, record: kept, notes, pending: undefined };
      }
      const snapshot = await takeSnapshot(target.runner, {
        live,
        owned,
        knownLinks: () => [...linksInForce(record), ...desired.links],
        enslaves: plan.changes.flatMap((c) => (c.kind === "port" ? [c.port.device] : [])),
        sysctlKeys: wanted.sysctlKeys,
        protocol: desired.protocol,
        recordText: planned.recordText,
        ...(plan.proxy ? { proxy: plan.proxy } : {}),
      });
      const pending = options.confirm
        ? await armRevert(
            target,
            snapshot,
            { site: policy.site, policyHash: policy.hash, appliedBy },
            options.confirm,
          )
        : undefined;
      await writeJournal(files, plan, policy.hash, appliedBy);
      const created: string[] = [];
      try {
        await execute(plan, target.runner, keys, created, secretDirOf(files));
        const after = await verify(target, desired, owned, plan, wanted, live);
        const applied = stamp(ownershipAfter(owned, desired, plan, after));
        // The cache is no part of the record's durability (it never fails an apply): it is
        // written while the record and the journal's removal wait on their fsyncs.
        await Promise.all([
          (async () => {
            await writeRecordText(files, keptText(applied, after.links));
            await clearJournal(files);
          })(),
          keepCache(),
        ]);
        const armed =
          pending && options.confirm
            ? await restartDeadline(target, pending, options.confirm.seconds)
            : undefined;
        return { plan, changed: true, record: applied, notes, pending: armed };
      } catch (err) {
        throw await rollBack(target, err, { snapshot, owned, plan, created, wanted, pending });
      }
    },
    { command: `apply (${appliedBy})` },
  ).catch(async (err: unknown) => {
    // Busy with another apply: a bad policy is still said to be bad first.
    if (err instanceof NetpolError && err.code === "NETPOL_E_LOCKED") await input();
    throw err;
  });
}

/**
 * A link a killed apply created but had not marked yet (the journal names it) gets its mark now,
 * before the journal goes: from then on the kernel alone says it is netpol's.
 */
async function markOwned(
  runner: Runner,
  live: LiveState,
  owned: Ownership,
  site: string,
): Promise<LiveState> {
  const unmarked = live.links.filter((l) => owned.links.includes(l.name) && !isMarked(l));
  if (unmarked.length === 0) return live;
  const lines = unmarked.map((l) => batchLine(linkMarkArgs(l.name, site)));
  await runIpBatch(runner, lines, "any", "links");
  return {
    ...live,
    links: live.links.map((l) => (unmarked.includes(l) ? { ...l, alias: linkMark(site) } : l)),
  };
}

async function verify(
  target: Target,
  desired: SiteState,
  owned: Ownership,
  plan: Plan,
  wanted: LiveWanted,
  before: LiveState,
): Promise<LiveState> {
  const giveUp = Date.now() + VERIFY_MS;
  for (;;) {
    const after = await readAfter(target.runner, wanted, before, plan, { desired, owned });
    const left = diff(desired, after, ownershipAfter(owned, desired, plan, after)).changes;
    if (left.length === 0) return after;
    if (Date.now() >= giveUp) {
      const what = left.map((c) => describeChange(c, plan.protocol)).join("; ");
      throw new NetpolError(
        "NETPOL_E_VERIFY_FAILED",
        `after apply the live state still differs: ${what}`,
        [],
        { details: { step: "verify" } },
      );
    }
    await sleep(200);
  }
}

/** Puts the snapshot back after a failed step and says what happened, as the error to throw. */
async function rollBack(
  target: Target,
  err: unknown,
  applied: {
    snapshot: Snapshot;
    owned: Ownership;
    plan: Plan;
    created: readonly string[];
    wanted: LiveWanted;
    pending: Pending | undefined;
  },
): Promise<NetpolError> {
  const files = target.files;
  const { snapshot, owned, plan, created, wanted } = applied;
  const now = await readLive(target.runner, wanted);
  const marked = currentOwnership(owned, undefined, now).links;
  const ownedNow = {
    links: [...new Set([...marked, ...created])],
    addresses: [
      ...owned.addresses,
      ...plan.changes.flatMap((c) => (c.kind === "address" && c.op === "add" ? [c.address] : [])),
    ],
  };
  const failures = await runRestore(
    target.runner,
    computeRestore(snapshot, now, ownedNow, plan.site),
    secretDirOf(files),
  );
  const bug = !(err instanceof NetpolError);
  const cause = err instanceof Error ? err.message : String(err);
  const details = err instanceof NetpolError ? err.details : {};
  if (failures.length > 0) {
    // The journal stays: whatever is left still counts as netpol's for the next apply.
    return new NetpolError(
      bug ? "NETPOL_E_INTERNAL" : "NETPOL_E_ROLLBACK_FAILED",
      `apply failed: ${cause}\nrollback incomplete:\n  ${failures.join("\n  ")}`,
      [],
      { cause: err, details },
    );
  }
  await clearJournal(files);
  if (applied.pending) await dropPending(target, applied.pending);
  return new NetpolError(
    bug ? "NETPOL_E_INTERNAL" : "NETPOL_E_APPLY_FAILED",
    `apply failed: ${cause}\nthe previous state was restored`,
    [],
    { cause: err, details },
  );
}
