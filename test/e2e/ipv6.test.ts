import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import type { Lab } from "../../src/lab/lab.js";
import { providerDown } from "../../src/lab/lab.js";
import { addCounter, counterPackets, eventually, httpGet } from "../../src/lab/probe.js";
import { ADDR, WHOAMI_PORT } from "../../src/lab/topology.js";
import { collectStatus } from "../../src/status/collect.js";
import { dualStack, V6 } from "../support/dual-stack.js";
import { labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";

/**
 * IPv6 end to end on the lab, made dual-stack (test/support/dual-stack.ts): VLAN 6 hosts have
 * global IPv6 addresses and the ISP routes the home's prefixes back to it, so a leak would work
 * if netpol let one through. VLAN 6 leaves through the provider tunnel for
 * IPv6 too, fails closed for IPv6 too, and the VPS publishes a home server on its IPv6 address.
 */
const PUBLISHED_PORT = 8086;
/** One service on both of the VPS's addresses, each family to the home host's own address. */
const DUAL_PORT = 8087;

/** The lab's policy with IPv6 networks, VLAN 6's egress for both families, a service on IPv6. */
const withV6 = (text: string) =>
  text
    .replace(
      "      - { name: files,",
      "      - { name: lan6, cidr: 2001:db8:1::/64, interface: lan, address: 2001:db8:1::1 }\n      - { name: files6, cidr: 2001:db8:6::/64, interface: vl6, address: 2001:db8:6::1 }\n      - { name: files,",
    )
    .replace("from: [files]", "from: [files, files6]")
    .replace(
      "services:\n",
      `services:\n  - { name: web6, kind: tcp, publishOn: vps, port: ${PUBLISHED_PORT}, target: "[${V6.lan1Host}]:${WHOAMI_PORT}", clientAddress: preserve }\n  - { name: web-dual, kind: tcp, publishOn: vps, port: ${DUAL_PORT}, target: ["${ADDR.lan1Host}:${WHOAMI_PORT}", "[${V6.lan1Host}]:${WHOAMI_PORT}"], clientAddress: preserve }\n`,
    );

describeLive(
  "IPv6 end to end: a dual-stack VLAN through the provider, a service on the VPS's IPv6",
  () => {
    let lab: Lab;
    let down: () => Promise<void>;
    const www = `http://[${V6.www}]:${WHOAMI_PORT}/`;

    beforeAll(async () => {
      ({ lab, down } = await startLab());
      await dualStack(lab);
      await applySite(siteTarget(lab, "vps"), labInput(lab, "vps", withV6), "test");
      await applySite(siteTarget(lab, "home"), labInput(lab, "home", withV6), "test");
      // VLAN 6's IPv6 addresses on the ISP link would be a leak, whatever the port.
      await addCounter(lab.names.ns("isp"), "leak6", `iifname "home" ip6 saddr 2001:db8:6::/64`);
    });
    afterAll(async () => {
      await down?.();
    });

    it("sends VLAN 6's IPv6 traffic through the provider: www sees the provider's IPv6 exit", async () => {
      const r = await eventually(
        () => httpGet(lab.names.ns("vl6"), www),
        (x) => x.ok,
      );
      expect(r).toEqual({ ok: true, text: V6.vpnExit });
    });

    it("lets LAN 1 reach www over IPv6 directly, from its own address", async () => {
      const r = await eventually(
        () => httpGet(lab.names.ns("lan1"), www),
        (x) => x.ok,
      );
      expect(r).toEqual({ ok: true, text: V6.lan1Host });
    });

    it("publishes a home server on the VPS's IPv6 address, keeping the client's address", async () => {
      const r = await eventually(
        () => httpGet(lab.names.ns("www"), `http://[${V6.vps}]:${PUBLISHED_PORT}/`),
        (x) => x.ok,
      );
      expect(r).toEqual({ ok: true, text: V6.www });
    });

    it("publishes one port on both of the VPS's addresses, each family to its own target, keeping the client's address", async () => {
      const v6 = await eventually(
        () => httpGet(lab.names.ns("www"), `http://[${V6.vps}]:${DUAL_PORT}/`),
        (x) => x.ok,
      );
      expect(v6).toEqual({ ok: true, text: V6.www });
      const v4 = await httpGet(lab.names.ns("www"), `http://${ADDR.vps}:${DUAL_PORT}/`);
      expect(v4).toEqual({ ok: true, text: ADDR.www });
    });

    it("publishes a port with an IPv4 target on the VPS's IPv4 address only", async () => {
      expect(await httpGet(lab.names.ns("www"), `http://${ADDR.vps}:2222/`)).toEqual({
        ok: true,
        text: "10.99.0.1",
      });
      const v6 = await httpGet(lab.names.ns("www"), `http://[${V6.vps}]:2222/`, 1500);
      expect(v6.ok).toBe(false);
    });

    it("reaches nothing over IPv6 while the tunnel is gone, with not one packet on the ISP link", async () => {
      expect(await counterPackets(lab.names.ns("isp"), "leak6")).toBe(0);
      await providerDown(lab);
      const r = await httpGet(lab.names.ns("vl6"), www, 1500);
      expect(r.ok).toBe(false);
      const ping = await execa(
        "ip",
        [
          "netns",
          "exec",
          lab.names.ns("vl6"),
          "ping",
          "-6",
          "-c",
          "2",
          "-i",
          "0.2",
          "-W",
          "1",
          V6.www,
        ],
        { reject: false },
      );
      expect(ping.exitCode).not.toBe(0);
      expect(await counterPackets(lab.names.ns("isp"), "leak6")).toBe(0);
    });

    it("keeps a VLAN's IPv6 in even when the policy lists only its IPv4 network", async () => {
      // VLAN 6 as IPv4 only in the policy, while its hosts keep global IPv6 addresses from
      // router advertisements someone else sends: main would carry them out by the uplink.
      const v4Only = (t: string) =>
        withV6(t)
          .replace(/ {6}- \{ name: files6,[^\n]*\n/, "")
          .replace("from: [files, files6]", "from: [files]");
      await applySite(siteTarget(lab, "home"), labInput(lab, "home", v4Only), "test");
      const home = lab.run("home");
      await home.run("ip", ["-6", "address", "add", "2001:db8:6::1/64", "dev", "vl6", "nodad"]);
      const r = await httpGet(lab.names.ns("vl6"), www, 1500);
      expect(r.ok).toBe(false);
      expect(await counterPackets(lab.names.ns("isp"), "leak6")).toBe(0);
      const guard = (await home.run("nft", ["list", "chain", "inet", "netpol", "filter_forward"]))
        .stdout;
      expect(guard).toMatch(
        /counter packets [1-9]\d* bytes \d+ drop comment "fail-closed vpn, unlisted IPv6"/,
      );
      const status = await collectStatus(siteTarget(lab, "home"), Date.now());
      const vpn = status.egress.find((e) => e.name === "vpn");
      expect(vpn?.droppedPackets).toBeGreaterThan(0);
    });
  },
);
