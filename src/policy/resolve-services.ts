import { contains, formatAddress, hostPrefix } from "../net/cidr.js";
import type { Path, Report } from "./diagnostic.js";
import type { NetworkIntent, ServiceIntent, Target, TunnelIntent } from "./intent.js";
import type { PolicyDocument } from "./schema.js";

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

export function resolveServices(
  doc: PolicyDocument,
  tunnels: readonly TunnelIntent[],
  networksOf: (site: string) => readonly NetworkIntent[],
  report: Report,
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
    // Only SNAT and the reverse proxy need a source address of the target's family; a port
    // that keeps the client's address forwards the client's own.
    const keepsClient = s.kind !== "http" && s.clientAddress === "preserve";
    if (front && front.address.family !== address.family && !keepsClient) {
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
