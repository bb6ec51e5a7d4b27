import type { SiteIntent } from "../policy/intent.js";
import type { AddressSpec, LinkSpec, PortSpec } from "./desired.js";

/** Devices netpol creates on a site (VLANs, bridges, WireGuard: tunnels and providers), bridge ports, and addresses. */
export function compileLinks(site: SiteIntent) {
  const links: LinkSpec[] = [];
  const ports: PortSpec[] = [];
  for (const i of site.interfaces) {
    if (i.kind === "vlan")
      links.push({ kind: "vlan", name: i.name, parent: i.parent, vlanId: i.vlanId });
    if (i.kind === "bridge") {
      links.push({ kind: "bridge", name: i.name });
      for (const m of i.members) ports.push({ device: m, master: i.name });
    }
  }
  const addresses: AddressSpec[] = site.networks.flatMap((n) =>
    n.address ? [{ device: n.interface, cidr: n.address }] : [],
  );
  for (const { tunnel, local } of site.tunnels) {
    links.push({ kind: "wireguard", name: local.device, mtu: tunnel.mtu });
    addresses.push({ device: local.device, cidr: local.address });
  }
  for (const p of site.providers) {
    links.push({ kind: "wireguard", name: p.device, mtu: p.mtu });
    for (const cidr of p.addresses) addresses.push({ device: p.device, cidr });
  }
  return { links, ports, addresses };
}
