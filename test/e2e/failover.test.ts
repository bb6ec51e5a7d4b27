import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { blackHole, type Lab, providerDown, providerUp } from "../../src/lab/lab.js";
import { withFailover } from "../../src/lab/policy.js";
import {
  addCounter,
  counterPackets,
  eventually,
  httpGet,
  requestLoop,
} from "../../src/lab/probe.js";
import { ADDR, WHOAMI_PORT } from "../../src/lab/topology.js";
import { homeArgs, labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";
import { startWatch, type WatchEvent } from "../support/watcher.js";

// Scenario D on real namespaces: VLAN 6 leaves by the provider (wireguard-go) while it answers,
// by the VPS tunnel once the provider is black-holed at the ISP (its device stays up), and by
// nothing when both are dead; `netpol watch` probes and switches; not one VLAN-6 packet
// crosses the home's ISP link.
describeLive("scenario D: an egress that fails over from the provider to the VPS", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  let watch: ReturnType<typeof startWatch>;
  const www = `http://${ADDR.www}:${WHOAMI_PORT}/`;
  const vl6 = () => lab.names.ns("vl6");
  const leaked = () => counterPackets(lab.names.ns("isp"), "vl6leak");
  // Exit 2 is drift (a test's strict rp_filter, which netpol would set back): still a report.
  const status = async () => {
    const r = await execa(
      process.execPath,
      ["bin/netpol.js", "status", "--json", ...homeArgs(lab).slice(3)],
      { reject: false },
    );
    if (r.exitCode !== 0 && r.exitCode !== 2) throw new Error(`status failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as {
      egress: {
        name: string;
        failClosedEngaged: boolean;
        health: {
          active: string | null;
          judgedBy: string;
          paths: { device: string; state: string; reason: string | null }[];
        } | null;
      }[];
    };
  };
  const switchTo = (to: string | null, from: number) =>
    watch.waitFor((e) => e.event === "switch" && e.to === to, 20_000, from);

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    const edit = (t: string) => withFailover(t, lab.names);
    await applySite(siteTarget(lab, "vps"), labInput(lab, "vps", edit), "test");
    // The watched file is the failover policy too: watch applies it first.
    const { writeFile } = await import("node:fs/promises");
    await writeFile(`${lab.dir}/policy.yaml`, labInput(lab, "home", edit).text, { mode: 0o600 });
    await addCounter(lab.names.ns("isp"), "vl6leak", `iifname "home" ip saddr 192.168.6.0/24`);
    watch = startWatch([...homeArgs(lab), "--interval", "0"]);
    // Both paths judged up: three answers each.
    for (const path of [lab.names.hma, lab.names.wgHome]) {
      await watch.waitFor((e) => e.event === "path" && e.path === path && e.state === "up");
    }
  }, 60_000);
  afterAll(async () => {
    await watch?.stop();
    await down?.();
  });

  it("leaves by the provider while it answers", async () => {
    const r = await eventually(
      () => httpGet(vl6(), www),
      (x) => x.ok,
    );
    expect(r).toEqual({ ok: true, text: ADDR.vpnExit });
    const s = (await status()).egress[0];
    expect(s?.health?.active).toBe(lab.names.hma);
    expect(s?.health?.judgedBy).toBe("monitor");
    expect(s?.health?.paths.map((p) => p.state)).toEqual(["up", "up"]);
  });

  it("moves to the VPS within 4 s of the provider going dark, and back after the hold time, 3 times; requests fail only in the switch window, nothing leaks", async () => {
    const loop = requestLoop(vl6(), www, ADDR.www, 100);
    const figures: { detectMs: number; switchMs: number }[] = [];
    for (let i = 0; i < 3; i++) {
      const from = watch.events.length;
      const dark = Date.now();
      await blackHole(lab, "provider", true);
      const detected = await watch.waitFor(
        (e) => e.event === "path" && e.path === lab.names.hma && e.state === "down",
        10_000,
        from,
      );
      const moved = await switchTo(lab.names.wgHome, from);
      figures.push({ detectMs: detected.at - dark, switchMs: Number(moved.tookMs) });
      expect(await httpGet(vl6(), www)).toEqual({ ok: true, text: ADDR.vps });
      const back = watch.events.length;
      await blackHole(lab, "provider", false);
      await switchTo(lab.names.hma, back);
      expect(
        (
          await eventually(
            () => httpGet(vl6(), www),
            (x) => x.ok && x.text === ADDR.vpnExit,
          )
        ).text,
      ).toBe(ADDR.vpnExit);
    }
    const { answers } = await loop.stop();
    console.log(`failover, 3 runs: ${JSON.stringify(figures)}`);
    for (const f of figures) {
      expect(f.detectMs).toBeLessThanOrEqual(4_000);
      expect(f.switchMs).toBeLessThanOrEqual(1_000);
    }
    // Each run's failed requests form one stretch: the switch window (plus the failback's
    // reset of the flows pinned to the VPS path), never scattered failures.
    const failures = answers.filter((a) => !a.startsWith("ok "));
    expect(failures.length).toBeLessThan(answers.length / 4);
    expect(answers.filter((a) => a === `ok ${ADDR.vps}`).length).toBeGreaterThan(0);
    expect(answers.at(-1)).toBe(`ok ${ADDR.vpnExit}`);
    expect(await leaked()).toBe(0);
  }, 120_000);

  it("fails closed with both paths dead: no route, nothing leaked, status says all paths are down", async () => {
    const from = watch.events.length;
    await blackHole(lab, "provider", true);
    await blackHole(lab, "vps", true);
    try {
      await switchTo(null, from);
      const r = await httpGet(vl6(), www, 1500);
      expect(r).toEqual({ ok: false, text: "EHOSTUNREACH" });
      const s = (await status()).egress[0];
      expect(s?.failClosedEngaged).toBe(true);
      expect(s?.health?.active).toBeNull();
      expect(s?.health?.paths.map((p) => p.state)).toEqual(["down", "down"]);
      expect(await leaked()).toBe(0);
    } finally {
      await blackHole(lab, "provider", false);
      await blackHole(lab, "vps", false);
    }
    // Back on the provider (perhaps by the VPS first, then failback after the hold time).
    await watch.waitFor(
      (e: WatchEvent) => e.event === "switch" && e.to === lab.names.hma,
      30_000,
      from,
    );
  }, 60_000);

  it("never calls a path with strict rp_filter up: its replies are dropped, traffic moves, status says why", async () => {
    const key = `net.ipv4.conf.${lab.names.hma}.rp_filter`;
    const home = lab.run("home");
    const from = watch.events.length;
    await home.run("sysctl", ["-q", "-w", `${key}=1`]);
    try {
      await switchTo(lab.names.wgHome, from);
      const path = (await status()).egress[0]?.health?.paths[0];
      expect(path?.state).toBe("down");
      expect(path?.reason).toContain(`strict rp_filter (${key} = 1)`);
    } finally {
      // Back to what netpol set (loose), as its next apply would.
      await home.run("sysctl", ["-q", "-w", `${key}=2`]);
    }
    await switchTo(lab.names.hma, watch.events.length);
  }, 60_000);

  it("a provider device recreated under a strict `all` (a reconnect) is loose from `default`, and carries the VLAN again", async () => {
    const home = lab.run("home");
    await home.run("sysctl", ["-q", "-w", "net.ipv4.conf.all.rp_filter=1"]);
    try {
      const from = watch.events.length;
      await providerDown(lab);
      await switchTo(lab.names.wgHome, from);
      await providerUp(lab);
      const fresh = await home.run("sysctl", ["-n", "net.ipv4.conf.default.rp_filter"]);
      expect(fresh.stdout.trim()).toBe("2");
      const r = await home.run("sysctl", ["-n", `net.ipv4.conf.${lab.names.hma}.rp_filter`]);
      expect(r.stdout.trim()).toBe("2");
      await switchTo(lab.names.hma, from);
      const path = (await status()).egress[0]?.health?.paths[0];
      expect(path?.state).toBe("up");
    } finally {
      await home.run("sysctl", ["-q", "-w", "net.ipv4.conf.all.rp_filter=0"]);
    }
  }, 60_000);

  it("names the routes an OpenVPN-style redirect-gateway pushed into main, in plan and status", async () => {
    const home = lab.run("home");
    for (const half of ["0.0.0.0/1", "128.0.0.0/1"])
      await home.run("ip", ["route", "add", half, "dev", lab.names.hma]);
    try {
      const plan = await execa(process.execPath, ["bin/netpol.js", "plan", ...homeArgs(lab)], {
        reject: false,
      });
      expect(plan.stdout).toContain(
        `! warning: route 0.0.0.0/1 dev ${lab.names.hma} in main is not netpol's`,
      );
      expect(plan.stdout).toContain("add route-noexec to its config");
      const text = await execa(
        process.execPath,
        ["bin/netpol.js", "status", ...homeArgs(lab).slice(3)],
        { reject: false },
      );
      expect(text.stdout).toContain(`warning: route 128.0.0.0/1 dev ${lab.names.hma} in main`);
    } finally {
      for (const half of ["0.0.0.0/1", "128.0.0.0/1"])
        await home.run("ip", ["route", "del", half, "dev", lab.names.hma]);
    }
  }, 60_000);

  it("without a running monitor, status probes each path once itself", async () => {
    await watch.stop();
    const s = (await status()).egress[0];
    expect(s?.health?.judgedBy).toBe("status probe");
    expect(s?.health?.paths.map((p) => p.state)).toEqual(["up", "up"]);
    expect(s?.health?.active).toBe(lab.names.hma);
  }, 30_000);
});
