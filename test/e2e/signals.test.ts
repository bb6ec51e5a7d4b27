import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { takeDown } from "../../src/apply/down.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import type { PolicyInput } from "../../src/apply/source/input.js";
import { describeLive } from "../support/layers.js";
import { type CrashSite, crashSite, fullState } from "../support/state.js";

// 40 bridges with an address each and 41 egresses: some 330 kernel objects, a change of
// several hundred milliseconds to go through.
const BRIDGES = 40;

/** `n` instants spread evenly over [from, to) ms. */
const instants = (n: number, from: number, to: number) =>
  Array.from({ length: n }, (_, i) => Math.round(from + ((to - from) * (i + 0.5)) / n));

describeLive("signals during a CLI apply on a live namespace", () => {
  let site: CrashSite;
  let big: PolicyInput;
  let bigger: PolicyInput;
  let small: PolicyInput;
  const files: Record<"big" | "bigger" | "small", string> = { big: "", bigger: "", small: "" };

  beforeAll(async () => {
    site = await crashSite();
    big = site.policy(BRIDGES);
    bigger = site.policy(BRIDGES, 30);
    small = site.policy(2);
    files.big = await site.file("big.yaml", big);
    files.bigger = await site.file("bigger.yaml", bigger);
    files.small = await site.file("small.yaml", small);
  });
  afterAll(async () => {
    await site?.destroy();
  });

  const target = () => site.target();
  const journal = () => path.join(site.stateDir, `netns-${site.ns.name}.journal.json`);

  async function journalAppears(child: Promise<unknown>) {
    const giveUp = Date.now() + 30_000;
    let done = false;
    void child.finally(() => {
      done = true;
    });
    while (!existsSync(journal()) && !done && Date.now() < giveUp) await sleep(2);
  }

  /**
   * A CLI apply in its own process group, as a job of a terminal is; `signal` goes to the whole
   * group (a hang-up or Ctrl-C reaches every process of the job) `ms` after the apply began to
   * change the kernel (its journal appeared).
   */
  async function signalledApply(file: string, ms: number, signal: NodeJS.Signals) {
    const child = execa(process.execPath, ["bin/netpol.js", "apply", ...site.cliArgs(file)], {
      reject: false,
      detached: true,
    });
    await journalAppears(child);
    await sleep(ms);
    try {
      process.kill(-(child.pid as number), signal);
    } catch {
      // Already gone: it finished before the signal.
    }
    return child;
  }

  /**
   * The site holding `from` and nothing else: a record of its own (the networks an earlier
   * round removed are not kept in it as retired), so every round starts alike.
   */
  async function holding(from: PolicyInput) {
    await takeDown(target(), "test");
    await applySite(target(), from, "test");
  }

  /** How long a CLI apply of `file` changes the kernel, from a settled `from`. */
  async function changeWindow(from: PolicyInput, file: string) {
    await holding(from);
    const child = execa(process.execPath, ["bin/netpol.js", "apply", ...site.cliArgs(file)]);
    await journalAppears(child);
    const opened = Date.now();
    while (existsSync(journal())) await sleep(2);
    await child;
    return Date.now() - opened;
  }

  it("finishes every apply hung up at a random instant: exit 0, the kernel in sync with the plan", async () => {
    let lateExits = 0;
    const creating = await changeWindow(small, files.big);
    const growing = await changeWindow(big, files.bigger);
    for (const [from, to, file, window] of [
      [small, big, files.big, creating],
      [big, bigger, files.bigger, growing],
    ] as const) {
      for (const ms of instants(4, 0, window)) {
        await holding(from);
        const r = await signalledApply(file, ms, "SIGHUP");
        // A hang-up in the last instant of its exit, once Node has let its handlers go, ends
        // it by the signal: the change was complete by then (checked below), only the exit
        // code is lost. Any other ending is a failure.
        if (r.signal === "SIGHUP" && r.stdout.includes("applied and verified")) lateExits++;
        else {
          expect(r.signal, `SIGHUP ${ms} ms into ${window} ms`).toBeUndefined();
          expect(r.exitCode, r.stderr).toBe(0);
        }
        const { plan, interrupted } = await planSite(target(), to);
        expect(
          plan.changes,
          `SIGHUP ${ms} ms into ${window} ms: ${JSON.stringify(plan.changes, (_k, v) => (typeof v === "bigint" ? String(v) : v)).slice(0, 2000)}\n${r.stdout.slice(-3000)}`,
        ).toEqual([]);
        expect(interrupted).toBeUndefined();
        expect(existsSync(journal())).toBe(false);
      }
    }
    console.log(
      `hung-up applies ended by the signal after they printed their result: ${lateExits} of 8`,
    );
    expect(lateExits).toBeLessThan(3);
  }, 300_000);

  it("rolls back an apply stopped by SIGTERM or SIGINT at a random instant, never leaving it half", async () => {
    const creating = await changeWindow(small, files.big);
    const outcomes: string[] = [];
    for (const [i, ms] of instants(6, 0, creating).entries()) {
      await holding(small);
      const before = await fullState(site);
      const signal = i % 2 === 0 ? "SIGTERM" : "SIGINT";
      const r = await signalledApply(files.big, ms, signal);
      expect(existsSync(journal())).toBe(false);
      if (r.signal === signal && r.stdout.includes("applied and verified")) {
        // In the last instant of its exit, once Node has let its handlers go (as for SIGHUP
        // above): the change was complete, only the exit code is lost.
        expect((await planSite(target(), big)).plan.changes).toEqual([]);
        outcomes.push("ended by the signal after it finished");
        continue;
      }
      expect(r.signal, `${signal} ${ms} ms into ${creating} ms`).toBeUndefined();
      if (r.exitCode === 0) {
        // It was through before the signal came.
        expect((await planSite(target(), big)).plan.changes).toEqual([]);
        outcomes.push("finished");
      } else {
        expect(r.exitCode, r.stderr).toBe(1);
        if (r.stderr.includes("no safe point left")) {
          // Past its last safe point: it finished, and says the stop came too late.
          expect((await planSite(target(), big)).plan.changes).toEqual([]);
        } else {
          // Stopped at a safe point (or a tool it was starting got the signal meant for the
          // job, and the apply failed): the previous state, object by object.
          expect(r.stderr).toMatch(
            new RegExp(
              `interrupted by ${signal} (during the change: rolled back|before any change)|killed with ${signal}[^]*the previous state was restored`,
            ),
          );
          expect(await fullState(site)).toEqual(before);
        }
        outcomes.push(r.stderr.includes("rolled back") ? "rolled back" : "other");
      }
    }
    console.log(`SIGTERM/SIGINT outcomes: ${outcomes.join(", ")}`);
    expect(outcomes.filter((o) => o === "rolled back").length).toBeGreaterThan(0);
  }, 300_000);

  it("keeps serve answering on SIGHUP, and reconciles at once what it could not hear of", async () => {
    await holding(small);
    const ns = site.ns.name;
    const token = path.join(site.dir, "serve.token");
    await writeFile(token, "t0ken-for-the-signals-test-0123456789\n", { mode: 0o600 });
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const serve = execa(
      "ip",
      [
        ...["netns", "exec", ns, process.execPath, "bin/netpol.js", "serve", "--interval", "0"],
        ...["--token-file", token, "--listen", `127.0.0.1:${port}`, "--site", "home"],
        ...["--netns", ns, "--state-dir", site.stateDir, "--key-dir", site.dir],
      ],
      { reject: false },
    );
    const healthz = async () =>
      (
        await execa(
          "ip",
          ["netns", "exec", ns, "curl", "-sf", `http://127.0.0.1:${port}/healthz`],
          {
            reject: false,
          },
        )
      ).exitCode === 0;
    const table = async () =>
      (await site.ns.run(["nft", "list", "tables"])).stdout.includes("inet netpol");
    const until = async (what: () => Promise<boolean>, ms: number) => {
      const giveUp = Date.now() + ms;
      while (!(await what()) && Date.now() < giveUp) await sleep(100);
      return what();
    };
    let said = "";
    serve.stdout?.on("data", (d: Buffer) => {
      said += d.toString();
    });
    try {
      expect(await until(healthz, 20_000)).toBe(true);
      // Its first round done (it holds the site), it waits on the kernel's events.
      expect(await until(async () => said.includes('"watching"'), 20_000)).toBe(true);
      // nftables has no event the resident follows: with --interval 0 nothing puts it back...
      await site.ns.exec(["nft", "delete", "table", "inet", "netpol"]);
      await sleep(1500);
      expect(await table()).toBe(false);
      // ...until the reload, which reads everything again and reconciles.
      for (let i = 0; i < 3; i++) serve.kill("SIGHUP");
      expect(await until(table, 15_000)).toBe(true);
      expect(serve.exitCode).toBeNull();
      expect(await healthz()).toBe(true);
      expect((await planSite(target(), small)).plan.changes).toEqual([]);
    } finally {
      serve.kill("SIGTERM");
      await serve;
    }
  }, 60_000);
});
