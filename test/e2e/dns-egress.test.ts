import { writeFile } from "node:fs/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { askName, startResolver } from "../../src/lab/dns.js";
import { blackHole, type Lab } from "../../src/lab/lab.js";
import { RESOLVER, withDns, withFailover } from "../../src/lab/policy.js";
import { addCounter, counterPackets, eventually } from "../../src/lab/probe.js";
import { homeArgs, labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";
import { startWatch } from "../support/watcher.js";

// DNS follows the egress: VLAN 6 asks the router's resolver (dnsmasq on home, forwarding to
// the ISP's). Without `dns:` the ISP answers and the question crosses the ISP link; with it,
// the provider's resolver answers through the provider, then the VPS's once the provider is
// black-holed, and not one DNS packet crosses the ISP link.
const ANSWER = { isp: "198.51.100.53", provider: "203.0.113.53", vps: "203.0.113.99" };

describeLive("DNS follows the egress", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  let watch: ReturnType<typeof startWatch> | undefined;
  const vl6 = () => lab.names.ns("vl6");
  const dnsOverIsp = () => counterPackets(lab.names.ns("isp"), "dnsout");
  const ask = (server = "192.168.6.1", transport: "udp" | "tcp" = "udp") =>
    askName(vl6(), server, transport);

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    const failover = (t: string) => withFailover(t, lab.names);
    await applySite(siteTarget(lab, "vps"), labInput(lab, "vps", failover), "test");
    await applySite(siteTarget(lab, "home"), labInput(lab, "home", failover), "test");
    await startResolver(lab.dir, lab.names.ns("www"), "isp", RESOLVER.isp, { answer: ANSWER.isp });
    await startResolver(lab.dir, lab.names.ns("vpn"), "provider", RESOLVER.provider, {
      answer: ANSWER.provider,
    });
    await startResolver(lab.dir, lab.names.ns("vps"), "vps", RESOLVER.vps, { answer: ANSWER.vps });
    // The router's own resolver, on VLAN 6's gateway address (netpol added it).
    await startResolver(lab.dir, lab.names.ns("home"), "home", "192.168.6.1", {
      forward: RESOLVER.isp,
    });
    await addCounter(
      lab.names.ns("isp"),
      "dnsout",
      `iifname "home" meta l4proto { tcp, udp } th dport 53`,
    );
  }, 60_000);
  afterAll(async () => {
    await watch?.stop();
    await down?.();
  });

  it("without dns: the router's resolver asks the ISP's, across the ISP link", async () => {
    expect(await ask()).toEqual({ ok: true, text: ANSWER.isp });
    expect(await ask(RESOLVER.isp)).toEqual({ ok: true, text: ANSWER.isp });
    expect(await dnsOverIsp()).toBeGreaterThan(0);
  });

  it("with dns: the provider's resolver answers (UDP and TCP, to the router or anyone), nothing crosses the ISP link", async () => {
    const edit = (t: string) => withDns(withFailover(t, lab.names), lab.names);
    await writeFile(`${lab.dir}/policy.yaml`, labInput(lab, "home", edit).text, { mode: 0o600 });
    watch = startWatch([...homeArgs(lab), "--interval", "0"]);
    for (const path of [lab.names.hma, lab.names.wgHome])
      await watch.waitFor((e) => e.event === "path" && e.path === path && e.state === "up");
    const before = await dnsOverIsp();
    expect(await eventually(ask, (r) => r.ok)).toEqual({ ok: true, text: ANSWER.provider });
    expect(await ask("192.168.6.1", "tcp")).toEqual({ ok: true, text: ANSWER.provider });
    // The ISP's resolver, asked directly: redirected too.
    expect(await ask(RESOLVER.isp)).toEqual({ ok: true, text: ANSWER.provider });
    expect(await dnsOverIsp()).toBe(before);
  }, 60_000);

  it("after a failover the VPS's resolver answers, through the VPS; still nothing over the ISP link", async () => {
    const w = watch;
    if (!w) throw new Error("no watch");
    const before = await dnsOverIsp();
    const from = w.events.length;
    await blackHole(lab, "provider", true);
    try {
      await w.waitFor((e) => e.event === "switch" && e.to === lab.names.wgHome, 20_000, from);
      expect(await eventually(ask, (r) => r.ok && r.text === ANSWER.vps)).toEqual({
        ok: true,
        text: ANSWER.vps,
      });
      expect(await ask("192.168.6.1", "tcp")).toEqual({ ok: true, text: ANSWER.vps });
      expect(await dnsOverIsp()).toBe(before);
    } finally {
      await blackHole(lab, "provider", false);
    }
    await w.waitFor((e) => e.event === "switch" && e.to === lab.names.hma, 30_000, from);
    expect(await eventually(ask, (r) => r.ok && r.text === ANSWER.provider)).toEqual({
      ok: true,
      text: ANSWER.provider,
    });
    expect(await dnsOverIsp()).toBe(before);
  }, 90_000);
});
