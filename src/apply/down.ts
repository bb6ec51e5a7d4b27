import { parsePolicy } from "../policy/load.js";
import { LINK_MARK } from "../render/ip.js";
import { readIp } from "../system/iproute2/iproute2.js";
import { readNft } from "../system/nftables.js";
import { type ApplyResult, applySite } from "./apply.js";
import type { StopRequest } from "./interrupt.js";
import { isMarked } from "./site/ownership.js";
import { emptiedInForce } from "./source/in-force.js";
import type { PolicyInput } from "./source/input.js";
import { loadJournal } from "./state/journal.js";
import type { Target } from "./target.js";

/** The empty policy `down` applies where no record is: default settings, so protocol 77. */
const emptyPolicy = (site: string) =>
  parsePolicy(`version: 1\nsites:\n  ${site}: {}\n`, "(empty policy)");

/**
 * What the kernel shows of netpol without a record (moved aside by `recover`, or kept in another
 * state directory): the links carrying its mark, the routes and rules carrying its protocol,
 * its nftables table. An empty policy removes exactly those, as an apply would; undefined when
 * there are none. The site is read from a link's mark (`netpol:SITE`); none needs one.
 */
async function emptiedByMarks(target: Target): Promise<PolicyInput | undefined> {
  const protocol = emptyPolicy("site").intent.settings.routeProtocol;
  const [ip, nft, journal] = await Promise.all([
    readIp(target.runner, protocol),
    readNft(target.runner),
    loadJournal(target.files),
  ]);
  const marked = ip.links.filter(isMarked);
  const found = marked.length + ip.routes.owned.length + ip.rules.owned.length;
  if (found === 0 && !nft && !journal) return undefined;
  const site = marked[0]?.alias?.slice(LINK_MARK.length) || "site";
  return { ...emptyPolicy(site), keyDir: "", site };
}

/** What `down` says when it found netpol's state by its marks alone. */
const BY_MARKS =
  "no record of an apply here (set aside by `netpol recover`, or kept in another --state-dir): netpol's state was recognised by its marks (links with its alias, routes and rules of protocol 77, the nftables table inet netpol) and removed; addresses it added to devices it did not create, sysctls it changed and routes it published in Caddy are known only to the record";

/**
 * Remove everything netpol owns in a namespace by applying an empty policy through the normal
 * apply (plan, verify, rollback), which then forgets the record and the compiled state. Without
 * a record, what carries netpol's marks is removed. Undefined when there is nothing of netpol's.
 */
export async function takeDown(
  target: Target,
  appliedBy: string,
  stop?: StopRequest,
): Promise<ApplyResult | undefined> {
  const inForce = await emptiedInForce(target.files);
  const empty = inForce ?? (await emptiedByMarks(target));
  if (!empty) return undefined;
  const result = await applySite(target, empty, appliedBy, {
    forget: true,
    ...(stop ? { stop } : {}),
  });
  return inForce ? result : { ...result, notes: [...result.notes, BY_MARKS] };
}
