import * as z from "zod";
import { readState, type StateFiles, stateFile, writeJson } from "../../apply/state/files.js";

/**
 * What the agent remembers between runs, beside the apply record: the last fleet revision it
 * took up and whether that finished, so a restarted agent never applies a revision twice. When it
 * last heard from etcd is in the contact report (contact.ts), which status reads.
 */
const localSchema = z.strictObject({
  version: z.literal(1),
  serial: z.number().int().min(0),
  /** `applying` until the revision's outcome is known: a crash in between is finished, not redone. */
  phase: z.enum(["applying", "done"]),
  result: z.enum(["applied", "unchanged", "failed"]).optional(),
  hash: z.string(),
  failuresBefore: z.number().int().min(0),
  error: z.string().optional(),
  at: z.string(),
  /** The etcd members it follows. */
  endpoints: z.array(z.string()),
  /** Written by agents before the contact report; read by none, accepted so their files load. */
  lastContact: z.string().optional(),
});
export type LocalState = z.infer<typeof localSchema>;

const SUFFIX = ".fleet.json";

export const localPath = (files: StateFiles) => stateFile(files, SUFFIX);

export function loadLocal(files: StateFiles): Promise<LocalState | undefined> {
  return readState(files, SUFFIX, "fleet agent state", localSchema);
}

export function saveLocal(files: StateFiles, state: LocalState): Promise<void> {
  return writeJson(localPath(files), state);
}
