import { loadInForce } from "../apply/source/in-force.js";
import type { Target } from "../apply/target.js";
import type { HealthEvent } from "../health/monitor.js";
import { type Supervisor, superviseHealth } from "../health/supervise.js";
import { createSpawner } from "../system/spawner.js";

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
  let stopped = false;
  return {
    async afterReconcile() {
      if (stopped) return;
      const now = await loadInForce(target.files).catch(() => undefined);
      if (!now || now.record.policyHash === health?.hash) return;
      await health?.supervisor?.stop();
      const spawner = createSpawner(target.runner.netns);
      health = {
        hash: now.record.policyHash,
        supervisor: await superviseHealth(
          target,
          spawner,
          now.policy.intent,
          now.record.site,
          onHealth,
        ),
      };
    },
    async stop() {
      stopped = true;
      await health?.supervisor?.stop();
    },
  };
}
