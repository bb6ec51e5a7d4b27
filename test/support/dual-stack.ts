import type { Lab } from "../../src/lab/lab.js";
import type { Role } from "../../src/lab/topology.js";

/**
 * The lab made dual-stack: VLAN 6 hosts have global IPv6 addresses (as SLAAC or DHCPv6 would
 * give them), the ISP routes the home's prefixes back to it, the VPS and www have IPv6 on
 * their uplinks, and the provider tunnel carries IPv6 too.
 */
export const V6 = {
  www: "2001:db8:2::80",
  vpnExit: "2001:db8:113::2",
  vps: "2001:db8:170::70",
  lan1Host: "2001:db8:1::10",
  vl6Host: "2001:db8:6::10",
} as const;
/** Per namespace: addresses (device, cidr) and a default route (via, device). */
const PLAN: Partial<Record<Role, { addresses: [string, string][]; via?: [string, string] }>> = {
  isp: {
    addresses: [
      ["home", "2001:db8:100::1/64"],
      ["vpn", "2001:db8:113::1/64"],
      ["vps", "2001:db8:170::1/64"],
      ["www", "2001:db8:2::1/64"],
    ],
  },
  home: { addresses: [["wan", "2001:db8:100::2/64"]], via: ["2001:db8:100::1", "wan"] },
  vpn: { addresses: [["wan", `${V6.vpnExit}/64`]], via: ["2001:db8:113::1", "wan"] },
  vps: { addresses: [["wan", `${V6.vps}/64`]], via: ["2001:db8:170::1", "wan"] },
  www: { addresses: [["eth0", `${V6.www}/64`]], via: ["2001:db8:2::1", "eth0"] },
  lan1: { addresses: [["eth0", `${V6.lan1Host}/64`]], via: ["2001:db8:1::1", "eth0"] },
  vl6: { addresses: [["eth0", `${V6.vl6Host}/64`]], via: ["2001:db8:6::1", "eth0"] },
};

export async function dualStack(lab: Lab): Promise<void> {
  for (const [role, plan] of Object.entries(PLAN) as [Role, NonNullable<(typeof PLAN)[Role]>][]) {
    const lines = plan.addresses.map(([dev, cidr]) => `address add ${cidr} dev ${dev} nodad`);
    // onlink: the VLAN's gateway address appears only once netpol adds it.
    if (plan.via) lines.push(`route add default via ${plan.via[0]} dev ${plan.via[1]} onlink`);
    await lab.run(role).run("ip", ["-6", "-batch", "-"], { input: `${lines.join("\n")}\n` });
  }
  for (const role of ["isp", "vpn"] as const)
    await lab.run(role).run("sysctl", ["-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
  // The ISP delegates the home's prefixes to it; the provider NATs its customers.
  await lab.run("isp").run("ip", ["-6", "-batch", "-"], {
    input:
      "route add 2001:db8:1::/64 via 2001:db8:100::2\nroute add 2001:db8:6::/64 via 2001:db8:100::2\n",
  });
  await lab.run("vpn").run("nft", ["-f", "-"], {
    input:
      'table ip6 labnat6 {\n chain post { type nat hook postrouting priority srcnat; oifname "wan" masquerade; }\n}\n',
  });
  // The provider tunnel carries IPv6 too: an address at each end, and AllowedIPs for it.
  const tunnel = async (role: "home" | "vpn", dev: string, address: string, allowed: string) => {
    const r = lab.run(role);
    await r.run("ip", ["-6", "address", "add", address, "dev", dev, "nodad"]);
    const peer = (await r.run("wg", ["show", dev, "peers"])).stdout.trim();
    await r.run("wg", ["set", dev, "peer", peer, "allowed-ips", allowed]);
  };
  await tunnel("home", lab.names.hma, "fd66::2/64", "0.0.0.0/0,::/0");
  await tunnel(
    "vpn",
    lab.names.hmaFar,
    "fd66::1/64",
    "10.66.0.2/32,192.168.6.0/24,fd66::2/128,2001:db8:6::/64",
  );
}
