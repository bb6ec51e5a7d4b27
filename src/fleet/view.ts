import { NetpolError } from "../errors.js";
import {
  type Head,
  headSchema,
  type Ledger,
  type Live,
  ledgerSchema,
  liveSchema,
  readValue,
} from "./documents.js";
import type { Etcd } from "./etcd/client.js";
import { HEAD, REPORTS, reportKeyOf } from "./keys.js";
import { type RolloutView, rolloutView } from "./rollout.js";

/** The fleet as etcd holds it at one revision: the head and every site's reports. */
export interface Fleet {
  readonly revision: number;
  readonly head: Head | undefined;
  readonly ledgers: ReadonlyMap<string, Ledger>;
  readonly lives: ReadonlyMap<string, Live>;
}

/** One transaction, two ranges: the head and every report, at the same revision. */
export async function readFleet(etcd: Etcd): Promise<Fleet> {
  const r = await etcd.txn(
    [],
    [{ range: { key: HEAD } }, { range: { key: REPORTS, prefix: true } }],
  );
  const head = readValue(headSchema, r.ranges[0]?.[0]?.value);
  const ledgers = new Map<string, Ledger>();
  const lives = new Map<string, Live>();
  for (const kv of r.ranges[1] ?? []) {
    const at = reportKeyOf(kv.key);
    if (at?.kind === "ledger") {
      const ledger = readValue(ledgerSchema, kv.value);
      if (ledger) ledgers.set(at.site, ledger);
    } else if (at?.kind === "live") {
      const live = readValue(liveSchema, kv.value);
      if (live) lives.set(at.site, live);
    }
  }
  return { revision: r.revision, head, ledgers, lives };
}

export function rolloutOf(fleet: Fleet): RolloutView {
  if (!fleet.head)
    throw new NetpolError(
      "NETPOL_E_NO_REVISION",
      "nothing has been published to this etcd yet: `netpol publish POLICY --etcd …`",
    );
  return rolloutView(fleet.head, fleet.ledgers, fleet.lives);
}

/** One row of `status --fleet`: a site at a glance. */
export interface FleetRow {
  readonly site: string;
  readonly serial: number | null;
  readonly result: string | null;
  readonly state: string;
  readonly drift: number | null;
  readonly tunnels: { readonly up: number; readonly of: number } | null;
  /** Seconds since its agent last wrote its live report; null without one. */
  readonly reportAgeSeconds: number | null;
  /** No live report: its agent is gone, or cut off from etcd for longer than its lease. */
  readonly stale: boolean;
  readonly message: string | null;
}

export function fleetRows(fleet: Fleet, now: number): FleetRow[] {
  const sites = new Set([
    ...(fleet.head?.sites ?? []),
    ...fleet.ledgers.keys(),
    ...fleet.lives.keys(),
  ]);
  return [...sites].map((site) => {
    const ledger = fleet.ledgers.get(site);
    const live = fleet.lives.get(site);
    return {
      site,
      serial: ledger?.serial ?? null,
      result: ledger?.result ?? null,
      state: live?.state ?? (ledger ? "stale" : "no report"),
      drift: live?.drift ?? null,
      tunnels: live?.tunnels ?? null,
      reportAgeSeconds: live ? Math.max(0, Math.round((now - Date.parse(live.at)) / 1000)) : null,
      stale: live === undefined,
      message:
        live?.message ??
        (ledger ? `last reported revision ${ledger.serial} at ${ledger.at}` : null),
    };
  });
}

/**
 * Whether every site runs `serial` in force and its agent is alive. A site still held by the
 * rollout, failed, or silent is not settled: `status --fleet` tells a script by this. Drift is
 * not counted: it is what the last round found and put right.
 */
export const fleetSettled = (rows: readonly FleetRow[], serial: number | undefined): boolean =>
  serial !== undefined &&
  rows.every((r) => r.serial === serial && r.state === "in force" && !r.stale);
