import { cachedInForce } from "../apply/state/compiled-cache.js";
import type { StateFiles } from "../apply/state/files.js";
import { type ApplyRecord, loadRecord } from "../apply/state/record.js";
import type { Target } from "../apply/target.js";
import type { HealthEvent } from "../health/monitor.js";
import { type Supervisor, superviseHealth } from "../health/supervise.js";
import type { Intent } from "../policy/intent.js";
import { createSpawner } from "../system/spawner.js";
import { recordStamp } from "./in-force-memo.js";

/** The health supervisor of the policy in force, as a resident's host keeps it. */
export interface HealthFollower {
  /** Starts the monitor of the policy in force if it is another than the one followed. */
  readonly afterReconcile: () => Promise<void>;
  readonly stop: () => Promise<void>;
}

/**
 * Follows the policy in force with its health monitor, which probes its chains' paths and
 * switches them: a reconcile that puts another policy in force starts the monitor of that one.
 * Every host of the resident (watch, serve) gives it as the resident's `afterReconcile`, so a
 * site has one supervisor whichever front door it runs behind.
 */
export function followHealth(target: Target, onHealth: (e: HealthEvent) => void): HealthFollower {
  let health: { hash: string; supervisor: Supervisor | undefined } | undefined;
  /** The record file last looked at: a reconcile that wrote no new one costs one stat. */
  let seen: string | undefined;
  let stopped = false;
  return {
    async afterReconcile() {
      if (stopped) return;
      const stamp = await recordStamp(target.files);
      if (stamp === undefined || stamp === seen) return;
      const record = await loadRecord(target.files).catch(() => undefined);
      seen = stamp;
      if (!record || record.policyHash === health?.hash) return;
      let intent: Intent | undefined;
      try {
        intent = await intentToProbe(target.files, record);
      } catch {
        return;
      }
      await health?.supervisor?.stop();
      health = {
        hash: record.policyHash,
        supervisor: intent
          ? await superviseHealth(
              target,
              createSpawner(target.runner.netns),
              intent,
              record.site,
              onHealth,
            )
          : undefined,
      };
    },
    async stop() {
      stopped = true;
      await health?.supervisor?.stop();
    },
  };
}

/**
 * The policy in force parsed, for its egress chains, which only the parsed policy holds; only
 * for a new policy, and not at all where nothing is probed. Parsing is the whole text (at
 * 10,000 objects most of a second) and loads the policy parser into a resident that otherwise
 * never needs it (an agent applying the states it is sent: bench/agent-memory.ts). Undefined:
 * nothing to probe.
 */
async function intentToProbe(files: StateFiles, record: ApplyRecord): Promise<Intent | undefined> {
  if (!(await mayProbe(files, record))) return undefined;
  const { parseInForce } = await import("../apply/source/in-force.js");
  return parseInForce(files, record).intent;
}

/**
 * Whether the policy in force has an egress, which alone is probed. Every egress marks its
 * sources, in an ip rule (compile/routing.ts) and in netpol's nft table (compile/marks.ts): seen
 * in the state its apply cached or, where no cache names this policy (removed, or a failed
 * write), in the table's skeleton the record keeps (none: no table, so no egress).
 */
async function mayProbe(files: StateFiles, record: ApplyRecord): Promise<boolean> {
  const compiled = await cachedInForce(files, record);
  if (compiled) return compiled.rules.some((r) => r.fwmark !== undefined);
  return record.ownership.nftSkeleton?.includes("mark set") ?? false;
}
