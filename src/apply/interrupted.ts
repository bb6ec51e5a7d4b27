import type { LiveState, Ownership } from "../plan/types.js";
import { batchLine, linkMark, linkMarkArgs } from "../render/ip.js";
import { runIpBatch } from "../system/iproute2/iproute2.js";
import type { Runner } from "../system/runner.js";
import { removeStaleSecrets } from "../system/secret-file.js";
import { settlePending } from "./rollback/confirm.js";
import { isMarked } from "./site/ownership.js";
import { secretDirOf } from "./state/files.js";
import { describeInterrupted, type Interrupted } from "./state/journal.js";
import type { ApplyRecord } from "./state/record.js";
import type { Target } from "./target.js";

/**
 * Crash recovery. An apply may be killed at any instant (kill -9, a dropped SSH session, a
 * reboot). What it leaves behind, and where each is dealt with:
 *
 * - its lock: the next command takes it over, the holder (pid and start time) being gone
 *   (state/lock.ts);
 * - its tools: none outlives it, each runs under `setpriv --pdeathsig` (system/runner.ts);
 * - its journal (state/journal.ts): plan, apply and status say an apply was interrupted, and
 *   everything it names counts as netpol's (site/ownership.ts); the next apply marks the links
 *   it created but had not marked yet, finishes, and says which policy the site now holds
 *   (here);
 * - the 0600 files that were handing keys to `wg`: removed before the next apply starts (here);
 * - a `--confirm` revert whose timer process died too: reverted before the next apply (here,
 *   through rollback/confirm.ts).
 */

/**
 * Before an apply plans, under its lock: leftovers of a killed one go, and a pending revert
 * whose timer is gone is carried out. Says so, when it reverted.
 */
export async function clearLeftovers(
  target: Target,
  /** The policy about to be applied: its own problems are said before the pending revert's. */
  policy: () => Promise<unknown>,
): Promise<string | undefined> {
  await removeStaleSecrets(secretDirOf(target.files));
  return settlePending(target, policy);
}

/**
 * A link a killed apply created but had not marked yet (the journal names it) gets its mark now,
 * before the journal goes: from then on the kernel alone says it is netpol's.
 */
export async function markInFlight(
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

/** What the operator is told once an apply finished what an interrupted one left. */
export function finishedNote(
  interrupted: Interrupted,
  policyHash: string,
  record: ApplyRecord | undefined,
): string {
  const which =
    policyHash === interrupted.policyHash
      ? "the policy that apply was bringing (the new one)"
      : policyHash === record?.policyHash
        ? "the policy in force before it (the old one)"
        : `policy ${policyHash.slice(0, 12)}`;
  return `${describeInterrupted({ ...interrupted, running: false }).split(";")[0]}; the site now holds ${which}`;
}
