import { describe, expect, it } from "vitest";
import type { SiteStatus } from "../../src/status/collect.js";
import { formatStatus } from "../../src/status/format.js";
import { createMetrics } from "../../src/status/metrics.js";
import { homeStatus } from "../server/dashboard/statuses.js";

/** Home with its provider egress failed over to the VPS by the running monitor. */
function failedOver(): SiteStatus {
  const base = homeStatus();
  const [vpn, ...rest] = base.egress;
  if (!vpn) throw new Error("no egress in the fixture");
  return {
    ...base,
    egress: [
      {
        ...vpn,
        device: "npdwgh",
        health: {
          active: "npdwgh",
          switches: 3,
          lastSwitchAt: "2026-11-22T10:00:40.000Z",
          judgedBy: "monitor",
          paths: [
            {
              device: "npdhma",
              state: "down",
              lastRttMs: 4.2,
              misses: 5,
              handshakeAgeSeconds: null,
              reason: "no answer from 192.0.2.80",
            },
            {
              device: "npdwgh",
              state: "up",
              lastRttMs: 1.5,
              misses: 0,
              handshakeAgeSeconds: 12,
              reason: null,
            },
          ],
        },
      },
      ...rest,
    ],
  };
}

describe("a probed egress in status and metrics", () => {
  it("shows the active path and each path's state, round trip, misses, handshake and reason", () => {
    const text = formatStatus(failedOver());
    expect(text).toContain(
      "    active path: npdwgh (judged by the monitor, 3 switches, last 2026-11-22T10:00:40.000Z)",
    );
    expect(text).toContain(
      "    path npdhma: DOWN, rtt 4.2 ms, 5 missed: no answer from 192.0.2.80",
    );
    expect(text).toContain("    path npdwgh: UP, rtt 1.5 ms, handshake 12s ago");
  });

  it("says fail-closed is engaged when every path is down", () => {
    const s = failedOver();
    const [vpn] = s.egress;
    if (!vpn?.health) throw new Error("unreachable");
    const dead: SiteStatus = {
      ...s,
      egress: [
        {
          ...vpn,
          failClosedEngaged: true,
          health: {
            ...vpn.health,
            active: null,
            paths: vpn.health.paths.map((p) => ({ ...p, state: "down" as const })),
          },
        },
      ],
    };
    expect(formatStatus(dead)).toContain(
      "active path: none: all paths are down, fail-closed engaged",
    );
  });

  it("exports the same as gauges", async () => {
    const metrics = createMetrics();
    metrics.observe(failedOver());
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^netpol_egress_active_path\{egress="vpn",path="npdwgh"\} 1$/m);
    expect(text).toMatch(/^netpol_egress_path_up\{egress="vpn",path="npdhma"\} 0$/m);
    expect(text).toMatch(/^netpol_egress_path_up\{egress="vpn",path="npdwgh"\} 1$/m);
    expect(text).toMatch(/^netpol_egress_path_rtt_seconds\{egress="vpn",path="npdwgh"\} 0\.0015$/m);
    expect(text).toMatch(/^netpol_egress_path_missed_probes\{egress="vpn",path="npdhma"\} 5$/m);
    expect(text).toMatch(/^netpol_egress_path_switches\{egress="vpn"\} 3$/m);
  });
});
