import { stat } from "node:fs/promises";
import { fromInForce } from "../apply/source/in-force.js";
import type { PolicyInput } from "../apply/source/input.js";
import { recordPath } from "../apply/state/record.js";
import type { Target } from "../apply/target.js";

/**
 * Where a resident's policy comes from. `current()` is the policy the site is to hold now,
 * asked for at each reconcile (so an apply that lands meanwhile is followed, not undone). A feed
 * that learns of a new policy by itself (etcd's watch, in the fleet agent) calls `changed` so
 * the resident reconciles at once instead of at its interval.
 */
export interface PolicyFeed {
  current(): Promise<PolicyInput>;
  follow?(changed: () => void, signal: AbortSignal): void;
}

/**
 * `netpol watch`'s feed: the policy it was started with until an apply has put one in force,
 * then whatever the last apply put in force — an operator's `netpol apply` of another policy
 * is followed, not undone. Its compiled state is cached by the apply that put it in force, so
 * a reconcile that finds nothing to do does not validate it again; and while the record is the
 * same file as at the last reconcile, not even read again (at 10,000 objects the record and the
 * cache are megabytes).
 */
export function inForceFeed(target: Target, started: PolicyInput): PolicyFeed {
  let last: { readonly file: string; readonly input: PolicyInput } | undefined;
  return {
    async current() {
      const file = await stat(recordPath(target.files)).then(
        (s) => `${s.ino} ${s.size} ${s.mtimeMs}`,
        () => undefined,
      );
      if (file !== undefined && last?.file === file) return last.input;
      const input = (await fromInForce(target.files, started.keyDir))?.policy ?? started;
      if (file !== undefined) last = { file, input };
      return input;
    },
  };
}
