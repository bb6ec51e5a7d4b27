import { readState } from "../../apply/state/compiled-cache.js";
import type { SiteState } from "../../compile/desired.js";
import { NetpolError } from "../../errors.js";
import { policyHash } from "../../policy/hash.js";
import type { Desired } from "../documents.js";

/**
 * The state the publisher compiled for this site, checked before anything is applied, so an
 * agent neither parses nor validates its part (docs/fleet.md, "What an agent checks"). The
 * publisher validated the whole policy; etcd's RBAC lets nobody else write a site's part. What
 * is checked here is what a valid publish always satisfies and a corrupt or forged value may
 * not, where the harm would reach past netpol's own state: the hash of the part, the state's
 * exact shape and site, no line break or control character (the ip and nft batches are read a
 * line at a time) and only the kernel settings netpol's compiler sets. Undefined: the part
 * carries no compiled state (a publisher before this one), and its text is to be validated.
 */
export function checkedPart(desired: Desired, site: string): SiteState | undefined {
  const refuse = (why: string) =>
    new NetpolError(
      "NETPOL_E_FLEET_PART",
      `revision ${desired.serial}: the part etcd holds for ${site} ${why}; nothing applied: publish the policy again (\`netpol publish\`)`,
    );
  if (policyHash(desired.text) !== desired.hash)
    throw refuse(`does not match its hash (${desired.hash.slice(0, 12)}…)`);
  if (desired.state === undefined) return undefined;
  const state = readState(desired.state);
  if (!state) throw refuse("holds no compiled state this netpol reads (another version wrote it?)");
  if (state.site !== site) throw refuse(`was compiled for site ${JSON.stringify(state.site)}`);
  const control = controlCharacterAt(desired.state);
  if (control) throw refuse(`has a line break or control character in ${control}`);
  const sysctl = state.sysctls.find(
    ([key, value]) => !OWN_SYSCTL.test(key) || !/^[12]$/.test(value),
  );
  if (sysctl)
    throw refuse(`sets kernel setting ${sysctl[0]}=${sysctl[1]}, which netpol never sets`);
  return state;
}

/**
 * The kernel settings compile/sysctl.ts sets: forwarding, and per device (its '.' written '/')
 * reverse-path filtering and router advertisements.
 */
const OWN_SYSCTL =
  /^(net\.ipv4\.ip_forward|net\.ipv6\.conf\.all\.forwarding|net\.ipv4\.conf\.[\w@:/-]+\.rp_filter|net\.ipv6\.conf\.[\w@:/-]+\.accept_ra)$/;

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/** The path of the first string holding a control character, if any. */
function controlCharacterAt(value: unknown, at = "the state"): string | undefined {
  if (typeof value === "string") return CONTROL.test(value) ? at : undefined;
  if (typeof value !== "object" || value === null) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const found = controlCharacterAt(inner, `${at}.${key}`);
    if (found) return found;
  }
  return undefined;
}
