import type { Cidr } from "../net/cidr.js";
import { checkUnique, type Path, type Report } from "./diagnostic.js";
import type { HostPort } from "./fields.js";
import type { Endpoint, MemberIntent, NetworkIntent, SiteTunnel, TunnelIntent } from "./intent.js";
import type { PolicyDocument, TunnelDocument } from "./schema.js";

export function resolveTunnels(
  doc: PolicyDocument,
  siteNames: ReadonlySet<string>,
  networkNamed: (site: string, name: string) => NetworkIntent | undefined,
  report: Report,
): TunnelIntent[] {
  const seenNames = new Set<string>();
  const seenKeys = new Map<string, string>();
  const known = () => [...siteNames].join(", ");
  return doc.tunnels.map((t, tidx) => {
    const path: Path = ["tunnels", tidx];
    checkUnique(seenNames, "tunnel", t.name, path, report);
    const sitesInTunnel = new Set<string>();
    const members: MemberIntent[] = t.members.map((m, midx) => {
      // Made only for a problem: a hub has thousands of members and most have none.
      const mpath = (): Path => [...path, "members", midx];
      if (!siteNames.has(m.site)) {
        report({
          path: [...mpath(), "site"],
          message: `unknown site ${m.site}; declare it under sites (known: ${known()})`,
        });
      }
      if (sitesInTunnel.has(m.site)) {
        report({
          path: [...mpath(), "site"],
          message: `site ${m.site} is a member of ${t.name} twice`,
        });
      }
      sitesInTunnel.add(m.site);
      const owner = seenKeys.get(m.publicKey);
      if (owner !== undefined) {
        report({
          path: [...mpath(), "publicKey"],
          message: `this public key is already used by ${owner}; every member needs its own key pair`,
        });
      }
      seenKeys.set(m.publicKey, `${t.name}/${m.site}`);
      // A loop, not flatMap (an array per element): a hub's 10,000 spokes advertise one each.
      const advertise: Cidr[] = [];
      m.advertise.forEach((net, aidx) => {
        const found = networkNamed(m.site, net);
        if (found) advertise.push(found.cidr);
        else {
          report({
            path: [...mpath(), "advertise", aidx],
            message: `site ${m.site} has no network named ${net}`,
          });
        }
      });
      const listenPort = m.listenPort ?? m.endpoint?.port;
      return {
        site: m.site,
        device: m.interface ?? t.name,
        address: m.address,
        publicKey: m.publicKey,
        privateKeyFile: m.privateKeyFile,
        ...(m.endpoint ? { endpoint: endpointOf(m.endpoint) } : {}),
        ...(listenPort !== undefined ? { listenPort } : {}),
        advertise,
      };
    });
    const hub = resolveHub(t, sitesInTunnel, path, report);
    checkDialable(t, hub, path, report);
    return {
      name: t.name,
      mtu: t.mtu,
      keepalive: t.keepalive,
      members,
      ...(hub !== undefined ? { hub } : {}),
    };
  });
}

/** The hub of a hub-and-spoke tunnel: declared with `topology: hub`, and one of its members. */
function resolveHub(
  t: TunnelDocument,
  sites: ReadonlySet<string>,
  path: Path,
  report: Report,
): string | undefined {
  if (t.topology === "mesh") {
    if (t.hub !== undefined) {
      report({
        path: [...path, "hub"],
        message: "a hub needs `topology: hub`; in a mesh every member peers with every other",
      });
    }
    return undefined;
  }
  if (t.hub === undefined) {
    report({ path: [...path, "topology"], message: "name the hub site: hub: SITE" });
    return undefined;
  }
  if (!sites.has(t.hub)) {
    report({
      path: [...path, "hub"],
      message: `the hub ${t.hub} is not a member of ${t.name}; add it under members`,
    });
    return undefined;
  }
  return t.hub;
}

/** Someone must dial: in a mesh any member with an endpoint, in a hub the hub or each spoke. */
function checkDialable(t: TunnelDocument, hub: string | undefined, path: Path, report: Report) {
  if (hub === undefined) {
    if (!t.members.some((m) => m.endpoint)) {
      report({
        path: [...path, "members"],
        message:
          "no member has an endpoint, so no one can dial; give the member with a static address an endpoint",
      });
    }
    return;
  }
  if (t.members.some((m) => m.site === hub && m.endpoint)) return;
  t.members.forEach((m, midx) => {
    if (m.site !== hub && !m.endpoint) {
      report({
        path: [...path, "members", midx],
        message: `neither the hub ${hub} nor spoke ${m.site} has an endpoint, so neither can dial; give the hub an endpoint`,
      });
    }
  });
}

/** Each tunnel a site is a member of, with the members it peers with. */
export function tunnelsOfSite(tunnels: readonly TunnelIntent[]): Map<string, SiteTunnel[]> {
  const bySite = new Map<string, SiteTunnel[]>();
  for (const tunnel of tunnels) {
    const hub = tunnel.members.find((m) => m.site === tunnel.hub);
    for (const local of tunnel.members) {
      const peers =
        hub === undefined || local === hub ? tunnel.members.filter((m) => m !== local) : [hub];
      const list = bySite.get(local.site) ?? [];
      list.push({ tunnel, local, peers });
      bySite.set(local.site, list);
    }
  }
  return bySite;
}

/** The endpoint as fields.ts parsed it, keeping the address it found in the host, if any. */
export function endpointOf(e: HostPort): Endpoint {
  return { host: e.host, port: e.port, ...(e.address ? { address: e.address } : {}) };
}
