import type { Cidr, Family } from "../net/cidr.js";

/**
 * The policy after validation: every reference resolved, every id chosen. The compiler takes
 * only this, so it never meets a dangling name or a half-checked address.
 */

export interface Settings {
  readonly routeProtocol: number;
  readonly firstTable: number;
  readonly firstPriority: number;
  readonly firstReplyPriority: number;
  /** The bits of packet and connection marks netpol may use (see compile/marks). */
  readonly markMask: number;
  /** Mark bits other tools on the machine use: the mask must stay clear of them. */
  readonly foreignMarks: readonly number[];
}

export type InterfaceIntent =
  | { readonly kind: "physical"; readonly name: string }
  | {
      readonly kind: "vlan";
      readonly name: string;
      readonly parent: string;
      readonly vlanId: number;
    }
  | { readonly kind: "bridge"; readonly name: string; readonly members: readonly string[] };

export interface NetworkIntent {
  readonly name: string;
  readonly cidr: Cidr;
  readonly interface: string;
  /** The router's own address, with the network's prefix length. */
  readonly address?: Cidr;
}

export type Via =
  | { readonly kind: "device"; readonly device: string; readonly gateway?: Address }
  /** A WireGuard provider netpol manages; its peer for probes is the provider's resolver. */
  | { readonly kind: "provider"; readonly device: string; readonly peer?: Address }
  | {
      readonly kind: "tunnel";
      readonly tunnel: string;
      readonly device: string;
      readonly exit: string;
    };

export interface Address {
  readonly family: Family;
  readonly address: bigint;
}

/** A TCP connect or HTTP GET probe of a path (the default is ICMP echo). */
export interface ConnectProbe {
  readonly kind: "tcp" | "http";
  readonly host: Address;
  readonly port: number;
  /** For an HTTP probe: the URL asked. */
  readonly url?: string;
}

/** How the paths of an egress are probed and judged (see the policy's `health`). */
export interface HealthSettings {
  /** Probed through every path, beside the path's own peer. */
  readonly targets: readonly Address[];
  /** Seconds between probes; a probe not answered by the next one is a miss. */
  readonly interval: number;
  readonly downAfter: number;
  readonly upAfter: number;
  readonly hold: number;
  /** Seconds: a WireGuard path whose latest handshake is older is down. */
  readonly handshakeMaxAge: number;
  /** Per path, in the order of `paths`: its TCP or HTTP probe, or undefined (ICMP). */
  readonly probes: readonly (ConnectProbe | undefined)[];
}

/** Where an egress's plain DNS goes (see the policy's `dns`). */
export interface EgressDns {
  /** Per path, in the order of `paths`: the resolvers reached through it. */
  readonly resolvers: readonly (readonly Address[])[];
  readonly other: "redirect" | "drop";
  readonly blockDoT: boolean;
}

/** The egress's leak canary (see the policy's `canary`). */
export interface EgressCanary {
  readonly url: string;
  /** The URL's host and port: netpol's nft rule marks the canary's request by them. */
  readonly host: Address;
  readonly port: number;
  /** The router's address in the egress's network of the host's family: the request's source. */
  readonly source: Address;
  /** Per path, in the order of `paths`: the addresses the echo may show while it is active. */
  readonly expect: readonly (readonly Address[])[];
  readonly interval: number;
}

export interface EgressIntent {
  readonly name: string;
  readonly sources: readonly Cidr[];
  readonly except: readonly Cidr[];
  /** In order of preference: the first is the egress's path while it is healthy. */
  readonly paths: readonly [Via, ...Via[]];
  /** Present for a chain of paths (always probed) and wherever the policy asks for probes. */
  readonly health?: HealthSettings;
  readonly dns?: EgressDns;
  readonly canary?: EgressCanary;
  readonly masquerade: boolean;
  readonly failClosed: boolean;
  readonly table: number;
  /** `except` rules sit at this priority, the egress rule at priority + 1. */
  readonly priority: number;
}

/** Replies from this site's hosts to clients that reached them through a tunnel unchanged. */
export interface ReplyPath {
  readonly tunnel: string;
  readonly device: string;
  readonly table: number;
  readonly priority: number;
}

/** The ACME CA `tls: auto` certificates come from, and where Caddy logs what it did. */
export interface AcmeSettings {
  readonly ca: string;
  readonly email?: string;
  /** PEM files of roots trusted for the CA's own HTTPS (a private ACME server). */
  readonly trustedRoots: readonly string[];
  /** The file Caddy writes certificate events to, read by `netpol status`. */
  readonly log: string;
}

export interface ProxySettings {
  readonly tls: "auto" | "off";
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly adminListen: string;
  /** The loopback port of netpol's PROXY-protocol relay in front of HTTP upstreams. */
  readonly relayPort: number;
  readonly acme: AcmeSettings;
}

/** A tunnel as one member site sees it: its own end and the members it peers with. */
export interface SiteTunnel {
  readonly tunnel: TunnelIntent;
  readonly local: MemberIntent;
  /** Every other member in a mesh; the hub for a spoke; every spoke for the hub. */
  readonly peers: readonly MemberIntent[];
}

/** A path of a chain: its own table, which its probes (marked) look up whichever path is active. */
export interface PathTable {
  readonly device: string;
  readonly table: number;
}

/** A commercial WireGuard provider's end on this site (the policy's `providers`). */
export interface ProviderIntent {
  /** The WireGuard device netpol creates. */
  readonly device: string;
  readonly addresses: readonly Cidr[];
  readonly publicKey: string;
  readonly privateKeyFile: string;
  readonly dns: readonly Address[];
  readonly mtu: number;
  readonly keepalive: number;
  readonly peer: {
    readonly publicKey: string;
    readonly endpoint: Endpoint;
    readonly presharedKeyFile?: string;
  };
}

export interface SiteIntent {
  readonly name: string;
  readonly wan?: string;
  readonly interfaces: readonly InterfaceIntent[];
  readonly networks: readonly NetworkIntent[];
  readonly external: readonly { readonly name: string; readonly gateway?: Address }[];
  readonly egress: readonly EgressIntent[];
  readonly replyPaths: readonly ReplyPath[];
  /** One per device that is a path of a chain, in the order first named. */
  readonly pathTables: readonly PathTable[];
  /** Absent when the site does not declare one: the defaults apply if it publishes HTTP. */
  readonly proxy?: ProxySettings;
  /** Where this site's `netpol serve` answers the other sites. */
  readonly control?: { readonly url: string; readonly tokenFile: string };
  readonly tunnels: readonly SiteTunnel[];
  readonly providers: readonly ProviderIntent[];
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  /** The host when it is an address; a name is resolved by wg, and shown as an address. */
  readonly address?: Address;
}

export interface MemberIntent {
  readonly site: string;
  /** The WireGuard interface on this member's site. */
  readonly device: string;
  readonly address: Cidr;
  readonly publicKey: string;
  readonly privateKeyFile: string;
  readonly endpoint?: Endpoint;
  readonly listenPort?: number;
  readonly advertise: readonly Cidr[];
}

export interface TunnelIntent {
  readonly name: string;
  readonly mtu: number;
  readonly keepalive: number;
  readonly members: readonly MemberIntent[];
  /** The site every other member peers with, in a hub-and-spoke tunnel; a full mesh without. */
  readonly hub?: string;
}

/** Where a published service goes: an address in one of the target site's networks. */
export interface ServiceTarget {
  readonly address: Address;
  readonly port: number;
  /** The network of the target's site that holds the address. */
  readonly network: Cidr;
  /** The site whose network holds the target, and the tunnel that reaches it. */
  readonly site: string;
  readonly tunnel: string;
  /** The tunnel's interface on the publishing site. */
  readonly via: string;
}

export type ServiceIntent =
  | {
      readonly kind: "http";
      readonly name: string;
      readonly publishOn: string;
      readonly hostname: string;
      readonly target: ServiceTarget;
      readonly proxyProtocol?: ProxyProtocol;
    }
  | {
      readonly kind: "tcp" | "udp";
      readonly name: string;
      readonly publishOn: string;
      readonly port: number;
      readonly clientAddress: "proxy" | "preserve";
      readonly target: ServiceTarget;
      /** TCP only: netpol's relay holds the port instead of a DNAT, and sends the header. */
      readonly proxyProtocol?: ProxyProtocol;
    };

/** The PROXY protocol's version: v1 is a text line, v2 a binary header. */
export type ProxyProtocol = "v1" | "v2";

/** A published port whose target sees the client's own address (no SNAT on the way in). */
export function keepsClientAddress(s: {
  readonly kind: string;
  readonly clientAddress?: "proxy" | "preserve";
}): boolean {
  return s.kind !== "http" && s.clientAddress === "preserve";
}

/** The order a fleet rollout takes (see policy/resolve-rollout): every site in exactly one wave. */
export interface RolloutIntent {
  readonly waves: readonly (readonly string[])[];
  readonly failureBudget: number;
  readonly healthSeconds: number;
}

export interface Intent {
  readonly settings: Settings;
  readonly sites: readonly SiteIntent[];
  readonly tunnels: readonly TunnelIntent[];
  readonly services: readonly ServiceIntent[];
  /** Set by resolvePolicy; only the fleet (`netpol publish`) reads it. */
  readonly rollout?: RolloutIntent;
}
