import type { SiteState } from "../compile/desired.js";
import { formatCidr } from "../net/cidr.js";
import { addressArgs, routeArgs, ruleArgs } from "../render/ip.js";

/**
 * What a site would change going from one compiled state to another, one line per object, as
 * `netpol plan` words them: the dry run of a publish, made from what each site reported it
 * applied rather than from its kernel (which only the site reads). Drift the site reported
 * comes on top.
 */
export function stateChanges(before: SiteState | undefined, after: SiteState): string[] {
  const lines: string[] = [];
  const section = (describe: (s: SiteState) => readonly string[]) => {
    const old = new Set(before ? describe(before) : []);
    const now = new Set(describe(after));
    for (const line of now) if (!old.has(line)) lines.push(`+ ${line}`);
    for (const line of old) if (!now.has(line)) lines.push(`- ${line}`);
  };
  section((s) => s.links.map((l) => `link ${l.name} (${l.kind})`));
  section((s) => s.ports.map((p) => `link ${p.device} into bridge ${p.master}`));
  section((s) => s.addresses.map((a) => `address ${addressArgs("add", a).slice(2).join(" ")}`));
  section((s) =>
    s.routes.map((r) => `route ${routeArgs("add", r, s.protocol).slice(2).join(" ")}`),
  );
  section((s) => s.rules.map((r) => `rule ${ruleArgs("add", r, s.protocol).slice(2).join(" ")}`));
  section((s) => s.sysctls.map(([key, value]) => `sysctl ${key} = ${value}`));
  section((s) =>
    s.wireguard.flatMap((w) =>
      w.peers.map(
        (p) =>
          `wireguard ${w.name} peer ${p.site} (${p.publicKey.slice(0, 8)}…) allowed-ips ${p.allowedIps.map(formatCidr).join(",")}` +
          (p.endpoint ? ` endpoint ${p.endpoint.host}:${p.endpoint.port}` : "") +
          (p.keepalive ? ` keepalive ${p.keepalive}` : ""),
      ),
    ),
  );
  section((s) =>
    (s.proxy?.routes ?? []).map(
      (r) => `proxy route netpol-${r.service}: ${r.hostname} → ${r.upstream}`,
    ),
  );
  const nft = (s: SiteState | undefined) => JSON.stringify([s?.nftSets, s?.nftChains]);
  if (nft(before) !== nft(after)) lines.push("~ nftables table inet netpol (rules or sets change)");
  return lines;
}
