import type { Diagnostic } from "./diagnostic.js";
import { IdAllocator, KERNEL_PRIORITIES, KERNEL_TABLES, MAX_PRIORITY, MAX_TABLE } from "./ids.js";
import type { Intent, NetworkIntent, SiteIntent } from "./intent.js";
import {
  checkExitsHaveWan,
  checkRepliesComeFirst,
  resolveEgress,
  resolveReplyPaths,
} from "./resolve-routing.js";
import { resolveServices } from "./resolve-services.js";
import { resolveSiteBasics, tunnelsOfSite } from "./resolve-site.js";
import { resolveTunnels } from "./resolve-tunnels.js";
import type { PolicyDocument } from "./schema.js";

export type Resolved = { ok: true; intent: Intent } | { ok: false; diagnostics: Diagnostic[] };

/** Turns a schema-valid document into an Intent, or lists every cross-reference problem. */
export function resolvePolicy(doc: PolicyDocument): Resolved {
  const problems: Diagnostic[] = [];
  const report = (d: Diagnostic) => problems.push(d);
  const siteNames = Object.keys(doc.sites).sort();

  const basics = new Map(
    siteNames.map((name) => {
      const site = doc.sites[name];
      if (!site) throw new Error(`unreachable: site ${name}`);
      return [name, resolveSiteBasics(name, site, tunnelsOfSite(doc, name), report)] as const;
    }),
  );
  const networksOf = (site: string): readonly NetworkIntent[] => basics.get(site)?.networks ?? [];

  const tunnels = resolveTunnels(doc, siteNames, networksOf, report);
  const services = resolveServices(doc, tunnels, networksOf, report);

  const sites: SiteIntent[] = siteNames.map((name) => {
    const siteDoc = doc.sites[name];
    const basic = basics.get(name);
    if (!siteDoc || !basic) throw new Error(`unreachable: site ${name}`);
    const tables = new IdAllocator(doc.settings.firstTable, MAX_TABLE, KERNEL_TABLES);
    const priorities = new IdAllocator(doc.settings.firstPriority, MAX_PRIORITY, KERNEL_PRIORITIES);
    const egress = resolveEgress(doc, name, tunnels, networksOf, tables, priorities, report);
    const replyPaths = resolveReplyPaths(doc, name, services, tunnels, tables, priorities, report);
    checkRepliesComeFirst(name, egress, replyPaths, report);
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
      ...(siteDoc.proxy ? { proxy: siteDoc.proxy } : {}),
    };
  });

  checkExitsHaveWan(doc, sites, report);
  if (problems.length > 0) return { ok: false, diagnostics: problems };
  return { ok: true, intent: { settings: doc.settings, sites, tunnels, services } };
}
