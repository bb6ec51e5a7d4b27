import { readPrivateKeys } from "../system/private-keys.js";
import { once, type Planned, planSite } from "./site/plan-site.js";
import type { PolicySource } from "./source/input.js";
import type { Target } from "./target.js";

/**
 * A plan as `netpol plan` and a dry-run push make it: the plan, then the key files an apply
 * would read, checked as apply checks them (readPrivateKeys), so a missing key, one others
 * may read, or one that is not the member's fails the plan with the apply's code and message
 * instead of planning normally and failing only the apply.
 */
export async function dryRun(
  target: Target,
  source: PolicySource,
  replaceSite = false,
): Promise<Planned> {
  const input = once(source);
  const planned = await planSite(target, input, false, undefined, { replaceSite });
  await readPrivateKeys(planned.desired, (await input()).keyDir);
  return planned;
}
