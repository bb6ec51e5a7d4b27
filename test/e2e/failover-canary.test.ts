import { writeFile } from "node:fs/promises";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import type { Lab } from "../../src/lab/lab.js";
import { withFailover } from "../../src/lab/policy.js";
import { addCounter, counterPackets, httpGet } from "../../src/lab/probe.js";
import { ADDR, type LabNames, WHOAMI_PORT } from "../../src/lab/topology.js";
import type { SiteStatus } from "../../src/status/collect.js";
import { createMetrics } from "../../src/status/metrics.js";
import { homeArgs, labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";
import { startWatch } from "../support/watcher.js";

const INTERVAL = 2;
const www = `http://${ADDR.www}:${WHOAMI_PORT}/`;

/** Scenario D's egress with a leak canary: the internet host echoes the address it sees. */
const withCanary = (text: string, names: LabNames) =>
  withFailover(text, names).replace(
    /( {8}health: .*\n)/,
    `$1        canary: { url: "${www}", expect: { ${names.hma}: [${ADDR.vpnExit}], ${names.wg}: [${ADDR.vps}] }, interval: ${INTERVAL} }\n`,
  );

// The leak canary on real namespaces: VLAN 6 → [provider, VPS]; the router asks the internet
// host's echo as VLAN 6's own traffic (its mark, its network's source). A foreign `ip rule`
// that sends VLAN 6 out the ISP (and the distro's masquerade on the WAN) makes the echo see
// the home's ISP address: the canary alarms in watch, status and metrics; the guard drops and
// counts the VLAN's own packets, none of which reaches the ISP.
describeLive("the leak canary of an egress", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  let watch: ReturnType<typeof startWatch>;
  const vl6 = () => lab.names.ns("vl6");
  const status = async (json = true) => {
    const r = await execa(
      process.execPath,
      ["bin/netpol.js", "status", ...(json ? ["--json"] : []), ...homeArgs(lab).slice(3)],
      { reject: false },
    );
    if (r.exitCode !== 0 && r.exitCode !== 2) throw new Error(`status failed: ${r.stderr}`);
    return r.stdout;
  };
  const egress = async () => (JSON.parse(await status()) as SiteStatus).egress[0];

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    const edit = (t: string) => withCanary(t, lab.names);
    await applySite(siteTarget(lab, "vps"), labInput(lab, "vps", edit), "test");
    await writeFile(`${lab.dir}/policy.yaml`, labInput(lab, "home", edit).text, { mode: 0o600 });
    await addCounter(lab.names.ns("isp"), "vl6leak", `iifname "home" ip saddr 192.168.6.0/24`);
    watch = startWatch([...homeArgs(lab), "--interval", "0"]);
  }, 60_000);
  afterAll(async () => {
    await watch?.stop();
    await down?.();
  });

  it("sees the provider's exit address while VLAN 6 leaves by the provider", async () => {
    const ok = await watch.waitFor((e) => e.event === "canary" && e.state === "ok", 20_000);
    expect(ok.seen).toBe(ADDR.vpnExit);
    expect(ok.expected).toEqual([ADDR.vpnExit]);
    const e = await egress();
    expect(e?.health?.canary?.state).toBe("ok");
    expect(e?.health?.canary?.seen).toBe(ADDR.vpnExit);
    expect(await status(false)).toContain(`leak canary ${www}: ok, the echo saw ${ADDR.vpnExit}`);
  });

  it("alarms within one interval when a foreign rule sends VLAN 6 out the ISP; the guard counts", async () => {
    const home = lab.run("home");
    const rule = ["from", "192.168.6.0/24", "lookup", "main", "pref", "100"];
    // A router's usual NAT: everything leaving by the WAN takes its address.
    await home.run("nft", ["add", "rule", "ip", "labnat", "post", "oifname", "wan", "masquerade"]);
    const from = watch.events.length;
    await home.run("ip", ["rule", "add", ...rule]);
    const inserted = Date.now();
    try {
      const alarm = await watch.waitFor(
        (e) => e.event === "canary" && e.state === "leak",
        15_000,
        from,
      );
      // The next request after the rule (one interval at most), plus its round trip.
      expect(alarm.at - inserted).toBeLessThanOrEqual(INTERVAL * 1000 + 2000);
      expect(alarm.seen).toBe(ADDR.homeWan);
      // The VLAN's own traffic: dropped by the guard (counted), none on the ISP link.
      const r = await httpGet(vl6(), www, 1500);
      expect(r.ok).toBe(false);
      const e = await egress();
      expect(e?.droppedPackets).toBeGreaterThan(0);
      expect(e?.health?.canary?.state).toBe("leak");
      expect(e?.health?.canary?.seen).toBe(ADDR.homeWan);
      expect(e?.health?.canary?.alarms).toBeGreaterThanOrEqual(1);
      expect(await status(false)).toContain(
        `leak canary ${www}: LEAK: the echo saw ${ADDR.homeWan}, expected ${ADDR.vpnExit}`,
      );
      const metrics = createMetrics();
      metrics.observe(JSON.parse(await status()) as SiteStatus);
      const text = await metrics.registry.metrics();
      expect(text).toContain('netpol_egress_canary_leak{egress="vpn"} 1');
      expect(await counterPackets(lab.names.ns("isp"), "vl6leak")).toBe(0);
    } finally {
      await home.run("ip", ["rule", "del", ...rule]);
    }
    const back = await watch.waitFor(
      (e) => e.event === "canary" && e.state === "ok",
      15_000,
      watch.events.length,
    );
    expect(back.seen).toBe(ADDR.vpnExit);
  }, 60_000);
});
