import * as z from "zod";
import { readText, stateFile, writeState } from "../../apply/state/files.js";
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

/** The contact report of the site's agent, or undefined when this site is no fleet's. */
export async function readContact(target: Target): Promise<ContactReport | undefined> {
  const text = await readText(stateFile(target.files, CONTACT)).catch(() => undefined);
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
 */
export class ContactWriter {
  readonly #target: Target;
  readonly #report: Omit<ContactReport, "lastContact">;
  #lastContact: string | null = null;
  #writing: Promise<void> = Promise.resolve();
  /** The write not started yet, which takes the latest contact when it starts. */
  #queued: Promise<void> | undefined;

  constructor(target: Target, endpoints: readonly string[], staleAfterSeconds: number) {
    this.#target = target;
    this.#report = { writer: target.host.self(), endpoints: [...endpoints], staleAfterSeconds };
  }

  async start(): Promise<void> {
    this.#lastContact ??= (await readContact(this.#target))?.lastContact ?? null;
    await this.#write();
  }

  /** Resolves once a report holding this contact is written (or its write failed). */
  contact(): Promise<void> {
    this.#lastContact = new Date(this.#target.host.now()).toISOString();
    this.#queued ??= this.#writing = this.#writing
      .then(() => {
        this.#queued = undefined;
        return this.#write();
      })
      .catch(() => undefined);
    return this.#queued;
  }

  #write(): Promise<void> {
    const report: ContactReport = { ...this.#report, lastContact: this.#lastContact };
    return writeState(stateFile(this.#target.files, CONTACT), `${JSON.stringify(report)}\n`, false);
  }
}
