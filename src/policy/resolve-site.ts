import { type Cidr, contains, formatCidr, hostPrefix, networkOf, overlaps } from "../net/cidr.js";
import type { Report } from "./diagnostic.js";
import type { InterfaceIntent, NetworkIntent } from "./intent.js";
import type { PolicyDocument, SiteDocument } from "./schema.js";

type Path = (string | number)[];

/** Checks one site's own declarations: interfaces, networks and external devices. */
export function resolveSiteBasics(
  name: string,
  site: SiteDocument,
  tunnelsHere: readonly { name: string; address: Cidr; path: Path }[],
  report: Report,
): { interfaces: InterfaceIntent[]; networks: NetworkIntent[] } {
  const base: Path = ["sites", name];
  const devices = new Map<string, Path>();
  const declare = (dev: string, path: Path) => {
    const first = devices.get(dev);
    if (first) {
      report({ path, message: `device ${dev} is declared twice on site ${name}; keep one` });
    } else devices.set(dev, path);
  };
  site.interfaces.forEach((i, idx) => {
    declare(i.name, [...base, "interfaces", idx, "name"]);
  });
  site.external.forEach((e, idx) => {
    declare(e.name, [...base, "external", idx, "name"]);
  });
  for (const t of tunnelsHere) declare(t.name, t.path);

  const known = (dev: string) => devices.has(dev);
  const knownList = () => [...devices.keys()].sort().join(", ") || "none declared";
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

  const networks: NetworkIntent[] = [];
  const names = new Set<string>();
  const claimed: { label: string; cidr: Cidr }[] = tunnelsHere.map((t) => ({
    label: `tunnel ${t.name}`,
    cidr: networkOf(t.address),
  }));
  site.networks.forEach((n, idx) => {
    const path: Path = [...base, "networks", idx];
    if (names.has(n.name)) {
      report({
        path: [...path, "name"],
        message: `network ${n.name} is declared twice; rename one`,
      });
    }
    names.add(n.name);
    const ifaceKnown = site.interfaces.some((i) => i.name === n.interface);
    if (!ifaceKnown) {
      const ifaces = site.interfaces.map((i) => i.name).join(", ") || "none declared";
      report({
        path: [...path, "interface"],
        message: `unknown interface ${n.interface}; declare it under sites.${name}.interfaces (known: ${ifaces})`,
      });
    }
    for (const other of claimed) {
      if (overlaps(other.cidr, n.cidr)) {
        report({
          path: [...path, "cidr"],
          message: `${formatCidr(n.cidr)} overlaps ${other.label} (${formatCidr(other.cidr)}) on site ${name}; networks of one site must not overlap`,
        });
      }
    }
    claimed.push({ label: `network ${n.name}`, cidr: n.cidr });
    let address: Cidr | undefined;
    if (n.address) {
      address = { ...n.address, prefix: n.cidr.prefix };
      if (!contains(n.cidr, hostPrefix(n.address))) {
        report({
          path: [...path, "address"],
          message: `the router's address must lie inside ${formatCidr(n.cidr)}`,
        });
      } else if (
        address.address === n.cidr.address &&
        n.cidr.prefix < (n.cidr.family === 4 ? 31 : 127)
      ) {
        report({
          path: [...path, "address"],
          message: `that is the network address of ${formatCidr(n.cidr)}; pick a host address such as the first usable one`,
        });
      }
    }
    networks.push({
      name: n.name,
      cidr: n.cidr,
      interface: n.interface,
      ...(address ? { address } : {}),
    });
  });
  return { interfaces: site.interfaces, networks };
}

/** Sites that each tunnel member names, checked against the document. */
export function tunnelsOfSite(doc: PolicyDocument, site: string) {
  const found: { name: string; address: Cidr; path: Path }[] = [];
  doc.tunnels.forEach((t, tidx) => {
    t.members.forEach((m, midx) => {
      if (m.site === site) {
        found.push({
          name: m.interface ?? t.name,
          address: m.address,
          path: ["tunnels", tidx, "members", midx, "site"],
        });
      }
    });
  });
  return found;
}
