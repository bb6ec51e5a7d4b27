import * as z from "zod";
import type { Plan } from "../../plan/types.js";
import { type Host, isoTime } from "../host.js";
import type { Target } from "../target.js";
import { readState, removeState, type StateFiles, stateFile, writeJson } from "./files.js";
import { processIdentity } from "./process-identity.js";
import { addressEntry, fromAddress, sysctlEntry } from "./schemas.js";

/**
 * Written (atomically, fsynced) before an apply changes anything: what it is about to create.
 * If the apply is killed, the next one finds it, counts all of it as netpol's, and finishes.
 */
const journalSchema = z.strictObject({
  version: z.literal(1),
  writer: processIdentity,
  startedAt: z.string(),
  site: z.string().min(1),
  policyHash: z.string(),
  appliedBy: z.string(),
  links: z.array(z.string().min(1)),
  addresses: z.array(addressEntry),
  sysctls: z.array(sysctlEntry),
  /**
   * Caddy's admin address, when the apply writes proxy routes: a write Caddy does not answer
   * may land later, and status looks there for netpol's routes that no record explains.
   */
  proxy: z.string().optional(),
});
export type Journal = z.infer<typeof journalSchema>;

const JOURNAL = ".journal.json";

export async function loadJournal(files: StateFiles): Promise<Journal | undefined> {
  return readState(files, JOURNAL, "apply journal", journalSchema);
}

export async function writeJournal(
  { files, host }: Target,
  plan: Plan,
  policyHash: string,
  appliedBy: string,
): Promise<void> {
  const journal: Journal = {
    version: 1,
    writer: host.self(),
    startedAt: isoTime(host),
    site: plan.site,
    policyHash,
    appliedBy,
    links: plan.changes.flatMap((c) => (c.kind === "link" && c.op === "add" ? [c.link.name] : [])),
    addresses: plan.changes.flatMap((c) =>
      c.kind === "address" && c.op === "add" ? [fromAddress(c.address)] : [],
    ),
    sysctls: plan.changes.flatMap((c) =>
      c.kind === "sysctl" && c.from !== undefined
        ? [{ key: c.key, original: c.from, value: c.to }]
        : [],
    ),
    ...(plan.proxy ? { proxy: plan.proxy.admin } : {}),
  };
  await writeJson(stateFile(files, JOURNAL), journal);
}

export async function clearJournal(files: StateFiles): Promise<void> {
  await removeState(stateFile(files, JOURNAL));
}

/** An apply that left its journal behind: still running, or killed on the way. */
export interface Interrupted {
  readonly startedAt: string;
  readonly policyHash: string;
  readonly appliedBy: string;
  readonly running: boolean;
}

export function interruptedBy(journal: Journal | undefined, host: Host): Interrupted | undefined {
  if (!journal) return undefined;
  const { startedAt, policyHash, appliedBy } = journal;
  return { startedAt, policyHash, appliedBy, running: host.isRunning(journal.writer) };
}

export function describeInterrupted(i: Interrupted): string {
  return i.running
    ? `an apply (policy ${i.policyHash.slice(0, 12)}, by ${i.appliedBy}) is under way since ${i.startedAt}`
    : `an apply (policy ${i.policyHash.slice(0, 12)}, by ${i.appliedBy}, started ${i.startedAt}) was interrupted; \`netpol apply\` brings the site to a complete state`;
}
