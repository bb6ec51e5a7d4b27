import { setTimeout as sleep } from "node:timers/promises";
import { VERSION } from "../../version.js";
import type { Ledger, Live } from "../documents.js";
import type { Etcd } from "../etcd/client.js";
import { ledgerKey, liveKey } from "../keys.js";

export type LiveFields = Omit<Live, "at" | "version">;

/** etcd forgot the lease: it expired while the agent was slow or cut off from etcd. */
const LEASE_GONE = /requested lease not found/;

/**
 * The site's reports. The live report sits under a lease the agent keeps alive, so when the
 * agent dies, or loses etcd for longer than the lease, the report goes and the fleet sees the
 * site as stale. A keepalive that gets no answer tells the agent (`lost`): its watch may hang
 * on a member that is gone without a word. The ledger is kept: what the site last applied.
 */
export class Reporter {
  readonly #etcd: Etcd;
  readonly #site: string;
  readonly #ttl: number;
  readonly #lost: (reason: string) => void;
  readonly #contact: () => void;
  #lease: string | undefined;
  #live: LiveFields;
  #writing: Promise<void> = Promise.resolve();

  constructor(
    etcd: Etcd,
    site: string,
    ttlSeconds: number,
    hooks: { lost: (reason: string) => void; contact: () => void },
    initial: LiveFields,
  ) {
    this.#etcd = etcd;
    this.#site = site;
    this.#ttl = ttlSeconds;
    this.#lost = hooks.lost;
    this.#contact = hooks.contact;
    this.#live = initial;
  }

  get live(): LiveFields {
    return this.#live;
  }

  /**
   * Writes the live report, then keeps its lease alive every third of its TTL until `signal`
   * aborts, then revokes it (the report goes at once, not a TTL later).
   */
  async keepAlive(signal: AbortSignal): Promise<void> {
    const every = Math.max(500, (this.#ttl * 1000) / 3);
    await this.update({}).catch((err: unknown) =>
      this.#lost(err instanceof Error ? err.message : String(err)),
    );
    while (!signal.aborted) {
      await sleep(every, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) break;
      try {
        if (this.#lease === undefined) {
          await this.update({});
          continue;
        }
        const left = await this.#etcd.leaseKeepAlive(this.#lease);
        this.#contact();
        // Expired while etcd was out of reach: the report went with it; put it back.
        if (left <= 0) {
          this.#lease = undefined;
          await this.update({});
        }
      } catch (err) {
        this.#lost(err instanceof Error ? err.message : String(err));
      }
    }
    if (this.#lease !== undefined) await this.#etcd.leaseRevoke(this.#lease);
  }

  /** Changes the live report and writes it (one write at a time, in order). */
  update(fields: Partial<LiveFields>): Promise<void> {
    this.#live = { ...this.#live, ...fields };
    this.#writing = this.#writing.catch(() => undefined).then(() => this.#write());
    return this.#writing;
  }

  /** The ledger entry and the live report in one transaction: one revision of etcd. */
  async record(ledger: Ledger, fields: Partial<LiveFields>): Promise<void> {
    this.#live = { ...this.#live, ...fields };
    this.#writing = this.#writing
      .catch(() => undefined)
      .then(async () => {
        await this.#underLease((lease) =>
          this.#etcd.txn(
            [],
            [
              { put: { key: ledgerKey(this.#site), value: JSON.stringify(ledger) } },
              { put: { key: liveKey(this.#site), value: this.#liveText(), lease } },
            ],
          ),
        );
        this.#contact();
      });
    return this.#writing;
  }

  async #write(): Promise<void> {
    await this.#underLease((lease) => this.#etcd.put(liveKey(this.#site), this.#liveText(), lease));
    this.#contact();
  }

  /**
   * A write under the report's lease; under a new one when etcd forgot it (expired between two
   * keepalives that came late, on a loaded machine or after an outage), which it says only when
   * a write names it: the write was refused, nothing written.
   */
  async #underLease<T>(write: (lease: string) => Promise<T>): Promise<T> {
    try {
      return await write(await this.#leaseId());
    } catch (err) {
      if (!(err instanceof Error) || !LEASE_GONE.test(err.message)) throw err;
      this.#lease = undefined;
      return write(await this.#leaseId());
    }
  }

  async #leaseId(): Promise<string> {
    this.#lease ??= await this.#etcd.leaseGrant(this.#ttl);
    return this.#lease;
  }

  #liveText(): string {
    const live: Live = { ...this.#live, at: new Date().toISOString(), version: VERSION };
    return JSON.stringify(live);
  }
}
