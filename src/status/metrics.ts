import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { VERSION } from "../version.js";
import type { SiteStatus } from "./collect.js";

/** Prometheus metrics of one site: gauges refreshed from a status, counters kept by the server. */
export function createMetrics() {
  const registry = new Registry();
  // The usual build-info gauge: always 1, the version in a label, so dashboards can join on it.
  new Gauge({
    name: "netpol_build_info",
    help: "netpol's version (always 1)",
    labelNames: ["version"] as const,
    registers: [registry],
  }).set({ version: VERSION }, 1);
  const peerLabels = ["interface", "peer"] as const;
  const handshakeAge = new Gauge({
    name: "netpol_wireguard_peer_handshake_age_seconds",
    help: "Seconds since the latest handshake with a peer (absent: never)",
    labelNames: peerLabels,
    registers: [registry],
  });
  const rx = new Gauge({
    name: "netpol_wireguard_peer_receive_bytes",
    help: "Bytes received from a peer",
    labelNames: peerLabels,
    registers: [registry],
  });
  const tx = new Gauge({
    name: "netpol_wireguard_peer_transmit_bytes",
    help: "Bytes sent to a peer",
    labelNames: peerLabels,
    registers: [registry],
  });
  const drift = new Gauge({
    name: "netpol_drift_changes",
    help: "Changes an apply would make now (0: the policy is in force)",
    registers: [registry],
  });
  const egressUp = new Gauge({
    name: "netpol_egress_device_up",
    help: "1 when an egress device is up, 0 when it is gone or down (fail-closed engaged)",
    labelNames: ["egress"] as const,
    registers: [registry],
  });
  const dropped = new Gauge({
    name: "netpol_egress_fail_closed_dropped_packets",
    help: "Packets the fail-closed guard of an egress has dropped",
    labelNames: ["egress"] as const,
    registers: [registry],
  });
  const pathLabels = ["egress", "path"] as const;
  const pathUp = new Gauge({
    name: "netpol_egress_path_up",
    help: "1 when a probed path of an egress answers its probes, 0 when it is down (absent: not judged yet)",
    labelNames: pathLabels,
    registers: [registry],
  });
  const pathRtt = new Gauge({
    name: "netpol_egress_path_rtt_seconds",
    help: "The round trip of the latest answered probe through a path",
    labelNames: pathLabels,
    registers: [registry],
  });
  const pathMisses = new Gauge({
    name: "netpol_egress_path_missed_probes",
    help: "Probes through a path missed in a row",
    labelNames: pathLabels,
    registers: [registry],
  });
  const activePath = new Gauge({
    name: "netpol_egress_active_path",
    help: '1 for the path an egress uses now (path="none" while it fails closed)',
    labelNames: pathLabels,
    registers: [registry],
  });
  const switches = new Gauge({
    name: "netpol_egress_path_switches",
    help: "Path switches of an egress since its health monitor started",
    labelNames: ["egress"] as const,
    registers: [registry],
  });
  const canaryLeak = new Gauge({
    name: "netpol_egress_canary_leak",
    help: "1 when an egress's leak canary last saw an address its active path should not show (absent: no answer yet)",
    labelNames: ["egress"] as const,
    registers: [registry],
  });
  const canaryAlarms = new Gauge({
    name: "netpol_egress_canary_alarms",
    help: "Leak canary requests of an egress that saw an unexpected address, since its health monitor started",
    labelNames: ["egress"] as const,
    registers: [registry],
  });
  const reachable = new Gauge({
    name: "netpol_service_target_reachable",
    help: "1 when a published service's target answers",
    labelNames: ["service"] as const,
    registers: [registry],
  });
  const routed = new Gauge({
    name: "netpol_proxy_route_present",
    help: "1 when Caddy holds the route of a published HTTP service, 0 when it is missing",
    labelNames: ["service"] as const,
    registers: [registry],
  });
  const upstreamFails = new Gauge({
    name: "netpol_proxy_upstream_fails",
    help: "Failures Caddy's reverse proxy currently counts for an HTTP service's upstream",
    labelNames: ["service"] as const,
    registers: [registry],
  });
  const certExpiry = new Gauge({
    name: "netpol_certificate_expiry_timestamp_seconds",
    help: "When the certificate Caddy serves for a published hostname expires (absent: none served)",
    labelNames: ["hostname", "issuer"] as const,
    registers: [registry],
  });
  const certError = new Gauge({
    name: "netpol_certificate_issuance_failing",
    help: "1 when Caddy's last attempt to get a published hostname's certificate failed",
    labelNames: ["hostname"] as const,
    registers: [registry],
  });
  const contactAge = new Gauge({
    name: "netpol_fleet_last_contact_age_seconds",
    help: "Seconds since the site's fleet agent last heard from etcd (absent: no fleet here, or never)",
    labelNames: ["site"] as const,
    registers: [registry],
  });
  const fleetStale = new Gauge({
    name: "netpol_fleet_stale",
    help: "1 when the site's policy may be behind what the fleet published: its agent heard nothing from etcd within the report's TTL, or is not running (absent: no fleet here)",
    labelNames: ["site"] as const,
    registers: [registry],
  });
  const applies = new Counter({
    name: "netpol_applies_total",
    help: "Applies through this server, by result",
    labelNames: ["result"] as const,
    registers: [registry],
  });
  const applySeconds = new Histogram({
    name: "netpol_apply_duration_seconds",
    help: "Duration of applies through this server",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  function observe(status: SiteStatus): void {
    for (const g of [
      handshakeAge,
      rx,
      tx,
      egressUp,
      dropped,
      pathUp,
      pathRtt,
      pathMisses,
      activePath,
      switches,
      canaryLeak,
      canaryAlarms,
      reachable,
      routed,
      upstreamFails,
      certExpiry,
      certError,
      contactAge,
      fleetStale,
    ])
      g.reset();
    // Labelled, so that a site of no fleet has neither (an unlabelled gauge always says 0).
    if (status.fleet) {
      const site = { site: status.site ?? status.scope };
      fleetStale.set(site, status.fleet.stale ? 1 : 0);
      if (status.fleet.lastContactAgeSeconds !== null)
        contactAge.set(site, status.fleet.lastContactAgeSeconds);
    }
    for (const t of status.tunnels) {
      for (const p of t.peers) {
        const labels = { interface: t.interface, peer: p.site ?? p.publicKey };
        if (p.handshakeAgeSeconds !== null) handshakeAge.set(labels, p.handshakeAgeSeconds);
        rx.set(labels, p.rxBytes);
        tx.set(labels, p.txBytes);
      }
    }
    drift.set(status.drift ? status.drift.changes.length : 0);
    for (const e of status.egress) {
      egressUp.set({ egress: e.name }, e.deviceUp ? 1 : 0);
      if (e.droppedPackets !== null) dropped.set({ egress: e.name }, e.droppedPackets);
      if (!e.health) continue;
      activePath.set({ egress: e.name, path: e.health.active ?? "none" }, 1);
      if (e.health.switches !== null) switches.set({ egress: e.name }, e.health.switches);
      const canary = e.health.canary;
      if (canary) {
        if (canary.state !== "no answer")
          canaryLeak.set({ egress: e.name }, canary.state === "leak" ? 1 : 0);
        canaryAlarms.set({ egress: e.name }, canary.alarms);
      }
      for (const p of e.health.paths) {
        const labels = { egress: e.name, path: p.device };
        if (p.state !== "unknown") pathUp.set(labels, p.state === "up" ? 1 : 0);
        if (p.lastRttMs !== null) pathRtt.set(labels, p.lastRttMs / 1000);
        pathMisses.set(labels, p.misses);
      }
    }
    // A port published for both address families is one entry per target: 1 only when all answer.
    const answers = new Map<string, boolean>();
    for (const s of status.services) {
      if (s.reachable !== null) answers.set(s.name, (answers.get(s.name) ?? true) && s.reachable);
      if (s.proxy) routed.set({ service: s.name }, s.proxy.routed ? 1 : 0);
      if (s.proxy?.upstreamFails != null)
        upstreamFails.set({ service: s.name }, s.proxy.upstreamFails);
    }
    for (const [service, ok] of answers) reachable.set({ service }, ok ? 1 : 0);
    for (const c of status.certificates) {
      if (c.served)
        certExpiry.set(
          { hostname: c.hostname, issuer: c.served.issuer },
          Date.parse(c.served.notAfter) / 1000,
        );
      certError.set({ hostname: c.hostname }, c.lastIssuanceError ? 1 : 0);
    }
  }

  return { registry, observe, applies, applySeconds };
}

export type Metrics = ReturnType<typeof createMetrics>;
