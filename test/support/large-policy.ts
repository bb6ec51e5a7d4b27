/**
 * Generated policies of a chosen size, for the validation benchmark and the tests that need a
 * policy near the size limit. Addresses come from 10.0.0.0/8 (one /24 per network) and the
 * documentation ranges; the keys are well-formed but nobody's.
 */

const KEY_BYTES = 32;

/** A distinct, well-formed WireGuard public key for member `i`. */
export function fakeKey(i: number): string {
  const bytes = Buffer.alloc(KEY_BYTES);
  bytes.writeUInt32BE(i + 1, 0);
  bytes[KEY_BYTES - 1] = 0x40;
  return bytes.toString("base64");
}

function net24(i: number): string {
  return `10.${(i >> 8) & 0xff}.${i & 0xff}.0/24`;
}

/** One site, "home", with the given networks (as CIDRs) on eth0 and egress lines via tun0. */
function homeSite(cidrs: readonly string[], egress: readonly string[]): string {
  const lines = [
    "version: 1",
    "sites:",
    "  home:",
    "    wan: eth1",
    "    interfaces:",
    "      - { name: eth0, kind: physical }",
    "      - { name: eth1, kind: physical }",
    "    external: [{ name: tun0 }]",
    "    networks:",
    ...cidrs.map((cidr, i) => `      - { name: n${i}, cidr: ${cidr}, interface: eth0 }`),
    "    egress:",
    ...egress,
  ];
  return `${lines.join("\n")}\n`;
}

/** One site with `n` networks on one interface, each leaving by its own egress. */
export function egressPolicy(n: number): string {
  const nets = Array.from({ length: n }, (_, i) => net24(i));
  return homeSite(
    nets,
    nets.map(
      (_, i) => `      - { name: e${i}, from: [n${i}], via: tun0, except: [192.168.0.0/16] }`,
    ),
  );
}

/** The i-th /28 in 10.0.0.0/8: room for a million networks. */
function net28(i: number): string {
  return `10.${(i >> 12) & 0xff}.${(i >> 4) & 0xff}.${(i & 0xf) << 4}/28`;
}

/**
 * One site with `n` networks and one egress for every ten of them: the shape that still fits
 * the rule priorities at 100,000 networks (each egress takes two of the 32,765).
 */
export function networksPolicy(n: number): string {
  const egress = Array.from({ length: Math.ceil(n / 10) }, (_, e) => {
    const from = Array.from({ length: Math.min(10, n - e * 10) }, (_, k) => `n${e * 10 + k}`);
    return `      - { name: e${e}, from: [${from.join(", ")}], via: tun0 }`;
  });
  return homeSite(
    Array.from({ length: n }, (_, i) => net28(i)),
    egress,
  );
}

/**
 * A hub (the VPS) and `n` spoke sites in one hub-and-spoke tunnel; every spoke advertises its
 * LAN, so the hub holds `n` peers and each spoke one.
 */
export function hubPolicy(n: number): string {
  const lines = [
    "version: 1",
    "sites:",
    "  vps: { wan: eth0, interfaces: [{ name: eth0, kind: physical }] }",
  ];
  for (let i = 0; i < n; i++) {
    lines.push(
      `  s${i}: { interfaces: [{ name: eth0, kind: physical }], networks: [{ name: lan, cidr: ${net24(i)}, interface: eth0 }] }`,
    );
  }
  lines.push(
    "tunnels:",
    "  - name: wg0",
    "    topology: hub",
    "    hub: vps",
    "    members:",
    `      - { site: vps, address: 172.16.0.1/16, endpoint: "203.0.113.10:51820", publicKey: "${fakeKey(n)}", privateKeyFile: vps.key }`,
  );
  for (let i = 0; i < n; i++) {
    const addr = `172.16.${((i + 2) >> 8) & 0xff}.${(i + 2) & 0xff}/16`;
    lines.push(
      `      - { site: s${i}, address: ${addr}, publicKey: "${fakeKey(i)}", privateKeyFile: s${i}.key, advertise: [lan] }`,
    );
  }
  return `${lines.join("\n")}\n`;
}
