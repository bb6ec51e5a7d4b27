import { loadCached } from "../state/compiled-cache.js";
import type { StateFiles } from "../state/files.js";
import type { PolicyInput } from "./input.js";

/** A policy's text and what it is to be read for. */
export interface PolicyText {
  readonly text: string;
  /** Names the text in problems (`file:line:col`): a file, "request body", "policy in force". */
  readonly name: string;
  readonly site: string;
  readonly keyDir: string;
}

/**
 * How a text the cache does not hold is validated and compiled: here (the CLI), or in a worker
 * thread (the server, whose event loop must keep answering).
 */
export type Validate = (policy: PolicyText) => Promise<PolicyInput>;

/**
 * The parser and the policy's schemas load with the first text validated, not before: a
 * resident process applying from the compiled cache (the fleet agent after a restart, idle)
 * never holds them (bench/agent-memory.ts).
 */
export const validateHere: Validate = async ({ text, name, site, keyDir }) => {
  const { parsePolicy } = await import("../../policy/load.js");
  return { ...parsePolicy(text, name), site, keyDir };
};

/**
 * Every policy netpol plans or applies becomes one here: the state compiled when this same text
 * was last applied at this site (the compiled cache), or the text validated in full.
 */
export async function fromText(
  files: StateFiles,
  policy: PolicyText,
  validate: Validate = validateHere,
): Promise<PolicyInput> {
  return (await loadCached(files, policy)) ?? validate(policy);
}
