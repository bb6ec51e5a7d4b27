import type { SiteStatus } from "../../../src/status/collect.js";

/**
 * Two sites as the demo lab shows them: home dials the VPS over one tunnel, leaves by a
 * provider and by the VPS; the VPS publishes home's services. Tests change what they need.
 */
export function homeStatus(over: Partial<SiteStatus> = {}): SiteStatus {
  return {
    site: "home",
    scope: "netns-npd-home",
    version: "0.1.0",
    policy: {
      hash: "a".repeat(64),
      appliedAt: "2026-11-22T10:00:00.000Z",
      appliedBy: "root@lab (cli)",
    },
    drift: { site: "home", inSync: true, changes: [], waiting: [], conflicts: [], warnings: [] },
    pendingConfirm: null,
    interruptedApply: null,
    tunnels: [
      {
        interface: "npdwgh",
        up: true,
        listenPort: 0,
        peers: [
          {
            site: "vps",
            publicKey: "V".repeat(43).concat("="),
            endpoint: "203.0.113.70:51821",
            allowedIps: ["10.99.0.0/24"],
            latestHandshake: "2026-11-22T10:00:50.000Z",
            handshakeAgeSeconds: 10,
            rxBytes: 123_456,
            txBytes: 65_432,
          },
        ],
      },
    ],
    egress: [
      {
        name: "vpn",
        device: "npdhma",
        deviceUp: true,
        failClosed: true,
        failClosedEngaged: false,
        droppedPackets: 0,
        health: null,
      },
      {
        name: "via-vps",
        device: "wg-vps",
        deviceUp: true,
        failClosed: true,
        failClosedEngaged: false,
        droppedPackets: 3,
        health: null,
      },
    ],
    forwardDrops: [],
    services: [],
    certificates: [],
    fleet: null,
    ...over,
  };
}

export function vpsStatus(over: Partial<SiteStatus> = {}): SiteStatus {
  return {
    ...homeStatus(),
    site: "vps",
    scope: "netns-npd-vps",
    egress: [],
    tunnels: [
      {
        interface: "npdwgv",
        up: true,
        listenPort: 51821,
        peers: [
          {
            site: "home",
            publicKey: "H".repeat(43).concat("="),
            endpoint: "198.51.100.2:40000",
            allowedIps: ["10.99.0.2/32", "192.168.1.0/24"],
            latestHandshake: "2026-11-22T10:00:50.000Z",
            handshakeAgeSeconds: 10,
            rxBytes: 65_432,
            txBytes: 123_456,
          },
        ],
      },
    ],
    services: [
      {
        name: "blog",
        listen: "http blog.example.org",
        target: "192.168.1.10:8080",
        reachable: true,
        how: "tcp connect through the tunnel",
        proxy: { routed: true, upstreamFails: 0 },
      },
      {
        name: "echo",
        listen: "udp 5353",
        target: "192.168.1.10:5353",
        reachable: true,
        how: "tunnel handshake",
      },
    ],
    ...over,
  };
}
