import * as z from "zod";
import { maskProblem } from "../compile/marks.js";
import { DEFAULT_ACME_LOG, LETS_ENCRYPT } from "./acme-defaults.js";
import {
  addressUrl,
  hostAddress,
  hostPort,
  hostPorts,
  ifname,
  interfaceAddress,
  keyFile,
  network,
  objectName,
  port,
  publicKey,
  rulePriority,
  siteName,
  tableId,
} from "./fields.js";

export { DEFAULT_ACME_LOG, LETS_ENCRYPT };

/**
 * The policy file's shape. Everything here is structural: one field, one check. Checks that
 * relate fields to each other (references, overlaps, duplicates) live in resolve/.
 */

const physical = z.strictObject({ name: ifname, kind: z.literal("physical") });
const vlan = z.strictObject({
  name: ifname,
  kind: z.literal("vlan"),
  parent: ifname,
  vlanId: z.number().int().min(1, "VLAN ids run 1..4094").max(4094, "VLAN ids run 1..4094"),
});
const bridge = z.strictObject({
  name: ifname,
  kind: z.literal("bridge"),
  members: z.array(ifname).default([]),
});
const interfaceSchema = z.discriminatedUnion("kind", [physical, vlan, bridge], {
  error: "kind must be physical, vlan or bridge",
});

const networkSchema = z.strictObject({
  name: objectName,
  cidr: network,
  interface: ifname,
  /** The router's own address in this network; netpol adds it to the interface. */
  address: hostAddress.optional(),
});

const externalDevice = z.strictObject({
  name: ifname,
  /** Next hop on the device, for devices that need one (point-to-point tunnels do not). */
  gateway: hostAddress.optional(),
});

/**
 * How an egress with a chain of paths judges each path: probes through the path itself, down
 * once every target missed `downAfter` probes in a row, up again once one target answered
 * `upAfter` in a row, and back on a preferred path only once it has stayed up `hold` seconds.
 */
/**
 * How a path is probed, through itself: ICMP echo to its peer and `targets` (the default), a
 * TCP connect, or an HTTP GET answered below 400.
 */
const probeSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("icmp") }),
  z.strictObject({ kind: z.literal("tcp"), target: hostPort }),
  z.strictObject({ kind: z.literal("http"), url: addressUrl }),
]);

const healthSchema = z.strictObject({
  /** Probed through every path, beside the path's peer (ICMP echo). */
  targets: z.array(hostAddress).max(8, "at most 8 probe targets").default([]),
  /** Seconds between probes; a probe not answered by the next one is a miss. */
  interval: z.number().min(0.2, "probe at most 5 times a second").max(60).default(1),
  downAfter: z.number().int().min(1).max(100).default(2),
  upAfter: z.number().int().min(1).max(100).default(3),
  hold: z.number().min(0).max(86400).default(30),
  /**
   * A WireGuard path whose latest handshake is older than this many seconds is down: its keys
   * expire after 180 s without one (the default leaves 20 s of margin).
   */
  handshakeMaxAge: z.number().int().min(1).max(86400).default(200),
  /** One probe for every path, or one per path keyed by the name in `via` (others: ICMP). */
  probe: z.union([probeSchema, z.record(ifname, probeSchema)]).optional(),
});

const resolverList = z.array(hostAddress).min(1, "name at least one resolver").max(4);
const addressList = z.array(hostAddress).min(1, "name at least one address").max(8);

/**
 * Resolvers the egress's plain DNS is redirected to, reached through its paths: one list for
 * the whole chain, or one per path (keyed by the name in `via`). See docs/policy.md.
 */
const dnsSchema = z.strictObject({
  /** Absent or without a path: that path's provider's own resolvers (its `dns`). */
  resolvers: z.union([resolverList, z.record(ifname, resolverList)]).default({}),
  /** DNS of the egress's networks to a server that is neither the router nor a resolver here. */
  other: z.enum(["redirect", "drop"]).default("redirect"),
  /** Drop DNS over TLS/QUIC (port 853) to servers that are not resolvers here. */
  blockDoT: z.boolean().default(false),
});

/**
 * The leak canary: an address-echo URL asked from the router as the egress's own traffic (its
 * mark, its network's source), and the addresses the echo may show while each path is active:
 * one list for the whole chain, or one per path (keyed by the name in `via`).
 */
const canarySchema = z.strictObject({
  url: addressUrl,
  expect: z.union([addressList, z.record(ifname, addressList)]),
  /** Seconds between two requests. */
  interval: z.number().min(1).max(86400).default(30),
});

const egressSchema = z.strictObject({
  name: objectName,
  from: z.array(objectName).min(1, "name at least one network of this site"),
  /** One device or tunnel, or a chain of them in order of preference. */
  via: z
    .union([ifname, z.array(ifname).min(1, "name at least one path").max(8, "at most 8 paths")])
    .transform((v) => (typeof v === "string" ? [v] : v)),
  health: healthSchema.optional(),
  dns: dnsSchema.optional(),
  canary: canarySchema.optional(),
  /** For a tunnel with several members: the site whose uplink the traffic leaves by. */
  exit: siteName.optional(),
  except: z.array(network).default([]),
  masquerade: z.boolean().default(false),
  failClosed: z.boolean().default(true),
  table: tableId.optional(),
  priority: rulePriority.optional(),
});

/** A path Caddy opens on the site itself: absolute, since Caddy's working directory is its own. */
const absolutePath = z
  .string()
  .regex(/^\/[^\0]*$/, "an absolute path on the site, e.g. /etc/netpol/ca.pem");

const acmeSchema = z.strictObject({
  /** The ACME directory URL of the CA certificates come from. */
  ca: z
    .string()
    .regex(
      /^https:\/\/[^\s/?#]+(\/[^\s#]*)?$/,
      "an ACME directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory",
    )
    .default(LETS_ENCRYPT),
  /** The ACME account's contact: the CA writes here before a certificate expires unrenewed. */
  email: z
    .string()
    .regex(/^[^\s@]+@[^\s@]+$/, "an email address, e.g. ops@example.org")
    .optional(),
  /** PEM files of roots to trust for the CA's own HTTPS (a private ACME server's root). */
  trustedRoots: z.array(absolutePath).default([]),
  /** Where Caddy writes its certificate events for `netpol status`; its directory must exist. */
  log: absolutePath.default(DEFAULT_ACME_LOG),
});

const proxySchema = z.strictObject({
  tls: z.enum(["auto", "off"]).default("auto"),
  httpPort: port.default(80),
  httpsPort: port.default(443),
  adminListen: z.string().default("localhost:2019"),
  /**
   * The loopback port of netpol's PROXY-protocol relay, between Caddy and the upstreams of HTTP
   * services with `proxyProtocol` (Caddy 2.6 cannot send the header itself).
   */
  relayPort: port.default(9479),
  /** Where `tls: auto` certificates come from. */
  acme: acmeSchema.default(acmeSchema.parse({})),
});

/**
 * A commercial WireGuard provider (Mullvad, Proton…) as a path netpol manages: written by
 * `netpol import-provider` from the provider's wg-quick file. Its peer takes every address
 * (AllowedIPs 0.0.0.0/0, ::/0) on the device only: routes to it live in egress tables, never in
 * main. See docs/policy.md.
 */
const providerSchema = z.strictObject({
  /** The WireGuard device netpol creates, and the name `via` uses. */
  name: ifname,
  /** This end's addresses inside the provider's network (its `Address`). */
  address: z.array(interfaceAddress).min(1, "name this end's address (the conf's Address)").max(4),
  publicKey,
  privateKeyFile: keyFile,
  privateKey: z
    .never({
      error:
        "private keys never go in a policy: `netpol import-provider FILE --name NAME` moves it into a key file",
    })
    .optional(),
  /** The provider's resolvers (the conf's DNS): the path's resolvers when an egress's `dns` names none. */
  dns: z.array(hostAddress).max(4).default([]),
  mtu: z.number().int().min(1280).max(9000).default(1420),
  keepalive: z.number().int().min(0).max(65535).default(25),
  peer: z.strictObject({
    publicKey,
    /** A name is resolved by wg when the device is configured, and again when the path fails. */
    endpoint: hostPort,
    presharedKeyFile: keyFile.optional(),
  }),
});

const siteSchema = z.strictObject({
  /** The uplink to the internet: needed where ports are published or traffic exits. */
  wan: ifname.optional(),
  interfaces: z.array(interfaceSchema).default([]),
  networks: z.array(networkSchema).default([]),
  external: z.array(externalDevice).default([]),
  providers: z.array(providerSchema).default([]),
  egress: z.array(egressSchema).default([]),
  proxy: proxySchema.optional(),
  /** How the other sites reach this site's `netpol serve` (for `apply --all`), e.g. over the tunnel. */
  control: z
    .strictObject({
      url: z
        .string()
        .regex(
          /^https?:\/\/[^\s/?#]+\/?$/,
          "the URL of the site's `netpol serve`, e.g. http://10.99.0.1:9470",
        ),
      /** Holds the bearer token; looked up in the key directory, like private keys. */
      tokenFile: keyFile,
    })
    .optional(),
});

const memberSchema = z.strictObject({
  site: siteName,
  address: interfaceAddress,
  publicKey,
  privateKeyFile: keyFile,
  privateKey: z
    .never({
      error:
        "private keys never go in a policy: write it to a file (`netpol keygen --out keys/NAME.key`) and set privateKeyFile",
    })
    .optional(),
  /** This site's WireGuard interface name, when it must differ from the tunnel's name. */
  interface: ifname.optional(),
  /** Where the others reach this member; members without one dial out. */
  endpoint: hostPort.optional(),
  listenPort: port.optional(),
  /** Extra networks of this site that the other members route into the tunnel. */
  advertise: z.array(objectName).default([]),
});

const tunnelSchema = z.strictObject({
  name: ifname,
  mtu: z
    .number()
    .int()
    .min(1280, "WireGuard over IPv6 needs an MTU of at least 1280")
    .max(9000)
    .default(1420),
  keepalive: z.number().int().min(0).max(65535).default(25),
  /** mesh: every member peers with every other; hub: the others peer only with the hub. */
  topology: z.enum(["mesh", "hub"], { error: "topology is mesh or hub" }).default("mesh"),
  hub: siteName.optional(),
  members: z.array(memberSchema).min(2, "a tunnel joins at least two sites"),
});

const serviceBase = {
  name: objectName,
  publishOn: siteName,
  target: hostPort,
  /**
   * The PROXY protocol header (v1 text, v2 binary) sent to the target ahead of the stream,
   * carrying the client's address: by netpol's relay on the publishing site.
   */
  proxyProtocol: z.enum(["v1", "v2"], { error: "proxyProtocol is v1 or v2" }).optional(),
};
const httpService = z.strictObject({
  ...serviceBase,
  kind: z.literal("http"),
  hostname: z
    .string()
    .regex(
      /^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i,
      "not a DNS host name",
    ),
});
const portService = z.strictObject({
  ...serviceBase,
  kind: z.enum(["tcp", "udp"]),
  /** One target, or one per address family: IPv4 clients reach the IPv4 one, IPv6 the IPv6. */
  target: hostPorts,
  port,
  /** preserve: no SNAT on the publishing site; the target's site routes replies back by conntrack mark. */
  clientAddress: z.enum(["proxy", "preserve"]).default("proxy"),
});
const serviceSchema = z.discriminatedUnion("kind", [httpService, portService], {
  error: "kind must be http, tcp or udp",
});

/**
 * Protocol numbers the kernel and routing daemons stamp on their routes (linux/rtnetlink.h,
 * iproute2's rt_protos). netpol deletes what carries its number, so it must be no one else's.
 * A machine's own /etc/iproute2/rt_protos may name more: checked where netpol runs.
 */
export const RESERVED_PROTOCOLS: ReadonlyMap<number, string> = new Map([
  [0, "unspec"],
  [1, "redirect"],
  [2, "kernel"],
  [3, "boot"],
  [4, "static"],
  [8, "gated"],
  [9, "ra"],
  [10, "mrt"],
  [11, "zebra"],
  [12, "bird"],
  [13, "dnrouted"],
  [14, "xorp"],
  [15, "ntk"],
  [16, "dhcp"],
  [17, "mrouted"],
  [18, "keepalived"],
  [42, "babel"],
  [99, "openr"],
  [186, "bgp"],
  [187, "isis"],
  [188, "ospf"],
  [189, "rip"],
  [192, "eigrp"],
]);

const hex = (n: number) => `0x${n.toString(16)}`;

const mark = z
  .number({ error: "a mark is a whole number, e.g. 0xff000000" })
  .int("a mark is a whole number, e.g. 0xff000000")
  .min(0, "marks are 32-bit unsigned numbers")
  .max(0xffffffff, "marks are 32-bit unsigned numbers");

/** Mark bits other tools set and test: Tailscale, Docker and Kubernetes, wg-quick's socket mark. */
export const DEFAULT_FOREIGN_MARKS = [0xff0000, 0x4000, 0x8000, 0xca6c];

const settingsSchema = z
  .strictObject({
    /** Routing protocol number stamped on every route and rule netpol owns. */
    routeProtocol: z
      .number()
      .int()
      .min(5, "protocols 0..4 belong to the kernel")
      .max(255)
      .refine((n) => n < 5 || !RESERVED_PROTOCOLS.has(n), {
        error: (issue) =>
          `protocol ${issue.input} is ${RESERVED_PROTOCOLS.get(Number(issue.input))}'s: netpol would take that daemon's routes for its own and delete them; pick an unused number such as 77`,
      })
      .default(77),
    /** Where automatically chosen routing table ids start. */
    firstTable: tableId.default(100),
    /** Where automatically chosen rule priorities start; each egress takes two. */
    firstPriority: rulePriority.default(1000),
    /** Where rule priorities for marked replies start; they must come before every egress rule. */
    firstReplyPriority: rulePriority.default(100),
    /** The bits of packet and connection marks netpol may use; one run of bits (compile/marks). */
    markMask: mark
      .refine((m) => maskProblem(m) === undefined, {
        error: (issue) => maskProblem(Number(issue.input)) ?? "",
      })
      .default(0xff000000),
    /** Mark bits other tools on the machine use; markMask must stay clear of them. */
    foreignMarks: z.array(mark).default(DEFAULT_FOREIGN_MARKS),
  })
  .superRefine((s, ctx) => {
    s.foreignMarks.forEach((m, i) => {
      const shared = (m & s.markMask) >>> 0;
      if (shared === 0) return;
      ctx.addIssue({
        code: "custom",
        path: ["markMask"],
        message: `markMask ${hex(s.markMask)} shares bits ${hex(shared)} with foreignMarks[${i}] (${hex(m)}), which another tool uses; pick a mask clear of them`,
      });
    });
  });

/**
 * How a fleet rollout (`netpol publish` to etcd) reaches the sites: wave after wave, each
 * starting once every site of the one before applied the revision. Only the fleet reads it.
 */
const rolloutSchema = z.strictObject({
  /** Sites in order, e.g. a canary first, then the hubs; sites named in none form a last wave. */
  waves: z.array(z.array(siteName).min(1, "a wave names at least one site")).default([]),
  /** Sites that may fail before the rollout stops; 0: the first failure stops it. */
  failureBudget: z.number().int().min(0).default(0),
  /** Seconds a site has after an apply to show that the tunnels that worked still do; 0: no check. */
  healthSeconds: z.number().int().min(0).max(3600).default(30),
});

export const policySchema = z.strictObject({
  version: z.literal(1, { error: "this netpol reads policy version 1; add `version: 1`" }),
  settings: settingsSchema.default(settingsSchema.parse({})),
  sites: z
    .record(siteName, siteSchema)
    .refine((s) => Object.keys(s).length > 0, "declare at least one site"),
  tunnels: z.array(tunnelSchema).default([]),
  services: z.array(serviceSchema).default([]),
  rollout: rolloutSchema.optional(),
});

export type PolicyDocument = z.output<typeof policySchema>;
export type SiteDocument = z.output<typeof siteSchema>;
export type TunnelDocument = z.output<typeof tunnelSchema>;
export type ServiceDocument = z.output<typeof serviceSchema>;
export type ProviderDocument = z.output<typeof providerSchema>;
export type EgressDocument = z.output<typeof egressSchema>;
export type RolloutDocument = z.output<typeof rolloutSchema>;
export type HealthDocument = z.output<typeof healthSchema>;
export const HEALTH_DEFAULTS: HealthDocument = healthSchema.parse({});
