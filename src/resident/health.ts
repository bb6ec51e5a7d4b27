import { parseInForce } from "../apply/source/in-force.js";
import { loadRecord } from "../apply/state/record.js";
import type { Target } from "../apply/target.js";
import type { HealthEvent } from "../health/monitor.js";
import { type Supervisor, superviseHealth } from "../health/supervise.js";
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
      // Parsing the policy (the whole text, at 10,000 objects most of a second, and the YAML
      // reader loaded into an agent that otherwise never needs it) only for a new policy.
      if (!record || record.policyHash === health?.hash) return;
      let intent: ReturnType<typeof parseInForce>["intent"];
      try {
        intent = parseInForce(target.files, record).intent;
      } catch {
        return;
      }
      await health?.supervisor?.stop();
      const spawner = createSpawner(target.runner.netns);
      health = {
        hash: record.policyHash,
        supervisor: await superviseHealth(target, spawner, intent, record.site, onHealth),
      };
    },
    async stop() {
      stopped = true;
      await health?.supervisor?.stop();
    },
  };
}
