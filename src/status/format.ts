import type { CanaryReport } from "../health/canary.js";
import type { SiteStatus } from "./collect.js";

/** How long ago, as a person says it: "42s ago", "5m ago", "never". */
export function formatAge(seconds: number | null): string {
  if (seconds === null) return "never";
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  return `${Math.round(seconds / 3600)}h ago`;
}

function certificateLines(c: SiteStatus["certificates"][number]): string[] {
  const served = c.served
    ? `${c.served.issuer}, expires ${c.served.notAfter}${c.servedError ? ` (${c.servedError})` : ""}`
    : `NONE SERVED (${c.servedError ?? "no answer"})`;
  const lines = [`  certificate ${c.hostname}: ${served}`];
  const e = c.lastIssuanceError;
  if (e) lines.push(`    last issuance error at ${e.at}: ${e.message}`);
  if (c.reason) lines.push(`    reason: ${c.reason}`);
  return lines;
}

/** The status as a person reads it. */
export function formatStatus(s: SiteStatus): string {
  const out = [`site ${s.site ?? "(none)"} (${s.scope}), netpol ${s.version}`];
  out.push(
    s.policy
      ? `  policy ${s.policy.hash.slice(0, 12)} applied ${s.policy.appliedAt} by ${s.policy.appliedBy}`
      : "  no policy applied",
  );
  if (s.fleet) out.push(`  ${s.fleet.message}`);
  if (s.pendingConfirm) out.push(`  ${s.pendingConfirm.message}`);
  if (s.interruptedApply) out.push(`  ${s.interruptedApply.message}`);
  if (s.drift) {
    out.push(s.drift.inSync ? "  in sync" : `  drift: ${s.drift.changes.length} changes pending`);
    for (const c of s.drift.changes) {
      out.push(`    ${c.op} ${c.kind} ${c.what}`);
      for (const d of c.details ?? []) out.push(`      ${d}`);
    }
    for (const w of s.drift.waiting) out.push(`    waiting: ${w}`);
    for (const c of s.drift.conflicts) out.push(`    conflict: ${c}`);
    for (const w of s.drift.warnings ?? []) out.push(`    warning: ${w}`);
  }
  for (const t of s.tunnels) {
    out.push(`  wireguard ${t.interface} (port ${t.listenPort})${t.up ? "" : ": DOWN"}`);
    for (const p of t.peers) {
      out.push(
        `    peer ${p.site ?? p.publicKey}: handshake ${formatAge(p.handshakeAgeSeconds)}, rx ${p.rxBytes} B, tx ${p.txBytes} B, endpoint ${p.endpoint ?? "-"}, allowed ${p.allowedIps.join(", ")}`,
      );
    }
  }
  for (const e of s.egress) {
    const state = e.deviceUp ? "up" : e.failClosedEngaged ? "DOWN, fail-closed engaged" : "DOWN";
    const drops =
      e.droppedPackets !== null ? `, ${e.droppedPackets} packets stopped by the guard` : "";
    out.push(`  egress ${e.name} via ${e.device}: ${state}${drops}`);
    if (e.health) {
      const h = e.health;
      const switched =
        h.switches !== null
          ? `, ${h.switches} switches${h.lastSwitchAt ? `, last ${h.lastSwitchAt}` : ""}`
          : "";
      const allDown = h.paths.every((p) => p.state === "down");
      out.push(
        `    active path: ${h.active ?? (allDown ? "none: all paths are down, fail-closed engaged" : "none")} (judged by the ${h.judgedBy}${switched})`,
      );
      for (const p of h.paths) {
        const rtt = p.lastRttMs !== null ? `, rtt ${p.lastRttMs} ms` : "";
        const misses = p.misses > 0 ? `, ${p.misses} missed` : "";
        const hs =
          p.handshakeAgeSeconds !== null ? `, handshake ${formatAge(p.handshakeAgeSeconds)}` : "";
        const why = p.reason ? `: ${p.reason}` : "";
        out.push(`    path ${p.device}: ${p.state.toUpperCase()}${rtt}${misses}${hs}${why}`);
      }
      if (h.canary) out.push(`    ${canaryLine(h.canary)}`);
    }
  }
  for (const d of s.forwardDrops) {
    out.push(
      `  forwarding: chain ${d.chain} of table ${d.table} drops what none of its rules accepts (policy drop), netpol's forwarded traffic too; accept it there (Docker: chain DOCKER-USER, see docs/deploy.md)`,
    );
  }
  for (const v of s.services) {
    const r = v.reachable === null ? "unknown" : v.reachable ? "reachable" : "UNREACHABLE";
    const proxy = v.proxy
      ? `; Caddy: ${v.proxy.routed ? "routed" : "ROUTE MISSING"}${v.proxy.upstreamFails !== null ? `, ${v.proxy.upstreamFails} upstream failures` : ""}`
      : "";
    out.push(`  service ${v.name} (${v.listen} → ${v.target}): ${r} (${v.how}${proxy})`);
  }
  for (const c of s.certificates) out.push(...certificateLines(c));
  return `${out.join("\n")}\n`;
}

function canaryLine(c: CanaryReport): string {
  const alarms = c.alarms > 0 ? `, ${c.alarms} alarms` : "";
  const expected = c.expected.length > 0 ? c.expected.join(" or ") : "no answer (fail closed)";
  if (c.state === "leak")
    return `leak canary ${c.url}: LEAK: the echo saw ${c.seen}, expected ${expected}${alarms} (${c.checkedAt})`;
  if (c.state === "ok") return `leak canary ${c.url}: ok, the echo saw ${c.seen}${alarms}`;
  return `leak canary ${c.url}: no answer (${c.reason ?? "none"})${alarms}`;
}
