import type { Head, Ledger, Live } from "./documents.js";

/**
 * The rollout, decided from what is in etcd alone: no process drives it. A site of wave k
 * starts once every site of wave k-1 reported the revision; each site's ledger carries the
 * failures counted before its wave, so a wave needs only the wave before it. The sites of the
 * first wave start at once. Pure: the agent and `rollout status` decide alike.
 */

export type Gate =
  | { readonly kind: "open"; readonly failuresBefore: number }
  | { readonly kind: "waiting"; readonly waitingFor: readonly string[] }
  | { readonly kind: "halted"; readonly failed: readonly string[]; readonly failures: number };

export interface GateInput {
  readonly serial: number;
  readonly wave: number;
  /** The sites of the wave before. */
  readonly after: readonly string[];
  readonly failureBudget: number;
}

/** Whether a site of `wave` may apply `serial`, given the sites' ledgers. */
export function gate(input: GateInput, ledgers: ReadonlyMap<string, Ledger>): Gate {
  if (input.wave === 0 || input.after.length === 0) return { kind: "open", failuresBefore: 0 };
  const waitingFor: string[] = [];
  const failed: string[] = [];
  let before = 0;
  for (const site of input.after) {
    const ledger = ledgers.get(site);
    if (!ledger || ledger.serial < input.serial) {
      waitingFor.push(site);
      continue;
    }
    // A later revision at that site supersedes this rollout: it counts as reached.
    if (ledger.serial > input.serial) continue;
    before = Math.max(before, ledger.failuresBefore);
    if (ledger.result === "failed") failed.push(site);
  }
  const failures = before + failed.length;
  // A failure past the budget stops the rollout at once, whoever is still applying.
  if (failures > input.failureBudget) return { kind: "halted", failed, failures };
  if (waitingFor.length > 0) return { kind: "waiting", waitingFor };
  return { kind: "open", failuresBefore: failures };
}

/** The gate of wave `wave` of the revision `head` describes. */
export function gateOfWave(head: Head, wave: number, ledgers: ReadonlyMap<string, Ledger>): Gate {
  return gate(
    {
      serial: head.serial,
      wave,
      after: head.waves[wave - 1] ?? [],
      failureBudget: head.failureBudget,
    },
    ledgers,
  );
}

export type SiteState =
  /** Applied this revision, or found it already in force. */
  | "done"
  | "failed"
  /** Its wave has not started yet. */
  | "queued"
  /** Its wave started; it has not reported yet. */
  | "pending"
  /** The rollout stopped before its wave. */
  | "held";

export interface SiteRollout {
  readonly site: string;
  readonly wave: number;
  readonly state: SiteState;
  /** The last revision it reported, and how. */
  readonly ledger: Ledger | undefined;
  /** Its agent's report, absent when the agent is gone (its lease expired) or never started. */
  readonly live: Live | undefined;
}

export type Progress =
  | { readonly kind: "complete" }
  | { readonly kind: "running"; readonly wave: number; readonly waitingFor: readonly string[] }
  | {
      readonly kind: "halted";
      readonly wave: number;
      readonly failed: readonly string[];
      readonly failures: number;
    };

export interface RolloutView {
  readonly head: Head;
  readonly progress: Progress;
  readonly sites: readonly SiteRollout[];
}

/**
 * The rollout of `head` as the reports tell it: how far it got, and each site's part. The gate
 * after the last wave says whether the rollout is complete (or ended past its budget).
 */
export function rolloutView(
  head: Head,
  ledgers: ReadonlyMap<string, Ledger>,
  lives: ReadonlyMap<string, Live>,
): RolloutView {
  let progress: Progress = { kind: "complete" };
  let started = head.waves.length;
  for (let w = 1; w <= head.waves.length; w++) {
    const g = gateOfWave(head, w, ledgers);
    if (g.kind === "open") continue;
    started = w;
    progress =
      g.kind === "halted"
        ? { kind: "halted", wave: w - 1, failed: g.failed, failures: g.failures }
        : { kind: "running", wave: w - 1, waitingFor: g.waitingFor };
    break;
  }
  const halted = progress.kind === "halted";
  const sites = head.waves.flatMap((wave, w) =>
    wave.map((site): SiteRollout => {
      const ledger = ledgers.get(site);
      const reached = ledger !== undefined && ledger.serial >= head.serial;
      const failed = reached && ledger.serial === head.serial && ledger.result === "failed";
      const state: SiteState = reached
        ? failed
          ? "failed"
          : "done"
        : w < started
          ? "pending"
          : halted
            ? "held"
            : "queued";
      return { site, wave: w, state, ledger, live: lives.get(site) };
    }),
  );
  return { head, progress, sites };
}
