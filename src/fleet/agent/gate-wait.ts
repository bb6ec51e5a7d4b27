import { type Ledger, ledgerSchema, readValue } from "../documents.js";
import type { Etcd } from "../etcd/client.js";
import { watch } from "../etcd/watch.js";
import { ledgerKey, reportKeyOf } from "../keys.js";
import { type Gate, type GateInput, gate } from "../rollout.js";

/** Ranges per transaction when reading the wave before: below etcd's 128 operations. */
const CHUNK = 64;

/** The ledgers of `sites`, read at one revision per chunk; the highest revision read. */
async function readLedgers(
  etcd: Etcd,
  sites: readonly string[],
): Promise<{ ledgers: Map<string, Ledger>; revision: number }> {
  const ledgers = new Map<string, Ledger>();
  let revision = 0;
  for (let i = 0; i < sites.length; i += CHUNK) {
    const chunk = sites.slice(i, i + CHUNK);
    const r = await etcd.txn(
      [],
      chunk.map((site) => ({ range: { key: ledgerKey(site) } })),
    );
    revision = Math.max(revision, r.revision);
    chunk.forEach((site, j) => {
      const ledger = readValue(ledgerSchema, r.ranges[j]?.[0]?.value);
      if (ledger) ledgers.set(site, ledger);
    });
  }
  return { ledgers, revision };
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
 * Waits until the site's wave may start, or the rollout stopped before it: reads the wave
 * before once, then follows its ledgers until the gate decides. Undefined when `signal`
 * aborts (a newer revision came). Each waiting site reads only the wave before it.
 */
export async function waitForGate(
  etcd: Etcd,
  input: GateInput,
  signal: AbortSignal,
  waiting: (sites: readonly string[]) => void,
): Promise<Exclude<Gate, { kind: "waiting" }> | undefined> {
  const after = new Set(input.after);
  while (!signal.aborted) {
    const { ledgers, revision } = await readLedgers(etcd, input.after);
    const first = gate(input, ledgers);
    if (first.kind !== "waiting") return first;
    waiting(first.waitingFor);
    const stop = new AbortController();
    const both = AbortSignal.any([signal, stop.signal]);
    let decided: Exclude<Gate, { kind: "waiting" }> | undefined;
    const { key, rangeEnd } = ledgerRange(input.after);
    const w = watch(
      etcd,
      key,
      { rangeEnd, startRevision: revision + 1 },
      (events) => {
        for (const e of events) {
          const at = reportKeyOf(e.kv.key);
          if (at?.kind !== "ledger" || !after.has(at.site)) continue;
          const ledger = e.type === "put" ? readValue(ledgerSchema, e.kv.value) : undefined;
          if (ledger) ledgers.set(at.site, ledger);
        }
        const g = gate(input, ledgers);
        if (g.kind !== "waiting") {
          decided = g;
          stop.abort();
        }
      },
      both,
    );
    const end = await w.done;
    if (decided) return decided;
    // Compacted past the revision it would resume from: read the wave again.
    if (end.kind === "stopped") break;
  }
  return undefined;
}
