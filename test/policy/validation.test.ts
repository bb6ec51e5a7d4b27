import { describe, expect, it } from "vitest";
import { NetpolError } from "../../src/errors.js";
import { formatPath } from "../../src/policy/diagnostic.js";
import { parsePolicy } from "../../src/policy/load.js";
import {
  diagnosticsOf,
  FILE,
  KEYS,
  load,
  type PolicyObject,
  problemsOf,
  toYaml,
  validPolicy,
  vps2Member,
  vps2Site,
} from "./fixtures.js";

/**
 * One row per way of getting a rule wrong: the base policy is valid, `mutate` breaks exactly
 * one thing, and `expected` lists every problem reported, as `path: message`, in report order.
 * With `partial`, the listed problems must be among those reported.
 */
interface Case {
  readonly name: string;
  readonly mutate: (p: PolicyObject) => void;
  readonly expected: readonly string[];
  readonly partial?: boolean;
}

const home = (p: PolicyObject) => p.sites.home;
const vps = (p: PolicyObject) => p.sites.vps;
const member = (p: PolicyObject, i: number) => p.tunnels[0].members[i];
const service = (p: PolicyObject, i: number) => p.services[i];

/** A second egress from the LAN through the same VPN device, with the ids given. */
const lanEgress = (extra: PolicyObject) => ({
  name: "lan-out",
  from: ["lan"],
  via: "tun-hma",
  ...extra,
});

/** Adds a third member, vps2, and drops the client-address-preserving service (see bugs). */
const threeMembers = (p: PolicyObject) => {
  p.sites.vps2 = vps2Site();
  p.tunnels[0].members.push(vps2Member());
  delete service(p, 1).clientAddress;
};

function runTable(cases: readonly Case[]) {
  it.each(cases)("$name", ({ mutate, expected, partial }) => {
    const policy = validPolicy();
    mutate(policy);
    const problems = problemsOf(policy);
    if (partial) {
      for (const e of expected) expect(problems).toContain(e);
    } else {
      expect(problems).toEqual(expected);
    }
  });
}

describe("the base fixture", () => {
  it("is valid", () => {
    expect(() => load(toYaml(validPolicy()))).not.toThrow();
  });

  it("stays valid with a third tunnel member when no client address is preserved", () => {
    const p = validPolicy();
    threeMembers(p);
    expect(() => load(toYaml(p))).not.toThrow();
  });
});

describe("CIDRs with host bits set", () => {
  runTable([
    {
      name: "network cidr",
      mutate: (p) => {
        home(p).networks[1].cidr = "192.168.6.1/24";
      },
      expected: [
        "sites.home.networks[1].cidr: 192.168.6.1/24 has host bits set; did you mean 192.168.6.0/24?",
      ],
    },
    {
      name: "egress except",
      mutate: (p) => {
        home(p).egress[0].except = ["192.168.0.1/16"];
      },
      expected: [
        "sites.home.egress[0].except[0]: 192.168.0.1/16 has host bits set; did you mean 192.168.0.0/16?",
      ],
    },
    {
      name: "IPv6 network cidr",
      mutate: (p) => {
        home(p).networks.push({ name: "lan6", cidr: "2001:db8:1::1/64", interface: "eth0" });
      },
      expected: [
        "sites.home.networks[2].cidr: 2001:db8:1::1/64 has host bits set; did you mean 2001:db8:1::/64?",
      ],
    },
  ]);
});

describe("malformed CIDRs and addresses", () => {
  runTable([
    {
      name: "prefix longer than 32",
      mutate: (p) => {
        home(p).networks[0].cidr = "192.168.1.0/33";
      },
      expected: [
        'sites.home.networks[0].cidr: "192.168.1.0/33" has a prefix length outside 0..32; write it as e.g. 192.168.6.0/24',
      ],
    },
    {
      name: "three-part address",
      mutate: (p) => {
        home(p).networks[0].cidr = "1.2.3/24";
      },
      expected: [
        'sites.home.networks[0].cidr: "1.2.3/24" is not a CIDR; write it as e.g. 192.168.6.0/24',
      ],
    },
    {
      name: "router address with a prefix",
      mutate: (p) => {
        home(p).networks[1].address = "192.168.6.1/24";
      },
      expected: [
        'sites.home.networks[1].address: "192.168.6.1/24" is not an IP address; write a single address',
      ],
    },
    {
      name: "tunnel address without a prefix",
      mutate: (p) => {
        member(p, 1).address = "10.99.0.2";
      },
      expected: [
        'tunnels[0].members[1].address: "10.99.0.2" is not an address with a prefix length; write e.g. 10.99.0.2/24',
      ],
    },
    {
      name: "tunnel address that is the network address",
      mutate: (p) => {
        member(p, 1).address = "10.99.0.0/24";
      },
      expected: [
        "tunnels[0].members[1].address: 10.99.0.0/24 is the network address itself; give this host its own address in it",
      ],
    },
    {
      name: "router address outside its network",
      mutate: (p) => {
        home(p).networks[1].address = "192.168.7.1";
      },
      expected: [
        "sites.home.networks[1].address: the router's address must lie inside 192.168.6.0/24",
      ],
    },
    {
      name: "router address that is the network address",
      mutate: (p) => {
        home(p).networks[1].address = "192.168.6.0";
      },
      expected: [
        "sites.home.networks[1].address: that is the network address of 192.168.6.0/24; pick a host address such as the first usable one",
      ],
    },
  ]);
});

describe("overlapping networks", () => {
  runTable([
    {
      name: "a network inside another of the same site",
      mutate: (p) => {
        home(p).networks.push({ name: "more", cidr: "192.168.6.128/25", interface: "eth0" });
      },
      expected: [
        "sites.home.networks[2].cidr: 192.168.6.128/25 overlaps network files (192.168.6.0/24) on site home; networks of one site must not overlap",
      ],
    },
    {
      name: "a network around two others, each reported",
      mutate: (p) => {
        home(p).networks.push({ name: "all", cidr: "192.168.0.0/16", interface: "eth0" });
      },
      expected: [
        "sites.home.networks[2].cidr: 192.168.0.0/16 overlaps network lan (192.168.1.0/24) on site home; networks of one site must not overlap",
        "sites.home.networks[2].cidr: 192.168.0.0/16 overlaps network files (192.168.6.0/24) on site home; networks of one site must not overlap",
      ],
    },
    {
      name: "a network over a tunnel's subnet",
      mutate: (p) => {
        home(p).networks.push({ name: "wgnet", cidr: "10.99.0.0/16", interface: "eth0" });
      },
      expected: [
        "sites.home.networks[2].cidr: 10.99.0.0/16 overlaps tunnel wg-home (10.99.0.0/24) on site home; networks of one site must not overlap",
      ],
    },
    {
      name: "a network inside a tunnel's subnet, on the other site",
      mutate: (p) => {
        vps(p).networks = [{ name: "dmz", cidr: "10.99.0.128/25", interface: "eth0" }];
      },
      expected: [
        "sites.vps.networks[0].cidr: 10.99.0.128/25 overlaps tunnel wg-home (10.99.0.0/24) on site vps; networks of one site must not overlap",
      ],
    },
    {
      name: "a site's one network around its one tunnel's subnet",
      mutate: (p) => {
        vps(p).networks = [{ name: "dmz", cidr: "10.0.0.0/8", interface: "eth0" }];
      },
      expected: [
        "sites.vps.networks[0].cidr: 10.0.0.0/8 overlaps tunnel wg-home (10.99.0.0/24) on site vps; networks of one site must not overlap",
      ],
    },
  ]);

  it("refuses a network of the VPS that overlaps a home network the tunnel routes there, naming both", () => {
    const p = validPolicy();
    vps(p).networks = [{ name: "dmz", cidr: "192.168.1.0/24", interface: "eth0" }];
    expect(problemsOf(toYaml(p))).toEqual([
      "sites.vps.networks[0].cidr: 192.168.1.0/24 overlaps 192.168.1.0/24 of site home (sites.home.networks[0].cidr), which vps routes into tunnel wg-home to home: one prefix would be routed both to this network and into the tunnel (the kernel refuses the second route at apply); renumber one of the two networks",
    ]);
    // Nested counts too: a part of the network would leave by the tunnel.
    vps(p).networks = [{ name: "dmz", cidr: "192.168.0.0/16", interface: "eth0" }];
    expect(problemsOf(toYaml(p))).toEqual([
      expect.stringMatching(
        /^sites\.vps\.networks\[0\]\.cidr: 192\.168\.0\.0\/16 overlaps 192\.168\.1\.0\/24 of site home \(sites\.home\.networks\[0\]\.cidr\)/,
      ),
    ]);
  });

  it("accepts the same network on two different sites", () => {
    const p = validPolicy();
    vps(p).networks = [{ name: "lan", cidr: "192.168.1.0/24", interface: "eth0" }];
    p.services = [];
    expect(() => load(toYaml(p))).not.toThrow();
  });
});

describe("AllowedIPs of the peers of one interface", () => {
  runTable([
    {
      name: "two peers advertise overlapping networks",
      mutate: (p) => {
        threeMembers(p);
        vps(p).networks = [{ name: "dmz", cidr: "172.16.0.0/16", interface: "eth0" }];
        p.sites.vps2.networks = [{ name: "dmz", cidr: "172.16.1.0/24", interface: "eth0" }];
        member(p, 0).advertise = ["dmz"];
        member(p, 2).advertise = ["dmz"];
      },
      expected: [
        // Each of the two routes the other's network into the tunnel, over its own.
        "sites.vps.networks[0].cidr: 172.16.0.0/16 overlaps 172.16.1.0/24 of site vps2 (sites.vps2.networks[0].cidr), which vps routes into tunnel wg-home to vps2: one prefix would be routed both to this network and into the tunnel (the kernel refuses the second route at apply); renumber one of the two networks",
        "sites.vps2.networks[0].cidr: 172.16.1.0/24 overlaps 172.16.0.0/16 of site vps (sites.vps.networks[0].cidr), which vps2 routes into tunnel wg-home to vps: one prefix would be routed both to this network and into the tunnel (the kernel refuses the second route at apply); renumber one of the two networks",
        "tunnels[0].members[2]: on home's wg-home, AllowedIPs of peers vps (172.16.0.0/16) and vps2 (172.16.1.0/24) overlap; each prefix may belong to one peer only",
      ],
    },
    {
      name: "two egresses exit through different peers",
      mutate: (p) => {
        threeMembers(p);
        home(p).networks.push({ name: "guests", cidr: "192.168.7.0/24", interface: "eth0" });
        home(p).egress.push(
          { name: "out1", from: ["lan"], via: "wg-home", exit: "vps", masquerade: true },
          { name: "out2", from: ["guests"], via: "wg-home", exit: "vps2", masquerade: true },
        );
      },
      partial: true,
      expected: [
        "tunnels[0].members[2]: on home's wg-home, AllowedIPs of peers vps (0.0.0.0/0) and vps2 (0.0.0.0/0) overlap; each prefix may belong to one peer only",
      ],
    },
  ]);
});

describe("AllowedIPs: nested prefixes on different peers", () => {
  // WireGuard picks the peer by longest prefix: vps's 0.0.0.0/0 next to vps2's 10.99.0.3/32
  // is unambiguous.
  it("accepts an egress that exits at one member of a three-member tunnel", () => {
    const p = validPolicy();
    threeMembers(p);
    home(p).egress.push({ name: "out", from: ["lan"], via: "wg-home", exit: "vps" });
    expect(() => load(toYaml(p))).not.toThrow();
  });
});

describe("routing table ids", () => {
  runTable([
    {
      name: "table 0",
      mutate: (p) => {
        home(p).egress[0].table = 0;
      },
      expected: [
        "sites.home.egress[0].table: table id 0 is reserved by the kernel; pick another, e.g. 100",
      ],
    },
    ...[253, 254, 255].map(
      (id): Case => ({
        name: `table ${id}`,
        mutate: (p) => {
          home(p).egress[0].table = id;
        },
        expected: [
          "sites.home.egress[0].table: table ids 253 (default), 254 (main) and 255 (local) belong to the kernel; pick another, e.g. 100",
        ],
      }),
    ),
    {
      name: "settings.firstTable 254",
      mutate: (p) => {
        p.settings = { firstTable: 254 };
      },
      expected: [
        "settings.firstTable: table ids 253 (default), 254 (main) and 255 (local) belong to the kernel; pick another, e.g. 100",
      ],
    },
    {
      name: "table beyond the kernel's range",
      mutate: (p) => {
        home(p).egress[0].table = 4294967295;
      },
      expected: ["sites.home.egress[0].table: table ids end at 4294967294"],
    },
    {
      name: "the same table for two egresses",
      mutate: (p) => {
        home(p).egress.push(lanEgress({ table: 3, priority: 300 }));
      },
      expected: ["sites.home.egress[1].table: table 3 is already used by egress vpn; pick another"],
    },
  ]);
});

describe("rule priorities", () => {
  runTable([
    ...[
      [199, 200],
      [200, 201],
      [201, 202],
    ].map(
      ([prio, next]): Case => ({
        name: `priority ${prio} against an egress at 200 (which takes 200 and 201)`,
        mutate: (p) => {
          home(p).egress.push(lanEgress({ table: 4, priority: prio }));
        },
        expected: [
          `sites.home.egress[1].priority: priorities ${prio} and ${next} are needed here, but egress vpn already uses one; pick another`,
        ],
      }),
    ),
    {
      name: "priority 0",
      mutate: (p) => {
        home(p).egress[0].priority = 0;
      },
      expected: [
        "sites.home.egress[0].priority: priority 0 is the kernel's local rule; pick e.g. 200",
      ],
    },
    {
      name: "priority 32766",
      mutate: (p) => {
        home(p).egress[0].priority = 32766;
      },
      expected: [
        "sites.home.egress[0].priority: priorities from 32766 belong to the kernel's main and default rules; pick e.g. 200",
      ],
    },
    {
      name: "replies ordered after an egress",
      mutate: (p) => {
        p.settings = { firstReplyPriority: 300 };
      },
      expected: [
        "settings.firstReplyPriority: replies into wg-home on home get priority 300, after egress vpn (200); set a firstReplyPriority below every egress priority",
      ],
    },
    {
      name: "replies pushed past an egress that holds their priority",
      mutate: (p) => {
        p.settings = { firstReplyPriority: 200 };
      },
      expected: [
        "settings.firstReplyPriority: replies into wg-home on home get priority 202, after egress vpn (200); set a firstReplyPriority below every egress priority",
      ],
    },
    {
      name: "an egress placed before the default reply priority",
      mutate: (p) => {
        home(p).egress[0].priority = 50;
      },
      expected: [
        "settings.firstReplyPriority: replies into wg-home on home get priority 100, after egress vpn (50); set a firstReplyPriority below every egress priority",
      ],
    },
  ]);

  it("accepts a second egress right after the first one's pair", () => {
    const p = validPolicy();
    home(p).egress.push(lanEgress({ table: 4, priority: 202 }));
    expect(() => load(toYaml(p))).not.toThrow();
  });
});

describe("interface names", () => {
  const kernel = (name: string) =>
    `interface name ${JSON.stringify(name)} contains '/', ':' or white space, which the kernel rejects`;
  runTable([
    {
      name: "empty",
      mutate: (p) => {
        home(p).interfaces[0].name = "";
      },
      expected: ["sites.home.interfaces[0].name: interface name is empty"],
    },
    {
      name: "16 bytes",
      mutate: (p) => {
        home(p).interfaces[3].name = "abcdefghijklmnop";
      },
      expected: [
        'sites.home.interfaces[3].name: interface name "abcdefghijklmnop" is 16 bytes; the kernel allows at most 15',
      ],
    },
    {
      name: "14 characters but 16 bytes of UTF-8",
      mutate: (p) => {
        home(p).external[0].name = "tun-größe-vpn1";
      },
      expected: [
        'sites.home.external[0].name: interface name "tun-größe-vpn1" is 16 bytes; the kernel allows at most 15',
      ],
    },
    {
      name: "a '/' in a tunnel name",
      mutate: (p) => {
        p.tunnels[0].name = "wg/home";
      },
      expected: [`tunnels[0].name: ${kernel("wg/home")}`],
    },
    {
      name: "a ':' in the wan",
      mutate: (p) => {
        home(p).wan = "eth1:0";
      },
      expected: [`sites.home.wan: ${kernel("eth1:0")}`],
    },
    {
      name: "a space in a VLAN parent",
      mutate: (p) => {
        home(p).interfaces[2].parent = "eth 0";
      },
      expected: [`sites.home.interfaces[2].parent: ${kernel("eth 0")}`],
    },
    {
      name: "a tab in an egress device",
      mutate: (p) => {
        home(p).egress[0].via = "tun\thma";
      },
      expected: [`sites.home.egress[0].via: ${kernel("tun\thma")}`],
    },
    {
      name: "'.' as a bridge member",
      mutate: (p) => {
        home(p).interfaces[4].members = ["."];
      },
      expected: ['sites.home.interfaces[4].members[0]: interface name "." is reserved'],
    },
    {
      name: "'..' as a network's interface",
      mutate: (p) => {
        home(p).networks[0].interface = "..";
      },
      expected: ['sites.home.networks[0].interface: interface name ".." is reserved'],
    },
  ]);

  it("accepts exactly 15 bytes", () => {
    const p = validPolicy();
    home(p).interfaces[3].name = "abcdefghijklmno";
    home(p).interfaces[4].members = ["abcdefghijklmno"];
    expect(() => load(toYaml(p))).not.toThrow();
  });
});

describe("WireGuard public keys", () => {
  const notAKey = (key: string) =>
    `${JSON.stringify(key)} is not a WireGuard public key (44 characters of base64, as printed by \`netpol keygen\` or \`wg pubkey\`)`;
  runTable([
    {
      name: "not base64",
      mutate: (p) => {
        member(p, 0).publicKey = "not-a-key";
      },
      expected: [`tunnels[0].members[0].publicKey: ${notAKey("not-a-key")}`],
    },
    {
      name: "last character encodes more than 32 bytes",
      mutate: (p) => {
        member(p, 0).publicKey = `${KEYS.vps.slice(0, 42)}z=`;
      },
      expected: [`tunnels[0].members[0].publicKey: ${notAKey(`${KEYS.vps.slice(0, 42)}z=`)}`],
    },
    {
      name: "padding missing",
      mutate: (p) => {
        member(p, 1).publicKey = KEYS.home.slice(0, 43);
      },
      expected: [`tunnels[0].members[1].publicKey: ${notAKey(KEYS.home.slice(0, 43))}`],
    },
    {
      name: "missing",
      mutate: (p) => {
        delete member(p, 1).publicKey;
      },
      expected: ["tunnels[0].members[1].publicKey: missing: expected string, received undefined"],
    },
    {
      name: "one key for two members",
      mutate: (p) => {
        member(p, 1).publicKey = KEYS.vps;
      },
      expected: [
        "tunnels[0].members[1].publicKey: this public key is already used by wg-home/vps; every member needs its own key pair",
      ],
    },
  ]);
});

describe("ports", () => {
  runTable([
    ...["0", "65536"].map(
      (port): Case => ({
        name: `endpoint port ${port}`,
        mutate: (p) => {
          member(p, 0).endpoint = `203.0.113.10:${port}`;
        },
        expected: [
          `tunnels[0].members[0].endpoint: port ${port} in 203.0.113.10:${port} is outside 1..65535`,
        ],
      }),
    ),
    {
      name: "IPv6 endpoint port 70000",
      mutate: (p) => {
        member(p, 0).endpoint = "[2001:db8::1]:70000";
      },
      expected: [
        "tunnels[0].members[0].endpoint: port 70000 in [2001:db8::1]:70000 is outside 1..65535",
      ],
    },
    {
      name: "endpoint without a port",
      mutate: (p) => {
        member(p, 0).endpoint = "203.0.113.10";
      },
      expected: [
        'tunnels[0].members[0].endpoint: "203.0.113.10" is not host:port; write e.g. 203.0.113.10:51820 or [2001:db8::1]:51820',
      ],
    },
    {
      name: "service port 0",
      mutate: (p) => {
        service(p, 1).port = 0;
      },
      expected: ["services[1].port: ports start at 1"],
    },
    {
      name: "service port 65536",
      mutate: (p) => {
        service(p, 2).port = 65536;
      },
      expected: ["services[2].port: ports end at 65535"],
    },
    ...["0", "65536"].map(
      (port): Case => ({
        name: `target port ${port}`,
        mutate: (p) => {
          service(p, 1).target = `192.168.1.53:${port}`;
        },
        expected: [`services[1].target: port ${port} in 192.168.1.53:${port} is outside 1..65535`],
      }),
    ),
    {
      name: "listen port 0",
      mutate: (p) => {
        member(p, 0).listenPort = 0;
      },
      expected: ["tunnels[0].members[0].listenPort: ports start at 1"],
    },
    {
      name: "proxy port 65536",
      mutate: (p) => {
        vps(p).proxy = { httpsPort: 65536 };
      },
      expected: ["sites.vps.proxy.httpsPort: ports end at 65535"],
    },
  ]);

  it("says a fractional port is not whole, without calling it missing", () => {
    const p = validPolicy();
    service(p, 1).port = 53.5;
    expect(problemsOf(p)).toEqual(["services[1].port: a port is a whole number from 1 to 65535"]);
  });

  it("says a quoted port is not a number, without calling it missing", () => {
    const p = validPolicy();
    service(p, 1).port = "53";
    expect(problemsOf(p)).toEqual(["services[1].port: a port is a whole number from 1 to 65535"]);
  });
});

describe("where certificates come from", () => {
  runTable([
    {
      name: "an ACME directory that is not an https URL",
      mutate: (p) => {
        vps(p).proxy = { acme: { ca: "http://acme.example.org/directory" } };
      },
      expected: [
        "sites.vps.proxy.acme.ca: an ACME directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory",
      ],
    },
    {
      name: "an email without an @",
      mutate: (p) => {
        vps(p).proxy = { acme: { email: "ops.example.org" } };
      },
      expected: ["sites.vps.proxy.acme.email: an email address, e.g. ops@example.org"],
    },
    {
      name: "a relative path to a trusted root",
      mutate: (p) => {
        vps(p).proxy = { acme: { trustedRoots: ["pebble.pem"] } };
      },
      expected: [
        "sites.vps.proxy.acme.trustedRoots[0]: an absolute path on the site, e.g. /etc/netpol/ca.pem",
      ],
    },
  ]);
});

describe("references to unknown names", () => {
  const knownDevices = "br0, eth0, eth0.6, eth1, eth2, tun-hma, wg-home";
  runTable([
    {
      name: "egress.via",
      mutate: (p) => {
        home(p).egress[0].via = "tun-x";
      },
      expected: [
        "sites.home.egress[0].via: tun-x is neither an external device or provider of home nor a tunnel home is a member of; declare it under sites.home.external, sites.home.providers or tunnels",
      ],
    },
    {
      name: "egress.via naming a tunnel the site is not in",
      mutate: (p) => {
        p.tunnels[0].members[1].site = "vps2";
        p.sites.vps2 = vps2Site();
        p.services = [];
        home(p).egress[0].via = "wg-home";
      },
      expected: [
        "sites.home.egress[0].via: wg-home is neither an external device or provider of home nor a tunnel home is a member of; declare it under sites.home.external, sites.home.providers or tunnels",
      ],
    },
    {
      name: "egress.from",
      mutate: (p) => {
        home(p).egress[0].from = ["files", "nope"];
      },
      expected: [
        "sites.home.egress[0].from[1]: site home has no network named nope (known: lan, files)",
      ],
    },
    {
      name: "egress.exit",
      mutate: (p) => {
        home(p).egress.push({ name: "out", from: ["lan"], via: "wg-home", exit: "nowhere" });
      },
      expected: [
        "sites.home.egress[1].exit: say which member of wg-home the traffic exits through: set exit to one of vps",
      ],
    },
    {
      name: "egress through a three-member tunnel without exit",
      mutate: (p) => {
        threeMembers(p);
        home(p).egress.push({ name: "out", from: ["lan"], via: "wg-home" });
      },
      expected: [
        "sites.home.egress[1].via: say which member of wg-home the traffic exits through: set exit to one of vps, vps2",
      ],
    },
    {
      name: "networks[].interface",
      mutate: (p) => {
        home(p).networks[0].interface = "eth9";
      },
      expected: [
        "sites.home.networks[0].interface: unknown interface eth9; declare it under sites.home.interfaces (known: eth0, eth1, eth0.6, eth2, br0)",
      ],
    },
    {
      name: "VLAN parent",
      mutate: (p) => {
        home(p).interfaces[2].parent = "eth9";
      },
      expected: [
        `sites.home.interfaces[2].parent: unknown interface eth9; declare it under sites.home.interfaces (known: ${knownDevices})`,
      ],
    },
    {
      name: "bridge member",
      mutate: (p) => {
        home(p).interfaces[4].members = ["eth2", "eth9"];
      },
      expected: [
        `sites.home.interfaces[4].members[1]: unknown interface eth9; declare it under sites.home.interfaces (known: ${knownDevices})`,
      ],
    },
    {
      name: "wan",
      mutate: (p) => {
        home(p).wan = "eth9";
      },
      expected: ["sites.home.wan: unknown interface eth9; declare it under sites.home.interfaces"],
    },
    {
      name: "tunnel member site",
      mutate: (p) => {
        member(p, 1).site = "house";
        p.services = [];
      },
      expected: [
        "tunnels[0].members[1].site: unknown site house; declare it under sites (known: home, vps)",
      ],
    },
    {
      name: "service publishOn",
      mutate: (p) => {
        service(p, 0).publishOn = "cloud";
      },
      expected: ["services[0].publishOn: unknown site cloud; declare it under sites"],
    },
    {
      name: "advertise",
      mutate: (p) => {
        member(p, 1).advertise = ["lan", "nope"];
      },
      expected: ["tunnels[0].members[1].advertise[1]: site home has no network named nope"],
    },
  ]);
});

describe("duplicate declarations", () => {
  runTable([
    {
      name: "a device declared as interface and external device",
      mutate: (p) => {
        home(p).external.push({ name: "eth0" });
      },
      expected: [
        "sites.home.external[1].name: device eth0 is declared twice on site home; keep one",
      ],
    },
    {
      name: "a network name twice",
      mutate: (p) => {
        home(p).networks.push({ name: "lan", cidr: "192.168.2.0/24", interface: "eth0" });
      },
      expected: ["sites.home.networks[2].name: network lan is declared twice; rename one"],
    },
    {
      name: "a tunnel name twice",
      mutate: (p) => {
        const again = structuredClone(p.tunnels[0]);
        again.members[0].address = "10.98.0.1/24";
        again.members[0].publicKey = KEYS.vps2;
        again.members[1].address = "10.98.0.2/24";
        again.members[1].publicKey = `${KEYS.home.slice(0, 42)}0=`;
        p.tunnels.push(again);
      },
      expected: [
        "tunnels[1].name: tunnel wg-home is declared twice; rename one",
        "tunnels[1].members[0].site: device wg-home is declared twice on site vps; keep one",
        "tunnels[1].members[1].site: device wg-home is declared twice on site home; keep one",
      ],
    },
    {
      name: "a site twice in one tunnel",
      mutate: (p) => {
        p.tunnels[0].members.push({
          ...vps2Member(),
          site: "home",
        });
      },
      expected: [
        "tunnels[0].members[2].site: device wg-home is declared twice on site home; keep one",
        "tunnels[0].members[2].site: site home is a member of wg-home twice",
      ],
    },
  ]);
});

describe("tunnels", () => {
  runTable([
    {
      name: "a member's own interface name that the kernel refuses",
      mutate: (p) => {
        member(p, 1).interface = "wg/home";
      },
      expected: [
        `tunnels[0].members[1].interface: interface name "wg/home" contains '/', ':' or white space, which the kernel rejects`,
      ],
    },
    {
      name: "a member's own interface name taken by another device",
      mutate: (p) => {
        member(p, 1).interface = "tun-hma";
      },
      expected: [
        "tunnels[0].members[1].site: device tun-hma is declared twice on site home; keep one",
      ],
    },
    {
      name: "no member has an endpoint",
      mutate: (p) => {
        delete member(p, 0).endpoint;
      },
      expected: [
        "tunnels[0].members: no member has an endpoint, so no one can dial; give the member with a static address an endpoint",
      ],
    },
    {
      name: "a single member",
      mutate: (p) => {
        p.tunnels[0].members.pop();
      },
      expected: ["tunnels[0].members: a tunnel joins at least two sites"],
    },
    {
      name: "MTU below 1280",
      mutate: (p) => {
        p.tunnels[0].mtu = 1200;
      },
      expected: ["tunnels[0].mtu: WireGuard over IPv6 needs an MTU of at least 1280"],
    },
    {
      name: "an exit site without wan",
      mutate: (p) => {
        delete vps(p).wan;
        p.services = [];
        home(p).egress.push({ name: "out", from: ["lan"], via: "wg-home" });
      },
      expected: [
        "sites.home.egress[1].via: traffic leaves through vps, which has no wan interface; set sites.vps.wan",
      ],
    },
  ]);
});

describe("inline private keys", () => {
  const secret = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
  const mutate = (p: PolicyObject) => {
    member(p, 1).privateKey = secret;
  };
  const advice =
    "private keys never go in a policy: write it to a file (`netpol keygen --out keys/NAME.key`) and set privateKeyFile";

  it("is refused at the field, saying where the key belongs", () => {
    const p = validPolicy();
    mutate(p);
    const problems = problemsOf(p);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^tunnels\[0\]\.members\[1\]\.privateKey: /);
    expect(problems[0]?.endsWith(advice)).toBe(true);
  });

  it("is refused with exactly the advice, not called missing", () => {
    const p = validPolicy();
    mutate(p);
    expect(problemsOf(p)).toEqual([`tunnels[0].members[1].privateKey: ${advice}`]);
  });

  it("never repeats the key, in the message or anywhere in the error", () => {
    const p = validPolicy();
    mutate(p);
    let error: unknown;
    try {
      parsePolicy(toYaml(p), FILE);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NetpolError);
    const err = error as NetpolError;
    expect(err.diagnostics).toHaveLength(1);
    const everything = [err.message, String(err.stack), JSON.stringify(err.diagnostics)].join("\n");
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(secret.slice(0, 12));
  });
});

describe("services", () => {
  runTable([
    {
      name: "a target no tunnel reaches",
      mutate: (p) => {
        service(p, 0).target = "172.16.0.5:80";
      },
      expected: [
        "services[0].target: 172.16.0.5 is not in a network of any site joined to vps by a tunnel, so vps cannot reach it; declare the network on the target's site and join the sites with a tunnel",
      ],
    },
    {
      name: "a target in a network of the publishing site itself",
      mutate: (p) => {
        vps(p).networks = [{ name: "dmz", cidr: "172.16.0.0/24", interface: "eth0" }];
        service(p, 0).target = "172.16.0.5:80";
      },
      expected: [
        "services[0].target: 172.16.0.5 is not in a network of any site joined to vps by a tunnel, so vps cannot reach it; declare the network on the target's site and join the sites with a tunnel",
      ],
    },
    {
      name: "a target given by host name",
      mutate: (p) => {
        service(p, 0).target = "web.home.arpa:80";
      },
      expected: ["services[0].target: the target must be an IP address, not a host name"],
    },
    {
      // SNATed: the VPS would need an IPv6 address of its own on the tunnel.
      name: "an IPv6 target over an IPv4 tunnel",
      mutate: (p) => {
        home(p).networks.push({ name: "lan6", cidr: "2001:db8:1::/64", interface: "eth0" });
        service(p, 2).target = "[2001:db8:1::22]:22";
      },
      expected: [
        "services[2].target: the target is IPv6 but vps's address on wg-home is IPv4, so vps has no source address to reach it; use an IPv4 target",
      ],
    },
    {
      name: "published tcp and udp ports on a site without wan",
      mutate: (p) => {
        delete vps(p).wan;
      },
      expected: [
        "services[1].publishOn: site vps publishes a udp port but has no wan interface; set sites.vps.wan",
        "services[2].publishOn: site vps publishes a tcp port but has no wan interface; set sites.vps.wan",
      ],
    },
    {
      name: "the same udp port twice",
      mutate: (p) => {
        p.services.push({
          name: "dns2",
          kind: "udp",
          publishOn: "vps",
          port: 53,
          target: "192.168.1.54:53",
        });
      },
      expected: ["services[3].port: service dns already listens there on vps; pick another port"],
    },
    {
      name: "the same hostname twice",
      mutate: (p) => {
        p.services.push({
          name: "blog2",
          kind: "http",
          publishOn: "vps",
          hostname: "blog.example.org",
          target: "192.168.1.21:80",
        });
      },
      expected: [
        "services[3].hostname: service blog already listens there on vps; pick another hostname",
      ],
    },
    {
      name: "a host name that is not one",
      mutate: (p) => {
        service(p, 0).hostname = "blog_example";
      },
      expected: ["services[0].hostname: not a DNS host name"],
    },
    {
      name: "an unknown kind",
      mutate: (p) => {
        service(p, 2).kind = "sctp";
      },
      expected: ["services[2].kind: kind must be http, tcp or udp"],
    },
  ]);

  runTable([
    {
      name: "two targets of one family",
      mutate: (p) => {
        service(p, 2).target = ["192.168.1.22:22", "192.168.1.23:22"];
      },
      expected: [
        "services[2].target: list at most one IPv4 and one IPv6 target: clients of each family reach the target of theirs",
      ],
    },
    {
      name: "a host name among the targets",
      mutate: (p) => {
        home(p).networks.push({ name: "lan6", cidr: "2001:db8:1::/64", interface: "eth0" });
        service(p, 1).target = ["192.168.1.53:53", "ns.home.arpa:53"];
      },
      expected: ["services[1].target[1]: the target must be an IP address, not a host name"],
    },
    {
      name: "a target that is not host:port, in a list",
      mutate: (p) => {
        service(p, 2).target = ["192.168.1.22:22", 22];
      },
      expected: [
        "services[2].target[1]: a target is a string host:port, e.g. 192.168.1.22:22 or [2001:db8::22]:22",
      ],
    },
    {
      name: "an empty list of targets",
      mutate: (p) => {
        service(p, 2).target = [];
      },
      expected: ["services[2].target: name at least one target, e.g. 192.168.1.22:22"],
    },
  ]);

  it("accepts one port for IPv4 and IPv6 clients, by one service with a target of each family or by two", () => {
    const p = validPolicy();
    home(p).networks.push({ name: "lan6", cidr: "2001:db8:1::/64", interface: "eth0" });
    service(p, 1).target = ["192.168.1.53:53", "[2001:db8:1::53]:53"];
    p.services.push({
      name: "ssh6",
      kind: "tcp",
      publishOn: "vps",
      port: 2222,
      target: "[2001:db8:1::22]:22",
      clientAddress: "preserve",
    });
    expect(() => load(toYaml(p))).not.toThrow();
  });

  it("accepts the same port number for tcp and udp", () => {
    const p = validPolicy();
    p.services.push({
      name: "dns-tcp",
      kind: "tcp",
      publishOn: "vps",
      port: 53,
      target: "192.168.1.53:53",
    });
    expect(() => load(toYaml(p))).not.toThrow();
  });

  it("refuses a hostname that differs from another only in case", () => {
    const p = validPolicy();
    p.services.push({
      name: "blog2",
      kind: "http",
      publishOn: "vps",
      hostname: "BLOG.example.org",
      target: "192.168.1.21:80",
    });
    expect(problemsOf(p)).toEqual([
      "services[3].hostname: service blog already listens there on vps; pick another hostname",
    ]);
  });
});

describe("document structure", () => {
  runTable([
    {
      name: "unknown field in a site",
      mutate: (p) => {
        home(p).netwrks = [];
      },
      expected: [
        'sites.home.netwrks: unknown field "netwrks"; check its spelling against the policy reference (docs/policy.md)',
      ],
    },
    {
      name: "unknown top-level field",
      mutate: (p) => {
        p.service = [];
      },
      expected: [
        'service: unknown field "service"; check its spelling against the policy reference (docs/policy.md)',
      ],
    },
    {
      name: "unknown field in an egress",
      mutate: (p) => {
        home(p).egress[0].masq = true;
      },
      expected: [
        'sites.home.egress[0].masq: unknown field "masq"; check its spelling against the policy reference (docs/policy.md)',
      ],
    },
    {
      name: "two unknown fields in a member",
      mutate: (p) => {
        member(p, 0).endpiont = "203.0.113.10:51820";
        member(p, 0).keepAlive = 25;
      },
      expected: [
        'tunnels[0].members[0].endpiont: unknown field "endpiont"; check its spelling against the policy reference (docs/policy.md)',
        'tunnels[0].members[0].keepAlive: unknown field "keepAlive"; check its spelling against the policy reference (docs/policy.md)',
      ],
    },
    {
      name: "missing version",
      mutate: (p) => {
        delete p.version;
      },
      expected: ["version: this netpol reads policy version 1; add `version: 1`"],
    },
    {
      name: "version 2",
      mutate: (p) => {
        p.version = 2;
      },
      expected: ["version: this netpol reads policy version 1; add `version: 1`"],
    },
    {
      name: "no sites",
      mutate: (p) => {
        p.sites = {};
        p.tunnels = [];
        p.services = [];
      },
      expected: ["sites: declare at least one site"],
    },
    {
      name: "unknown interface kind",
      mutate: (p) => {
        home(p).interfaces[0].kind = "wifi";
      },
      expected: ["sites.home.interfaces[0].kind: kind must be physical, vlan or bridge"],
    },
    ...[0, 4095].map(
      (id): Case => ({
        name: `VLAN id ${id}`,
        mutate: (p) => {
          home(p).interfaces[2].vlanId = id;
        },
        expected: ["sites.home.interfaces[2].vlanId: VLAN ids run 1..4094"],
      }),
    ),
    {
      name: "egress from no network",
      mutate: (p) => {
        home(p).egress[0].from = [];
      },
      expected: ["sites.home.egress[0].from: name at least one network of this site"],
    },
    {
      name: "route protocol of the kernel",
      mutate: (p) => {
        p.settings = { routeProtocol: 4 };
      },
      expected: ["settings.routeProtocol: protocols 0..4 belong to the kernel"],
    },
    {
      name: "route protocol of a DHCP client",
      mutate: (p) => {
        p.settings = { routeProtocol: 16 };
      },
      expected: [
        "settings.routeProtocol: protocol 16 is dhcp's: netpol would take that daemon's routes for its own and delete them; pick an unused number such as 77",
      ],
    },
    {
      name: "route protocol of bird",
      mutate: (p) => {
        p.settings = { routeProtocol: 12 };
      },
      expected: [
        "settings.routeProtocol: protocol 12 is bird's: netpol would take that daemon's routes for its own and delete them; pick an unused number such as 77",
      ],
    },
    {
      name: "mark mask over Tailscale's bits",
      mutate: (p) => {
        p.settings = { markMask: 0xff0000 };
      },
      expected: [
        "settings.markMask: markMask 0xff0000 shares bits 0xff0000 with foreignMarks[0] (0xff0000), which another tool uses; pick a mask clear of them",
      ],
    },
    {
      name: "mark mask over a mark the policy says another tool uses",
      mutate: (p) => {
        p.settings = { markMask: 0x3000, foreignMarks: [0x1000] };
      },
      expected: [
        "settings.markMask: markMask 0x3000 shares bits 0x1000 with foreignMarks[0] (0x1000), which another tool uses; pick a mask clear of them",
      ],
    },
    {
      name: "mark mask with a hole",
      mutate: (p) => {
        p.settings = { markMask: 0x05000000 };
      },
      expected: ["settings.markMask: a mark mask is one run of set bits, like 0xff000000"],
    },
    {
      name: "mark mask too small for the site's marks",
      mutate: (p) => {
        // A flag and one slot: home needs one for the egress and one for DNS replies.
        p.settings = { markMask: 0x03000000 };
      },
      expected: [
        "settings.markMask: site home needs 2 marks (reply paths, egress tables and chain paths), but markMask 0x3000000 holds 1; widen it by a bit or more",
      ],
    },
  ]);

  it("refuses a document that is not a mapping", () => {
    expect(problemsOf("- version: 1\n")).toEqual([
      "a policy is a mapping with version, sites, tunnels and services",
    ]);
    expect(problemsOf("")).toEqual([
      "a policy is a mapping with version, sites, tunnels and services",
    ]);
  });

  it("says how to spell a site name", () => {
    const p = validPolicy();
    p.sites.Home = p.sites.home;
    delete p.sites.home;
    p.tunnels = [];
    p.services = [];
    const [problem] = problemsOf(p);
    expect(problem).toMatch(/^sites\.Home: .*lower-case letters/);
  });
});

describe("YAML errors", () => {
  it("places a syntax error on its line, with the parser's message", () => {
    const text = "version: 1\nsites:\n  home:\n    wan: eth1\n   interfaces: []\n";
    const [d, ...rest] = diagnosticsOf(text);
    expect(rest).toEqual([]);
    expect(d?.file).toBe(FILE);
    expect(d?.path).toEqual([]);
    expect(d?.message).toMatch(/All mapping items must start at the same column$/);
    expect(d?.line).toBe(5);
  });

  it("places a duplicate key on the second key", () => {
    const text = "version: 1\nsites:\n  home:\n    wan: eth1\n    wan: eth0\n";
    const [d, ...rest] = diagnosticsOf(text);
    expect(rest).toEqual([]);
    expect(d?.message).toMatch(/Map keys must be unique$/);
    expect([d?.line, d?.col]).toEqual([5, 5]);
  });

  it("places a duplicate top-level key on its line", () => {
    const text = "version: 1\nsites:\n  home: {}\nversion: 1\n";
    const [d] = diagnosticsOf(text);
    expect(d?.message).toMatch(/Map keys must be unique$/);
    expect([d?.line, d?.col]).toEqual([4, 1]);
  });

  it("reports every duplicate key at once", () => {
    const text =
      "version: 1\nsites:\n  home:\n    wan: eth1\n    wan: eth0\n  vps: {}\n  vps: {}\n";
    expect(diagnosticsOf(text).map((d) => d.line)).toEqual([5, 7]);
  });
});

/** 1-based line and column of the first occurrence of `needle` in `text`, plus `skip` columns. */
function position(text: string, needle: string, skip = 0): [number, number] {
  const at = text.indexOf(needle) + skip;
  if (at < skip) throw new Error(`${needle} is not in the text`);
  const before = text.slice(0, at).split("\n");
  return [before.length, (before.at(-1)?.length ?? 0) + 1];
}

describe("several mistakes at once", () => {
  it("reports every structural problem, each at its own line and column", () => {
    const p = validPolicy();
    home(p).networks[1].cidr = "192.168.6.1/24";
    member(p, 0).publicKey = "not-a-key";
    service(p, 1).port = 0;
    home(p).egress[0].table = 254;
    vps(p).interfces = [];
    const text = toYaml(p);
    const found = diagnosticsOf(text).map((d) => ({
      where: [d.line, d.col],
      path: formatPath(d.path),
      file: d.file,
    }));
    expect(found).toEqual([
      { where: position(text, "192.168.6.1/24"), path: "sites.home.networks[1].cidr", file: FILE },
      { where: position(text, "table: 254", 7), path: "sites.home.egress[0].table", file: FILE },
      { where: position(text, "interfces: ", 11), path: "sites.vps.interfces", file: FILE },
      { where: position(text, "not-a-key"), path: "tunnels[0].members[0].publicKey", file: FILE },
      { where: position(text, "port: 0", 6), path: "services[1].port", file: FILE },
    ]);
  });

  it("reports every cross-reference problem at once, in line order", () => {
    const p = validPolicy();
    home(p).egress[0].from = ["nope"];
    home(p).networks.push({ name: "more", cidr: "192.168.1.128/25", interface: "eth9" });
    home(p).egress.push(lanEgress({ table: 3, priority: 201 }));
    service(p, 0).publishOn = "cloud";
    delete member(p, 0).endpoint;
    const text = toYaml(p);
    const diagnostics = diagnosticsOf(text);
    expect(diagnostics.map((d) => `${formatPath(d.path)}: ${d.message}`)).toEqual([
      "sites.home.networks[2].cidr: 192.168.1.128/25 overlaps network lan (192.168.1.0/24) on site home; networks of one site must not overlap",
      "sites.home.networks[2].interface: unknown interface eth9; declare it under sites.home.interfaces (known: eth0, eth1, eth0.6, eth2, br0)",
      "sites.home.egress[0].from[0]: site home has no network named nope (known: lan, files, more)",
      "sites.home.egress[1].table: table 3 is already used by egress vpn; pick another",
      "sites.home.egress[1].priority: priorities 201 and 202 are needed here, but egress vpn already uses one; pick another",
      "tunnels[0].members: no member has an endpoint, so no one can dial; give the member with a static address an endpoint",
      "services[0].publishOn: unknown site cloud; declare it under sites",
    ]);
    const lines = diagnostics.map((d) => d.line);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
    expect(diagnostics[0]?.line).toBe(position(text, "192.168.1.128/25")[0]);
    expect(diagnostics.at(-1)?.line).toBe(position(text, "publishOn: cloud")[0]);
  });

  it("points line:col at the offending value in hand-written YAML", () => {
    const text = [
      "version: 1",
      "sites:",
      "  home:",
      "    interfaces:",
      "      - { name: eth0, kind: physical }",
      "    networks:",
      "      - name: lan",
      "        cidr: 192.168.1.0/24",
      "        interface: eth0",
      "      - name: files",
      "        cidr: 192.168.6.1/24",
      "        interface: eth0",
      "",
    ].join("\n");
    const [d, ...rest] = diagnosticsOf(text);
    expect(rest).toEqual([]);
    expect(d).toEqual({
      file: FILE,
      line: 11,
      col: 15,
      path: ["sites", "home", "networks", 1, "cidr"],
      message: "192.168.6.1/24 has host bits set; did you mean 192.168.6.0/24?",
    });
  });

  it("places a missing field at its parent", () => {
    const text = [
      "version: 1",
      "sites:",
      "  home: {}",
      "  vps: {}",
      "tunnels:",
      "  - name: wg0",
      "    members:",
      "      - site: home",
      "        address: 10.0.0.1/24",
      "        privateKeyFile: k",
      `        publicKey: ${KEYS.home}`,
      "      - site: vps",
      "        address: 10.0.0.2/24",
      "        privateKeyFile: k",
      "        endpoint: 203.0.113.10:51820",
      "",
    ].join("\n");
    const [d, ...rest] = diagnosticsOf(text);
    expect(rest).toEqual([]);
    expect(formatPath(d?.path ?? [])).toBe("tunnels[0].members[1].publicKey");
    expect(d?.message).toBe("missing: expected string, received undefined");
    expect([d?.line, d?.col]).toEqual([12, 9]);
  });
});

describe("ids chosen by netpol", () => {
  const twoAutoEgresses = (settings: PolicyObject) => {
    const p = validPolicy();
    p.settings = settings;
    delete home(p).egress[0].table;
    delete home(p).egress[0].priority;
    home(p).egress.push(lanEgress({}));
    return p;
  };
  const egressOf = (p: PolicyObject) => {
    const site = load(toYaml(p)).intent.sites.find((s) => s.name === "home");
    return (site?.egress ?? []).map((e) => [e.table, e.priority]);
  };

  it("skips ids the policy names explicitly", () => {
    const p = twoAutoEgresses({});
    home(p).egress[0].table = 100;
    home(p).egress[0].priority = 1001;
    // vpn holds table 100 and priorities 1001-1002; lan-out takes the next free ones.
    expect(egressOf(p)).toEqual([
      [100, 1001],
      [101, 1003],
    ]);
  });

  it("counts from settings.firstTable and settings.firstPriority", () => {
    expect(egressOf(twoAutoEgresses({ firstTable: 10, firstPriority: 500 }))).toEqual([
      [10, 500],
      [11, 502],
    ]);
  });

  /** The policy is refused, and one of its problems is `message`. */
  const refusedWith = (p: PolicyObject, message: string) => {
    let problems: string[] = [];
    try {
      egressOf(p);
    } catch (e) {
      if (!(e instanceof NetpolError)) throw e;
      problems = e.diagnostics.map((d) => d.message);
    }
    expect(problems).toContain(message);
  };

  it("never chooses a kernel table id", () => {
    // 252 is free; 253 (default), 254 (main) and 255 (local) are the kernel's: the next is 256.
    expect(egressOf(twoAutoEgresses({ firstTable: 252 }))).toEqual([
      [252, 1000],
      [256, 1002],
    ]);
  });

  it("never chooses a priority at or past the kernel's main rule", () => {
    refusedWith(
      twoAutoEgresses({ firstPriority: 32764 }),
      "no free id is left from here up to the kernel's own; start lower",
    );
  });

  it("refuses an explicit priority whose second rule lands on 32766", () => {
    const p = validPolicy();
    home(p).egress[0].priority = 32765;
    refusedWith(
      p,
      "priorities 32765 and 32766 are needed here, but the kernel already uses one; pick another",
    );
  });
});

describe("egress chains", () => {
  const chain = (p: PolicyObject, via: unknown, health?: PolicyObject) => {
    const e = home(p).egress[0];
    e.via = via;
    if (health) e.health = health;
  };
  runTable([
    {
      name: "a path named twice",
      mutate: (p) => chain(p, ["wg-home", "wg-home"]),
      expected: ["sites.home.egress[0].via[1]: wg-home is named twice in this chain; keep one"],
    },
    {
      name: "an unknown path in a chain, located at its index",
      mutate: (p) => chain(p, ["wg-home", "tun9"]),
      expected: [
        "sites.home.egress[0].via[1]: tun9 is neither an external device or provider of home nor a tunnel home is a member of; declare it under sites.home.external, sites.home.providers or tunnels",
      ],
    },
    {
      name: "an external path with no peer and no probe target",
      mutate: (p) => chain(p, ["wg-home", "tun-hma"]),
      expected: [
        "sites.home.egress[0].via[1]: netpol knows no peer of tun-hma to probe through it: set its gateway under sites.home.external (a provider's dns), or name a probe target under health.targets",
      ],
    },
    {
      name: "an empty chain",
      mutate: (p) => chain(p, []),
      expected: ["sites.home.egress[0].via: name at least one path"],
    },
    {
      name: "probes faster than five a second",
      mutate: (p) => chain(p, ["wg-home", "tun-hma"], { targets: ["192.0.2.1"], interval: 0.1 }),
      expected: ["sites.home.egress[0].health.interval: probe at most 5 times a second"],
    },
  ]);

  it("accepts a chain whose paths each have a probe target", () => {
    const p = validPolicy();
    chain(p, ["tun-hma", "wg-home"], { targets: ["192.0.2.1"] });
    const egress = load(toYaml(p)).intent.sites.find((s) => s.name === "home")?.egress[0];
    expect(egress?.paths.map((v) => v.device)).toEqual(["tun-hma", "wg-home"]);
    expect(egress?.health).toMatchObject({ interval: 1, downAfter: 2, upAfter: 3, hold: 30 });
  });
});

describe("ports another listener of the site already holds", () => {
  runTable([
    {
      name: "a tcp port on the Caddy's HTTPS port (the default proxy of a site publishing HTTP)",
      mutate: (p) => {
        service(p, 2).port = 443;
      },
      expected: [
        "services[2].port: port 443/tcp on vps is vps's Caddy (proxy.httpsPort); publishing it would take that port from it. Pick another port",
      ],
    },
    {
      name: "a tcp port on the Caddy's HTTP port of a declared proxy",
      mutate: (p) => {
        vps(p).proxy = { tls: "off", httpPort: 8080 };
        service(p, 2).port = 8080;
      },
      expected: [
        "services[2].port: port 8080/tcp on vps is vps's Caddy (proxy.httpPort); publishing it would take that port from it. Pick another port",
      ],
    },
    {
      name: "a udp port on the Caddy's HTTPS port, where it serves HTTP/3",
      mutate: (p) => {
        service(p, 1).port = 443;
      },
      expected: [
        "services[1].port: port 443/udp on vps is vps's Caddy (proxy.httpsPort, HTTP/3); publishing it would take that port from it. Pick another port",
      ],
    },
    {
      name: "a udp port on the tunnel's listen port (from its endpoint)",
      mutate: (p) => {
        service(p, 1).port = 51820;
      },
      expected: [
        "services[1].port: port 51820/udp on vps is tunnel wg-home (wg-home's WireGuard listen port); publishing it would take that port from it. Pick another port",
      ],
    },
    {
      name: "a udp service asking for the PROXY protocol",
      mutate: (p) => {
        service(p, 1).proxyProtocol = "v2";
      },
      expected: [
        "services[1].proxyProtocol: the PROXY protocol goes ahead of a TCP stream: a udp service cannot carry it; remove proxyProtocol",
      ],
    },
    {
      name: "a tcp service keeping the client's address both by routing and by PROXY header",
      mutate: (p) => {
        service(p, 2).proxyProtocol = "v2";
        service(p, 2).clientAddress = "preserve";
      },
      expected: [
        "services[2].clientAddress: clientAddress: preserve keeps the client's address by routing, proxyProtocol sends it in a header from netpol's relay: keep one of them",
      ],
    },
    {
      name: "a proxyProtocol that is no version of it",
      mutate: (p) => {
        service(p, 0).proxyProtocol = "v3";
      },
      expected: ["services[0].proxyProtocol: proxyProtocol is v1 or v2"],
    },
    {
      name: "a tcp port on the relay's loopback port, where an HTTP service asks for the PROXY protocol",
      mutate: (p) => {
        service(p, 0).proxyProtocol = "v1";
        service(p, 2).port = 9479;
      },
      expected: [
        "services[2].port: port 9479/tcp on vps is vps's PROXY-protocol relay (proxy.relayPort); publishing it would take that port from it. Pick another port",
      ],
    },
    {
      name: "the relay's port on the Caddy's HTTP port",
      mutate: (p) => {
        service(p, 0).proxyProtocol = "v2";
        vps(p).proxy = { relayPort: 80 };
      },
      expected: [
        "sites.vps.proxy.relayPort: port 80/tcp on vps is already vps's Caddy (proxy.httpPort); give the relay another relayPort",
      ],
    },
    {
      name: "two tunnels of one site on one listen port",
      mutate: (p) => {
        p.tunnels.push({
          name: "wg-two",
          members: [
            { ...member(p, 0), address: "10.98.0.1/24", publicKey: KEYS.vps2 },
            {
              ...member(p, 1),
              address: "10.98.0.2/24",
              publicKey: "bBoaT5t3SPNzmXqHnXmYrZnrweV88qFWhQFPT7sEuzk=",
            },
          ],
        });
      },
      expected: [
        "tunnels[1].members[0].listenPort: port 51820/udp on vps is already tunnel wg-home (wg-home's WireGuard listen port); give this member another listenPort",
      ],
    },
  ]);

  it("leaves a tcp port on 443 to the live check where the site runs no proxy of netpol's", () => {
    const p = validPolicy();
    p.services = [service(p, 2)];
    service(p, 0).port = 443;
    expect(() => load(toYaml(p))).not.toThrow();
  });
});
