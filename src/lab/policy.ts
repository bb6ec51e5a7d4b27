import { ADDR, type LabNames, UDP_PORT, WG_PORT, WHOAMI_PORT } from "./topology.js";

/**
 * Scenario C on the lab: VLAN 6 leaves through the provider tunnel, fail closed; home dials
 * the VPS, which publishes a home web server twice: once through SNAT, once keeping the
 * client's address.
 */
export function labPolicy(names: LabNames, keys: { home: string; vps: string }): string {
  return `# The demo lab's policy (scenario C, on namespaces ${names.prefix}-*).
version: 1
sites:
  home:
    wan: wan
    interfaces:
      - { name: lan, kind: physical }
      - { name: wan, kind: physical }
      - { name: vl6, kind: physical }   # VLAN 6 (a veth in the lab: this kernel has no 802.1q)
    networks:
      - { name: lan, cidr: 192.168.1.0/24, interface: lan }
      - { name: files, cidr: 192.168.6.0/24, interface: vl6, address: 192.168.6.1 }
    external:
      - name: ${names.hma}              # the provider tunnel, brought up by someone else
    egress:
      - name: vpn
        from: [files]
        via: ${names.hma}
        except: [192.168.0.0/16]
        masquerade: true
        table: 3
        priority: 200
  vps:
    wan: wan
    interfaces:
      - { name: wan, kind: physical }
    proxy: { tls: "off", httpPort: 80 }

tunnels:
  - name: ${names.wg}
    keepalive: 5
    members:
      - site: vps
        interface: ${names.wgVps}       # one machine hosts both ends here: wireguard-go names are global
        address: ${ADDR.wgVps}
        endpoint: ${ADDR.vps}:${WG_PORT}
        publicKey: ${keys.vps}
        privateKeyFile: keys/vps.key
      - site: home
        interface: ${names.wgHome}
        address: ${ADDR.wgHome}
        publicKey: ${keys.home}
        privateKeyFile: keys/home.key

services:
  - { name: web, kind: tcp, publishOn: vps, port: 2222, target: "${ADDR.lan1Host}:${WHOAMI_PORT}" }
  - { name: web-direct, kind: tcp, publishOn: vps, port: 8081, target: "${ADDR.lan1Host}:${WHOAMI_PORT}", clientAddress: preserve }
  - { name: blog, kind: http, publishOn: vps, hostname: blog.example.org, target: "${ADDR.lan1Host}:${WHOAMI_PORT}" }
`;
}

/**
 * The rest of scenario C, added to the lab's policy: a guest VLAN whose internet traffic leaves
 * through the VPS's static address (fail closed), and a UDP service of the home published on
 * the VPS keeping the client's address.
 */
export function withGuestsAndUdp(text: string, names: LabNames): string {
  return text
    .replace(
      "      - { name: vl6, kind: physical }",
      "      - { name: vl6, kind: physical }\n      - { name: vl7, kind: physical }   # the guest VLAN",
    )
    .replace(
      "      - { name: files,",
      "      - { name: guests, cidr: 192.168.7.0/24, interface: vl7, address: 192.168.7.1 }\n      - { name: files,",
    )
    .replace(
      "        priority: 200\n",
      `        priority: 200\n      - name: via-vps                 # guests leave by the VPS's static address\n        from: [guests]\n        via: ${names.wg}\n        except: [192.168.0.0/16]\n        masquerade: true\n`,
    )
    .concat(
      `  - { name: echo, kind: udp, publishOn: vps, port: ${UDP_PORT}, target: "${ADDR.lan1Host}:${UDP_PORT}", clientAddress: preserve }\n`,
    );
}

/**
 * Scenario D on the lab: VLAN 6 leaves by the provider while it carries traffic, by the VPS
 * tunnel when the provider stops answering, and by nothing (never the ISP) when both are dead.
 * Both paths are probed through themselves towards the internet host.
 */
export function withFailover(text: string, names: LabNames, hold = 3): string {
  return text.replace(
    `        via: ${names.hma}\n`,
    `        via: [${names.hma}, ${names.wg}]   # the provider first, then the VPS\n        health: { targets: [${ADDR.www}], hold: ${hold} }\n`,
  );
}

/**
 * The VPS's `control`: where the home's `netpol serve` (and `status --all`) reaches the VPS's,
 * over the tunnel, with the token in the key directory.
 */
export function withControl(text: string, url: string, tokenFile: string): string {
  return text.replace(
    "  vps:\n    wan: wan\n",
    `  vps:\n    wan: wan\n    control: { url: "${url}", tokenFile: ${tokenFile} }\n`,
  );
}

/**
 * DNS that follows the egress (on top of `withFailover`): VLAN 6's plain DNS goes to the
 * provider's resolver through the provider, or to the VPS's through the VPS tunnel.
 */
export function withDns(text: string, names: LabNames): string {
  return text.replace(
    /( {8}health: .*\n)/,
    `$1        dns: { resolvers: { ${names.hma}: [${RESOLVER.provider}], ${names.wg}: [${RESOLVER.vps}] } }\n`,
  );
}

/** Where the lab's resolvers listen: each side's tunnel address, and an internet host (the ISP's). */
export const RESOLVER = { provider: "10.66.0.1", vps: "10.99.0.1", isp: "192.0.2.80" } as const;
