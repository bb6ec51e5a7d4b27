import type { SiteState } from "../../compile/desired.js";
import { NetpolError } from "../../errors.js";
import { diff } from "../../plan/diff.js";
import { describeChange } from "../../plan/format.js";
import type { LiveState, Ownership, Plan } from "../../plan/types.js";
import type { Target } from "../target.js";
import { ownershipAfter } from "./ownership.js";
import { type LiveWanted, readAfter } from "./read-live.js";

/** Links and wireguard-go settle asynchronously: the read-back gets this long to agree. */
const VERIFY_MS = 2_000;

/**
 * After the plan ran: the state read back (only what the write does not prove, see readAfter)
 * must be the desired one, within VERIFY_MS. Returns it, for the record.
 */
export async function verify(
  target: Target,
  desired: SiteState,
  owned: Ownership,
  plan: Plan,
  wanted: LiveWanted,
  before: LiveState,
): Promise<LiveState> {
  const { host } = target;
  const giveUp = host.now() + VERIFY_MS;
  for (;;) {
    const { after, proven } = await readAfter(target.runner, wanted, before, plan, {
      desired,
      owned,
    });
    // Nothing read back: what the write proves is the plan made, so the desired state.
    if (proven) return after;
    const left = diff(desired, after, ownershipAfter(owned, desired, plan, after)).changes;
    if (left.length === 0) return after;
    if (host.now() >= giveUp) {
      const what = left.map((c) => describeChange(c, plan.protocol)).join("; ");
      throw new NetpolError(
        "NETPOL_E_VERIFY_FAILED",
        `after apply the live state still differs: ${what}`,
        [],
        { details: { step: "verify" } },
      );
    }
    await host.sleep(200);
  }
}
