import type { Etcd } from "./client.js";
import type { Follower, Following, KeyRange } from "./follow.js";
import { type Watch, type WatchEnd, type WatchEvent, watch } from "./watch.js";

/** Opens the one stream a hub shares, from `startRevision`: etcd/watch's, or a test's. */
export type OpenStream = (
  startRevision: number,
  onEvents: (events: readonly WatchEvent[], revision: number) => void,
  signal: AbortSignal,
) => Watch;

interface Subscriber {
  readonly onEvents: (events: readonly WatchEvent[]) => void;
  /** Unset until the subscriber's read is done: events meanwhile wait in `held`. */
  from: number | undefined;
  held: WatchEvent[];
  /** Gone (stopped, or told of a compaction): handed nothing more. */
  left: boolean;
  readonly end: (e: WatchEnd) => void;
}

/** Many agents' ranges, grouped: a wave of sites waiting on the same ledgers is one entry. */
interface RangeEntry {
  readonly key: Buffer;
  readonly end: Buffer;
  readonly subscribers: Set<Subscriber>;
}

/** A hub kicked by many agents at once (etcd went away for them all) reconnects once. */
const KICK_EVERY_MS = 1_000;

/**
 * One etcd watch stream shared by the agents of one process (bench/fleet.ts runs thousands in
 * a few): the JSON gateway carries one HTTP connection per watch, and etcd could not carry one
 * per agent at 10,000. Each subscriber is handed only the events of its own key or range, from
 * the revision after its own read. When the stream's history was compacted, every subscriber
 * is told so (each reads its keys again, as with a watch of its own) and the stream goes on
 * from the compaction.
 */
export class WatchHub implements Follower {
  readonly #open: OpenStream;
  readonly #signal: AbortSignal;
  readonly #keys = new Map<string, Set<Subscriber>>();
  readonly #ranges = new Map<string, RangeEntry>();
  #stream: Watch | undefined;
  #kicked = 0;

  /** Follows everything from `startRevision` on (the revision after a read of the hub's range). */
  constructor(open: OpenStream, startRevision: number, signal: AbortSignal) {
    this.#open = open;
    this.#signal = signal;
    void this.#run(startRevision);
  }

  follow(
    range: KeyRange,
    onEvents: (events: readonly WatchEvent[]) => void,
    signal: AbortSignal,
  ): Following {
    let end: (e: WatchEnd) => void = () => undefined;
    const done = new Promise<WatchEnd>((resolve) => {
      end = resolve;
    });
    const sub: Subscriber = {
      onEvents,
      from: undefined,
      held: [],
      left: false,
      end: () => undefined,
    };
    const group = this.#group(range);
    const leave = (e: WatchEnd) => {
      if (sub.left) return;
      sub.left = true;
      group.delete(sub);
      if (group.size === 0) this.#forget(range, group);
      signal.removeEventListener("abort", stop);
      end(e);
    };
    const stop = () => leave({ kind: "stopped" });
    Object.assign(sub, { end: leave });
    if (signal.aborted || this.#signal.aborted) leave({ kind: "stopped" });
    else {
      group.add(sub);
      signal.addEventListener("abort", stop, { once: true });
    }
    return {
      from: (revision) => {
        sub.from = revision;
        const held = sub.held;
        sub.held = [];
        this.#hand(sub, held);
      },
      kick: () => this.#kick(),
      done,
    };
  }

  async #run(startRevision: number): Promise<void> {
    let next = startRevision;
    while (!this.#signal.aborted) {
      this.#stream = this.#open(next, (events) => this.#dispatch(events), this.#signal);
      const end = await this.#stream.done;
      if (end.kind !== "compacted") break;
      // The revisions between the last one handed over and the compaction are gone for every
      // subscriber: each reads its keys again; the stream goes on from what etcd still holds.
      next = end.compactRevision;
      for (const sub of this.#subscribers()) sub.end(end);
    }
    for (const sub of this.#subscribers()) sub.end({ kind: "stopped" });
  }

  #dispatch(events: readonly WatchEvent[]): void {
    const batches = new Map<Subscriber, WatchEvent[]>();
    const add = (subs: Iterable<Subscriber>, e: WatchEvent) => {
      for (const sub of subs) {
        const batch = batches.get(sub);
        if (batch) batch.push(e);
        else batches.set(sub, [e]);
      }
    };
    for (const e of events) {
      const exact = this.#keys.get(e.kv.key);
      if (exact) add(exact, e);
      if (this.#ranges.size === 0) continue;
      const key = Buffer.from(e.kv.key);
      for (const r of this.#ranges.values())
        if (Buffer.compare(key, r.key) >= 0 && Buffer.compare(key, r.end) < 0)
          add(r.subscribers, e);
    }
    for (const [sub, batch] of batches) {
      if (sub.from === undefined) sub.held.push(...batch);
      else this.#hand(sub, batch);
    }
  }

  /** The events from the subscriber's own revision on: those before were in its read. */
  #hand(sub: Subscriber, events: readonly WatchEvent[]): void {
    if (sub.left) return;
    const from = sub.from ?? 0;
    const fresh = events.filter((e) => e.kv.modRevision >= from);
    if (fresh.length > 0) sub.onEvents(fresh);
  }

  #kick(): void {
    const now = Date.now();
    if (now - this.#kicked < KICK_EVERY_MS) return;
    this.#kicked = now;
    this.#stream?.kick();
  }

  #group(range: KeyRange): Set<Subscriber> {
    if (range.rangeEnd === undefined) {
      const subs = this.#keys.get(range.key) ?? new Set<Subscriber>();
      this.#keys.set(range.key, subs);
      return subs;
    }
    const id = `${range.key}\0${range.rangeEnd}`;
    let entry = this.#ranges.get(id);
    if (!entry) {
      entry = {
        key: Buffer.from(range.key),
        end: Buffer.from(range.rangeEnd),
        subscribers: new Set(),
      };
      this.#ranges.set(id, entry);
    }
    return entry.subscribers;
  }

  /** Drops an empty group, unless a newer one took its place. */
  #forget(range: KeyRange, group: Set<Subscriber>): void {
    if (range.rangeEnd === undefined) {
      if (this.#keys.get(range.key) === group) this.#keys.delete(range.key);
      return;
    }
    const id = `${range.key}\0${range.rangeEnd}`;
    if (this.#ranges.get(id)?.subscribers === group) this.#ranges.delete(id);
  }

  #subscribers(): Subscriber[] {
    return [
      ...[...this.#keys.values()].flatMap((s) => [...s]),
      ...[...this.#ranges.values()].flatMap((r) => [...r.subscribers]),
    ];
  }
}

/** A hub over every key under `prefix`, from etcd's revision now. */
export async function shareWatch(
  etcd: Etcd,
  prefix: string,
  signal: AbortSignal,
): Promise<WatchHub> {
  // Any read says etcd's revision; this key is none of the hub's, so nothing comes back.
  const { revision } = await etcd.get(prefix);
  return new WatchHub(
    (startRevision, onEvents, s) =>
      watch(etcd, prefix, { prefix: true, startRevision }, onEvents, s),
    revision + 1,
    signal,
  );
}
