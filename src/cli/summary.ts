import { formatCidr } from "../net/cidr.js";
import { formatHostPort } from "../net/host-port.js";
import { type Intent, keepsClientAddress } from "../policy/intent.js";

/** A one-screen account of what a policy does, site by site. */
export function summarize(intent: Intent): string {
  const out: string[] = [];
  for (const site of intent.sites) {
    out.push(`site ${site.name}${site.wan ? ` (wan ${site.wan})` : ""}`);
    for (const n of site.networks) {
      out.push(`  network ${n.name} ${formatCidr(n.cidr)} on ${n.interface}`);
    }
    for (const e of site.egress) {
      const except = e.except.length > 0 ? ` except ${e.except.map(formatCidr).join(", ")}` : "";
      const via = e.paths
        .map((p) => `${p.device}${p.kind === "tunnel" ? ` (exits at ${p.exit})` : ""}`)
        .join(", then ");
      const flags = [
        e.masquerade ? "masquerade" : "",
        e.failClosed ? "fail-closed" : "fails open",
      ].filter(Boolean);
      out.push(
        `  egress ${e.name}: ${e.sources.map(formatCidr).join(", ")} → ${via}${except}; table ${e.table}, priority ${e.priority}; ${flags.join(", ")}`,
      );
    }
    for (const { tunnel: t, local: me, peers: mine } of site.tunnels) {
      const peers = mine.map((m) => m.site);
      const role = me.endpoint ? `listens on ${me.listenPort ?? me.endpoint.port}` : "dials out";
      out.push(`  tunnel ${t.name} ${formatCidr(me.address)} ↔ ${peers.join(", ")}; ${role}`);
    }
    for (const s of intent.services.filter((x) => x.publishOn === site.name)) {
      const front = s.kind === "http" ? `http ${s.hostname}` : `${s.kind} ${s.port}`;
      const keep = keepsClientAddress(s) ? " (keeps client address)" : "";
      out.push(
        `  publishes ${s.name}: ${front} → ${formatHostPort(s.target.address, s.target.port)} at ${s.target.site} via ${s.target.tunnel}${keep}`,
      );
    }
  }
  return `${out.join("\n")}\n`;
}
