import * as z from "zod";
import { readText, type StateFiles, stateFile, writeState } from "../../apply/state/files.js";
import { processIdentity } from "../../apply/state/process-identity.js";
import type { Target } from "../../apply/target.js";
import { readValue } from "../documents.js";

/**
 * When the site's agent last heard from etcd, for the site's own status: a site cut off from
 * the control plane keeps its policy, and says it may be stale. Written (not fsynced: it is a
 * report, rewritten at each contact) by the agent at start and each time etcd answers it; read
 * by `status`, serve's `/status` and `/metrics`. It outlives the agent on purpose: an agent that
 * stopped follows etcd no more, and its site says so.
 */
const CONTACT = ".fleet-contact.json";

const contactSchema = z.strictObject({
  writer: processIdentity,
  endpoints: z.array(z.string()),
  /** Past this many seconds without an answer from etcd the site says it is stale: the lease's TTL. */
  staleAfterSeconds: z.number().int().positive(),
  /** The last time an etcd member answered; null: never, since this site joined the fleet. */
  lastContact: z.string().nullable(),
});
export type ContactReport = z.infer<typeof contactSchema>;

/** What the site's status says of its fleet agent's contact with etcd. */
export interface FleetContactStatus {
  readonly endpoints: readonly string[];
  readonly lastContact: string | null;
  readonly lastContactAgeSeconds: number | null;
  readonly staleAfterSeconds: number;
  readonly agentRunning: boolean;
  /** The policy here may be behind what was published: no contact within the threshold. */
  readonly stale: boolean;
  readonly message: string;
}

export const contactPath = (files: StateFiles) => stateFile(files, CONTACT);

/** The contact report of the site's agent, or undefined when this site is no fleet's. */
export async function readContact(target: Target): Promise<ContactReport | undefined> {
  const text = await readText(contactPath(target.files)).catch(() => undefined);
  return readValue(contactSchema, text);
}

/** The report as the status shows it at `now` (ms). */
export function contactStatus(
  target: Target,
  report: ContactReport,
  now: number,
): FleetContactStatus {
  const agentRunning = target.host.isRunning(report.writer);
  const age =
    report.lastContact === null
      ? null
      : Math.max(0, Math.floor((now - Date.parse(report.lastContact)) / 1000));
  const stale = !agentRunning || age === null || age > report.staleAfterSeconds;
  const heard =
    age === null ? "never reached etcd" : `last reached etcd ${age}s ago (${report.lastContact})`;
  const agent = agentRunning ? `agent pid ${report.writer.pid}` : "the agent is not running";
  return {
    endpoints: report.endpoints,
    lastContact: report.lastContact,
    lastContactAgeSeconds: age,
    staleAfterSeconds: report.staleAfterSeconds,
    agentRunning,
    stale,
    message: stale
      ? `fleet: STALE: ${heard}, ${agent}; the site keeps the policy in force, which may be behind what was published (stale after ${report.staleAfterSeconds}s without etcd)`
      : `fleet: ${heard}, ${agent}`,
  };
}

/**
 * The agent's side: `contact()` at each answer from etcd rewrites the report (one write at a
 * time; answers that come during a write make one more, with the latest time). `start()`
 * writes it at once, keeping the last contact a previous agent saw. A write that fails is a
 * report lost, not an error of the agent: the next contact writes again.
 *
 * In a rollout etcd answers each agent several times within a second or two (its reports, its
 * ledger), and a write per answer was among its largest costs there: an answer within a
 * tenth of the TTL of the last one written is not written. The report then lags the true
 * contact by less than that tenth, so a site may say STALE that much early, never late; the
 * first answer after a start, or after a write that failed, is always written.
 */
export class ContactWriter {
  readonly #target: Target;
  readonly #report: Omit<ContactReport, "lastContact">;
  #lastContact: string | null = null;
  #writing: Promise<void> = Promise.resolve();
  /** The write not started yet, which takes the latest contact when it starts. */
  #queued: Promise<void> | undefined;
  /** The time (ms) of the last answer a write was queued for; undefined: none yet, or it failed. */
  #queuedAt: number | undefined;
  /** How close to the last one written an answer is not written again (ms). */
  readonly #coalesceMs: number;

  constructor(target: Target, endpoints: readonly string[], staleAfterSeconds: number) {
    this.#target = target;
    this.#report = { writer: target.host.self(), endpoints: [...endpoints], staleAfterSeconds };
    this.#coalesceMs = (staleAfterSeconds * 1000) / 10;
  }

  async start(): Promise<void> {
    this.#lastContact ??= (await readContact(this.#target))?.lastContact ?? null;
    await this.#write();
  }

  /**
   * Resolves once a report holding this contact, or one less than a tenth of the TTL older, is
   * written (or its write failed).
   */
  contact(): Promise<void> {
    const now = this.#target.host.now();
    this.#lastContact = new Date(now).toISOString();
    if (this.#queued) return this.#queued;
    // A clock set back writes at once rather than wait for the old time to come again.
    if (this.#queuedAt !== undefined && Math.abs(now - this.#queuedAt) < this.#coalesceMs) {
      return this.#writing;
    }
    this.#queuedAt = now;
    this.#queued = this.#writing = this.#writing
      .then(() => {
        this.#queued = undefined;
        return this.#write();
      })
      .catch(() => {
        this.#queuedAt = undefined;
      });
    return this.#queued;
  }

  #write(): Promise<void> {
    const report: ContactReport = { ...this.#report, lastContact: this.#lastContact };
    return writeState(stateFile(this.#target.files, CONTACT), `${JSON.stringify(report)}\n`, false);
  }
}
