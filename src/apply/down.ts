import { type ApplyResult, applySite } from "./apply.js";
import { emptiedInForce } from "./source/in-force.js";
import type { Target } from "./target.js";

/**
 * Remove everything netpol owns in a namespace by applying an empty policy through the normal
 * apply (plan, verify, rollback), which then forgets the record and the compiled state.
 * Undefined when nothing was applied.
 */
export async function takeDown(
  target: Target,
  appliedBy: string,
): Promise<ApplyResult | undefined> {
  const empty = await emptiedInForce(target.files);
  if (!empty) return undefined;
  return applySite(target, empty, appliedBy, { forget: true });
}
