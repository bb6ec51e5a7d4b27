import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { realHost } from "../../src/apply/host.js";
import { withLock } from "../../src/apply/state/lock.js";
import { namespaceLockFile } from "../../src/apply/state/namespace-identity.js";
import { targetOf } from "../../src/apply/target.js";
import { createRunner } from "../../src/system/runner.js";
import { describeLive } from "../support/layers.js";
import { liveNode, ownedSnapshot } from "../support/node.js";
import { type CrashSite, crashSite, emptyPolicy } from "../support/state.js";

/**
 * Issue 18, item 5, on a real namespace: two state directories on one namespace. Two applies
 * at once used to both fail (one saying only wireguard-go's banner); the lock belongs to the
 * namespace now, so one applies and the other is refused, told which state directory holds it.
 */
describeLive("one apply per namespace, whatever the state directory", () => {
  let site: CrashSite;
  let file: string;
  let empty: string;
  let locks: string;
  const dirs = () => ({ a: path.join(site.dir, "state-a"), b: path.join(site.dir, "state-b") });

  beforeAll(async () => {
    site = await crashSite();
    file = await site.file("policy.yaml", site.policy(2));
    empty = await site.file("empty.yaml", emptyPolicy(site));
    locks = path.join(site.dir, "locks");
    await mkdir(locks);
  });
  afterAll(async () => {
    // Whichever state directory applied takes it down.
    for (const stateDir of Object.values(dirs())) await down(stateDir);
    await site?.destroy();
  });

  // The namespace locks live in the test's directory, not in /run.
  const env = () => ({ ...process.env, NETPOL_LOCK_DIR: locks });
  const apply = (stateDir: string, policy = file) =>
    execa(
      process.execPath,
      [
        "bin/netpol.js",
        "apply",
        policy,
        "--site",
        "home",
        "--netns",
        site.ns.name,
        "--state-dir",
        stateDir,
      ],
      { reject: false, env: env() },
    );
  const down = (stateDir: string) =>
    execa(
      process.execPath,
      ["bin/netpol.js", "down", "--netns", site.ns.name, "--state-dir", stateDir],
      { reject: false, env: env() },
    );
  const record = (stateDir: string) =>
    existsSync(path.join(stateDir, `netns-${site.ns.name}.json`));

  it("refuses an apply from a second state directory while the first holds the namespace, naming it; nothing changes", async () => {
    const { a, b } = dirs();
    const before = await ownedSnapshot(liveNode(site.ns.name));
    const host = {
      ...realHost,
      namespaceLock: (ns: string | undefined) => namespaceLockFile(ns, locks),
    };
    const holder = targetOf(createRunner(site.ns.name), a, { host });
    const refused = await withLock(holder, () => apply(b), { command: "apply (the test)" });
    expect(refused.exitCode, refused.stdout).toBe(1);
    expect(refused.stderr).toContain(`another apply (pid ${process.pid})`);
    expect(refused.stderr).toContain(`namespace ${site.ns.name}`);
    expect(refused.stderr).toContain(`with its state in ${a}`);
    expect(await ownedSnapshot(liveNode(site.ns.name))).toEqual(before);
    expect(record(b)).toBe(false);
  });

  it("two applies at once from two state directories: one applies, the other is refused as busy", async () => {
    const { a, b } = dirs();
    const [first, second] = await Promise.all([apply(a), apply(b)]);
    const results = [
      { dir: a, other: b, r: first },
      { dir: b, other: a, r: second },
    ];
    const won = results.filter((x) => x.r.exitCode === 0);
    const lost = results.filter((x) => x.r.exitCode !== 0);
    expect(
      won.map((x) => x.dir),
      results.map((x) => x.r.stderr).join("\n"),
    ).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const [winner] = won;
    const [loser] = lost;
    expect(loser?.r.stderr).toMatch(/another apply \(pid \d+\) is running on namespace/);
    expect(loser?.r.stderr).toContain(`with its state in ${winner?.dir}`);
    expect(loser?.r.stderr).not.toContain("wireguard-go");
    expect(record(winner?.dir ?? "")).toBe(true);
    expect(record(loser?.dir ?? "")).toBe(false);
    // The namespace's lock is gone with its holder.
    const { readdir } = await import("node:fs/promises");
    expect(await readdir(locks)).toEqual([]);
    const reset = await apply(winner?.dir ?? "", empty);
    expect(reset.exitCode, reset.stderr).toBe(0);
  });
});
