import * as z from "zod";
import { snapshotSchema } from "../rollback/snapshot.js";
import type { Target } from "../target.js";
import { readState, removeState, type StateFiles, stateFile, writeJson } from "./files.js";
import { processIdentity } from "./process-identity.js";

/**
 * An apply made with `--confirm` that waits for `netpol confirm`: its deadline, the detached
 * process that reverts it then, and the snapshot to go back to. Holds private keys (WireGuard
 * configs): 0600, as every state file.
 */
const pendingSchema = z.strictObject({
  version: z.literal(1),
  id: z.string().min(1),
  deadline: z.string().datetime(),
  site: z.string().min(1),
  policyHash: z.string(),
  appliedBy: z.string(),
  timer: processIdentity.nullable(),
  snapshot: snapshotSchema,
});
export type Pending = z.infer<typeof pendingSchema>;

const PENDING = ".pending.json";

export const pendingPath = (files: StateFiles) => stateFile(files, PENDING);

export async function loadPending(files: StateFiles): Promise<Pending | undefined> {
  return readState(files, PENDING, "pending confirmation", pendingSchema);
}

export async function writePending(files: StateFiles, pending: Pending): Promise<void> {
  await writeJson(pendingPath(files), pending);
}

/** Nothing is left to confirm or revert: the file goes, and its timer is stopped. */
export async function clearPending({ files, host }: Target, pending: Pending): Promise<void> {
  await removeState(pendingPath(files));
  // The timer may be this very process (it reverts, then exits on its own).
  if (pending.timer && pending.timer.pid !== host.self().pid) host.stop(pending.timer);
}

export const describePending = (p: Pending) =>
  `an apply made with --confirm (policy ${p.policyHash.slice(0, 12)}, by ${p.appliedBy}) awaits confirmation until ${p.deadline}`;
