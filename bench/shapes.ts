import { randomBytes } from "node:crypto";

/**
 * The policies the apply benchmark generates: one per shape of issue 11's table, at any size.
 * Each holds one site, `r`, which the benchmark applies; other sites only exist as tunnel
 * members. `changed` is the same policy with one line edited, for the one-line-change column.
 */
export interface Shape {
  readonly name: string;
  readonly objects: number;
  readonly policy: string;
  readonly changed: string;
  /** Devices the site expects to find: veth pairs for physical ones, tun for external ones. */
  readonly physical: readonly string[];
  readonly external: readonly string[];
  /** WireGuard interfaces the site gets, named machine-wide unique (wireguard-go sockets are global). */
  readonly wireguard: readonly string[];
  /** Written to the key directory, mode 0600. */
  readonly keyFiles: ReadonlyMap<string, string>;
}

export interface Keys {
  readonly privateKey: string;
  readonly publicKey: string;
}

export const SHAPES = ["egress-per-network", "many-except", "wireguard-hub", "mixed"] as const;
export type ShapeName = (typeof SHAPES)[number];

/** A 44-character base64 key: any 32 bytes are a valid Curve25519 public key for `wg`. */
const randomKey = () => randomBytes(32).toString("base64");

/** Distinct /24s: i-th of 10.0.0.0/10-ish space starting at `first` (second octet). */
const net24 = (first: number, i: number) => `10.${first + (i >> 8)}.${i & 255}.0/24`;

/**
 * The i-th `except` prefix: the lower half of a /24 of 100.64.0.0/10 each, so there is a gap
 * between any two. nft merges adjacent prefixes of an auto-merge set into one range: adjacent
 * /24s would make 10,000 excepts one element in the kernel.
 */
const exceptPrefix = (i: number) => `100.${64 + (i >> 8)}.${i & 255}.0/25`;

const header = "version: 1\nsites:\n";

/** n networks on lan0, each with an egress of its own through ext0 (policy lines). */
function networksWithEgress(n: number): { nets: string[]; egress: string[] } {
  const lines = (line: (i: number) => string) => Array.from({ length: n }, (_, i) => line(i));
  return {
    nets: lines((i) => `      - { name: n${i}, cidr: ${net24(0, i)}, interface: lan0 }`),
    egress: lines((i) => `      - { name: e${i}, from: [n${i}], via: ext0 }`),
  };
}

function egressPerNetwork(n: number): Pick<Shape, "policy" | "changed"> {
  const { nets, egress } = networksWithEgress(n);
  const site = (lines: string[]) =>
    `${header}  r:\n    interfaces: [{ name: lan0, kind: physical }]\n    external: [{ name: ext0 }]\n    networks:\n${lines.join("\n")}\n    egress:\n${egress.join("\n")}\n`;
  const edited = [...nets];
  edited[n - 1] = `      - { name: n${n - 1}, cidr: 10.250.0.0/24, interface: lan0 }`;
  return { policy: site(nets), changed: site(edited) };
}

function manyExcept(n: number): Pick<Shape, "policy" | "changed"> {
  const excepts = Array.from({ length: n }, (_, i) => exceptPrefix(i));
  const site = (list: string[]) =>
    `${header}  r:\n    interfaces: [{ name: lan0, kind: physical }]\n    external: [{ name: ext0 }]\n    networks: [{ name: files, cidr: 192.168.6.0/24, interface: lan0 }]\n    egress:\n      - name: out\n        from: [files]\n        via: ext0\n        masquerade: true\n        except:\n${list.map((c) => `          - ${c}`).join("\n")}\n`;
  const edited = [...excepts];
  edited[n - 1] = "100.127.255.0/25";
  return { policy: site(excepts), changed: site(edited) };
}

/** A hub-and-spoke tunnel: hub `r` and n spoke sites, which dial the hub and peer only with it. */
function tunnelLines(
  n: number,
  wg: string,
  hubKey: Keys,
  spokeKeys: string[],
  spokeNetworks: boolean,
) {
  const members = spokeKeys.map(
    (key, i) =>
      `      - { site: s${i}, address: 10.100.${(i + 1) >> 8}.${(i + 1) & 255}/16, publicKey: ${key}, privateKeyFile: s.key${spokeNetworks ? ", advertise: [lan]" : ""} }`,
  );
  const spokes = Array.from({ length: n }, (_, i) =>
    spokeNetworks
      ? `  s${i}:\n    interfaces: [{ name: lan0, kind: physical }]\n    networks: [{ name: lan, cidr: ${net24(128, i)}, interface: lan0 }]`
      : `  s${i}: {}`,
  );
  const tunnel = (list: string[]) =>
    `tunnels:\n  - name: wgtun\n    topology: hub\n    hub: r\n    members:\n      - { site: r, address: 10.100.255.254/16, publicKey: ${hubKey.publicKey}, privateKeyFile: hub.key, interface: ${wg}, endpoint: "192.0.2.1:51820", listenPort: 51820 }\n${list.join("\n")}\n`;
  const edited = [...members];
  edited[n - 1] = (edited[n - 1] ?? "").replace(spokeKeys[n - 1] ?? "", randomKey());
  return { spokes: spokes.join("\n"), tunnel: tunnel(members), tunnelChanged: tunnel(edited) };
}

function wireguardHub(n: number, wg: string, hubKey: Keys): Pick<Shape, "policy" | "changed"> {
  const spokeKeys = Array.from({ length: n }, randomKey);
  const t = tunnelLines(n, wg, hubKey, spokeKeys, false);
  const site = `${header}  r:\n    interfaces: [{ name: eth0, kind: physical }]\n    wan: eth0\n${t.spokes}\n`;
  return { policy: site + t.tunnel, changed: site + t.tunnelChanged };
}

/**
 * n objects, a quarter each: networks with an egress each, `except` prefixes on one more
 * egress, ports published to the spokes' networks, and tunnel peers (the spokes).
 */
function mixed(n: number, wg: string, hubKey: Keys): Pick<Shape, "policy" | "changed"> {
  const k = Math.max(1, Math.floor(n / 4));
  const spokeKeys = Array.from({ length: k }, randomKey);
  const t = tunnelLines(k, wg, hubKey, spokeKeys, true);
  const { nets, egress } = networksWithEgress(k);
  const excepts = Array.from({ length: k }, (_, i) => `          - ${exceptPrefix(i)}`);
  const services = (first: number) =>
    Array.from(
      { length: k },
      (_, i) =>
        `  - { name: p${i}, kind: tcp, publishOn: r, port: ${i === k - 1 ? first : 10000 + i}, target: "${net24(128, i).replace(".0/24", ".10")}:22" }`,
    ).join("\n");
  const site =
    `${header}  r:\n    wan: eth0\n    interfaces: [{ name: lan0, kind: physical }, { name: eth0, kind: physical }]\n    external: [{ name: ext0 }]\n` +
    `    networks:\n${nets.join("\n")}\n      - { name: all, cidr: 192.168.6.0/24, interface: lan0 }\n` +
    `    egress:\n${egress.join("\n")}\n      - name: out\n        from: [all]\n        via: ext0\n        except:\n${excepts.join("\n")}\n` +
    `${t.spokes}\n${t.tunnel}`;
  const policy = `${site}services:\n${services(10000 + k - 1)}\n`;
  return { policy, changed: `${site}services:\n${services(30000)}\n` };
}

export function makeShape(name: ShapeName, n: number, suffix: string, hubKey: Keys): Shape {
  const wg = `wgb${suffix}`;
  const keyFiles = new Map([["hub.key", `${hubKey.privateKey}\n`]]);
  switch (name) {
    case "egress-per-network":
      return {
        name,
        objects: n,
        ...egressPerNetwork(n),
        physical: ["lan0"],
        external: ["ext0"],
        wireguard: [],
        keyFiles: new Map(),
      };
    case "many-except":
      return {
        name,
        objects: n,
        ...manyExcept(n),
        physical: ["lan0"],
        external: ["ext0"],
        wireguard: [],
        keyFiles: new Map(),
      };
    case "wireguard-hub":
      return {
        name,
        objects: n,
        ...wireguardHub(n, wg, hubKey),
        physical: ["eth0"],
        external: [],
        wireguard: [wg],
        keyFiles,
      };
    case "mixed":
      return {
        name,
        objects: n,
        ...mixed(n, wg, hubKey),
        physical: ["lan0", "eth0"],
        external: ["ext0"],
        wireguard: [wg],
        keyFiles,
      };
  }
}
