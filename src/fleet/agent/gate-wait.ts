import { type Ledger, ledgerSchema, readValue } from "../documents.js";
import type { Etcd } from "../etcd/client.js";
import type { Follower } from "../etcd/follow.js";
import { ledgerKey, reportKeyOf } from "../keys.js";
import { type Gate, type GateInput, gate } from "../rollout.js";

/** Ranges per transaction when reading the wave before: below etcd's 128 operations. */
const CHUNK = 64;

/** The ledgers read or heard of, and the revision of etcd that wrote each. */
interface Ledgers {
  readonly ledgers: Map<string, Ledger>;
  readonly at: Map<string, number>;
}

/**
 * The ledgers of `sites`, read at one revision per chunk; the lowest revision read: events
 * from there on may be newer than a chunk's read (those that are not are told by `at`).
 */
async function readLedgers(
  etcd: Etcd,
  sites: readonly string[],
): Promise<Ledgers & { revision: number }> {
  const ledgers = new Map<string, Ledger>();
  const at = new Map<string, number>();
  let revision = Number.POSITIVE_INFINITY;
  for (let i = 0; i < sites.length; i += CHUNK) {
    const chunk = sites.slice(i, i + CHUNK);
    const r = await etcd.txn(
      [],
      chunk.map((site) => ({ range: { key: ledgerKey(site) } })),
    );
    revision = Math.min(revision, r.revision);
    chunk.forEach((site, j) => {
      const kv = r.ranges[j]?.[0];
      const ledger = readValue(ledgerSchema, kv?.value);
      if (!ledger || !kv) return;
      ledgers.set(site, ledger);
      at.set(site, kv.modRevision);
    });
  }
  return { ledgers, at, revision: Number.isFinite(revision) ? revision : 0 };
}

/**
 * The keys from the first to the last ledger of `sites`, in etcd's (byte) order: what a waiting
 * site follows. Not every report: while a wave of 1,000 sites waits, each of them writes its
 * live report ("waiting"), and a watch on all reports handed each of those 1,000 writes to each
 * of the 1,000 waiting sites (a million events for etcd to send and the agents to parse: the
 * first rollout at 1,000 sites took minutes, bench/fleet.ts). Between the first and the last
 * ledger there are only the reports of sites named alike; the waves before are usually few.
 */
function ledgerRange(sites: readonly string[]): { key: string; rangeEnd: string } {
  const keys = sites.map(ledgerKey).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return { key: keys[0] ?? "", rangeEnd: `${keys[keys.length - 1] ?? ""}\0` };
}

/**
 * Waits until the site's wave may start, or the rollout stopped before it: follows the wave
 * before's ledgers, reads them once, then goes on with what it hears until the gate decides.
 * Undefined when `signal` aborts (a newer revision came). Each waiting site reads only the wave
 * before it.
 */
export async function waitForGate(
  etcd: Etcd,
  watches: Follower,
  input: GateInput,
  signal: AbortSignal,
  waiting: (sites: readonly string[]) => void,
): Promise<Exclude<Gate, { kind: "waiting" }> | undefined> {
  const after = new Set(input.after);
  while (!signal.aborted) {
    const stop = new AbortController();
    let known: Ledgers | undefined;
    let decided: Exclude<Gate, { kind: "waiting" }> | undefined;
    const w = watches.follow(
      ledgerRange(input.after),
      (events) => {
        if (!known || decided) return;
        for (const e of events) {
          const of = reportKeyOf(e.kv.key);
          if (of?.kind !== "ledger" || !after.has(of.site)) continue;
          // A chunk read after this write already holds it, or a newer one.
          if ((known.at.get(of.site) ?? 0) >= e.kv.modRevision) continue;
          const ledger = e.type === "put" ? readValue(ledgerSchema, e.kv.value) : undefined;
          if (!ledger) continue;
          known.ledgers.set(of.site, ledger);
          known.at.set(of.site, e.kv.modRevision);
        }
        const g = gate(input, known.ledgers);
        if (g.kind !== "waiting") {
          decided = g;
          stop.abort();
        }
      },
      AbortSignal.any([signal, stop.signal]),
    );
    try {
      const read = await readLedgers(etcd, input.after);
      const first = gate(input, read.ledgers);
      if (first.kind !== "waiting") return first;
      waiting(first.waitingFor);
      known = read;
      w.from(read.revision + 1);
      const end = await w.done;
      if (decided) return decided;
      // Compacted past the revision it would resume from: read the wave again.
      if (end.kind === "stopped") break;
    } finally {
      stop.abort();
    }
  }
  return undefined;
}
