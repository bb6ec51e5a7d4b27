import { stateJson } from "../apply/state/compiled-cache.js";
import { compileSite } from "../compile/compile.js";
import { policyHash } from "../policy/hash.js";
import type { RolloutIntent } from "../policy/intent.js";
import { parsePolicy } from "../policy/load.js";
import { readYaml } from "../policy/read-yaml.js";
import { peerAddresses } from "./agent/health.js";
import { sameState, slicer, stateKey } from "./slice.js";

/** One site's part: its policy text and hash, and what the publisher compiled from it. */
export interface Part {
  readonly text: string;
  readonly hash: string;
  /** The site's state, as JSON (the compiled cache's form): the agent applies it as it is. */
  readonly state: unknown;
  /** The tunnel addresses of its peers, for the agent's health check. */
  readonly peers: readonly string[];
}

/** A policy checked and cut into each site's part: everything a publish writes, made before it writes. */
export interface Prepared {
  readonly text: string;
  readonly hash: string;
  readonly rollout: RolloutIntent;
  /** Each site's part, in policy order. */
  readonly sites: ReadonlyMap<string, Part>;
  /** Sites whose part could not be cut smaller than the whole policy. */
  readonly whole: readonly string[];
}

/**
 * The largest policy `publish` reads: a whole fleet's, read once on the publisher's machine, where
 * 10,000 sites take ~2.8 MB (past the 2 MiB every other command reads, whose policy is a site's or
 * a few sites'). Still a bound: a hostile file cannot make the publisher hold gigabytes.
 */
export const MAX_FLEET_POLICY_BYTES = 16 * 1024 * 1024;

const NO_ROLLOUT: RolloutIntent = { waves: [], failureBudget: 0, healthSeconds: 30 };

/**
 * Validates the whole policy (as `netpol validate` does: a bad one is refused with every
 * problem, and nothing is written), cuts each site's part (fleet/slice) and compiles it, once
 * here rather than once per agent: an agent applies its state as compiled (agent/part.ts).
 */
export function preparePolicy(text: string, file: string): Prepared {
  const { intent, hash } = parsePolicy(text, file, { maxBytes: MAX_FLEET_POLICY_BYTES });
  const read = readYaml(text, file);
  if (!read.ok) throw new Error("unreachable: the policy parsed once already");
  const doc = read.data as Record<string, unknown>;
  const sites = new Map<string, Part>();
  const whole: string[] = [];
  const sliceOf = slicer(doc, intent);
  for (const site of intent.sites) {
    const state = compileSite(intent, site.name);
    const part = sliceOf(site.name);
    const fits = sameState(part, site.name, stateKey(state));
    if (!fits) whole.push(site.name);
    const chosen = fits ? part : text;
    sites.set(site.name, {
      text: chosen,
      hash: policyHash(chosen),
      state: JSON.parse(stateJson(state)),
      peers: peerAddresses(intent, site.name),
    });
  }
  return { text, hash, rollout: intent.rollout ?? NO_ROLLOUT, sites, whole };
}
