/**
 * The demo lab, as data: namespaces joined by veth pairs, with the addresses and routes a
 * distro would have configured. Documentation ranges stand in for public addresses.
 *
 *   lan1 ─┐                 ┌─ vpn (provider end of tun-hma, exit 203.0.113.2)
 *         ├─ home ── isp ───┼─ vps (203.0.113.70, publishes home services)
 *   vl6 ──┤   (wan)         └─ www (an internet host, 192.0.2.80)
 *   vl7 ──┘  (guests, leaving through the VPS in scenario C)
 */
export interface LabNames {
  readonly prefix: string;
  readonly ns: (role: Role) => string;
  /** The provider tunnel on home; its far end on vpn needs its own name (wireguard-go names are machine-wide). */
  readonly hma: string;
  readonly hmaFar: string;
  /** netpol's tunnel between home and vps, and its interface on each (names are machine-wide). */
  readonly wg: string;
  readonly wgHome: string;
  readonly wgVps: string;
}

export const ROLES = ["lan1", "vl6", "vl7", "home", "isp", "vpn", "vps", "www"] as const;
export type Role = (typeof ROLES)[number];

export function labNames(prefix: string): LabNames {
  return {
    prefix,
    ns: (role) => `${prefix}-${role}`,
    hma: `${prefix}hma`.slice(-15),
    hmaFar: `${prefix}hmv`.slice(-15),
    wg: "wg-vps",
    wgHome: `${prefix}wgh`.slice(-15),
    wgVps: `${prefix}wgv`.slice(-15),
  };
}

/** A veth pair: [role, device, address] at each end. */
export interface Wire {
  readonly a: readonly [Role, string, string | undefined];
  readonly b: readonly [Role, string, string | undefined];
}

export const WIRES: readonly Wire[] = [
  { a: ["lan1", "eth0", "192.168.1.10/24"], b: ["home", "lan", "192.168.1.1/24"] },
  // The VLAN-6 subnet: a veth here, since this kernel has no 802.1q; netpol adds .1.
  { a: ["vl6", "eth0", "192.168.6.10/24"], b: ["home", "vl6", undefined] },
  { a: ["vl7", "eth0", "192.168.7.10/24"], b: ["home", "vl7", undefined] },
  { a: ["home", "wan", "198.51.100.2/24"], b: ["isp", "home", "198.51.100.1/24"] },
  { a: ["vpn", "wan", "203.0.113.2/26"], b: ["isp", "vpn", "203.0.113.1/26"] },
  { a: ["vps", "wan", "203.0.113.70/26"], b: ["isp", "vps", "203.0.113.65/26"] },
  { a: ["www", "eth0", "192.0.2.80/24"], b: ["isp", "www", "192.0.2.1/24"] },
];

export const GATEWAYS: Partial<Record<Role, string>> = {
  lan1: "192.168.1.1",
  vl6: "192.168.6.1",
  vl7: "192.168.7.1",
  home: "198.51.100.1",
  vpn: "203.0.113.1",
  vps: "203.0.113.65",
  www: "192.0.2.1",
};

export const ADDR = {
  lan1Host: "192.168.1.10",
  vl6Host: "192.168.6.10",
  vl7Host: "192.168.7.10",
  homeWan: "198.51.100.2",
  vpnExit: "203.0.113.2",
  vps: "203.0.113.70",
  www: "192.0.2.80",
  hmaHome: "10.66.0.2/24",
  hmaVpn: "10.66.0.1/24",
  wgVps: "10.99.0.1/24",
  wgHome: "10.99.0.2/24",
} as const;

export const WHOAMI_PORT = 8080;
/** The home's UDP service (an echo of the client's address), published on the VPS. */
export const UDP_PORT = 5353;
export const HMA_PORT = 51820;
export const WG_PORT = 51821;
