import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import type { Lab } from "../../src/lab/lab.js";
import { addCounter, counterPackets, eventually, httpGet } from "../../src/lab/probe.js";
import { ADDR, WHOAMI_PORT } from "../../src/lab/topology.js";
import { labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";

/**
 * Another tool on home (Docker, Tailscale, a firewall manager) sets, ORs in and tests mark
 * bits of its own on the same packets, before and after netpol's chains, on packet and
 * connection marks, and routes by `ip rule fwmark 0x80000/0xff0000 lookup 52` as Tailscale
 * does. Both must keep working: netpol writes and reads only its own bits.
 */
const FOREIGN = `table inet foreign {
  counter kept_meta {}
  counter kept_ct {}
  counter kept_reply_ct {}
  chain before {
    type filter hook prerouting priority -160; policy accept;
    meta mark set 0x00040000
    meta mark set meta mark | 0x00004000
    ct mark set ct mark | 0x00008000
  }
  chain after {
    type filter hook prerouting priority -140; policy accept;
    ip saddr ${ADDR.lan1Host} ip daddr 192.0.2.0/24 meta mark set meta mark & 0xff00ffff | 0x00080000
    ct mark set ct mark | 0x00000100
  }
  chain check {
    type filter hook forward priority 10; policy accept;
    ip saddr 192.168.6.0/24 meta mark & 0x00004000 == 0x00004000 counter name kept_meta
    ip saddr 192.168.6.0/24 ct mark & 0x00008100 == 0x00008100 counter name kept_ct
    ip saddr ${ADDR.lan1Host} ip daddr ${ADDR.www} tcp sport ${WHOAMI_PORT} ct mark & 0x00008100 == 0x00008100 counter name kept_reply_ct
  }
}
`;

/** www's second address, reachable from home only through the other tool's table. */
const WWW2 = "192.0.2.81";

const foreignCounter = (ns: string, name: string) => counterPackets(ns, name, "foreign");

describeLive("next to another tool's marks and mark rules", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  let home: string;
  const www = `http://${ADDR.www}:${WHOAMI_PORT}/`;

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    home = lab.names.ns("home");
    await execa("ip", ["netns", "exec", home, "nft", "-f", "-"], { input: FOREIGN });
    // The other tool's routing: marked packets use its table 52, the only way to www's second
    // address (main blackholes it), so lan1 gets there only while the tool's mark survives.
    await execa("ip", ["-n", lab.names.ns("www"), "address", "add", `${WWW2}/24`, "dev", "eth0"]);
    const ip = (...args: string[]) => execa("ip", ["-n", home, ...args]);
    await ip("rule", "add", "priority", "5270", "fwmark", "0x80000/0xff0000", "lookup", "52");
    await ip("route", "add", "table", "52", `${WWW2}/32`, "via", "198.51.100.1", "dev", "wan");
    await ip("route", "add", "blackhole", `${WWW2}/32`);
    await applySite(siteTarget(lab, "vps"), labInput(lab, "vps"), "test");
    await applySite(siteTarget(lab, "home"), labInput(lab, "home"), "test");
    // Anything from home's private networks reaching the ISP unmasqueraded is a leak.
    await addCounter(lab.names.ns("isp"), "leak", `iifname "home" ip saddr 192.168.0.0/16`);
  });
  afterAll(async () => {
    await down?.();
  });

  it("sends VLAN 6 through the provider, and the other tool's bits survive netpol's chains", async () => {
    const r = await eventually(
      () => httpGet(lab.names.ns("vl6"), www),
      (x) => x.ok,
    );
    expect(r).toEqual({ ok: true, text: ADDR.vpnExit });
    expect(await foreignCounter(home, "kept_meta")).toBeGreaterThan(0);
    expect(await foreignCounter(home, "kept_ct")).toBeGreaterThan(0);
  });

  it("keeps the other tool's routing: lan1 reaches www's second address by table 52 alone", async () => {
    const r = await httpGet(lab.names.ns("lan1"), `http://${WWW2}:${WHOAMI_PORT}/`);
    expect(r).toEqual({ ok: true, text: ADDR.homeWan });
    expect(await httpGet(lab.names.ns("lan1"), www)).toEqual({ ok: true, text: ADDR.homeWan });
  });

  it("publishes through the VPS, SNATed and keeping the client's address, replies back through the tunnel", async () => {
    const fromInternet = (port: number) =>
      eventually(
        () => httpGet(lab.names.ns("www"), `http://${ADDR.vps}:${port}/`),
        (x) => x.ok,
      );
    expect(await fromInternet(2222)).toEqual({ ok: true, text: "10.99.0.1" });
    // The reply from lan1 to www is also marked 0x80000 by the other tool: netpol's reply
    // rule must still win, and the other tool's connection-mark bits must still be there.
    expect(await fromInternet(8081)).toEqual({ ok: true, text: ADDR.www });
    expect(await foreignCounter(home, "kept_reply_ct")).toBeGreaterThan(0);
  });

  it("leaks nothing to the ISP", async () => {
    expect(await counterPackets(lab.names.ns("isp"), "leak")).toBe(0);
  });

  it("keeps its marks in its own bits, in nft and in ip rule", async () => {
    const rules = (await execa("ip", ["-n", home, "rule", "show"])).stdout.split("\n");
    const ours = rules.filter((l) => l.endsWith(" proto 77"));
    expect(ours.length).toBeGreaterThan(0);
    for (const line of ours) {
      expect(line).toMatch(/fwmark 0x[0-9a-f]+\/0xf[ef]000000 /);
    }
  });
});
