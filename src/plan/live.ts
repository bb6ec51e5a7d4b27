import type { AddressSpec, RouteSpec, RuleSpec } from "../compile/desired.js";

/**
 * The live state as the core sees it: the shapes the adapters in src/system read the kernel,
 * WireGuard and Caddy into, and the diff compares against the desired state.
 */

export interface LiveLink {
  readonly name: string;
  readonly ifindex: number;
  /** The link's ifalias: netpol marks the links it creates there. */
  readonly alias: string | undefined;
  readonly kind: string | undefined;
  readonly master: string | undefined;
  readonly up: boolean;
  readonly mtu: number;
  /** A VLAN's parent and id, as the kernel reports them: what recreating it takes. */
  readonly vlan?: { readonly parent: string; readonly id: number };
}

/** A route or rule in the kernel, owned by netpol or not. */
export interface Owned<T> {
  readonly owned: T[];
  /** Table ids holding routes netpol did not make; priorities of rules it did not make. */
  readonly foreign: number[];
}

/** A route another program put in main that catches all traffic: a default or a /1 half. */
export interface CatchAllRoute {
  readonly dst: string;
  readonly device: string;
}

export interface IpLive {
  readonly links: readonly LiveLink[];
  readonly addresses: readonly AddressSpec[];
  readonly routes: Owned<RouteSpec>;
  readonly rules: Owned<RuleSpec>;
  /** Read where it is asked for (plan, status): what an OpenVPN `redirect-gateway` pushes. */
  readonly catchAll?: readonly CatchAllRoute[];
}

export interface WgPeerLive {
  readonly publicKey: string;
  readonly endpoint: string | undefined;
  readonly allowedIps: readonly string[];
  /** Seconds since the epoch; 0 means never. */
  readonly latestHandshake: number;
  readonly rxBytes: number;
  readonly txBytes: number;
  readonly keepalive: number | undefined;
}

/** What `wg show` reports for one interface, without its private key. */
export interface WgLive {
  readonly name: string;
  readonly publicKey: string;
  readonly listenPort: number;
  readonly peers: readonly WgPeerLive[];
}

/** What GET /config/ answered: the whole running config and the hash that guards a write. */
export type CaddyLive =
  | { readonly reachable: true; readonly config: unknown; readonly etag: string }
  | { readonly reachable: false; readonly error: string };

export interface CaddyWrite {
  readonly admin: string;
  /** The ETag of the config the new one was computed from: Caddy refuses the write if it moved. */
  readonly etag: string;
  readonly config: unknown;
}

/** A listening TCP or UDP socket of the namespace, as `ss -l` shows it. */
export interface Listener {
  readonly proto: "tcp" | "udp";
  /** The address bound, as ss prints it without brackets: `*`, `0.0.0.0`, `::`, `192.0.2.1`. */
  readonly address: string;
  /** The device it is bound to (`%eth0`), if any. */
  readonly device?: string;
  readonly port: number;
  /** Who holds it, where /proc lets ss see: the first process named. */
  readonly process?: { readonly name: string; readonly pid: number };
}
