import { existsSync } from "node:fs";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { homeArgs } from "../support/lab.js";
import { fakeHome, liveHome } from "../support/lab-home.js";
import { describeLive } from "../support/layers.js";
import { ownedSnapshot } from "../support/node.js";
import { applyScenarios } from "./scenarios.js";

describe("apply on a fake kernel", () => {
  applyScenarios(fakeHome);
});

const netpol = (args: string[]) =>
  execa(process.execPath, ["bin/netpol.js", ...args], { reject: false });

describeLive("apply on a live namespace", () => {
  const home = applyScenarios(liveHome);
  const cli = (verb: string, ...extra: string[]) =>
    netpol([verb, ...homeArgs(home().lab), ...extra]);

  it("plan exits 2 with changes pending, 0 in sync, 1 on an error; --json lists the changes", async () => {
    const { lab } = home();
    expect((await cli("plan")).exitCode).toBe(2);
    const bad = await netpol([
      "plan",
      "/nonexistent.yaml",
      "--site",
      "home",
      "--netns",
      lab.names.ns("home"),
    ]);
    expect(bad.exitCode).toBe(1);
    const json = await cli("plan", "--json");
    expect(json.exitCode).toBe(2);
    const plan = JSON.parse(json.stdout) as {
      inSync: boolean;
      changes: { op: string; what: string }[];
    };
    expect(plan.inSync).toBe(false);
    expect(plan.changes).toContainEqual({
      op: "add",
      kind: "rule",
      what: expect.stringContaining("lookup 3"),
    });
    const applied = await cli("apply");
    expect(applied.exitCode, applied.stderr).toBe(0);
    expect((await cli("plan")).exitCode).toBe(0);
  });

  it("reverts an apply that is not confirmed in time, and keeps one that is", async () => {
    const { lab, node } = home();
    const stateDir = `${lab.dir}/state`;
    const owned = async () => (await ownedSnapshot(node)).rules.filter((r) => r.table === "3");
    const before = await ownedSnapshot(node);
    const unconfirmed = await cli("apply", "--confirm", "2");
    expect(unconfirmed.exitCode, unconfirmed.stderr).toBe(0);
    expect(unconfirmed.stdout).toContain("netpol confirm");
    expect(await owned()).not.toEqual([]);
    // The revert comes 2 s after the apply finished, from a process of its own.
    const pending = `${stateDir}/netns-${lab.names.ns("home")}.pending.json`;
    const giveUp = Date.now() + 15_000;
    while (existsSync(pending) && Date.now() < giveUp) await new Promise((r) => setTimeout(r, 100));
    expect(await ownedSnapshot(node)).toEqual(before);

    const kept = await cli("apply", "--confirm", "2");
    expect(kept.exitCode, kept.stderr).toBe(0);
    const ns = lab.names.ns("home");
    // The command the apply prints, run as printed, finds the apply it names.
    const printed = /run `netpol (confirm [^`]*)`/.exec(kept.stdout)?.[1] ?? "";
    expect(printed).toBe(`confirm --netns ${ns} --state-dir ${stateDir}`);
    const confirmed = await netpol(printed.split(" "));
    expect(confirmed.exitCode, confirmed.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await owned()).not.toEqual([]);
    expect((await cli("plan")).exitCode).toBe(0);
    const nothing = await netpol(["confirm", "--netns", ns, "--state-dir", stateDir]);
    expect(nothing.exitCode).toBe(1);
    expect(nothing.stderr).toContain("no apply");
  });

  it("down from another --state-dir removes what carries netpol's marks, wireguard-go too, and says so", async () => {
    const { lab, node } = home();
    const applied = await cli("apply");
    expect(applied.exitCode, applied.stderr).toBe(0);
    const wireguardGo = async () =>
      (await execa("pgrep", ["-f", `^wireguard-go ${lab.names.wgHome}$`], { reject: false }))
        .stdout;
    expect(await wireguardGo()).not.toBe("");
    const other = `${lab.dir}/other-state`;
    const down = await netpol(["down", "--netns", lab.names.ns("home"), "--state-dir", other]);
    expect(down.exitCode, down.stderr).toBe(0);
    expect(down.stdout).toContain("recognised by its marks");
    const after = await ownedSnapshot(node);
    expect(after.routes).toEqual([]);
    expect(after.nft).not.toContain("table inet netpol");
    expect(after.links).not.toContain(lab.names.wgHome);
    expect(await wireguardGo()).toBe("");
  });
});
