import type { Cidr, Family } from "../../../src/net/cidr.js";
import type { FakeSocket } from "./ss.js";

/**
 * What the fake kernel holds: one network namespace as plain data. Every tool the fake
 * understands reads and changes this, and nothing else.
 */

export interface FakeLink {
  readonly index: number;
  name: string;
  /** `linkinfo.info_kind`; undefined for lo. */
  readonly kind: string | undefined;
  up: boolean;
  mtu: number;
  master?: string;
  /** A veth's other end, or a VLAN's parent (what `ip link` prints as `link`). */
  link?: string;
  vlanId?: number;
  alias?: string;
  /** A tun device with a process behind it (wireguard-go) has carrier; a persistent one not. */
  attached?: boolean;
}

export interface FakeAddress {
  readonly device: string;
  /** The address with its prefix length, host bits kept. */
  readonly cidr: Cidr;
}

export interface FakeNexthop {
  readonly gateway: bigint;
  readonly dev: string;
  readonly weight: number;
}

export type RouteType = "unicast" | "unreachable" | "blackhole" | "prohibit" | "throw";

export interface FakeRoute {
  readonly family: Family;
  readonly table: number;
  readonly type: RouteType;
  /** The network, host bits cleared. */
  readonly dst: Cidr;
  readonly dev?: string;
  readonly gateway?: bigint;
  readonly metric: number;
  readonly protocol: number;
  readonly scope: number;
  readonly prefsrc?: bigint;
  readonly nexthops?: readonly FakeNexthop[];
}

export interface FakeRule {
  readonly family: Family;
  readonly priority: number;
  readonly src?: Cidr;
  readonly dst?: Cidr;
  readonly fwmark?: number;
  readonly fwmask?: number;
  readonly table: number;
  readonly suppressPrefixLength?: number;
  readonly protocol: number;
}

export interface FakeNftTable {
  readonly family: string;
  readonly name: string;
  comment?: string;
  /** Chains, sets and maps in the order they were declared. */
  readonly objects: { kind: string; name: string; lines: string[] }[];
}

export interface FakeWgPeer {
  publicKey: string;
  presharedKey?: string;
  endpoint?: string;
  allowedIps: Cidr[];
  keepalive?: number;
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
}

export interface FakeWgDevice {
  privateKey?: string;
  listenPort: number;
  fwmark?: number;
  peers: FakeWgPeer[];
}

export interface KernelState {
  nextIndex: number;
  links: FakeLink[];
  addresses: FakeAddress[];
  routes: FakeRoute[];
  rules: FakeRule[];
  nft: FakeNftTable[];
  wireguard: Map<string, FakeWgDevice>;
  sysctls: Map<string, string>;
  /** `host:port` pairs that accept a TCP connection (what status probes). */
  listening: Set<string>;
  /** Listening sockets of processes in the namespace, for `ss` (WireGuard's are added to them). */
  sockets: FakeSocket[];
}

/** rtnetlink numbers, as `ip -N` prints them. */
export const TABLE = { default: 253, main: 254, local: 255 } as const;
export const PROTO = { unspec: 0, kernel: 2, boot: 3, static: 4 } as const;
export const SCOPE = { universe: 0, link: 253, host: 254 } as const;
export const RTN = { unicast: 1, unreachable: 7, blackhole: 6, prohibit: 8, throw: 9 } as const;

/** A tool's answer: what it printed and its exit status. */
export interface ToolResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** A command the kernel (or the tool before it) refused: the message the real tool prints. */
export class Refused extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** A malformed command line: iproute2 exits on the spot, even in the middle of a batch. */
    readonly fatal = false,
  ) {
    super(message);
  }
}

/** A command line iproute2 cannot parse: it says so and exits (255 unless said otherwise). */
export const malformed = (message: string, exitCode = 255) => new Refused(message, exitCode, true);
