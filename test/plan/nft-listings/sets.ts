import type { NftChain, NftSet } from "../../../src/compile/desired.js";

/**
 * One set of every shape netpol declares, with the elements nft rewrites when it lists them:
 * adjacent and overlapping prefixes an auto-merge set merges, host prefixes listed as bare
 * addresses, IPv6 prefixes, concatenations and map values. full.txt and terse.txt are what
 * nft 1.0.6 listed for them (`nft list table` and `nft -t list table`).
 */
export const SETS: NftSet[] = [
  {
    name: "egress_1_except4",
    kind: "set",
    type: "ipv4_addr",
    interval: true,
    elements: [
      "10.0.0.0/24",
      "10.0.1.0/24",
      "10.0.2.0/24",
      "10.1.0.0/16",
      "10.1.4.0/24",
      "192.0.2.7/32",
    ],
  },
  {
    name: "egress_1_except6",
    kind: "set",
    type: "ipv6_addr",
    interval: true,
    elements: ["2001:db8::/48", "2001:db8:0:1::/64", "2001:db8:1::1/128"],
  },
  {
    name: "egress_from4",
    kind: "map",
    type: "ipv4_addr : verdict",
    interval: true,
    elements: ["192.168.6.0/24 : jump egress_1", "192.168.7.5/32 : jump egress_1"],
  },
  {
    name: "masquerade4",
    kind: "set",
    type: "ifname . ipv4_addr",
    interval: true,
    elements: ['"wan" . 192.168.6.0/24', '"eth0.7" . 192.168.7.0/24'],
  },
  {
    name: "proxied",
    kind: "set",
    type: "inet_proto . inet_service",
    interval: false,
    elements: ["tcp . 22", "udp . 5353"],
  },
  {
    name: "published6",
    kind: "map",
    type: "inet_proto . inet_service : ipv6_addr . inet_service",
    interval: false,
    elements: ["tcp . 8443 : 2001:db8:0:0::10 . 443", "udp . 5353 : 2001:db8::53 . 53"],
  },
];

export const CHAINS: NftChain[] = [
  {
    name: "egress_1",
    rules: ["ip daddr @egress_1_except4 return", "ip6 daddr @egress_1_except6 return"],
  },
  {
    name: "filter_forward",
    base: { type: "filter", hook: "forward", priority: "filter" },
    rules: [
      'ip saddr 192.168.6.0/24 oifname != "wan" counter drop comment "fail-closed vpn"',
      "ip saddr vmap @egress_from4",
      "meta l4proto . th dport @proxied accept",
      "oifname . ip saddr @masquerade4 accept",
    ],
  },
  {
    name: "nat_prerouting",
    base: { type: "nat", hook: "prerouting", priority: "dstnat" },
    rules: ["meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @published6"],
  },
];
