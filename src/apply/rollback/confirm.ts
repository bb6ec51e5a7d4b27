import { randomUUID } from "node:crypto";
import { NetpolError } from "../../errors.js";
import { commandLine } from "../../next-command.js";
import { isoTime } from "../host.js";
import type { StateFiles } from "../state/files.js";
import { interruptedBy, loadJournal } from "../state/journal.js";
import { withLock } from "../state/lock.js";
import {
  clearPending,
  describePending,
  loadPending,
  type Pending,
  writePending,
} from "../state/pending.js";
import type { Target } from "../target.js";
import { restoreTo } from "./restore.js";
import type { Snapshot } from "./snapshot.js";

/**
 * `apply --confirm N` is a dead-man switch. Before the first change, the snapshot of the state
 * it replaces goes into a 0600 pending file and a detached process (its own session: a hang-up
 * of the terminal does not reach it) is started to revert at the deadline. It waits for the
 * lock, or takes it over from a killed apply, and puts back exactly what the snapshot holds.
 * `netpol confirm` deletes the file and stops the process.
 */
const CONFIRM_LOCK_WAIT_MS = 15_000;
/** How long the timer waits for the pending file of the apply that started it. */
const ARM_GRACE_MS = 10_000;
/** The longest one sleep of the timer: the deadline is looked at again at least this often. */
const TIMER_STEP_MS = 60_000;

export interface ConfirmRequest {
  readonly seconds: number;
  /**
   * Starts the detached process that will call `revertIfUnconfirmed(target, id)` (and where
   * systemd runs the machine, a transient timer that runs it again at the deadline).
   */
  readonly startTimer: (id: string, seconds: number) => number | undefined;
}

/**
 * Arms the revert; called with the lock held, before the apply changes anything. The timer is
 * started first and the pending file, naming it, written once: killed anywhere in between,
 * nothing has changed yet and the timer, finding no pending file, leaves.
 */
export async function armRevert(
  target: Target,
  snapshot: Snapshot,
  about: { site: string; policyHash: string; appliedBy: string },
  request: ConfirmRequest,
): Promise<Pending> {
  const id = randomUUID();
  const pid = request.startTimer(id, request.seconds);
  const pending: Pending = {
    version: 1,
    id,
    deadline: isoTime(target.host, request.seconds * 1000),
    ...about,
    timer: (pid === undefined ? undefined : target.host.identityOf(pid)) ?? null,
    snapshot,
  };
  await writePending(target.files, pending);
  return pending;
}

async function revertOrThrow(target: Target, pending: Pending): Promise<void> {
  const failures = await restoreTo(target, pending.snapshot, pending.site, pending);
  if (failures.length > 0) {
    throw new NetpolError(
      "NETPOL_E_ROLLBACK_FAILED",
      `revert incomplete (the pending confirmation stays, so a later revert can retry):\n  ${failures.join("\n  ")}`,
    );
  }
}

/**
 * Called with the lock held by an apply. A pending confirmation whose timer runs refuses the
 * apply: the operator confirms or reverts first. One whose timer is gone (killed, or the machine
 * rebooted) is reverted here, as the timer would have, and the apply goes on from there.
 */
export async function settlePending(
  target: Target,
  /** The policy about to be applied: its own problems are said before the pending revert's. */
  policy?: () => Promise<unknown>,
): Promise<string | undefined> {
  const pending = await loadPending(target.files);
  if (!pending) return undefined;
  await policy?.();
  if (pending.timer && target.host.isRunning(pending.timer)) {
    const naming = target.files.naming;
    const confirm = commandLine({ verb: "confirm" }, naming);
    const revert = commandLine({ verb: "revert" }, naming);
    throw new NetpolError(
      "NETPOL_E_CONFIRM_PENDING",
      `${describePending(pending)}; run \`${confirm}\` to keep it or \`${revert}\` to undo it, then apply again`,
      [],
      { details: { next: { verb: "confirm" } } },
    );
  }
  await revertOrThrow(target, pending);
  return `an unconfirmed apply (policy ${pending.policyHash.slice(0, 12)}) whose revert timer was gone has been reverted first`;
}

/**
 * A pending revert past its deadline whose timer is gone (killed, a reboot) is carried out by
 * whichever command finds it (status, serve's status), under the lock: nothing else would, and
 * the site must not go on being shown as "awaiting confirmation". Says so when it did.
 */
export async function revertExpired(target: Target): Promise<string | undefined> {
  const pending = await loadPending(target.files);
  if (!pending || Date.parse(pending.deadline) > target.host.now()) return undefined;
  if (pending.timer && target.host.isRunning(pending.timer)) return undefined;
  return withLock(
    target,
    async () => {
      const now = await loadPending(target.files);
      if (now?.id !== pending.id) return undefined;
      await revertOrThrow(target, now);
      return `an unconfirmed apply (policy ${now.policyHash.slice(0, 12)}) past its deadline ${now.deadline}, whose revert timer was gone, has been reverted`;
    },
    { command: "netpol revert (deadline passed)", waitMs: CONFIRM_LOCK_WAIT_MS },
  );
}

/** Runs `work` on the pending confirmation under the lock; none pending is an error. */
async function withPending(
  target: Target,
  command: string,
  work: (files: StateFiles, pending: Pending) => Promise<void>,
): Promise<void> {
  const files = target.files;
  await withLock(
    target,
    async () => {
      const pending = await loadPending(files);
      if (!pending)
        throw new NetpolError(
          "NETPOL_E_NO_CONFIRM_PENDING",
          `no apply on ${target.files.scope} is waiting for confirmation`,
        );
      await work(files, pending);
    },
    { command, waitMs: CONFIRM_LOCK_WAIT_MS },
  );
}

export async function confirmApply(target: Target): Promise<void> {
  await withPending(target, "netpol confirm", async (files, pending) => {
    const { host } = target;
    const interrupted = interruptedBy(await loadJournal(files), host);
    const timerAlive = pending.timer !== null && host.isRunning(pending.timer);
    const expired = Date.parse(pending.deadline) <= host.now();
    // Past the deadline nothing is kept: the timer reverts, or, when it is gone, this does.
    if (expired && !timerAlive) {
      await revertOrThrow(target, pending);
      throw new NetpolError(
        "NETPOL_E_CONFIRM_EXPIRED",
        `too late: the deadline ${pending.deadline} has passed; its revert timer was gone, so the apply has been reverted now`,
      );
    }
    if (interrupted || expired) {
      throw new NetpolError(
        "NETPOL_E_CONFIRM_EXPIRED",
        interrupted
          ? `the apply waiting for confirmation was interrupted before it finished; it is reverted at ${pending.deadline} (or now, with \`${commandLine({ verb: "revert" }, target.files.naming)}\`)`
          : `too late: the deadline ${pending.deadline} has passed and the apply is being reverted`,
      );
    }
    await clearPending(target, pending);
  });
}

/** `netpol revert`: undo a pending apply now instead of at its deadline. */
export async function revertNow(target: Target): Promise<void> {
  await withPending(target, "netpol revert", (_files, pending) => revertOrThrow(target, pending));
}

/**
 * Once the apply went through, the operator gets the whole time to confirm from then on; the
 * deadline armed before the first change holds only for an apply that never finishes.
 */
export async function restartDeadline(
  target: Target,
  pending: Pending,
  seconds: number,
): Promise<Pending> {
  const restarted = { ...pending, deadline: isoTime(target.host, seconds * 1000) };
  await writePending(target.files, restarted);
  return restarted;
}

/**
 * Body of the detached timer process: sleeps until the deadline, then waits for the lock for as
 * long as it takes (a live apply finishes; a killed one's lock is stale and taken over). A
 * deadline moved meanwhile is slept on again.
 */
export async function revertIfUnconfirmed(
  target: Target,
  id: string,
): Promise<"reverted" | "confirmed"> {
  const { files, host } = target;
  const armedBy = host.now() + ARM_GRACE_MS;
  for (;;) {
    const pending = await loadPending(files);
    if (pending?.id !== id) {
      // The apply writes the file just after starting this process.
      if (host.now() > armedBy) return "confirmed";
      await host.sleep(100);
      continue;
    }
    const wait = Date.parse(pending.deadline) - host.now();
    if (wait > 0) {
      // In steps: a sleep past Node's timer limit (24.8 days) would fire at once, every time.
      await host.sleep(Math.min(wait, TIMER_STEP_MS));
      continue;
    }
    const outcome = await withLock(
      target,
      async () => {
        const now = await loadPending(files);
        if (now?.id !== id) return "confirmed" as const;
        if (Date.parse(now.deadline) > host.now()) return "later" as const;
        await revertOrThrow(target, now);
        return "reverted" as const;
      },
      { command: "netpol revert-unconfirmed", waitMs: Number.POSITIVE_INFINITY },
    );
    if (outcome !== "later") return outcome;
  }
}
