import type { Cidr } from "../net/cidr.js";
import type { Path, Report } from "./diagnostic.js";
import type { MemberIntent, NetworkIntent, TunnelIntent } from "./intent.js";
import type { PolicyDocument } from "./schema.js";

export function resolveTunnels(
  doc: PolicyDocument,
  siteNames: readonly string[],
  networksOf: (site: string) => readonly NetworkIntent[],
  report: Report,
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
