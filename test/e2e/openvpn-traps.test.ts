import { writeFile } from "node:fs/promises";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import type { Lab } from "../../src/lab/lab.js";
import { addCounter, counterPackets, eventually, httpGet } from "../../src/lab/probe.js";
import { killAndWait, waitForLink } from "../../src/lab/processes.js";
import { ADDR, type Role, WHOAMI_PORT } from "../../src/lab/topology.js";
import { homeArgs, labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";
import {
  type OpenVpnDaemon,
  type OpenVpnLab,
  openVpnLab,
  waitForConnections,
} from "../support/openvpn.js";

// The traps of issue 17 with real OpenVPN (Debian's 2.6): a server in the lab's provider
// namespace pushing `redirect-gateway def1` as commercial providers do, a client on the home
// whose tun device is VLAN 6's egress. A strict rp_filter and a reconnect must never leave
// netpol saying "up" over a black-holed VLAN; routes the client pushed into main are named in
// plan and status with the fix.
describeLive(
  "real OpenVPN traps: strict rp_filter over a reconnect, pushed redirect-gateway",
  () => {
    let lab: Lab;
    let down: () => Promise<void>;
    let vpn: OpenVpnLab | undefined;
    let client: OpenVpnDaemon | undefined;
    const www = `http://${ADDR.www}:${WHOAMI_PORT}/`;
    const tunA = () => `${lab.names.prefix}ova`;
    const tunB = () => `${lab.names.prefix}ovb`;
    const home = () => lab.run("home");
    const rp = async (key: string) =>
      (await home().run("sysctl", ["-n", `net.ipv4.conf.${key}.rp_filter`])).stdout.trim();

    /** The lab's policy with VLAN 6 leaving by the OpenVPN client's tun, probed towards www. */
    const byTun = (dev: string) => (text: string) =>
      text
        .replaceAll(lab.names.hma, dev)
        .replace(
          `        via: ${dev}\n`,
          `        via: ${dev}\n        health: { targets: [${ADDR.www}] }\n`,
        );
    const applyWith = async (dev: string) => {
      const input = labInput(lab, "home", byTun(dev));
      await writeFile(`${lab.dir}/policy.yaml`, input.text, { mode: 0o600 });
      await applySite(siteTarget(lab, "home"), input, "test");
    };
    const netpol = (args: string[]) =>
      execa(process.execPath, ["bin/netpol.js", ...args], { reject: false });
    const status = async () => {
      const r = await netpol(["status", "--json", ...homeArgs(lab).slice(3)]);
      if (r.exitCode !== 0 && r.exitCode !== 2) throw new Error(`status failed: ${r.stderr}`);
      return JSON.parse(r.stdout) as {
        egress: { health: { paths: { device: string; state: string; reason: string | null }[] } }[];
      };
    };
    const pathOf = async () => (await status()).egress[0]?.health.paths[0];
    const flows = (ns: Role) =>
      eventually(
        () => httpGet(lab.names.ns(ns), www, 1500),
        (x) => x.ok,
        10_000,
      );
    /** SIGUSR1: OpenVPN drops the connection and its tun device, and connects again. */
    const reconnect = async (c: OpenVpnDaemon, dev: string) => {
      const before = await c.connections();
      process.kill(c.pid, "SIGUSR1");
      await waitForConnections(c, before + 1);
      await waitForLink(lab.names.ns("home"), dev);
    };

    beforeAll(async () => {
      ({ lab, down } = await startLab());
      vpn = await openVpnLab({
        dir: lab.dir,
        providerNs: lab.names.ns("vpn"),
        homeNs: lab.names.ns("home"),
        serverAddress: ADDR.vpnExit,
        serverDev: `${lab.names.prefix}ovs`,
      });
      await addCounter(lab.names.ns("isp"), "vl6leak", `iifname "home" ip saddr 192.168.6.0/24`);
      await addCounter(
        lab.names.ns("vpn"),
        "byopenvpn",
        `iifname "${lab.names.prefix}ovs" tcp dport ${WHOAMI_PORT}`,
      );
    }, 60_000);
    afterAll(async () => {
      vpn?.stop();
      await down?.();
    });

    it("carries VLAN 6 through the OpenVPN tun (route-noexec), loose rp_filter on it and on default", async () => {
      client = await vpn?.client(tunA(), { routeNoexec: true });
      await applyWith(tunA());
      expect(await flows("vl6")).toEqual({ ok: true, text: ADDR.vpnExit });
      expect(await counterPackets(lab.names.ns("vpn"), "byopenvpn")).toBeGreaterThan(0);
      expect([await rp(tunA()), await rp("default")]).toEqual(["2", "2"]);
      expect((await pathOf())?.state).toBe("up");
    }, 60_000);

    it("a reconnect under a strict `all` recreates the tun loose (from default): traffic flows again after the re-apply", async () => {
      if (!client) throw new Error("no client");
      await home().run("sysctl", ["-q", "-w", "net.ipv4.conf.all.rp_filter=1"]);
      await reconnect(client, tunA());
      // A new device: its key came from default, which netpol set loose.
      expect(await rp(tunA())).toBe("2");
      await applyWith(tunA());
      expect(await flows("vl6")).toEqual({ ok: true, text: ADDR.vpnExit });
      expect((await pathOf())?.state).toBe("up");
    }, 60_000);

    it("a reconnect after default too was made strict: status says down and names rp_filter, plan sets it back, the apply makes traffic flow", async () => {
      if (!client) throw new Error("no client");
      await home().run("sysctl", ["-q", "-w", "net.ipv4.conf.default.rp_filter=1"]);
      await reconnect(client, tunA());
      expect(await rp(tunA())).toBe("1");
      const path = await pathOf();
      expect(path?.state).toBe("down");
      expect(path?.reason).toContain(`strict rp_filter (net.ipv4.conf.${tunA()}.rp_filter = 1)`);
      const plan = await netpol(["plan", ...homeArgs(lab)]);
      expect(plan.exitCode).toBe(2);
      expect(plan.stdout).toContain(`net.ipv4.conf.${tunA()}.rp_filter`);
      await applyWith(tunA());
      expect([await rp(tunA()), await rp("default")]).toEqual(["2", "2"]);
      expect(await flows("vl6")).toEqual({ ok: true, text: ADDR.vpnExit });
      expect((await pathOf())?.state).toBe("up");
      expect(await counterPackets(lab.names.ns("isp"), "vl6leak")).toBe(0);
      await home().run("sysctl", ["-q", "-w", "net.ipv4.conf.all.rp_filter=0"]);
    }, 60_000);

    it("a client without route-noexec takes the pushed redirect-gateway into main: plan and status name both halves and the fix", async () => {
      // Gone before the next client of that tun name starts: on its way out it removes the tun.
      if (client) await killAndWait(client.pid);
      client = await vpn?.client(tunB(), { routeNoexec: false });
      const main = (await home().run("ip", ["-4", "route", "show", "table", "main"])).stdout;
      expect(main).toMatch(new RegExp(`^0\\.0\\.0\\.0/1 via \\S+ dev ${tunB()}`, "m"));
      expect(main).toMatch(new RegExp(`^128\\.0\\.0\\.0/1 via \\S+ dev ${tunB()}`, "m"));
      await applyWith(tunB());
      // The trap itself, from packets: the LAN, which no egress names, now leaves by the tun,
      // unmasqueraded, and the provider does not answer it: the whole LAN loses the internet.
      await addCounter(
        lab.names.ns("home"),
        "lanbytun",
        `oifname "${tunB()}" ip saddr 192.168.1.0/24`,
      );
      expect((await httpGet(lab.names.ns("lan1"), www, 1500)).ok).toBe(false);
      expect(await counterPackets(lab.names.ns("home"), "lanbytun")).toBeGreaterThan(0);
      const plan = await netpol(["plan", ...homeArgs(lab)]);
      for (const half of ["0.0.0.0/1", "128.0.0.0/1"])
        expect(plan.stdout).toContain(
          `! warning: route ${half} dev ${tunB()} in main is not netpol's`,
        );
      expect(plan.stdout).toContain("add route-noexec to its config");
      const text = await netpol(["status", ...homeArgs(lab).slice(3)]);
      for (const half of ["0.0.0.0/1", "128.0.0.0/1"])
        expect(text.stdout).toContain(`warning: route ${half} dev ${tunB()} in main`);
      expect(text.stdout).toContain("route-noexec");
    }, 60_000);

    it("with route-noexec added, as the warning says, main is the LAN's again and the warning is gone", async () => {
      // Gone before the next client of that tun name starts: on its way out it removes the tun.
      if (client) await killAndWait(client.pid);
      client = await vpn?.client(tunB(), { routeNoexec: true });
      await applyWith(tunB());
      expect(await flows("lan1")).toEqual({ ok: true, text: ADDR.homeWan });
      expect(await flows("vl6")).toEqual({ ok: true, text: ADDR.vpnExit });
      const plan = await netpol(["plan", ...homeArgs(lab)]);
      expect(plan.stdout).not.toContain("warning");
      expect(plan.exitCode).toBe(0);
    }, 60_000);
  },
);
