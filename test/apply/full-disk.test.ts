import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";
import { smallSite } from "../support/small-site.js";

/**
 * The state directory on a tiny tmpfs that fills up while the record is written. The tmpfs is
 * mounted in a mount namespace of the test's own (`unshare -m`, private propagation), held open
 * by a sleeping process, so the machine's mount table is never touched; every netpol command,
 * and the revert timer it starts, runs inside it.
 */
describeLive("an apply whose state files do not fit on the state filesystem", () => {
  let ns: Netns;
  let dir: string;
  let holder: ChildProcess;
  let policy: string;
  const state = () => path.join(dir, "state");
  const inMounts = (cmd: readonly string[]) =>
    execa("nsenter", ["-t", String(holder.pid), "-m", "--", ...cmd], { reject: false });
  const netpol = (verb: string, ...args: string[]) =>
    inMounts([
      process.execPath,
      path.resolve("bin/netpol.js"),
      verb,
      ...args,
      ...["--netns", ns.name, "--state-dir", state()],
    ]);
  const mountTmpfs = async (bytes: number) => {
    await inMounts(["umount", state()]);
    const r = await inMounts([
      "mount",
      "-t",
      "tmpfs",
      "-o",
      `size=${bytes},mode=0700`,
      "tmpfs",
      state(),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
  };
  const addresses = async () => (await ns.exec(["ip", "-br", "address", "show", "lan0"])).stdout;
  /** Every state file there is, each of which must parse. */
  const stateFiles = async () => {
    const r = await inMounts([
      "sh",
      "-c",
      `cd ${state()} && for f in *; do [ -f "$f" ] && echo "$f"; done`,
    ]);
    const names = r.stdout.split("\n").filter((n) => n !== "" && n !== "*");
    for (const name of names.filter((n) => n.endsWith(".json"))) {
      const text = (await inMounts(["cat", path.join(state(), name)])).stdout;
      expect(() => JSON.parse(text), `${name} is whole JSON`).not.toThrow();
    }
    return names;
  };

  beforeAll(async () => {
    ns = await createNetns("full");
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-full-"));
    await mkdir(state(), { mode: 0o700 });
    policy = path.join(dir, "policy.yaml");
    await smallSite(ns, policy);
    // A record of several pages: the policy text it holds carries a long comment.
    await writeFile(policy, `${await readFile(policy, "utf8")}# ${"padding ".repeat(3000)}\n`);
    holder = spawn("unshare", ["-m", "--propagation", "private", "sleep", "infinity"], {
      stdio: "ignore",
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
  });
  afterAll(async () => {
    if (holder?.pid) process.kill(holder.pid, "SIGKILL");
    await ns?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it("fails the --confirm apply with ENOSPC and the record's path (exit 1), rolled back, revert disarmed; status, plan and down still work", async () => {
    // Room for the lock, the pending revert and the journal, not for the record.
    await mountTmpfs(4 * 4096);
    const applied = await netpol("apply", policy, "--site", "vps", "--confirm", "30");
    expect(applied.exitCode, applied.stderr).toBe(1);
    expect(applied.stderr).toContain("ENOSPC");
    expect(applied.stderr).toContain(path.join(state(), `netns-${ns.name}.json`));
    expect(applied.stderr).not.toMatch(/internal error|please report/i);
    expect(await addresses()).not.toContain("10.9.0.1");
    const left = await stateFiles();
    expect(left.filter((n) => /pending|journal/.test(n))).toEqual([]);

    const status = await netpol("status");
    expect(status.exitCode, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/no policy|nothing applied/i);
    const plan = await netpol("plan", policy, "--site", "vps");
    // 2: changes to make.
    expect(plan.exitCode, plan.stderr).toBe(2);
    expect(plan.stdout).toContain("10.9.0.1");
    const down = await netpol("down");
    expect(down.exitCode, down.stderr).toBe(0);
  });

  it("refuses before any change when even the pending revert does not fit", async () => {
    await mountTmpfs(4096);
    const applied = await netpol("apply", policy, "--site", "vps", "--confirm", "30");
    expect(applied.exitCode, applied.stderr).toBe(1);
    expect(applied.stderr).toContain("ENOSPC");
    expect(applied.stderr).not.toMatch(/internal error|please report/i);
    expect(await addresses()).not.toContain("10.9.0.1");
    expect((await stateFiles()).filter((n) => /pending|journal/.test(n))).toEqual([]);
  });
});
