import { fromInForce } from "../apply/source/from-in-force.js";
import type { PolicyInput } from "../apply/source/input.js";
import type { Validate } from "../apply/source/text.js";
import type { Target } from "../apply/target.js";
import { NetpolError } from "../errors.js";
import { recordStamp } from "./in-force-memo.js";

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

/** What a feed starts from: a policy (watch's file), or only where its key files are (serve). */
export type FeedStart = PolicyInput | { readonly keyDir: string };

/**
 * `netpol watch`'s and `netpol serve`'s feed: the policy it was started with until an apply has
 * put one in force, then whatever the last apply put in force — an operator's `netpol apply` of
 * another policy is followed, not undone. Its compiled state is cached by the apply that put it
 * in force, so a reconcile that finds nothing to do does not validate it again; and while the
 * record is the same file as at the last reconcile, not even read again (at 10,000 objects the
 * record and the cache are megabytes). Started without a policy (serve on a site nothing was
 * applied to yet), it has none to give (NETPOL_E_NO_POLICY) until an apply puts one in force:
 * the resident then holds nothing. `validate` is how a policy the cache does not hold is
 * validated (serve: in its worker, off the event loop).
 */
export function inForceFeed(target: Target, started: FeedStart, validate?: Validate): PolicyFeed {
  let last: { readonly file: string; readonly input: PolicyInput } | undefined;
  const given = "hash" in started ? started : undefined;
  return {
    async current() {
      const file = await recordStamp(target.files);
      if (file !== undefined && last?.file === file) return last.input;
      const input = (await fromInForce(target.files, started.keyDir, validate))?.policy ?? given;
      if (input === undefined)
        throw new NetpolError(
          "NETPOL_E_NO_POLICY",
          "no policy has been applied here yet: the resident holds nothing until one is",
        );
      if (file !== undefined) last = { file, input };
      return input;
    },
  };
}
