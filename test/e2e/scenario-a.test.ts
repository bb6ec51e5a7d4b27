import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import type { Lab } from "../../src/lab/lab.js";
import { providerDown, providerUp } from "../../src/lab/lab.js";
import { addCounter, counterPackets, eventually, httpGet } from "../../src/lab/probe.js";
import { ADDR, WHOAMI_PORT } from "../../src/lab/topology.js";
import { homeArgs, labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";

// Scenario A on real namespaces: VLAN 6 leaves through the provider tunnel (wireguard-go),
// masqueraded, fails closed while the tunnel is gone, and flows again when it returns.
describeLive("scenario A: a VLAN through a commercial VPN, fail closed", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  const www = `http://${ADDR.www}:${WHOAMI_PORT}/`;

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    await applySite(siteTarget(lab, "home"), labInput(lab, "home"), "test");
    await addCounter(lab.names.ns("isp"), "vl6", `iifname "home" tcp dport ${WHOAMI_PORT}`);
  });
  afterAll(async () => {
    await down?.();
  });

  it("sends VLAN 6's internet traffic through the provider: the internet host sees the provider's exit", async () => {
    const r = await eventually(
      () => httpGet(lab.names.ns("vl6"), www),
      (x) => x.ok,
    );
    expect(r).toEqual({ ok: true, text: ADDR.vpnExit });
  });

  it("keeps VLAN 6's traffic to the LAN local, unmasqueraded", async () => {
    const r = await httpGet(lab.names.ns("vl6"), `http://${ADDR.lan1Host}:${WHOAMI_PORT}/`);
    expect(r).toEqual({ ok: true, text: ADDR.vl6Host });
  });

  it("lets LAN 1 reach the internet directly, through home's WAN", async () => {
    expect(await httpGet(lab.names.ns("lan1"), www)).toEqual({ ok: true, text: ADDR.homeWan });
  });

  it("refuses VLAN 6's internet traffic while the tunnel is gone, with not one packet on the ISP link", async () => {
    const before = await counterPackets(lab.names.ns("isp"), "vl6");
    await providerDown(lab);
    const r = await httpGet(lab.names.ns("vl6"), www, 1500);
    expect(r.ok).toBe(false);
    expect(r.text).toBe("EHOSTUNREACH");
    const ping = await execa(
      "ip",
      ["netns", "exec", lab.names.ns("vl6"), "ping", "-c", "2", "-i", "0.2", "-W", "1", ADDR.www],
      { reject: false },
    );
    expect(ping.exitCode).not.toBe(0);
    expect(await counterPackets(lab.names.ns("isp"), "vl6")).toBe(before);
  });

  it("flows again once the tunnel is back, re-applied by `netpol watch` alone", async () => {
    const watcher = execa(process.execPath, ["bin/netpol.js", "watch", ...homeArgs(lab)], {
      reject: false,
    });
    try {
      await new Promise<void>((resolve) => {
        watcher.stdout?.on("data", (d: Buffer) => {
          if (d.toString().includes("watching links")) resolve();
        });
      });
      await providerUp(lab);
      const r = await eventually(
        () => httpGet(lab.names.ns("vl6"), www, 1500),
        (x) => x.ok,
        10_000,
      );
      expect(r).toEqual({ ok: true, text: ADDR.vpnExit });
    } finally {
      watcher.kill("SIGTERM");
      await watcher;
    }
  });
});
