import { NetpolError } from "../../errors.js";
import type { StateFiles } from "../state/files.js";
import type { ApplyRecord } from "../state/record.js";

/**
 * Before planning: a namespace runs the site its record names. A policy for another site
 * planned there would remove everything the first one made, the tunnel address a push is
 * talking over included (`push --site home` to the VPS's serve, `apply --site home --netns
 * vps`). So it is refused, naming both sites; a real rename says so (`--replace-site`).
 * No record (nothing applied, or `down` ran): any site may start.
 */
export function checkSite(
  files: StateFiles,
  record: ApplyRecord | undefined,
  site: string,
  replaceSite = false,
): void {
  if (!record || record.site === site || replaceSite) return;
  throw new NetpolError(
    "NETPOL_E_WRONG_SITE",
    `nothing applied: ${files.scope} runs site "${record.site}" (applied ${record.appliedAt} by ${record.appliedBy}), and this policy is for site "${site}"; applying it would remove what site "${record.site}" made here. Check --site and --netns (or the server pushed to); if this namespace really becomes site "${site}", repeat with --replace-site (push: --replace-site; HTTP: ?replaceSite=1)`,
  );
}
