import { type Cidr, contains, networkOf } from "../net/cidr.js";
import type { Path, Report } from "./diagnostic.js";
import type { IdAllocator } from "./ids.js";
import {
  type EgressIntent,
  type HealthSettings,
  keepsClientAddress,
  type NetworkIntent,
  type PathTable,
  type ReplyPath,
  type ServiceIntent,
  type SiteIntent,
  type SiteTunnel,
  type Via,
} from "./intent.js";
import { resolveCanary } from "./resolve-canary.js";
import { resolveDns } from "./resolve-dns.js";
import { resolveProbes } from "./resolve-probes.js";
import {
  type EgressDocument,
  HEALTH_DEFAULTS,
  type HealthDocument,
  type PolicyDocument,
} from "./schema.js";

export function resolveEgress(
  doc: PolicyDocument,
  site: string,
  tunnels: readonly SiteTunnel[],
  networks: readonly NetworkIntent[],
  tables: IdAllocator,
  priorities: IdAllocator,
  report: Report,
): EgressIntent[] {
  const egress = doc.sites[site]?.egress ?? [];
  // Most of a hub's spokes have no egress: none of the maps below is worth making for them.
  if (egress.length === 0) return [];
  // Explicit ids first, so automatic ones never take an id the user wrote down.
  egress.forEach((e, idx) => {
    const path: Path = ["sites", site, "egress", idx];
    if (e.table !== undefined) {
      const holder = tables.claim(e.table, 1, `egress ${e.name}`);
      if (holder)
        report({
          path: [...path, "table"],
          message: `table ${e.table} is already used by ${holder}; pick another`,
        });
    }
    if (e.priority !== undefined) {
      const holder = priorities.claim(e.priority, 2, `egress ${e.name}`);
      if (holder) {
        report({
          path: [...path, "priority"],
          message: `priorities ${e.priority} and ${e.priority + 1} are needed here, but ${holder} already uses one; pick another`,
        });
      }
    }
  });
  const sourceOf = new Map<string, string>();
  const networkNamed = new Map(networks.map((n) => [n.name, n]));
  // A hub with an egress per network through its tunnel asks this once per egress.
  const exits = new Map<SiteTunnel, ReadonlySet<string>>();
  const exitsOf = (t: SiteTunnel) => {
    const known = exits.get(t) ?? new Set(t.peers.map((m) => m.site));
    exits.set(t, known);
    return known;
  };
  return egress.flatMap((e, idx): EgressIntent[] => {
    const path: Path = ["sites", site, "egress", idx];
    // Loops, not flatMap: it makes an array per element, and a site may have 10,000 egresses.
    const from: NetworkIntent[] = [];
    const sources: Cidr[] = [];
    e.from.forEach((net, fidx) => {
      const first = sourceOf.get(net);
      if (first !== undefined) {
        report({
          path: [...path, "from", fidx],
          message: `network ${net} already leaves by egress ${first}; a second egress for it would never match`,
        });
      }
      sourceOf.set(net, e.name);
      const found = networkNamed.get(net);
      if (!found) {
        const known = networks.map((n) => n.name).join(", ") || "none declared";
        report({
          path: [...path, "from", fidx],
          message: `site ${site} has no network named ${net} (known: ${known})`,
        });
        return;
      }
      from.push(found);
      sources.push(found.cidr);
    });
    const paths = resolvePaths(doc, site, e, tunnels, exitsOf, path, report);
    if (!paths) return [];
    const provider = paths.find((p) => p.kind === "provider");
    if (provider && !e.masquerade)
      report({
        path: [...path, "masquerade"],
        message: `the provider ${provider.device} accepts only its own address from this site: set masquerade: true`,
      });
    const providerDns = (name: string) =>
      doc.sites[site]?.providers.find((p) => p.name === name)?.dns;
    const dns = resolveDns(e, path, report, providerDns);
    const canary = resolveCanary(e, from, path, report);
    return [
      {
        name: e.name,
        sources,
        except: withTunnelSubnets(e.except, tunnels),
        paths,
        ...(e.health || e.canary || paths.length > 1
          ? { health: healthOf(e.health, resolveProbes(e.health, e.via, path, report)) }
          : {}),
        ...(dns ? { dns } : {}),
        ...(canary ? { canary } : {}),
        masquerade: e.masquerade,
        failClosed: e.failClosed,
        table:
          e.table ??
          orReport(tables.allocate(1, `egress ${e.name}`), ["settings", "firstTable"], report),
        priority:
          e.priority ??
          orReport(
            priorities.allocate(2, `egress ${e.name}`),
            ["settings", "firstPriority"],
            report,
          ),
      },
    ];
  });
}

/**
 * The site's own tunnel subnets never leave by an egress: replies to a peer's tunnel address
 * (an SNATed published service, say) must go back into the tunnel, not out the VPN.
 */
function withTunnelSubnets(except: readonly Cidr[], tunnels: readonly SiteTunnel[]): Cidr[] {
  const own = tunnels.map((t) => networkOf(t.local.address));
  return [...except, ...own.filter((net) => !except.some((x) => contains(x, net)))];
}

/** The policy's health settings, or their defaults: 1 probe a second, down after 2 misses. */
function healthOf(
  doc: HealthDocument | undefined,
  probes: HealthSettings["probes"],
): HealthSettings {
  const { targets, interval, downAfter, upAfter, hold, handshakeMaxAge } = doc ?? HEALTH_DEFAULTS;
  return { targets, interval, downAfter, upAfter, hold, handshakeMaxAge, probes };
}

/**
 * Each name of `via`, in order. A path is a device or tunnel the site declares: the uplink is
 * one only where the policy names it. A chain's paths are probed, so each needs a target: its
 * peer (a tunnel's exit, an external device's gateway) or the egress's `health.targets`.
 */
function resolvePaths(
  doc: PolicyDocument,
  site: string,
  e: EgressDocument,
  tunnels: readonly SiteTunnel[],
  exitsOf: (tunnel: SiteTunnel) => ReadonlySet<string>,
  path: Path,
  report: Report,
): [Via, ...Via[]] | undefined {
  const paths: Via[] = [];
  // A chain is a few names long: looking back along it beats a Set per egress.
  e.via.forEach((name, idx) => {
    const at: Path = e.via.length > 1 ? [...path, "via", idx] : [...path, "via"];
    if (e.via.indexOf(name) < idx) {
      report({ path: at, message: `${name} is named twice in this chain; keep one` });
      return;
    }
    const via = resolveVia(doc, site, name, e.exit, tunnels, exitsOf, at, path, report);
    if (!via) return;
    const probed = e.via.length > 1 || e.health !== undefined || e.canary !== undefined;
    if (probed && !peerKnown(via) && (e.health?.targets.length ?? 0) === 0) {
      report({
        path: at,
        message: `netpol knows no peer of ${name} to probe through it: set its gateway under sites.${site}.external (a provider's dns), or name a probe target under health.targets`,
      });
    }
    paths.push(via);
  });
  return paths.length > 0 && paths.length === e.via.length ? (paths as [Via, ...Via[]]) : undefined;
}

const peerKnown = (via: Via) =>
  via.kind === "tunnel" || (via.kind === "device" ? via.gateway : via.peer) !== undefined;

function resolveVia(
  doc: PolicyDocument,
  site: string,
  via: string,
  exit: string | undefined,
  tunnels: readonly SiteTunnel[],
  exitsOf: (tunnel: SiteTunnel) => ReadonlySet<string>,
  /** Where this name is written, and the egress it belongs to (for `exit`). */
  path: Path,
  egressPath: Path,
  report: Report,
): Via | undefined {
  const external = doc.sites[site]?.external.find((x) => x.name === via);
  if (external)
    return {
      kind: "device",
      device: via,
      ...(external.gateway ? { gateway: external.gateway } : {}),
    };
  const provider = doc.sites[site]?.providers.find((p) => p.name === via);
  if (provider) {
    const [peer] = provider.dns;
    return { kind: "provider", device: via, ...(peer ? { peer } : {}) };
  }
  const tunnel = tunnels.find((t) => t.tunnel.name === via);
  if (!tunnel) {
    report({
      path,
      message: `${via} is neither an external device or provider of ${site} nor a tunnel ${site} is a member of; declare it under sites.${site}.external, sites.${site}.providers or tunnels`,
    });
    return undefined;
  }
  // A spoke of a hub reaches only the hub, so only the hub can be its exit.
  const only = tunnel.peers.length === 1 ? tunnel.peers[0]?.site : undefined;
  const chosen = exit ?? only;
  if (chosen === undefined || !exitsOf(tunnel).has(chosen)) {
    const others = tunnel.peers.map((m) => m.site);
    report({
      path: exit === undefined ? path : [...egressPath, "exit"],
      message: `say which member of ${via} the traffic exits through: set exit to one of ${others.join(", ")}`,
    });
    return undefined;
  }
  return { kind: "tunnel", tunnel: via, device: tunnel.local.device, exit: chosen };
}

/** One reply path per tunnel that brings a site unchanged client addresses. */
export function resolveReplyPaths(
  doc: PolicyDocument,
  /** The services aimed at the site. */
  services: readonly ServiceIntent[],
  tunnels: readonly SiteTunnel[],
  tables: IdAllocator,
  priorities: IdAllocator,
  report: Report,
): ReplyPath[] {
  if (services.length === 0) return [];
  const names = [
    ...new Set(services.filter(keepsClientAddress).map((s) => s.target.tunnel)),
  ].sort();
  return names.map((tunnel) => {
    const device = tunnels.find((t) => t.tunnel.name === tunnel)?.local.device ?? tunnel;
    return {
      tunnel,
      device,
      table: orReport(
        tables.allocate(1, `replies into ${device}`),
        ["settings", "firstTable"],
        report,
      ),
      priority: orReport(
        priorities.allocateFrom(doc.settings.firstReplyPriority, 1, `replies into ${device}`),
        ["settings", "firstReplyPriority"],
        report,
      ),
    };
  });
}

/**
 * A table for each device that is a path of a chain, taken after every other id so a policy
 * without chains keeps the ids it had: a probe marked for the path looks it up, so it takes
 * its path whichever path the egress uses.
 */
export function resolvePathTables(
  egress: readonly EgressIntent[],
  tables: IdAllocator,
  report: Report,
): PathTable[] {
  if (egress.length === 0) return [];
  const devices = [
    ...new Set(
      egress.filter((e) => e.paths.length > 1).flatMap((e) => e.paths.map((p) => p.device)),
    ),
  ];
  return devices.map((device) => ({
    device,
    table: orReport(tables.allocate(1, `path ${device}`), ["settings", "firstTable"], report),
  }));
}

/** An id the allocator could not find: reported against the setting that sets where they start. */
function orReport(id: number | undefined, path: Path, report: Report): number {
  if (id !== undefined) return id;
  report({ path, message: "no free id is left from here up to the kernel's own; start lower" });
  return 0;
}

/** A marked reply must meet its fwmark rule before any egress rule can claim its source. */
export function checkRepliesComeFirst(
  site: string,
  egress: readonly EgressIntent[],
  replies: readonly ReplyPath[],
  report: Report,
) {
  for (const r of replies) {
    const first = egress.find((e) => e.priority <= r.priority);
    if (first) {
      report({
        path: ["settings", "firstReplyPriority"],
        message: `replies into ${r.device} on ${site} get priority ${r.priority}, after egress ${first.name} (${first.priority}); set a firstReplyPriority below every egress priority`,
      });
    }
  }
}

export function checkExitsHaveWan(
  doc: PolicyDocument,
  sites: readonly SiteIntent[],
  report: Report,
) {
  for (const site of sites) {
    site.egress.forEach((e, idx) => {
      e.paths.forEach((via, pidx) => {
        if (via.kind === "tunnel" && doc.sites[via.exit]?.wan === undefined) {
          report({
            path: ["sites", site.name, "egress", idx, "via", ...(e.paths.length > 1 ? [pidx] : [])],
            message: `traffic leaves through ${via.exit}, which has no wan interface; set sites.${via.exit}.wan`,
          });
        }
      });
    });
  }
}
