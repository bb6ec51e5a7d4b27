import {
  type Cidr,
  contains,
  formatCidr,
  hostPrefix,
  makeCidr,
  nestedPairs,
  networkOf,
  overlaps,
} from "../net/cidr.js";
import { checkUnique, type Path, type Report } from "./diagnostic.js";
import type { InterfaceIntent, NetworkIntent } from "./intent.js";
import type { PolicyDocument, SiteDocument } from "./schema.js";

/** A site's end of a tunnel as the document declares it, before the tunnel is resolved. */
export interface TunnelDevice {
  readonly name: string;
  readonly address: Cidr;
  readonly path: Path;
}

/** Checks one site's own declarations: interfaces, networks and external devices. */
export function resolveSiteBasics(
  name: string,
  site: SiteDocument,
  tunnelsHere: readonly TunnelDevice[],
  report: Report,
): { interfaces: InterfaceIntent[]; networks: NetworkIntent[] } {
  const base: Path = ["sites", name];
  const devices = new Set<string>();
  // The path is made only for a problem: at 10,000 sites, most declare nothing twice.
  const declare = (dev: string, path: () => Path) => {
    if (devices.has(dev)) {
      report({
        path: path(),
        message: `device ${dev} is declared twice on site ${name}; keep one`,
      });
    } else devices.add(dev);
  };
  for (const section of ["interfaces", "external", "providers"] as const) {
    const list = site[section];
    for (let idx = 0; idx < list.length; idx++) {
      const dev = (list[idx] as { readonly name: string }).name;
      if (devices.has(dev)) declare(dev, () => [...base, section, idx, "name"]);
      else devices.add(dev);
    }
  }
  for (const t of tunnelsHere) declare(t.name, () => t.path);

  const known = (dev: string) => devices.has(dev);
  const knownList = () => [...devices].sort().join(", ") || "none declared";
  site.interfaces.forEach((i, idx) => {
    if (i.kind === "vlan" && !known(i.parent)) {
      report({
        path: [...base, "interfaces", idx, "parent"],
        message: `unknown interface ${i.parent}; declare it under sites.${name}.interfaces (known: ${knownList()})`,
      });
    }
    if (i.kind === "bridge") {
      i.members.forEach((m, midx) => {
        if (!known(m)) {
          report({
            path: [...base, "interfaces", idx, "members", midx],
            message: `unknown interface ${m}; declare it under sites.${name}.interfaces (known: ${knownList()})`,
          });
        }
      });
    }
  });
  if (site.wan !== undefined && !known(site.wan)) {
    report({
      path: [...base, "wan"],
      message: `unknown interface ${site.wan}; declare it under sites.${name}.interfaces`,
    });
  }

  // A spoke declares one interface and one network: no Set for either.
  const [onlyInterface] = site.interfaces;
  const interfaces =
    site.interfaces.length > 1 ? new Set(site.interfaces.map((i) => i.name)) : undefined;
  const names = site.networks.length > 1 ? new Set<string>() : undefined;
  const networks = site.networks.map((n, idx): NetworkIntent => {
    // Made only for a problem: 10,000 networks, or 10,000 spokes, seldom have one.
    const at = (): Path => [...base, "networks", idx];
    if (names) checkUnique(names, "network", n.name, at, report);
    if (!(interfaces ? interfaces.has(n.interface) : onlyInterface?.name === n.interface)) {
      const ifaces = site.interfaces.map((i) => i.name).join(", ") || "none declared";
      report({
        path: [...at(), "interface"],
        message: `unknown interface ${n.interface}; declare it under sites.${name}.interfaces (known: ${ifaces})`,
      });
    }
    const address = n.address && makeCidr(n.address.family, n.address.address, n.cidr.prefix);
    if (n.address && address) {
      if (!contains(n.cidr, hostPrefix(n.address))) {
        report({
          path: [...at(), "address"],
          message: `the router's address must lie inside ${formatCidr(n.cidr)}`,
        });
      } else if (
        address.address === n.cidr.address &&
        n.cidr.prefix < (n.cidr.family === 4 ? 31 : 127)
      ) {
        report({
          path: [...at(), "address"],
          message: `that is the network address of ${formatCidr(n.cidr)}; pick a host address such as the first usable one`,
        });
      }
    }
    // Two literals, not a spread: one shape per kind of network, and no copy of a temporary.
    if (!address) return { name: n.name, cidr: n.cidr, interface: n.interface };
    return { name: n.name, cidr: n.cidr, interface: n.interface, address };
  });
  checkOverlaps(name, networks, tunnelsHere, report);
  return { interfaces: site.interfaces, networks };
}

/**
 * Networks of one site must not overlap each other or the site's tunnel subnets. Each clash is
 * reported once, on the network declared later (tunnel subnets count as declared first).
 */
function checkOverlaps(
  site: string,
  networks: readonly NetworkIntent[],
  tunnelsHere: readonly TunnelDevice[],
  report: Report,
) {
  // Only networks are reported: without one there is nothing to say.
  if (networks.length === 0) return;
  const [only] = networks;
  const [tunnel] = tunnelsHere;
  // A hub's spoke: one network and one tunnel address make one pair, compared without sorting.
  if (only && networks.length === 1 && tunnelsHere.length <= 1) {
    if (tunnel && overlaps(networkOf(tunnel.address), only.cidr)) {
      clash(site, tunnelClaim(tunnel), networkClaim(only, 0), report);
    }
    return;
  }
  const claims = [...tunnelsHere.map(tunnelClaim), ...networks.map(networkClaim)];
  for (const pair of nestedPairs(claims, (c) => c.cidr)) {
    const [first, later] = pair.sort((a, b) => a.order - b.order) as [Claim, Claim];
    if (later.order >= 0) clash(site, first, later, report);
  }
}

/** A prefix a site's network or tunnel subnet takes, in declaration order (tunnels first). */
interface Claim {
  readonly order: number;
  readonly label: string;
  readonly cidr: Cidr;
}

// Functions of their own, not closures: checkOverlaps runs once for each of 10,000 spokes.
const tunnelClaim = (t: TunnelDevice): Claim => ({
  order: -1,
  label: `tunnel ${t.name}`,
  cidr: networkOf(t.address),
});

const networkClaim = (n: NetworkIntent, idx: number): Claim => ({
  order: idx,
  label: `network ${n.name}`,
  cidr: n.cidr,
});

function clash(site: string, first: Claim, later: Claim, report: Report) {
  report({
    path: ["sites", site, "networks", later.order, "cidr"],
    message: `${formatCidr(later.cidr)} overlaps ${first.label} (${formatCidr(first.cidr)}) on site ${site}; networks of one site must not overlap`,
  });
}

/** Each site's tunnel devices, as the members of every tunnel name them. */
export function tunnelDevicesBySite(doc: PolicyDocument): Map<string, TunnelDevice[]> {
  const bySite = new Map<string, TunnelDevice[]>();
  doc.tunnels.forEach((t, tidx) => {
    t.members.forEach((m, midx) => {
      const list = bySite.get(m.site) ?? [];
      list.push({
        name: m.interface ?? t.name,
        address: m.address,
        path: ["tunnels", tidx, "members", midx, "site"],
      });
      bySite.set(m.site, list);
    });
  });
  return bySite;
}
