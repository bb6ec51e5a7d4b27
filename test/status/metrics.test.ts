import { describe, expect, it } from "vitest";
import type { SiteStatus } from "../../src/status/collect.js";
import { createMetrics } from "../../src/status/metrics.js";

const base: SiteStatus = {
  site: "vps",
  scope: "host",
  version: "0.0.0",
  policy: null,
  drift: null,
  pendingConfirm: null,
  interruptedApply: null,
  tunnels: [],
  egress: [],
  forwardDrops: [],
  services: [],
  certificates: [],
  fleet: null,
};

const service = (target: string, reachable: boolean) => ({
  name: "ssh",
  listen: "tcp 2222",
  target,
  reachable,
  how: "tcp connect through the tunnel",
});

async function reachableOf(status: SiteStatus): Promise<string[]> {
  const m = createMetrics();
  m.observe(status);
  return (await m.registry.metrics())
    .split("\n")
    .filter((l) => l.startsWith("netpol_service_target_reachable{"));
}

describe("metrics of a port published for both address families", () => {
  it("says a service is reachable only when the targets of both families answer", async () => {
    const one = {
      ...base,
      services: [service("192.168.1.22:22", false), service("[2001:db8:1::22]:22", true)],
    };
    expect(await reachableOf(one)).toEqual(['netpol_service_target_reachable{service="ssh"} 0']);
    const both = {
      ...base,
      services: [service("192.168.1.22:22", true), service("[2001:db8:1::22]:22", true)],
    };
    expect(await reachableOf(both)).toEqual(['netpol_service_target_reachable{service="ssh"} 1']);
  });
});
