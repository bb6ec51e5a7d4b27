import { publicKeyOf } from "../../src/system/keys.js";

/**
 * One scenario for the fake kernel and a real namespace alike: what netpol sends (and what
 * tests do by hand), including commands the kernel refuses. Each step's answer and the state
 * read back at each checkpoint must be the same on both.
 */

export interface Step {
  readonly tool: string;
  readonly args: readonly string[];
  readonly input?: string;
}

export type Checkpoint = { readonly checkpoint: string };

// Fixed keys, so both sides (and a recorded run) print the same.
const WG_PRIVATE = "gOmD0Ck+2HIUtFIXs4yUsdTw8ovWhTXL8k6lNCy5w0Q=";
const PEER_A = publicKeyOf("CPy7dW7rP5Vg7gXUnm8sbGx8tPQ0OPzvDJtS0VbZH1c=");
const PEER_B = publicKeyOf("wDUklS9I3GUQxs0i7P6tqEQjsI/3zUAF6Brt2yyjNVc=");

export const WG_CONF = (port: number) => `[Interface]
PrivateKey = ${WG_PRIVATE}
ListenPort = ${port}

[Peer]
PublicKey = ${PEER_A}
AllowedIPs = 10.9.0.1/32, 192.168.6.0/24, 2001:db8:6::/48
Endpoint = 198.51.100.7:51820
PersistentKeepalive = 25

[Peer]
PublicKey = ${PEER_B}
AllowedIPs = 0.0.0.0/0
`;

const batch = (lines: string[], ...opts: string[]): Step => ({
  tool: "ip",
  args: [...opts, "-batch", "-"],
  input: `${lines.join("\n")}\n`,
});
const ip = (...args: string[]): Step => ({ tool: "ip", args });

export function scenario(wgName: string, wgConfFile: string): (Step | Checkpoint)[] {
  return [
    ip("link", "set", "dev", "lo", "up"),
    batch([
      "link add a0 type veth peer name a1",
      "link add name br0 type bridge",
      "link set dev a0 up",
      "link set dev a1 up",
      "link set dev br0 up",
      "link set dev a1 master br0",
      'link set dev a0 alias "netpol 0123abcd"',
      "link set dev a0 mtu 1480",
    ]),
    ip("tuntap", "add", "t0", "mode", "tun"),
    ip("link", "set", "dev", "t0", "up"),
    { tool: "wireguard-go", args: [wgName] },
    { tool: "wg", args: ["setconf", wgName, wgConfFile] },
    ip("link", "set", "dev", wgName, "mtu", "1420"),
    ip("link", "set", "dev", wgName, "up"),
    batch([
      "address add 192.0.2.1/24 dev a0",
      "address add 10.66.0.2/32 dev a0",
      `address add 10.99.0.2/24 dev ${wgName}`,
      "route add table 3 0.0.0.0/0 dev a0 proto 77",
      "route add table 3 unreachable 0.0.0.0/0 metric 4294967295 proto 77",
      "route add table 3 unreachable 192.168.0.0/16 metric 4294967295 proto 77",
      "route add table 5 198.51.100.0/24 via 192.0.2.254 dev a0 metric 10 proto 77",
      "route add table 5 198.51.100.0/24 via 192.0.2.253 metric 20 proto 77",
      "route add table 6 203.0.113.0/24 proto 77 nexthop via 192.0.2.253 dev a0 weight 1 nexthop via 192.0.2.252 dev a0 weight 2",
      "route add table 7 203.0.113.0/24 via 192.0.2.253 dev a0 proto static",
      "route add 10.123.0.0/24 via 192.0.2.254",
      `route add table 8 0.0.0.0/0 dev ${wgName} proto 77`,
      "rule add priority 200 from 192.168.6.0/24 to 192.168.0.0/16 lookup main suppress_prefixlength 0 protocol 77",
      "rule add priority 201 from 192.168.6.0/24 lookup 3 protocol 77",
      "rule add priority 300 from 0.0.0.0/0 fwmark 0x4e50/0xff00 lookup 5 protocol 77",
      "rule add priority 301 from 0.0.0.0/0 fwmark 0x4e51 lookup 5 protocol 77",
      "rule add priority 5000 from 10.200.0.0/16 lookup 42",
    ]),
    batch(
      [
        "address add 2001:db8::1/64 dev a0 nodad",
        "route add table 3 2001:db8:1::/48 via 2001:db8::ff dev a0 proto 77",
        "route add table 3 2001:db8:2::/48 dev a0 metric 20 proto 77",
        "route add table 3 unreachable ::/0 metric 4294967295 proto 77",
        "rule add priority 200 from 2001:db8:6::/48 lookup 3 protocol 77",
        "rule add priority 202 from ::/0 fwmark 0x4e50/0xff00 lookup 3 protocol 77",
      ],
      "-6",
    ),
    { tool: "sysctl", args: ["-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.conf.a0.rp_filter=2"] },
    {
      tool: "nft",
      args: ["-f", "-"],
      input: `table inet netpol {}
delete table inet netpol
table inet netpol {
  comment "netpol 0123456789abcdef"
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "a0" oifname != "t0" counter drop comment "fail-closed vpn"
    oifname "t0" tcp flags syn tcp option maxseg size set rt mtu
  }

  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "t0" ip saddr 192.168.6.0/24 masquerade comment "egress vpn"
  }
}
table ip labnat {
 chain post { type nat hook postrouting priority srcnat; oifname "a0" masquerade; }
}
`,
    },
    { checkpoint: "built" },

    // What the kernel and the tools refuse, and how they say so.
    batch([
      "route add table 9 10.1.0.0/16 dev a0 proto 77",
      "route add table 9 10.1.0.0/16 dev a0 proto 77",
      "route add table 9 10.2.0.0/16 dev a0 proto 77",
    ]),
    batch(
      [
        "route del table 9 10.1.0.0/16 dev a0 proto 77",
        "route del table 9 10.1.0.0/16 dev a0 proto 77",
        "route add table 9 10.3.0.0/16 dev a0 proto 77",
      ],
      "-force",
    ),
    ip("route", "add", "table", "9", "10.4.0.0/16", "dev", "a0", "metric", "5", "proto", "77"),
    ip("route", "add", "table", "9", "10.4.0.0/16", "dev", "a1", "metric", "5", "proto", "77"),
    ip("route", "replace", "table", "9", "10.4.0.0/16", "dev", "a0", "metric", "6", "proto", "77"),
    ip("route", "del", "table", "9", "10.4.0.0/16", "proto", "78"),
    ip("route", "del", "table", "9", "10.9.0.0/16", "dev", "a0"),
    ip("route", "add", "table", "9", "10.5.0.0/16", "dev", "nope", "proto", "77"),
    ip("route", "add", "table", "9", "10.5.0.0/16", "via", "10.77.0.1", "proto", "77"),
    ip("-6", "route", "add", "table", "9", "2001:db8:7::/48", "via", "2001:db8:ffff::1"),
    batch(["route add table 9 10.5.0.0/16 dev a0 proto 77"], "-6"),
    ip("rule", "add", "priority", "201", "from", "192.168.6.0/24", "lookup", "3", "protocol", "77"),
    ip("rule", "add", "priority", "201", "from", "192.168.6.0/24", "lookup", "3", "protocol", "78"),
    ip("rule", "del", "priority", "999", "from", "192.168.6.0/24", "lookup", "3", "protocol", "77"),
    ip("rule", "del", "priority", "201", "from", "0.0.0.0/0", "lookup", "3"),
    ip("-6", "rule", "del", "priority", "999", "from", "2001:db8::/32", "lookup", "3"),
    ip("address", "add", "192.0.2.1/24", "dev", "a0"),
    ip("address", "del", "192.0.2.9/24", "dev", "a0"),
    ip("address", "add", "192.0.2.9/24", "dev", "nope"),
    ip("-6", "address", "add", "2001:db8::1/64", "dev", "a0", "nodad"),
    ip("link", "add", "name", "br0", "type", "bridge"),
    ip("link", "add", "link", "a0", "name", "a0.6", "type", "vlan", "id", "6"),
    ip("link", "add", "name", "wgk0", "type", "wireguard"),
    ip("link", "delete", "dev", "nope"),
    ip("link", "set", "dev", "nope", "up"),
    ip("link", "set", "dev", "a1", "master", "nobr"),
    batch(["route frob"]),
    { tool: "nft", args: ["-f", "-"], input: "delete table inet nope\n" },
    { tool: "nft", args: ["list", "table", "inet", "nope"] },
    {
      tool: "sysctl",
      args: [
        "-e",
        "net.ipv4.ip_forward",
        "net.ipv4.conf.nope.rp_filter",
        "net.ipv4.conf.a0.rp_filter",
      ],
    },
    { tool: "sysctl", args: ["-q", "-w", "net.ipv4.conf.nope.rp_filter=2"] },
    { tool: "wg", args: ["showconf", "a0"] },
    { checkpoint: "after refusals" },

    // What goes with what: a link down takes its routes, the last address its device's routes.
    ip("link", "add", "b0", "type", "veth", "peer", "name", "b1"),
    ip("link", "set", "dev", "b0", "up"),
    ip("link", "set", "dev", "b1", "up"),
    batch([
      "address add 203.0.113.1/24 dev b1",
      "route add table 4 10.1.0.0/16 via 203.0.113.9 proto 77",
      "route add table 4 10.2.0.0/16 dev b1 proto 77",
    ]),
    ip("-6", "route", "add", "table", "4", "2001:db8:44::/48", "dev", "b1", "proto", "77"),
    ip("link", "set", "dev", "b1", "down"),
    { checkpoint: "after link down" },
    ip("link", "set", "dev", "b1", "up"),
    batch([
      "route add table 4 10.1.0.0/16 via 203.0.113.9 proto 77",
      "route add table 4 10.2.0.0/16 dev b1 proto 77",
    ]),
    ip("address", "del", "203.0.113.1/24", "dev", "b1"),
    { checkpoint: "after last address removed" },
    ip("link", "delete", "dev", "b0"),
    ip("link", "set", "dev", "a0", "alias", ""),
    {
      tool: "nft",
      args: ["-f", "-"],
      input: "table inet netpol {}\ndelete table inet netpol\n",
    },
    { checkpoint: "after removals" },
  ];
}
