import type { PrefixChange } from "../../compile/network-prefix.js";
import { type Cidr, overlaps } from "../../net/cidr.js";
import type { EgressIntent, Intent, SiteIntent } from "../intent.js";
import type { PolicyDocument } from "../schema.js";
import type { Region } from "./region.js";

/**
 * The intent of the held one with one network's prefix changed alone, exactly as resolving the
 * new data would give it, or undefined where resolving might say more. Resolving copies a
 * network's prefix into the network and into the sources of the egresses that name it, and
 * checks it against the site's other networks; everything else that reads it is ruled out here:
 * a router's address in the network (it must lie inside), the site in a tunnel (advertised
 * networks, allowed IPs, routes over its own), a service (looked up by the networks holding
 * its address), a leak canary (asks from the network), another family.
 */
export function withNetworkCidr(
  data: PolicyDocument,
  intent: Intent,
  region: Region,
  entries: readonly unknown[],
): { intent: Intent; change: PrefixChange } | undefined {
  const [top, name, field] = region.path;
  if (region.path.length !== 3 || top !== "sites" || field !== "networks") return undefined;
  if (region.oldCount !== 1 || region.newCount !== 1 || typeof name !== "string") return undefined;
  const doc = data.sites[name];
  const before = doc?.networks[region.index];
  const after = entries[0] as typeof before;
  if (!doc || !before || !after) return undefined;
  if (before.address || after.address) return undefined;
  if (after.name !== before.name || after.interface !== before.interface) return undefined;
  if (Object.keys(after).length !== Object.keys(before).length) return undefined;
  if (after.cidr.family !== before.cidr.family) return undefined;
  if (data.services.length > 0) return undefined;
  if (data.tunnels.some((t) => t.members.some((m) => m.site === name))) return undefined;
  if (doc.egress.some((e) => e.canary !== undefined)) return undefined;
  const at = intent.sites.findIndex((s) => s.name === name);
  const site = intent.sites[at];
  const network = site?.networks[region.index];
  if (!site || network?.name !== before.name) return undefined;
  // Two networks of a site must not overlap: that problem is placed by the full reader.
  const cidr: Cidr = after.cidr;
  for (const [i, n] of site.networks.entries())
    if (i !== region.index && overlaps(n.cidr, cidr)) return undefined;
  const networks = [...site.networks];
  networks[region.index] = { ...network, cidr };
  // Resolving gives each egress the networks' own prefix objects, in the order it names them.
  const swap = (e: EgressIntent): EgressIntent =>
    e.sources.includes(network.cidr)
      ? { ...e, sources: e.sources.map((c) => (c === network.cidr ? cidr : c)) }
      : e;
  const changed: SiteIntent = { ...site, networks, egress: site.egress.map(swap) };
  const sites = [...intent.sites];
  sites[at] = changed;
  return {
    intent: { ...intent, sites },
    change: { site: name, before: network.cidr, after: cidr },
  };
}
