import { fromFile } from "../apply/source/file.js";
import { fromInForce } from "../apply/source/in-force.js";
import type { PolicyInput } from "../apply/source/input.js";
import { recordPath } from "../apply/state/record.js";
import type { Target } from "../apply/target.js";
import { NetpolError } from "../errors.js";

/**
 * Where key and token files are looked up when no policy file says (the policy's own directory
 * is the default for a command given one): the installed policy's directory, `/etc/netpol`.
 * The same for `serve`, `status --all` and `--in-force`.
 */
export const DEFAULT_KEY_DIR = "/etc/netpol";

/** What `apply` and `watch` keep in force: a policy file, or (`--in-force`) the policy in force. */
export interface PolicyChoice {
  readonly site?: string;
  readonly keyDir?: string;
  readonly inForce?: boolean;
}

/**
 * The policy in force here, as the last apply (or push) recorded it: what the boot units apply
 * and watch keeps, so a reboot brings back what was pushed, not a file that was never updated.
 * Its site must be the one asked for, when one is.
 */
export async function readPolicyInForce(
  target: Target,
  opts: { readonly site?: string; readonly keyDir?: string },
): Promise<PolicyInput> {
  const found = await fromInForce(target.files, opts.keyDir ?? DEFAULT_KEY_DIR);
  if (!found)
    throw new NetpolError(
      "NETPOL_E_NO_POLICY",
      `no policy is in force on ${target.files.scope} (no ${recordPath(target.files)}); apply one first: \`netpol apply FILE --site SITE\``,
    );
  if (opts.site !== undefined && opts.site !== found.record.site)
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `the policy in force on ${target.files.scope} is site ${found.record.site}'s, not ${opts.site}'s`,
    );
  return found.policy;
}

/**
 * The file or `--in-force`, one of the two; `--site` is needed with a file (the policy holds
 * every site) and checked against the record with `--in-force`.
 */
export function choosePolicy(
  file: string | undefined,
  opts: PolicyChoice,
  target: Target,
): () => Promise<PolicyInput> {
  if (opts.inForce) {
    if (file !== undefined)
      throw new NetpolError("NETPOL_E_USAGE", "give a policy file or --in-force, not both");
    return () => readPolicyInForce(target, opts);
  }
  if (file === undefined)
    throw new NetpolError(
      "NETPOL_E_USAGE",
      "give the policy file to apply, or --in-force for the policy in force here",
    );
  const site = opts.site;
  if (site === undefined)
    throw new NetpolError("NETPOL_E_USAGE", "--site is needed: a policy holds every site");
  return () => fromFile(target.files, file, { site, keyDir: opts.keyDir });
}
