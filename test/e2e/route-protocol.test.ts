import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import type { Lab } from "../../src/lab/lab.js";
import { readRtProtos } from "../../src/system/rt-protos.js";
import { labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";
import { liveNode, ownedSnapshot } from "../support/node.js";

describeLive("routing protocol names on this machine", () => {
  it("reads rt_protos and its drop-ins, later files naming numbers too", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-rtp-"));
    try {
      await writeFile(path.join(dir, "rt_protos"), "# reserved\n16\tdhcp\n0x2a babel\n");
      await mkdir(path.join(dir, "rt_protos.d"));
      await writeFile(
        path.join(dir, "rt_protos.d", "site.conf"),
        "77 netpol\n90\tmydaemon # ours\n",
      );
      await writeFile(path.join(dir, "rt_protos.d", "ignored.txt"), "91 nope\n");
      const names = await readRtProtos([dir]);
      expect([...names].sort((a, b) => a[0] - b[0])).toEqual([
        [16, "dhcp"],
        [42, "babel"],
        [77, "netpol"],
        [90, "mydaemon"],
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// A changed routeProtocol would leave the last apply's routes and rules behind as someone
// else's: the apply refuses, names the commands that clear them, and goes ahead after.
describeLive("changing routeProtocol on a live namespace", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  const moved = (t: string) =>
    t.replace("version: 1\n", "version: 1\nsettings: { routeProtocol: 78 }\n");

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    await applySite(siteTarget(lab, "home"), labInput(lab, "home"), "test");
  });
  afterAll(async () => {
    await down?.();
  });

  it("refuses while protocol 77's routes and rules are there, changing nothing", async () => {
    const home = lab.names.ns("home");
    const before = await ownedSnapshot(liveNode(home));
    const refused = applySite(siteTarget(lab, "home"), labInput(lab, "home", moved), "test");
    await expect(refused).rejects.toMatchObject({ code: "NETPOL_E_FOREIGN_STATE" });
    const message = String(await refused.catch((e: Error) => e.message));
    expect(message).toContain("settings.routeProtocol changed from 77 to 78");
    expect(message).toContain(`ip netns exec ${home} ip -4 rule flush protocol 77`);
    expect(await ownedSnapshot(liveNode(home))).toEqual(before);

    // The commands it names, run as given, then the apply goes through with the new number.
    const commands = message
      .split("\n")
      .slice(1)
      .map((l) => l.trim().split(" "));
    for (const [tool = "", ...args] of commands) await execa(tool, args);
    const applied = await applySite(siteTarget(lab, "home"), labInput(lab, "home", moved), "test");
    expect(applied.record.protocol).toBe(78);
    const routes = await execa("ip", ["-n", home, "route", "show", "table", "3", "proto", "78"]);
    expect(routes.stdout).toContain("unreachable default");
    const old = await execa("ip", ["-n", home, "route", "show", "table", "all", "proto", "77"]);
    expect(old.stdout).toBe("");
  });
});
