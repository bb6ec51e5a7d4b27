import { randomUUID } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { NetpolError } from "../errors.js";
import type { Target } from "./apply.js";
import { withLock } from "./lock.js";
import { writeRecordText } from "./record.js";
import { type RestoreScript, runRestore } from "./restore.js";

/**
 * `apply --confirm N`: the undo of the apply waits in a 0600 file (it may hold WireGuard
 * keys) while a detached process sleeps N seconds. `netpol confirm` deletes the file; if
 * it is still there when the process wakes, the apply is undone.
 */
interface Pending {
  readonly id: string;
  readonly deadline: number;
  readonly restore: RestoreScript;
  readonly previousRecord: string | null;
  readonly timerPid?: number;
}

const pendingPath = (target: Target) => path.join(target.stateDir, `${target.scope}.pending.json`);

async function readPending(target: Target): Promise<Pending | undefined> {
  const text = await readFile(pendingPath(target), "utf8").catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as Pending);
}

async function writePending(target: Target, pending: Pending): Promise<void> {
  await writeFile(pendingPath(target), JSON.stringify(pending), { mode: 0o600 });
}

/** Arms the revert; `startTimer` launches the process that will call `revertIfUnconfirmed`. */
export async function armRevert(
  target: Target,
  restore: RestoreScript,
  previousRecord: string | undefined,
  seconds: number,
  startTimer: (id: string) => number | undefined,
): Promise<string> {
  const id = randomUUID();
  const pending: Pending = {
    id,
    deadline: Date.now() + seconds * 1000,
    restore,
    previousRecord: previousRecord ?? null,
  };
  await writePending(target, pending);
  const timerPid = startTimer(id);
  if (timerPid !== undefined) await writePending(target, { ...pending, timerPid });
  return id;
}

export async function confirmApply(target: Target): Promise<void> {
  await withLock(target.stateDir, target.scope, async () => {
    const pending = await readPending(target);
    if (!pending)
      throw new NetpolError(
        "NETPOL_E_NO_CONFIRM_PENDING",
        `no apply on ${target.scope} is waiting for confirmation`,
      );
    await rm(pendingPath(target), { force: true });
    if (pending.timerPid !== undefined) {
      try {
        process.kill(pending.timerPid);
      } catch {
        // The timer may have exited already; the pending file is gone either way.
      }
    }
  });
}

/** Body of the detached timer process. */
export async function revertIfUnconfirmed(
  target: Target,
  id: string,
): Promise<"reverted" | "confirmed"> {
  const first = await readPending(target);
  if (first?.id !== id) return "confirmed";
  await sleep(Math.max(0, first.deadline - Date.now()));
  return withLock(target.stateDir, target.scope, async () => {
    const pending = await readPending(target);
    if (pending?.id !== id) return "confirmed";
    const failures = await runRestore(target.runner, pending.restore);
    await writeRecordText(target.stateDir, target.scope, pending.previousRecord ?? undefined);
    await rm(pendingPath(target), { force: true });
    if (failures.length > 0) {
      throw new NetpolError(
        "NETPOL_E_ROLLBACK_FAILED",
        `revert incomplete:\n  ${failures.join("\n  ")}`,
      );
    }
    return "reverted";
  });
}
