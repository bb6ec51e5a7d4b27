import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { targetOf } from "../../src/apply/target.js";
import { guardFleetSite } from "../../src/cli/fleet-managed.js";
import { contactPath } from "../../src/fleet/agent/contact.js";
import { type LocalState, localPath, saveLocal } from "../../src/fleet/agent/local.js";
import { holdResidency } from "../../src/resident/residency.js";
import { FakeMachine } from "../support/fake-kernel/machine.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";
import { fakeNode } from "../support/node.js";
import { smallSite } from "../support/small-site.js";

/** What an agent remembers once it took up revision 7 (src/fleet/agent/local.ts). */
const TOOK_UP: LocalState = {
  version: 1,
  serial: 7,
  phase: "done",
  result: "applied",
  hash: "h",
  failuresBefore: 0,
  at: "2026-12-07T06:00:00.000Z",
  endpoints: ["http://192.0.2.10:2379"],
};

/**
 * A site a fleet agent runs changes through `netpol publish`: `apply` and `down` by hand are
 * refused there, naming what to do, unless `--leave-fleet` takes the site out of the fleet with
 * its agent stopped.
 */
describe("a change by hand on a site a fleet agent runs", () => {
  const machine = new FakeMachine("fake");
  const node = fakeNode();
  let dir = "";
  const target = (host = machine.host()) =>
    targetOf(node.kernel.runner("site1"), dir, { host, naming: { netns: "site1", stateDir: dir } });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-fleet-managed-"));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("is let through where no agent took the site up", async () => {
    expect(await guardFleetSite(target(), { verb: "apply", args: [] }, false)).toBeUndefined();
  });

  it("is refused once one did, saying the revision, publish, and how to take the site back", async () => {
    await saveLocal(target().files, TOOK_UP);
    for (const [verb, args] of [
      ["apply", ["p.yaml", "--site", "home"]],
      ["down", []],
    ] as const) {
      await expect(guardFleetSite(target(), { verb, args }, false)).rejects.toMatchObject({
        code: "NETPOL_E_FLEET_MANAGED",
        message: expect.stringMatching(
          new RegExp(
            `^nothing ${verb === "apply" ? "applied" : "removed"}: netns-site1 is run by a fleet agent \\(it took up revision 7 from etcd http://192\\.0\\.2\\.10:2379;.*netpol publish POLICY --etcd http://192\\.0\\.2\\.10:2379.*systemctl disable --now netpol-agent.*\`netpol ${verb} ${[...args, "--leave-fleet"].join(" ")} --netns site1 --state-dir ${dir}\`$`,
          ),
        ),
      });
    }
    // A file the agent wrote half is the agent's all the same.
    await writeFile(localPath(target().files), "{");
    await expect(
      guardFleetSite(target(), { verb: "apply", args: [] }, false),
    ).rejects.toMatchObject({ code: "NETPOL_E_FLEET_MANAGED" });
  });

  it("with --leave-fleet: refused while the agent runs; after, the site is no fleet's", async () => {
    await saveLocal(target().files, TOOK_UP);
    await writeFile(contactPath(target().files), "{}\n");
    const agent = machine.host();
    const stop = await holdResidency(target(agent), "agent");
    await expect(guardFleetSite(target(), { verb: "apply", args: [] }, true)).rejects.toMatchObject(
      { code: "NETPOL_E_RESIDENT_RUNNING" },
    );
    await stop();
    const left = await guardFleetSite(target(), { verb: "apply", args: [] }, true);
    expect(existsSync(localPath(target().files))).toBe(true);
    await left?.();
    expect(existsSync(localPath(target().files))).toBe(false);
    expect(existsSync(contactPath(target().files))).toBe(false);
    expect(await guardFleetSite(target(), { verb: "down", args: [] }, false)).toBeUndefined();
  });
});

describeLive("netpol apply and down on a site a fleet agent runs", () => {
  let ns: Netns;
  let dir: string;
  let policy: string;
  const state = () => path.join(dir, "state");
  const netpol = (verb: string, ...args: string[]) =>
    execa(
      process.execPath,
      [path.resolve("bin/netpol.js"), verb, ...args, "--netns", ns.name, "--state-dir", state()],
      { reject: false },
    );
  const record = () => path.join(state(), `netns-${ns.name}.json`);
  const fleetFile = () => path.join(state(), `netns-${ns.name}.fleet.json`);
  const addresses = async () => (await ns.exec(["ip", "-br", "address", "show", "lan0"])).stdout;

  beforeAll(async () => {
    ns = await createNetns("fleetm");
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-fleetm-"));
    policy = path.join(dir, "policy.yaml");
    await smallSite(ns, policy);
  });
  afterAll(async () => {
    await ns?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses apply and down, plans, and applies with --leave-fleet", async () => {
    await execa("mkdir", ["-m", "700", "-p", state()]);
    await writeFile(fleetFile(), `${JSON.stringify(TOOK_UP)}\n`, { mode: 0o600 });
    const before = await addresses();

    const refused = await netpol("apply", policy, "--site", "vps");
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain("nothing applied:");
    expect(refused.stderr).toContain("--leave-fleet");
    expect(refused.stderr).not.toMatch(/^\s+at /m);
    expect(await addresses()).toBe(before);
    expect(existsSync(record())).toBe(false);

    const down = await netpol("down");
    expect(down.exitCode).toBe(1);
    expect(down.stderr).toContain("nothing removed:");

    const plan = await netpol("plan", policy, "--site", "vps");
    // Read-only, so allowed: 2 says changes are pending.
    expect(plan.exitCode, plan.stderr).toBe(2);
    expect(plan.stdout).toContain("10.9.0.1");

    const taken = await netpol("apply", policy, "--site", "vps", "--leave-fleet");
    expect(taken.exitCode, taken.stderr).toBe(0);
    expect(await addresses()).toContain("10.9.0.1/24");
    expect(existsSync(fleetFile())).toBe(false);
    // No longer the fleet's: a plain apply goes through.
    expect((await netpol("apply", policy, "--site", "vps")).exitCode).toBe(0);
    expect((await netpol("down")).exitCode).toBe(0);
  });
});
