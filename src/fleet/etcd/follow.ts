import type { Etcd } from "./client.js";
import { type Watch, type WatchEvent, watch } from "./watch.js";

/** Keys from `key` up to `rangeEnd` (excluded, etcd's byte order); one key without it. */
export interface KeyRange {
  readonly key: string;
  readonly rangeEnd?: string;
}

/** A watch begun before the caller's read: `from` says the revision after that read. */
export interface Following extends Watch {
  /** Events below `revision` are the read's (dropped); from it on they are handed over. */
  readonly from: (revision: number) => void;
}

/**
 * How an agent follows its keys. Following begins before the read it resumes from, so that a
 * shared watch (watch-hub.ts), which is already past that read's revision, misses nothing.
 */
export interface Follower {
  follow(
    range: KeyRange,
    onEvents: (events: readonly WatchEvent[]) => void,
    signal: AbortSignal,
  ): Following;
}

/** A watch stream of its own for each caller (one `netpol agent` follows a few keys). */
export function ownWatches(etcd: Etcd): Follower {
  return {
    follow(range, onEvents, signal) {
      let started: Watch | undefined;
      let begin: (w: Watch) => void = () => undefined;
      const ready = new Promise<Watch>((resolve) => {
        begin = resolve;
      });
      const none: Watch = { kick: () => undefined, done: Promise.resolve({ kind: "stopped" }) };
      const stopped = new Promise<Watch>((resolve) => {
        if (signal.aborted) resolve(none);
        else signal.addEventListener("abort", () => resolve(none), { once: true });
      });
      return {
        from(revision) {
          if (started || signal.aborted) return;
          started = watch(
            etcd,
            range.key,
            {
              startRevision: revision,
              ...(range.rangeEnd !== undefined ? { rangeEnd: range.rangeEnd } : {}),
            },
            onEvents,
            signal,
          );
          begin(started);
        },
        kick: () => started?.kick(),
        done: Promise.race([ready, stopped]).then((w) => w.done),
      };
    },
  };
}
