import { setTimeout as sleep } from "node:timers/promises";
import { decodeKv, type Etcd, type Kv, prefixEnd } from "./client.js";

export interface WatchEvent {
  readonly type: "put" | "delete";
  readonly kv: Kv;
}

/** Why a watch stopped: etcd no longer has the history it would resume from, or it was stopped. */
export type WatchEnd =
  | { readonly kind: "compacted"; readonly compactRevision: number }
  | { readonly kind: "stopped" };

export interface Watch {
  /** Drops the current stream and resumes on another (the member may be gone without a word). */
  readonly kick: () => void;
  readonly done: Promise<WatchEnd>;
}

interface WatchLine {
  result?: {
    header?: { revision?: string };
    created?: boolean;
    canceled?: boolean;
    compact_revision?: string;
    cancel_reason?: string;
    events?: { type?: string; kv?: Parameters<typeof decodeKv>[0] }[];
  };
}

const RETRY_MS = [200, 500, 1_000, 2_000, 4_000];

/**
 * Follows a key (or every key under a prefix) from `startRevision`: hands over each batch of
 * events with the revision they reach, and when a stream is lost (a member killed, the network
 * cut) opens another from the revision after the last one seen, so no event is missed or seen
 * twice. Ends when etcd compacted the revision it would resume from (the caller reads the
 * current state again) or when `signal` aborts.
 */
export function watch(
  etcd: Etcd,
  key: string,
  opts: {
    readonly prefix?: boolean;
    /** Follows the keys from `key` up to this one (excluded) instead (etcd's range_end). */
    readonly rangeEnd?: string;
    readonly startRevision: number;
  },
  onEvents: (events: readonly WatchEvent[], revision: number) => void,
  signal: AbortSignal,
  onLost: (reason: string) => void = () => undefined,
): Watch {
  let attempt = new AbortController();
  let next = opts.startRevision;
  const done = (async (): Promise<WatchEnd> => {
    for (let failures = 0; !signal.aborted; ) {
      attempt = new AbortController();
      let compacted: number | undefined;
      let sawAny = false;
      const body = {
        create_request: {
          key: Buffer.from(key).toString("base64"),
          ...(opts.rangeEnd !== undefined
            ? { range_end: Buffer.from(opts.rangeEnd).toString("base64") }
            : opts.prefix
              ? { range_end: prefixEnd(key) }
              : {}),
          start_revision: String(next),
        },
      };
      const reason = await etcd.stream(
        "/v3/watch",
        body,
        (text) => {
          const result = (JSON.parse(text) as WatchLine).result;
          if (!result) return;
          sawAny = true;
          if (result.compact_revision && result.compact_revision !== "0") {
            compacted = Number(result.compact_revision);
            attempt.abort();
            return;
          }
          if (result.canceled) {
            attempt.abort();
            return;
          }
          const events = (result.events ?? []).map(
            (e): WatchEvent => ({
              type: e.type === "DELETE" ? "delete" : "put",
              kv: decodeKv(e.kv ?? {}),
            }),
          );
          if (events.length === 0) return;
          const revision = Math.max(...events.map((e) => e.kv.modRevision));
          next = revision + 1;
          onEvents(events, revision);
        },
        AbortSignal.any([signal, attempt.signal]),
      );
      if (compacted !== undefined) return { kind: "compacted", compactRevision: compacted };
      if (signal.aborted) break;
      onLost(reason);
      failures = sawAny ? 0 : failures + 1;
      await sleep(RETRY_MS[Math.min(failures, RETRY_MS.length - 1)] ?? 1_000, undefined, {
        signal,
      }).catch(() => undefined);
    }
    return { kind: "stopped" };
  })();
  return { kick: () => attempt.abort(), done };
}
