import { compileSite } from "../compile/compile.js";
import { policyHash } from "../policy/hash.js";
import type { RolloutIntent } from "../policy/intent.js";
import { parsePolicy } from "../policy/load.js";
import { readYaml } from "../policy/read-yaml.js";
import { sameState, sliceText, stateKey } from "./slice.js";

/** A policy checked and cut into each site's part: everything a publish writes, made before it writes. */
export interface Prepared {
  readonly text: string;
  readonly hash: string;
  readonly rollout: RolloutIntent;
  /** Each site's part and its hash, in policy order. */
  readonly sites: ReadonlyMap<string, { readonly text: string; readonly hash: string }>;
  /** Sites whose part could not be cut smaller than the whole policy. */
  readonly whole: readonly string[];
}

const NO_ROLLOUT: RolloutIntent = { waves: [], failureBudget: 0, healthSeconds: 30 };

/**
 * Validates the whole policy (as `netpol validate` does: a bad one is refused with every
 * problem, and nothing is written) and cuts each site's part (fleet/slice).
 */
export function preparePolicy(text: string, file: string): Prepared {
  const { intent, hash } = parsePolicy(text, file);
  const read = readYaml(text, file);
  if (!read.ok) throw new Error("unreachable: the policy parsed once already");
  const doc = read.data as Record<string, unknown>;
  const sites = new Map<string, { text: string; hash: string }>();
  const whole: string[] = [];
  for (const site of intent.sites) {
    const expected = stateKey(compileSite(intent, site.name));
    const part = sliceText(doc, intent, site.name);
    const fits = sameState(part, site.name, expected);
    if (!fits) whole.push(site.name);
    const chosen = fits ? part : text;
    sites.set(site.name, { text: chosen, hash: policyHash(chosen) });
  }
  return { text, hash, rollout: intent.rollout ?? NO_ROLLOUT, sites, whole };
}
