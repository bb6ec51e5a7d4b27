import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import type { Lab } from "../../src/lab/lab.js";
import { eventually, httpGet } from "../../src/lab/probe.js";
import { ADDR, WHOAMI_PORT } from "../../src/lab/topology.js";
import { labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";

// Scenario B on real namespaces: home dials the VPS over WireGuard (wireguard-go); the VPS
// publishes a home web server on two ports, one SNATed, one keeping the client's address.
describeLive("scenario B: home services published through the VPS", () => {
  let lab: Lab;
  let down: () => Promise<void>;

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    await applySite(siteTarget(lab, "vps"), labInput(lab, "vps"), "test");
    await applySite(siteTarget(lab, "home"), labInput(lab, "home"), "test");
  });
  afterAll(async () => {
    await down?.();
  });

  const fromInternet = (port: number) =>
    httpGet(lab.names.ns("www"), `http://${ADDR.vps}:${port}/`);

  it("forwards a published port through the tunnel, the home server seeing the VPS's tunnel address", async () => {
    const r = await eventually(
      () => fromInternet(2222),
      (x) => x.ok,
    );
    expect(r).toEqual({ ok: true, text: "10.99.0.1" });
  });

  it("forwards a port that keeps the client's address, the reply going back through the tunnel", async () => {
    expect(
      await eventually(
        () => fromInternet(8081),
        (x) => x.ok,
      ),
    ).toEqual({ ok: true, text: ADDR.www });
  });

  it("changes a peer without dropping the live session (wg syncconf, not setconf)", async () => {
    const peerOf = async () => {
      const dump = await execa("ip", [
        "netns",
        "exec",
        lab.names.ns("home"),
        "wg",
        "show",
        lab.names.wgHome,
        "dump",
      ]);
      const [, peer] = dump.stdout.split("\n");
      const f = peer?.split("\t") ?? [];
      return { handshake: Number(f[4]), rx: Number(f[5]), keepalive: f[7] };
    };
    const before = await peerOf();
    expect(before.handshake).toBeGreaterThan(0);
    const result = await applySite(
      siteTarget(lab, "home"),
      labInput(lab, "home", (t) => t.replace("keepalive: 5", "keepalive: 7")),
      "test",
    );
    expect(result.plan.changes).toEqual([
      expect.objectContaining({ kind: "wireguard", op: "sync" }),
    ]);
    const after = await peerOf();
    expect(after.keepalive).toBe("7");
    expect(after.handshake).toBe(before.handshake);
    expect(after.rx).toBeGreaterThanOrEqual(before.rx);
  });

  it("lets nothing else from the VPS's uplink into the tunnel", async () => {
    // Someone next to the VPS routes the home network at it, bypassing the published ports.
    const isp = lab.names.ns("isp");
    await execa("ip", ["-n", isp, "route", "add", "192.168.1.0/24", "via", ADDR.vps]);
    try {
      const r = await httpGet(isp, `http://${ADDR.lan1Host}:${WHOAMI_PORT}/`, 1500);
      expect(r.ok).toBe(false);
      const listing = await execa("ip", [
        "netns",
        "exec",
        lab.names.ns("vps"),
        "nft",
        "list",
        "chain",
        "inet",
        "netpol",
        "filter_forward",
      ]);
      expect(listing.stdout).toMatch(
        /counter packets [1-9]\d* bytes \d+ drop comment "unpublished into/,
      );
    } finally {
      await execa("ip", ["-n", isp, "route", "del", "192.168.1.0/24"]);
    }
  });
});
