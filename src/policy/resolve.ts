import { prefixLookup } from "../net/cidr.js";
import type { Diagnostic } from "./diagnostic.js";
import { IdAllocator, KERNEL_PRIORITIES, KERNEL_TABLES, MAX_PRIORITY, MAX_TABLE } from "./ids.js";
import type { Intent, NetworkIntent, ServiceIntent, SiteIntent, TunnelIntent } from "./intent.js";
import { MemberNetworks } from "./member-networks.js";
import { checkSharedResolvers } from "./resolve-dns.js";
import { resolveProviders } from "./resolve-providers.js";
import { resolveRollout } from "./resolve-rollout.js";
import {
  checkExitsHaveWan,
  checkRepliesComeFirst,
  resolveEgress,
  resolvePathTables,
  resolveReplyPaths,
} from "./resolve-routing.js";
import { resolveServices, type SiteNetworks } from "./resolve-services.js";
import { resolveSiteBasics, tunnelDevicesBySite } from "./resolve-site.js";
import { resolveTunnels, tunnelsOfSite } from "./resolve-tunnels.js";
import type { PolicyDocument } from "./schema.js";

export type Resolved = { ok: true; intent: Intent } | { ok: false; diagnostics: Diagnostic[] };

/**
 * Turns a schema-valid document into an Intent, or lists every cross-reference problem. Every
 * lookup goes through a map or a sorted index, so resolving grows as n log n in the number of
 * objects.
 */
export function resolvePolicy(doc: PolicyDocument): Resolved {
  const problems: Diagnostic[] = [];
  const report = (d: Diagnostic) => problems.push(d);
  const siteNames = Object.keys(doc.sites).sort();

  const devices = tunnelDevicesBySite(doc);
  const basics = new Map(
    siteNames.map((name) => {
      const site = doc.sites[name];
      if (!site) throw new Error(`unreachable: site ${name}`);
      return [name, resolveSiteBasics(name, site, devices.get(name) ?? [], report)] as const;
    }),
  );
  const networksOf = (site: string): readonly NetworkIntent[] => basics.get(site)?.networks ?? [];
  // Built for the sites asked about, when first asked: a hub's 10,000 spokes mostly never are,
  // and a map and a sorted index per site were a tenth of resolving them.
  const byName = new Map<string, ReadonlyMap<string, NetworkIntent>>();
  const networkNamed = (site: string, name: string): NetworkIntent | undefined => {
    let named = byName.get(site);
    if (!named) {
      const networks = networksOf(site);
      // One network, the common case for a spoke: no map to build.
      if (networks.length === 1) return networks[0]?.name === name ? networks[0] : undefined;
      named = new Map(networks.map((n) => [n.name, n]));
      byName.set(site, named);
    }
    return named.get(name);
  };
  const lookups = new Map<string, ReturnType<typeof prefixLookup<NetworkIntent>>>();
  const lookupOf = (site: string) => {
    let lookup = lookups.get(site);
    if (!lookup) {
      lookup = prefixLookup(networksOf(site), (n) => n.cidr);
      lookups.set(site, lookup);
    }
    return lookup;
  };
  const ofTunnel = new Map<TunnelIntent, MemberNetworks>();
  const networks: SiteNetworks = {
    holding: (site, address) => (basics.has(site) ? lookupOf(site)(address) : undefined),
    ofMembers: (tunnel) => {
      const known = ofTunnel.get(tunnel) ?? new MemberNetworks(tunnel, networksOf);
      ofTunnel.set(tunnel, known);
      return known;
    },
  };

  const tunnels = resolveTunnels(doc, new Set(siteNames), networkNamed, report);
  const tunnelsBySite = tunnelsOfSite(tunnels);
  const services = resolveServices(doc, tunnelsBySite, networks, report);
  // Each site's reply paths come from the services aimed at it: grouped once, not per site.
  const servicesAt = new Map<string, ServiceIntent[]>();
  for (const s of services) {
    const list = servicesAt.get(s.target.site);
    if (list) list.push(s);
    else servicesAt.set(s.target.site, [s]);
  }

  const sites: SiteIntent[] = siteNames.map((name) => {
    const siteDoc = doc.sites[name];
    const basic = basics.get(name);
    if (!siteDoc || !basic) throw new Error(`unreachable: site ${name}`);
    const siteTunnels = tunnelsBySite.get(name) ?? [];
    const tables = new IdAllocator(doc.settings.firstTable, MAX_TABLE, KERNEL_TABLES);
    const priorities = new IdAllocator(doc.settings.firstPriority, MAX_PRIORITY, KERNEL_PRIORITIES);
    const egress = resolveEgress(
      doc,
      name,
      siteTunnels,
      basic.networks,
      tables,
      priorities,
      report,
    );
    const replyPaths = resolveReplyPaths(
      doc,
      servicesAt.get(name) ?? [],
      siteTunnels,
      tables,
      priorities,
      report,
    );
    checkRepliesComeFirst(name, egress, replyPaths, report);
    checkSharedResolvers(name, egress, report);
    const pathTables = resolvePathTables(egress, tables, report);
    return {
      name,
      ...(siteDoc.wan ? { wan: siteDoc.wan } : {}),
      interfaces: basic.interfaces,
      networks: basic.networks,
      external: siteDoc.external.map((e) => ({
        name: e.name,
        ...(e.gateway ? { gateway: e.gateway } : {}),
      })),
      egress,
      replyPaths,
      pathTables,
      ...(siteDoc.proxy ? { proxy: siteDoc.proxy } : {}),
      ...(siteDoc.control ? { control: siteDoc.control } : {}),
      tunnels: siteTunnels,
      providers: resolveProviders(siteDoc),
    };
  });

  checkExitsHaveWan(doc, sites, report);
  const rollout = resolveRollout(doc.rollout, siteNames, tunnels, report);
  if (problems.length > 0) return { ok: false, diagnostics: problems };
  return { ok: true, intent: { settings: doc.settings, sites, tunnels, services, rollout } };
}
