import { writeFile } from "node:fs/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { blackHole, type Lab } from "../../src/lab/lab.js";
import { withFailover } from "../../src/lab/policy.js";
import { addCounter, counterPackets, eventually, httpGet } from "../../src/lab/probe.js";
import { type LabNames, WHOAMI_PORT } from "../../src/lab/topology.js";
import { dualStack, V6 } from "../support/dual-stack.js";
import { homeArgs, labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";
import { startWatch } from "../support/watcher.js";

/** Scenario D with VLAN 6 dual-stack: its IPv6 network leaves by the same chain. */
const withV6Failover = (text: string, names: LabNames) =>
  withFailover(text, names)
    .replace(
      "      - { name: files,",
      "      - { name: files6, cidr: 2001:db8:6::/64, interface: vl6, address: 2001:db8:6::1 }\n      - { name: files,",
    )
    .replace("from: [files]", "from: [files, files6]");

/**
 * netpol's tunnel members have one address each (IPv4 here), so the VPS tunnel carries IPv6 only
 * once given an address of that family at each end, by hand as dual-stack.ts does for the
 * provider: the home masquerades VLAN 6's IPv6 onto it and the VPS NATs it out its uplink.
 */
async function vpsTunnelCarriesV6(lab: Lab): Promise<void> {
  const home = lab.run("home");
  const vps = lab.run("vps");
  await home.run("ip", ["-6", "address", "add", "fd99::2/64", "dev", lab.names.wgHome, "nodad"]);
  await vps.run("ip", ["-6", "address", "add", "fd99::1/64", "dev", lab.names.wgVps, "nodad"]);
  const dump = (await vps.run("wg", ["show", lab.names.wgVps, "allowed-ips"])).stdout.trim();
  const [peer, ...allowed] = dump.split(/\s+/);
  await vps.run("wg", [
    "set",
    lab.names.wgVps,
    "peer",
    peer ?? "",
    "allowed-ips",
    [...allowed, "fd99::2/128"].join(","),
  ]);
  await vps.run("sysctl", ["-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
  await vps.run("nft", ["-f", "-"], {
    input:
      'table ip6 labnat6 {\n chain post { type nat hook postrouting priority srcnat; oifname "wan" masquerade; }\n}\n',
  });
}

// The failover and fail-closed checks for IPv6, on the dual-stack lab (test/support/dual-stack.ts:
// the ISP routes VLAN 6's IPv6 prefix back to the home, so a leak would work): VLAN 6's IPv6
// traffic leaves by the provider, moves to the VPS tunnel when the provider is black-holed,
// finds no route when both are dead, and never crosses the home's ISP link.
describeLive("scenario D for IPv6: a dual-stack VLAN fails over and fails closed", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  let watch: ReturnType<typeof startWatch>;
  const www6 = `http://[${V6.www}]:${WHOAMI_PORT}/`;
  const vl6 = () => lab.names.ns("vl6");
  const leaked6 = () => counterPackets(lab.names.ns("isp"), "vl6leak6");
  const switchTo = (to: string | null, from: number) =>
    watch.waitFor((e) => e.event === "switch" && e.to === to, 20_000, from);

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    await dualStack(lab);
    const edit = (t: string) => withV6Failover(t, lab.names);
    await applySite(siteTarget(lab, "vps"), labInput(lab, "vps", edit), "test");
    await writeFile(`${lab.dir}/policy.yaml`, labInput(lab, "home", edit).text, { mode: 0o600 });
    await addCounter(lab.names.ns("isp"), "vl6leak6", `iifname "home" ip6 saddr 2001:db8:6::/64`);
    watch = startWatch([...homeArgs(lab), "--interval", "0"]);
    for (const path of [lab.names.hma, lab.names.wgHome]) {
      await watch.waitFor((e) => e.event === "path" && e.path === path && e.state === "up");
    }
    await vpsTunnelCarriesV6(lab);
  }, 90_000);
  afterAll(async () => {
    await watch?.stop();
    await down?.();
  });

  it("sends VLAN 6's IPv6 by the provider, then by the VPS once the provider is black-holed", async () => {
    const first = await eventually(
      () => httpGet(vl6(), www6),
      (x) => x.ok,
    );
    expect(first).toEqual({ ok: true, text: V6.vpnExit });
    const from = watch.events.length;
    await blackHole(lab, "provider", true);
    try {
      await switchTo(lab.names.wgHome, from);
      const table = await lab.run("home").run("ip", ["-6", "route", "show", "table", "3"]);
      expect(table.stdout).toMatch(new RegExp(`^default dev ${lab.names.wgHome} `, "m"));
      const moved = await eventually(
        () => httpGet(vl6(), www6),
        (x) => x.ok,
      );
      expect(moved).toEqual({ ok: true, text: V6.vps });
      expect(await leaked6()).toBe(0);
    } finally {
      await blackHole(lab, "provider", false);
    }
    await switchTo(lab.names.hma, watch.events.length);
  }, 60_000);

  it("finds no IPv6 route with both paths dead, and leaks nothing to the ISP", async () => {
    const from = watch.events.length;
    await blackHole(lab, "provider", true);
    await blackHole(lab, "vps", true);
    try {
      await switchTo(null, from);
      const table = await lab.run("home").run("ip", ["-6", "route", "show", "table", "3"]);
      // The slot is unreachable (the backstop below it always is): no path's route is left.
      expect(table.stdout).not.toMatch(/^default dev /m);
      // Refused at once by the route, not lost in a dead tunnel.
      const r = await httpGet(vl6(), www6, 1500);
      expect(r).toMatchObject({ ok: false, text: expect.stringMatching(/UNREACH/) });
      expect(await leaked6()).toBe(0);
    } finally {
      await blackHole(lab, "provider", false);
      await blackHole(lab, "vps", false);
    }
    await watch.waitFor((e) => e.event === "switch" && e.to === lab.names.hma, 30_000, from);
    expect(await leaked6()).toBe(0);
  }, 60_000);
});
