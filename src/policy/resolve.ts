import { type Cidr, contains, formatAddress, hostPrefix, networkOf } from "../net/cidr.js";
import type { Diagnostic } from "./diagnostic.js";
import { IdAllocator, KERNEL_PRIORITIES, KERNEL_TABLES, MAX_PRIORITY, MAX_TABLE } from "./ids.js";
import type {
  EgressIntent,
  Intent,
  MemberIntent,
  NetworkIntent,
  ReplyPath,
  ServiceIntent,
  SiteIntent,
  Target,
  TunnelIntent,
  Via,
} from "./intent.js";
import { resolveSiteBasics, tunnelsOfSite } from "./resolve-site.js";
import type { PolicyDocument } from "./schema.js";

type Path = (string | number)[];
export type Resolved = { ok: true; intent: Intent } | { ok: false; diagnostics: Diagnostic[] };

const DEFAULT_PROXY = {
  tls: "auto",
  httpPort: 80,
  httpsPort: 443,
  adminListen: "localhost:2019",
} as const;

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
      proxy: siteDoc.proxy ?? DEFAULT_PROXY,
    };
  });

  checkExitsHaveWan(doc, sites, report);
  if (problems.length > 0) return { ok: false, diagnostics: problems };
  return { ok: true, intent: { settings: doc.settings, sites, tunnels, services } };
}

function resolveTunnels(
  doc: PolicyDocument,
  siteNames: readonly string[],
  networksOf: (site: string) => readonly NetworkIntent[],
  report: (d: Diagnostic) => void,
): TunnelIntent[] {
  const seenNames = new Set<string>();
  const seenKeys = new Map<string, string>();
  return doc.tunnels.map((t, tidx) => {
    const path: Path = ["tunnels", tidx];
    if (seenNames.has(t.name)) {
      report({
        path: [...path, "name"],
        message: `tunnel ${t.name} is declared twice; rename one`,
      });
    }
    seenNames.add(t.name);
    const sitesInTunnel = new Set<string>();
    const members: MemberIntent[] = t.members.map((m, midx) => {
      const mpath: Path = [...path, "members", midx];
      if (!siteNames.includes(m.site)) {
        report({
          path: [...mpath, "site"],
          message: `unknown site ${m.site}; declare it under sites (known: ${siteNames.join(", ")})`,
        });
      }
      if (sitesInTunnel.has(m.site)) {
        report({
          path: [...mpath, "site"],
          message: `site ${m.site} is a member of ${t.name} twice`,
        });
      }
      sitesInTunnel.add(m.site);
      const owner = seenKeys.get(m.publicKey);
      if (owner !== undefined) {
        report({
          path: [...mpath, "publicKey"],
          message: `this public key is already used by ${owner}; every member needs its own key pair`,
        });
      }
      seenKeys.set(m.publicKey, `${t.name}/${m.site}`);
      const advertise = m.advertise.flatMap((net, aidx): Cidr[] => {
        const found = networksOf(m.site).find((n) => n.name === net);
        if (!found) {
          report({
            path: [...mpath, "advertise", aidx],
            message: `site ${m.site} has no network named ${net}`,
          });
          return [];
        }
        return [found.cidr];
      });
      const listenPort = m.listenPort ?? m.endpoint?.port;
      return {
        site: m.site,
        device: m.interface ?? t.name,
        address: m.address,
        publicKey: m.publicKey,
        privateKeyFile: m.privateKeyFile,
        ...(m.endpoint ? { endpoint: { host: m.endpoint.host, port: m.endpoint.port } } : {}),
        ...(listenPort !== undefined ? { listenPort } : {}),
        advertise,
      };
    });
    if (!t.members.some((m) => m.endpoint)) {
      report({
        path: [...path, "members"],
        message:
          "no member has an endpoint, so no one can dial; give the member with a static address an endpoint",
      });
    }
    return { name: t.name, mtu: t.mtu, keepalive: t.keepalive, members };
  });
}

function findTarget(
  site: string,
  address: { family: 4 | 6; address: bigint },
  tunnels: readonly TunnelIntent[],
  networksOf: (site: string) => readonly NetworkIntent[],
): Omit<Target, "port" | "address"> | undefined {
  for (const t of tunnels) {
    const front = t.members.find((m) => m.site === site);
    if (!front) continue;
    for (const m of t.members) {
      if (m.site === site) continue;
      if (networksOf(m.site).some((n) => contains(n.cidr, hostPrefix(address)))) {
        return { site: m.site, tunnel: t.name, via: front.device };
      }
    }
  }
  return undefined;
}

function resolveServices(
  doc: PolicyDocument,
  tunnels: readonly TunnelIntent[],
  networksOf: (site: string) => readonly NetworkIntent[],
  report: (d: Diagnostic) => void,
): ServiceIntent[] {
  const listeners = new Map<string, string>();
  const names = new Set<string>();
  return doc.services.flatMap((s, idx): ServiceIntent[] => {
    const path: Path = ["services", idx];
    if (names.has(s.name)) {
      report({
        path: [...path, "name"],
        message: `service ${s.name} is declared twice; rename one`,
      });
    }
    names.add(s.name);
    const site = doc.sites[s.publishOn];
    if (!site) {
      report({
        path: [...path, "publishOn"],
        message: `unknown site ${s.publishOn}; declare it under sites`,
      });
      return [];
    }
    const listener =
      s.kind === "http"
        ? `${s.publishOn} http ${s.hostname.toLowerCase()}`
        : `${s.publishOn} ${s.kind} ${s.port}`;
    const taken = listeners.get(listener);
    if (taken !== undefined) {
      report({
        path: [...path, s.kind === "http" ? "hostname" : "port"],
        message: `service ${taken} already listens there on ${s.publishOn}; pick another ${s.kind === "http" ? "hostname" : "port"}`,
      });
    }
    listeners.set(listener, s.name);
    if (s.kind !== "http" && site.wan === undefined) {
      report({
        path: [...path, "publishOn"],
        message: `site ${s.publishOn} publishes a ${s.kind} port but has no wan interface; set sites.${s.publishOn}.wan`,
      });
    }
    const address = s.target.address;
    if (!address) {
      report({
        path: [...path, "target"],
        message: "the target must be an IP address, not a host name",
      });
      return [];
    }
    const found = findTarget(s.publishOn, address, tunnels, networksOf);
    if (!found) {
      report({
        path: [...path, "target"],
        message: `${formatAddress(address)} is not in a network of any site joined to ${s.publishOn} by a tunnel, so ${s.publishOn} cannot reach it; declare the network on the target's site and join the sites with a tunnel`,
      });
      return [];
    }
    const front = tunnels
      .find((t) => t.name === found.tunnel)
      ?.members.find((m) => m.site === s.publishOn);
    if (front && front.address.family !== address.family) {
      report({
        path: [...path, "target"],
        message: `the target is IPv${address.family} but ${s.publishOn}'s address on ${found.tunnel} is IPv${front.address.family}, so ${s.publishOn} has no source address to reach it; use an IPv${front.address.family} target`,
      });
      return [];
    }
    const target: Target = { address, port: s.target.port, ...found };
    if (s.kind === "http") {
      return [
        {
          kind: "http",
          name: s.name,
          publishOn: s.publishOn,
          hostname: s.hostname.toLowerCase(),
          target,
        },
      ];
    }
    return [
      {
        kind: s.kind,
        name: s.name,
        publishOn: s.publishOn,
        port: s.port,
        clientAddress: s.clientAddress,
        target,
      },
    ];
  });
}

function resolveEgress(
  doc: PolicyDocument,
  site: string,
  tunnels: readonly TunnelIntent[],
  networksOf: (site: string) => readonly NetworkIntent[],
  tables: IdAllocator,
  priorities: IdAllocator,
  report: (d: Diagnostic) => void,
): EgressIntent[] {
  const egress = doc.sites[site]?.egress ?? [];
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
  return egress.flatMap((e, idx): EgressIntent[] => {
    const path: Path = ["sites", site, "egress", idx];
    const sources = e.from.flatMap((net, fidx) => {
      const first = sourceOf.get(net);
      if (first !== undefined) {
        report({
          path: [...path, "from", fidx],
          message: `network ${net} already leaves by egress ${first}; a second egress for it would never match`,
        });
      }
      sourceOf.set(net, e.name);
      const found = networksOf(site).find((n) => n.name === net);
      if (!found) {
        const known =
          networksOf(site)
            .map((n) => n.name)
            .join(", ") || "none declared";
        report({
          path: [...path, "from", fidx],
          message: `site ${site} has no network named ${net} (known: ${known})`,
        });
        return [];
      }
      return [found.cidr];
    });
    const via = resolveVia(doc, site, e.via, e.exit, tunnels, path, report);
    if (!via) return [];
    return [
      {
        name: e.name,
        sources,
        except: withTunnelSubnets(e.except, tunnels, site),
        via,
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
function withTunnelSubnets(
  except: readonly Cidr[],
  tunnels: readonly TunnelIntent[],
  site: string,
): Cidr[] {
  const own = tunnels.flatMap((t) =>
    t.members.filter((m) => m.site === site).map((m) => networkOf(m.address)),
  );
  return [...except, ...own.filter((net) => !except.some((x) => contains(x, net)))];
}

function resolveVia(
  doc: PolicyDocument,
  site: string,
  via: string,
  exit: string | undefined,
  tunnels: readonly TunnelIntent[],
  path: Path,
  report: (d: Diagnostic) => void,
): Via | undefined {
  const external = doc.sites[site]?.external.find((x) => x.name === via);
  if (external)
    return {
      kind: "device",
      device: via,
      ...(external.gateway ? { gateway: external.gateway } : {}),
    };
  const tunnel = tunnels.find((t) => t.name === via && t.members.some((m) => m.site === site));
  if (!tunnel) {
    report({
      path: [...path, "via"],
      message: `${via} is neither an external device of ${site} nor a tunnel ${site} is a member of; declare it under sites.${site}.external or tunnels`,
    });
    return undefined;
  }
  const others = tunnel.members.filter((m) => m.site !== site).map((m) => m.site);
  const chosen = exit ?? (others.length === 1 ? others[0] : undefined);
  if (chosen === undefined || !others.includes(chosen)) {
    report({
      path: [...path, exit === undefined ? "via" : "exit"],
      message: `say which member of ${via} the traffic exits through: set exit to one of ${others.join(", ")}`,
    });
    return undefined;
  }
  const device = tunnel.members.find((m) => m.site === site)?.device ?? via;
  return { kind: "tunnel", tunnel: via, device, exit: chosen };
}

/** One reply path per tunnel that brings this site unchanged client addresses. */
function resolveReplyPaths(
  doc: PolicyDocument,
  site: string,
  services: readonly ServiceIntent[],
  tunnels: readonly TunnelIntent[],
  tables: IdAllocator,
  priorities: IdAllocator,
  report: (d: Diagnostic) => void,
): ReplyPath[] {
  const names = [
    ...new Set(
      services
        .filter(
          (s) => s.kind !== "http" && s.clientAddress === "preserve" && s.target.site === site,
        )
        .map((s) => s.target.tunnel),
    ),
  ].sort();
  return names.map((tunnel) => {
    const device =
      tunnels.find((t) => t.name === tunnel)?.members.find((m) => m.site === site)?.device ??
      tunnel;
    return {
      tunnel,
      device,
      mark: doc.settings.markBase + doc.tunnels.findIndex((t) => t.name === tunnel),
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

/** An id the allocator could not find: reported against the setting that sets where they start. */
function orReport(id: number | undefined, path: Path, report: (d: Diagnostic) => void): number {
  if (id !== undefined) return id;
  report({ path, message: "no free id is left from here up to the kernel's own; start lower" });
  return 0;
}

/** A marked reply must meet its fwmark rule before any egress rule can claim its source. */
function checkRepliesComeFirst(
  site: string,
  egress: readonly EgressIntent[],
  replies: readonly ReplyPath[],
  report: (d: Diagnostic) => void,
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

function checkExitsHaveWan(
  doc: PolicyDocument,
  sites: readonly SiteIntent[],
  report: (d: Diagnostic) => void,
) {
  for (const site of sites) {
    site.egress.forEach((e, idx) => {
      if (e.via.kind === "tunnel" && doc.sites[e.via.exit]?.wan === undefined) {
        report({
          path: ["sites", site.name, "egress", idx, "via"],
          message: `traffic leaves through ${e.via.exit}, which has no wan interface; set sites.${e.via.exit}.wan`,
        });
      }
    });
  }
}
