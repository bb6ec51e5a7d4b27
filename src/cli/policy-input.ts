import type { PolicyInput } from "../apply/source/input.js";
import { policyInput } from "../apply/state/compiled-cache.js";
import type { Target } from "../apply/target.js";
import { keyDirOf, readPolicyText } from "./policy-file.js";

/**
 * The policy to plan or apply at `site`: the state compiled when this same text was last
 * applied there (see apply/policy-cache), or the file fully validated.
 */
export async function readPolicyInput(
  file: string,
  opts: { readonly site: string; readonly keyDir?: string },
  target: Target,
): Promise<PolicyInput> {
  const text = await readPolicyText(file);
  return policyInput(target.files, {
    text,
    file,
    site: opts.site,
    keyDir: keyDirOf(file, opts.keyDir),
  });
}
