import type { Cidr, Family } from "../net/cidr.js";
import type { Address, Endpoint, ProxyProtocol, ProxySettings } from "../policy/intent.js";

/** What one site's kernel and proxy should hold, as plain data: the compiler's output. */

export type LinkSpec =
  | {
      readonly kind: "vlan";
      readonly name: string;
      readonly parent: string;
      readonly vlanId: number;
    }
  | { readonly kind: "bridge"; readonly name: string }
  | { readonly kind: "wireguard"; readonly name: string; readonly mtu: number };

export interface PortSpec {
  readonly device: string;
  readonly master: string;
}

export interface AddressSpec {
  readonly device: string;
  readonly cidr: Cidr;
}

/** "main" is the kernel's table 254; numbered tables are netpol's own. */
export type TableRef = number | "main";

/** Where a route leads: a device, and a next hop on it where the device needs one. */
export interface NextHop {
  readonly device: string;
  readonly gateway?: Address;
}

export type RouteSpec =
  | {
      readonly type: "unicast";
      readonly table: TableRef;
      readonly dst: Cidr;
      readonly device: string;
      readonly gateway?: Address;
      readonly metric?: number;
      /**
       * The active path of a chain (this route names the preferred one): the health monitor
       * replaces it in place by another of these, or by an unreachable route while none is
       * healthy, and the plan takes any of those as in force (plan/slots).
       */
      readonly choices?: readonly NextHop[];
    }
  | {
      readonly type: "unreachable";
      readonly table: TableRef;
      readonly dst: Cidr;
      /** The highest metric, so a device route added by anyone wins while the device is up. */
      readonly metric: number;
    };

export interface RuleSpec {
  readonly family: Family;
  readonly priority: number;
  readonly from?: Cidr;
  readonly to?: Cidr;
  readonly fwmark?: number;
  /** The bits of the mark `fwmark` is compared in; all 32 when absent. */
  readonly fwmask?: number;
  readonly table: TableRef;
  /** Ignore routes this short or shorter found in the table (0: its default route). */
  readonly suppressPrefixLength?: number;
}

export interface NftChain {
  readonly name: string;
  /** Where a base chain hooks in; a regular chain has none and is reached by jumps only. */
  readonly base?: {
    readonly type: "filter" | "nat" | "route";
    readonly hook: "prerouting" | "input" | "forward" | "output" | "postrouting";
    readonly priority: string;
  };
  readonly rules: readonly string[];
}

/** A named set or map of netpol's table: what rules look items up in instead of one rule each. */
export interface NftSet {
  readonly name: string;
  readonly kind: "set" | "map";
  /** nft's type line, e.g. `ipv4_addr` or `inet_proto . inet_service : ipv4_addr . inet_service`. */
  readonly type: string;
  /** Prefixes rather than single values. */
  readonly interval: boolean;
  readonly elements: readonly string[];
  /**
   * A map whose one element follows a chain's slot (DNS, compile/dns.ts): the element for the
   * path the slot holds, or for none; the plan takes whichever the slot holds as in force.
   */
  readonly follows?: {
    readonly table: number;
    readonly paths: readonly { readonly device: string; readonly element: string }[];
    readonly none: string;
  };
}

export interface WireguardPeer {
  readonly site: string;
  readonly publicKey: string;
  readonly allowedIps: readonly Cidr[];
  readonly endpoint?: Endpoint;
  readonly keepalive?: number;
  /** A provider's preshared key, in the key directory like private keys. */
  readonly presharedKeyFile?: string;
}

export interface WireguardSpec {
  readonly name: string;
  readonly privateKeyFile: string;
  /** This end's public key, as the policy states it: checked against the key file. */
  readonly publicKey: string;
  readonly listenPort?: number;
  readonly peers: readonly WireguardPeer[];
}

export interface ProxyRoute {
  readonly service: string;
  readonly hostname: string;
  readonly upstream: string;
}

export interface ProxySpec {
  readonly settings: ProxySettings;
  readonly routes: readonly ProxyRoute[];
}

/** A TCP or UDP port the site publishes: by DNAT from its uplink into a tunnel, or by its relay. */
export interface PublishedPort {
  readonly service: string;
  readonly kind: "tcp" | "udp";
  readonly port: number;
  /** Held by netpol's relay (haproxy) rather than taken by DNAT. */
  readonly relay?: true;
}

/** A TCP port netpol's relay holds on the uplink for one family, in place of a DNAT. */
export interface RelayPort {
  readonly service: string;
  readonly family: Family;
  readonly port: number;
  /** `address:port`, IPv6 in brackets. */
  readonly target: string;
  readonly version: ProxyProtocol;
}

/** An HTTP service's upstream behind Caddy: the relay picks it by the request's host name. */
export interface RelayRoute {
  readonly service: string;
  readonly hostname: string;
  readonly target: string;
  readonly version: ProxyProtocol;
}

/**
 * netpol's PROXY-protocol relay (haproxy) on a publishing site: it sends each connection's
 * client address ahead of the stream to targets that ask for it.
 */
export interface RelaySpec {
  /** The uplink the published ports are bound to; set where `ports` has any. */
  readonly wan?: string;
  readonly ports: readonly RelayPort[];
  /** The loopback port Caddy sends these services to, and the services. */
  readonly http?: { readonly port: number; readonly routes: readonly RelayRoute[] };
}

export interface SiteState {
  readonly site: string;
  readonly protocol: number;
  readonly links: readonly LinkSpec[];
  readonly ports: readonly PortSpec[];
  readonly addresses: readonly AddressSpec[];
  readonly routes: readonly RouteSpec[];
  readonly rules: readonly RuleSpec[];
  readonly nftSets: readonly NftSet[];
  readonly nftChains: readonly NftChain[];
  readonly wireguard: readonly WireguardSpec[];
  readonly sysctls: readonly (readonly [string, string])[];
  readonly proxy?: ProxySpec;
  /** The ports published on the uplink `wan`: whatever else listens there loses them. */
  readonly published?: { readonly wan: string; readonly ports: readonly PublishedPort[] };
  readonly relay?: RelaySpec;
  /** The site's networks: the record keeps them, to guard a fail-closed one after it left (retired.ts). */
  readonly networks?: readonly SiteNetwork[];
}

/**
 * A network of the site, as the record keeps it: enough to guard it once it has left the
 * policy. `failClosed`: a source of an egress that fails closed.
 */
export interface SiteNetwork {
  readonly name: string;
  /** `10.6.0.0/24`, `2001:db8:6::/64`. */
  readonly cidr: string;
  readonly device: string;
  readonly failClosed: boolean;
}

/** The name of netpol's own nftables table (family inet). */
export const NFT_TABLE = "netpol";
/** The metric of fail-closed routes: the largest the kernel accepts. */
export const FAIL_CLOSED_METRIC = 4294967295;
