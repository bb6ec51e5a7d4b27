import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { planSite } from "../../src/apply/site/plan-site.js";
import type { PolicyInput } from "../../src/apply/source/input.js";
import { describeLive } from "../support/layers.js";
import { type CrashSite, crashSite } from "../support/state.js";

/** The processes running in namespace `ns` but its WireGuard interfaces' wireguard-go. */
async function leftIn(ns: string): Promise<string[]> {
  const { stdout } = await execa("ip", ["netns", "pids", ns]);
  const left: string[] = [];
  for (const pid of stdout.split("\n").filter(Boolean)) {
    const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (argv[0] !== "" && !argv[0]?.endsWith("wireguard-go")) left.push(argv.join(" "));
  }
  return left;
}

describeLive("a resident killed with -9 on a live namespace", () => {
  let site: CrashSite;
  let policy: PolicyInput;
  let file: string;

  beforeAll(async () => {
    site = await crashSite();
    policy = site.policy(2);
    file = await site.file("small.yaml", policy);
  });
  afterAll(async () => {
    await site?.destroy();
  });

  const egressRoute = async () =>
    (await site.ns.run(["ip", "route", "show", "table", "3", "dev", "ext0"])).stdout.includes(
      "default",
    );

  it("leaves, killed at any instant of a reaction and its confirmation, what one apply converges from", async () => {
    const cli = (...args: string[]) =>
      execa(process.execPath, ["bin/netpol.js", ...args], { reject: false });
    expect((await cli("apply", ...site.cliArgs(file))).exitCode).toBe(0);
    let reacted = 0;
    // From the device's return: inside the reaction, then the reconcile that confirms it.
    for (const ms of [0, 1, 2, 4, 7, 11, 16, 30, 60, 110, 130, 170]) {
      const watcher = execa(process.execPath, [
        "bin/netpol.js",
        "watch",
        ...site.cliArgs(file),
        "--json",
        "--interval",
        "0",
      ]);
      const lines: string[] = [];
      watcher.stdout?.on("data", (d: Buffer) => lines.push(...d.toString().split("\n")));
      while (!lines.some((l) => l.includes('"watching"'))) await sleep(10);
      await sleep(200);
      await site.ns.exec(["ip", "link", "set", "dev", "ext0", "down"]);
      await site.ns.exec(["ip", "link", "set", "dev", "ext0", "up"]);
      await sleep(ms);
      watcher.kill("SIGKILL");
      await watcher.catch(() => undefined);
      if (lines.some((l) => l.includes('"reaction"'))) reacted++;
      // Its ip monitor and ip sessions died with it.
      await sleep(50);
      expect(await leftIn(site.ns.name), `killed ${ms} ms after the return`).toEqual([]);
      const again = await cli("apply", ...site.cliArgs(file));
      expect(again.exitCode, again.stderr).toBe(0);
      const { plan, interrupted } = await planSite(site.target(), policy);
      expect(plan.changes, `killed ${ms} ms after the return`).toEqual([]);
      expect(interrupted).toBeUndefined();
      expect(await egressRoute()).toBe(true);
    }
    // Some kills came after the reaction, some before it.
    expect(reacted).toBeGreaterThan(0);
    expect(reacted).toBeLessThan(12);
  }, 180_000);
});
