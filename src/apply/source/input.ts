import type { SiteState } from "../../compile/desired.js";
import type { Intent } from "../../policy/intent.js";

/** A policy to plan or apply: its intent, or the site's state compiled already (the server compiles off-thread). */
export type PolicyInput = {
  readonly hash: string;
  readonly text: string;
  readonly keyDir: string;
  readonly site: string;
} & ({ readonly intent: Intent } | { readonly desired: SiteState });

/**
 * A policy, or how to read and validate it. The live read needs nothing of a policy but its
 * route protocol, and that only to sort what it listed: a plan starts its reads first, then
 * validates (synchronous work) while they run in their own processes.
 */
export type PolicySource = PolicyInput | (() => Promise<PolicyInput>);
