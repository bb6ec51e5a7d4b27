import type {
  AddressSpec,
  LinkSpec,
  PortSpec,
  RouteSpec,
  RuleSpec,
  WireguardSpec,
} from "../compile/desired.js";
import type { RelayLive } from "../system/haproxy/relay.js";
import type { CaddyLive, CaddyWrite, IpLive, Listener, WgLive } from "./live.js";
import type { NftTable } from "./nft-table.js";

/** The live state of a site, as far as netpol cares: read by the adapters, compared by diff. */
export interface LiveState extends IpLive {
  /** netpol's nftables table; undefined when it is absent. */
  readonly nft: NftTable | undefined;
  readonly wireguard: readonly WgLive[];
  readonly sysctls: ReadonlyMap<string, string>;
  /** The running Caddy's config, read where the site publishes HTTP. */
  readonly proxy?: CaddyLive;
  /** netpol's PROXY-protocol relay: its configuration file and process. */
  readonly relay?: RelayLive;
  /** The namespace's listening sockets, read by a plan where the site publishes TCP/UDP ports. */
  readonly listeners?: readonly Listener[];
  /**
   * An apply's read only: each WireGuard interface's config for a rollback, from the same dump
   * or made from a resident's model when a rollback asks for it (at 10,000 peers, a megabyte
   * per change that only a failed change reads). It holds private keys: kept in memory (a Map,
   * never serialized) and 0600 files only.
   */
  readonly wireguardConfigs?: ReadonlyMap<string, () => string>;
}

/**
 * What netpol made on a site that the kernel cannot mark as its own: links it created and
 * addresses it added. Routes and rules carry netpol's protocol number instead.
 */
export interface Ownership {
  readonly links: readonly string[];
  readonly addresses: readonly AddressSpec[];
  /** The table's skeleton right after the last apply: any other was edited by hand. */
  readonly nftSkeleton?: string;
  /** sysctls netpol changed, with the value they had before: put back when no longer needed. */
  readonly sysctls?: readonly OwnedSysctl[];
}

export interface OwnedSysctl {
  readonly key: string;
  readonly original: string;
  readonly value: string;
}

export type Change =
  | { readonly kind: "link"; readonly op: "add"; readonly link: LinkSpec }
  | { readonly kind: "link"; readonly op: "set"; readonly name: string; readonly mtu?: number }
  | { readonly kind: "link"; readonly op: "remove"; readonly name: string }
  | { readonly kind: "port"; readonly op: "add"; readonly port: PortSpec }
  | {
      readonly kind: "sysctl";
      readonly op: "set";
      readonly key: string;
      readonly from?: string;
      readonly to: string;
    }
  | { readonly kind: "address"; readonly op: "add" | "remove"; readonly address: AddressSpec }
  | { readonly kind: "route"; readonly op: "add" | "remove"; readonly route: RouteSpec }
  | { readonly kind: "rule"; readonly op: "add" | "remove"; readonly rule: RuleSpec }
  | {
      readonly kind: "nft";
      readonly op: "replace" | "remove";
      readonly text: string;
      readonly reason: string;
      /** What the replace changes: set elements (`set NAME: + ELEMENT`) and rules, where known. */
      readonly details?: readonly string[];
      /**
       * Where only set elements differ from a table whose rules are the policy's: the element
       * commands that make it `text`, for `nft -f` in its place (plan/nft-changes.ts).
       */
      readonly elements?: string;
    }
  | {
      readonly kind: "wireguard";
      readonly op: "sync";
      readonly spec: WireguardSpec;
      readonly reasons: readonly string[];
    }
  | {
      readonly kind: "proxy";
      readonly op: "add" | "set" | "remove";
      /** The route's `@id` is `netpol-<service>`. */
      readonly service: string;
      readonly detail: string;
    }
  | {
      /** netpol's PROXY-protocol relay: started, given a new configuration, or stopped. */
      readonly kind: "relay";
      readonly op: "add" | "set" | "remove";
      readonly detail: string;
    }
  | {
      /** Caddy's TLS automation policy for netpol's hostnames (`@id: netpol:acme`) and its log. */
      readonly kind: "certificates";
      readonly op: "add" | "set" | "remove";
      readonly detail: string;
    };

/** The whole new Caddy config, written in one request, and the one it replaces (for rollback). */
export interface ProxyWrite extends CaddyWrite {
  readonly previous: unknown;
}

export interface Plan {
  readonly site: string;
  readonly protocol: number;
  readonly changes: readonly Change[];
  /** Desired objects that need a device that is absent or down: applied when it appears. */
  readonly waiting: readonly string[];
  /** Foreign state in the way: apply refuses while any is listed. */
  readonly conflicts: readonly string[];
  /** Foreign state that defeats the policy without blocking the apply, each with its fix. */
  readonly warnings: readonly string[];
  /** Present when a proxy route or the certificate policy changes. */
  readonly proxy?: ProxyWrite;
  /** Present when the relay starts, changes or stops: its configuration (none: stopped). */
  readonly relay?: RelayWrite;
}

export interface RelayWrite {
  readonly live: RelayLive;
  readonly config?: string;
}
