import { stringify } from "yaml";
import { NetpolError } from "../../src/errors.js";
import { formatPath, type LocatedDiagnostic } from "../../src/policy/diagnostic.js";
import { type LoadedPolicy, parsePolicy } from "../../src/policy/load.js";

/** Well-formed public keys (32 bytes of base64) for fixtures; none of them is a real key. */
/** The two ends of the home–VPS tunnel every fixture uses; the VPS has the static endpoint. */
export function tunnelMembers(): PolicyObject[] {
  return [
    {
      site: "vps",
      address: "10.99.0.1/24",
      endpoint: "203.0.113.10:51820",
      publicKey: KEYS.vps,
      privateKeyFile: "keys/vps.key",
    },
    {
      site: "home",
      address: "10.99.0.2/24",
      publicKey: KEYS.home,
      privateKeyFile: "keys/home.key",
    },
  ];
}

export const KEYS = {
  vps: "QwiYNlQXBHxjBEk/LGWJKlstzfZ2U4VtuI/o6GU2xHs=",
  home: "WBoaT5t3SPNzmXqHnXmYrZnrweV88qFWhQFPT7sEuzk=",
  vps2: "aBoaT5t3SPNzmXqHnXmYrZnrweV88qFWhQFPT7sEuzk=",
} as const;

/** A policy document as plain data, loose enough for tests to break it in any way. */
// biome-ignore lint/suspicious/noExplicitAny: tests mutate the document into invalid shapes
export type PolicyObject = Record<string, any>;

/**
 * A small valid policy, fresh on every call: a home router with a LAN, a VLAN leaving through
 * an external VPN device, a bridge, and a WireGuard tunnel to a VPS that publishes an HTTP
 * service, a UDP port keeping the client address and a TCP port.
 */
export function validPolicy(): PolicyObject {
  return {
    version: 1,
    sites: {
      home: {
        wan: "eth1",
        interfaces: [
          { name: "eth0", kind: "physical" },
          { name: "eth1", kind: "physical" },
          { name: "eth0.6", kind: "vlan", parent: "eth0", vlanId: 6 },
          { name: "eth2", kind: "physical" },
          { name: "br0", kind: "bridge", members: ["eth2"] },
        ],
        networks: [
          { name: "lan", cidr: "192.168.1.0/24", interface: "eth0" },
          { name: "files", cidr: "192.168.6.0/24", interface: "eth0.6", address: "192.168.6.1" },
        ],
        external: [{ name: "tun-hma" }],
        egress: [
          {
            name: "vpn",
            from: ["files"],
            via: "tun-hma",
            except: ["192.168.0.0/16"],
            masquerade: true,
            table: 3,
            priority: 200,
          },
        ],
      },
      vps: {
        wan: "eth0",
        interfaces: [{ name: "eth0", kind: "physical" }],
      },
    },
    tunnels: [
      {
        name: "wg-home",
        members: tunnelMembers(),
      },
    ],
    services: [
      {
        name: "blog",
        kind: "http",
        publishOn: "vps",
        hostname: "blog.example.org",
        target: "192.168.1.20:80",
      },
      {
        name: "dns",
        kind: "udp",
        publishOn: "vps",
        port: 53,
        target: "192.168.1.53:53",
        clientAddress: "preserve",
      },
      {
        name: "ssh",
        kind: "tcp",
        publishOn: "vps",
        port: 2222,
        target: "192.168.1.22:22",
      },
    ],
  };
}

/** A third tunnel member, a second VPS with its own uplink; the caller adds the site. */
export function vps2Site(): PolicyObject {
  return { wan: "eth0", interfaces: [{ name: "eth0", kind: "physical" }] };
}

export function vps2Member(): PolicyObject {
  return {
    site: "vps2",
    address: "10.99.0.3/24",
    endpoint: "198.51.100.20:51820",
    publicKey: KEYS.vps2,
    privateKeyFile: "keys/vps2.key",
  };
}

export function toYaml(policy: PolicyObject): string {
  return stringify(policy);
}

export const FILE = "test.yaml";

/** Parses policy text that must be valid. */
export function load(text: string): LoadedPolicy {
  return parsePolicy(text, FILE);
}

/** The diagnostics of policy text that must be invalid (fails the test if it is valid). */
export function diagnosticsOf(text: string): readonly LocatedDiagnostic[] {
  try {
    parsePolicy(text, FILE);
  } catch (e) {
    if (e instanceof NetpolError) return e.diagnostics;
    throw e;
  }
  throw new Error("expected the policy to be rejected, but it was accepted");
}

/** Each problem as `path: message`, in the order netpol reports them. */
export function problemsOf(policy: PolicyObject | string): string[] {
  const text = typeof policy === "string" ? policy : toYaml(policy);
  return diagnosticsOf(text).map((d) =>
    d.path.length > 0 ? `${formatPath(d.path)}: ${d.message}` : d.message,
  );
}

/**
 * A home whose VLAN 6 (192.168.6.0/24, the router at .1 unless `address` says otherwise) leaves
 * by ext0, else ext1: a chain of two external paths; `extra` is written into the egress.
 */
export const chainPolicy = (extra: string, address = ", address: 192.168.6.1") => `version: 1
sites:
  home:
    interfaces: [{ name: lan0, kind: physical }]
    networks:
      - { name: files, cidr: 192.168.6.0/24, interface: lan0${address} }
    external: [{ name: ext0, gateway: 10.1.0.1 }, { name: ext1, gateway: 10.2.0.1 }]
    egress:
      - { name: out, from: [files], via: [ext0, ext1], except: [192.168.0.0/16], table: 3, priority: 200, ${extra} }
`;
