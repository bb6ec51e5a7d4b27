import type { NetpolError } from "../errors.js";
import type { NextCommand } from "../next-command.js";
import { hintFor } from "./naming.js";

/**
 * The next command to run, for errors whose message does not already name one, spelled for the
 * command line `args` that failed (its policy file, site, namespace and directories). Messages
 * raised deeper down (key files, token files, unknown sites, a pending confirmation, a corrupt
 * state file) carry their own.
 */
export function fixFor(err: NetpolError, args: readonly string[]): string | undefined {
  const [verb, first] = args;
  const file = verb === "apply" || verb === "plan" || verb === "watch" ? first : undefined;
  const site = args[args.indexOf("--site") + 1];
  const policy = [file ?? "FILE", "--site", (args.includes("--site") && site) || "SITE"];
  const hint = (next: NextCommand) => `\`${hintFor(next, args)}\``;
  switch (err.code) {
    case "NETPOL_E_FOREIGN_STATE":
      return `each conflict says what to change; ${hint({ verb: "plan", args: policy })} lists them again once it is done`;
    case "NETPOL_E_APPLY_FAILED":
    case "NETPOL_E_VERIFY_FAILED":
      return `see what still differs with ${hint({ verb: "plan", args: policy })}`;
    case "NETPOL_E_ROLLBACK_FAILED":
      return `see what is left with ${hint({ verb: "status" })}; ${hint({ verb: "down" })} removes everything netpol owns`;
    case "NETPOL_E_NO_POLICY":
      return `apply one first: ${hint({ verb: "apply", args: policy })}`;
    default:
      return undefined;
  }
}
