/**
 * Scenario A in the smallest form that applies in a bare namespace: one network on a veth
 * `lan0`, leaving through a tun `ext0`, `192.168.0.0/16` kept local. No keys.
 */
export const VLAN_EGRESS_POLICY = `version: 1
sites:
  home:
    interfaces: [{ name: lan0, kind: physical }]
    networks: [{ name: files, cidr: 192.168.6.0/24, interface: lan0, address: 192.168.6.1 }]
    external: [{ name: ext0 }]
    egress:
      - { name: out, from: [files], via: ext0, except: [192.168.0.0/16], table: 3, priority: 200 }
`;
