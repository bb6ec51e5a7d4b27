import { existsSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import type { Host } from "../../src/apply/host.js";
import { confirmApply, revertIfUnconfirmed, revertNow } from "../../src/apply/rollback/confirm.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import { stateFile } from "../../src/apply/state/files.js";
import { withLock } from "../../src/apply/state/lock.js";
import { loadPending } from "../../src/apply/state/pending.js";
import { type Target, targetOf } from "../../src/apply/target.js";
import type { Runner } from "../../src/system/runner.js";
import { dyingAfter, FakeMachine } from "../support/fake-kernel/machine.js";
import { emptyInput, labInput } from "../support/lab.js";
import type { LabHome } from "../support/lab-home.js";
import { ownedSnapshot } from "../support/node.js";

/**
 * Crash, lock, journal and confirm: the paths that keep a machine reachable when an apply is
 * killed half-way or not confirmed in time. The same scenarios on the fake kernel (unit layer)
 * and on the lab; processes die and clocks move by the test's hand (FakeMachine), and on the
 * lab the clock is the real one, as links settle in real time there.
 */
export function safetyScenarios(
  start: () => Promise<LabHome>,
  options: { readonly clock: "fake" | "real"; readonly deathEvery: number },
): void {
  let home: LabHome;
  let machine: FakeMachine;
  beforeAll(async () => {
    home = await start();
  });
  afterAll(async () => {
    await home?.down();
  });

  /** The home site as seen by one process of the machine. */
  const target = (host: Host = machine.host(), runner: Runner = home.node.runner()): Target =>
    targetOf(runner, `${home.lab.dir}/state`, { host });
  const file = (t: Target, suffix: string) => stateFile(t.files, suffix);
  const policy = () => labInput(home.lab, "home");
  const empty = () => emptyInput(home.lab, "home");

  beforeEach(async () => {
    machine = new FakeMachine(options.clock);
    await applySite(target(), empty(), "test");
  });

  /**
   * An apply of `input` by a process killed as it starts its command `n + 1`: what it leaves.
   * Resolves once it died, or with "finished" when it ran fewer commands than that.
   */
  async function killedApply(n: number, confirm?: { seconds: number; timer: Host }) {
    const me = machine.start();
    const dying = dyingAfter(n, home.node.runner(), machine, me);
    const run = applySite(
      target(machine.host(me), dying.runner),
      policy(),
      "killed",
      confirm
        ? {
            confirm: {
              seconds: confirm.seconds,
              startTimer: () => confirm.timer.self().pid,
            },
          }
        : {},
    );
    return Promise.race([dying.died, run.then(() => "finished" as const)]);
  }

  /** How many commands a whole apply of the policy runs, from nothing. */
  async function commandsOfAnApply(): Promise<number> {
    const runner = home.node.runner();
    await applySite(target(machine.host(), runner), policy(), "test");
    await applySite(target(), empty(), "test");
    return runner.spawned;
  }

  it("a killed apply leaves its lock and journal; the next says so, takes the lock over, owns what it made and finishes", async () => {
    const t = target();
    const bare = await ownedSnapshot(home.node);
    const total = await commandsOfAnApply();
    const expected = await (async () => {
      await applySite(t, policy(), "test");
      const state = await ownedSnapshot(home.node);
      await applySite(t, empty(), "test");
      return state;
    })();
    let journals = 0;
    for (let n = 0; n < total; n += options.deathEvery) {
      const died = await killedApply(n);
      expect(died, `killed at command ${n + 1}`).toBe(n);
      expect(existsSync(file(t, ".lock")), `lock left at ${n}`).toBe(true);
      const journal = existsSync(file(t, ".journal.json"));
      if (journal) journals++;
      const next = target();
      // The next plan names the interrupted apply; the next apply takes the stale lock over.
      const planned = await planSite(next, policy());
      expect(planned.interrupted !== undefined, `plan after a kill at ${n}`).toBe(journal);
      const done = await applySite(next, policy(), "next");
      if (journal) expect(done.notes.join("\n")).toMatch(/was interrupted.*now holds/);
      expect((await planSite(next, policy())).plan.changes, `in sync after ${n}`).toEqual([]);
      expect(await ownedSnapshot(home.node), `state after a kill at ${n}`).toEqual(expected);
      expect(existsSync(file(t, ".journal.json"))).toBe(false);
      // Everything it made is netpol's: an empty policy leaves nothing of it.
      await applySite(next, empty(), "next");
      expect(await ownedSnapshot(home.node), `left after a kill at ${n}`).toEqual(bare);
    }
    // Some kills landed while it was changing the kernel, with its journal on disk.
    expect(journals).toBeGreaterThan(0);
  });

  it("refuses an apply while another holds the lock, naming its pid, and takes the lock of a dead one over", async () => {
    const holder = machine.start();
    let release!: () => void;
    const held = withLock(
      target(machine.host(holder)),
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    );
    while (!existsSync(file(target(), ".lock"))) await new Promise((r) => setImmediate(r));
    await expect(applySite(target(), policy(), "second")).rejects.toMatchObject({
      code: "NETPOL_E_LOCKED",
      message: expect.stringContaining(`pid ${holder.pid}`),
    });
    machine.kill(holder);
    expect((await applySite(target(), policy(), "after")).changed).toBe(true);
    release();
    await held;
  });

  it("refuses an apply while a revert is pending, with the confirm command for this namespace and state directory; confirm keeps it", async () => {
    const timer = machine.host();
    const before = await ownedSnapshot(home.node);
    expect(await killedApply(Number.POSITIVE_INFINITY, { seconds: 60, timer })).toBe("finished");
    const t = target();
    const { stateDir, naming } = t.files;
    await expect(applySite(t, empty(), "second")).rejects.toMatchObject({
      code: "NETPOL_E_CONFIRM_PENDING",
      message: expect.stringContaining(
        `netpol confirm --netns ${naming.netns} --state-dir ${stateDir}`,
      ),
    });
    await confirmApply(t);
    expect(await loadPending(t.files)).toBeUndefined();
    expect(machine.isRunning(timer.self())).toBe(false);
    expect(await ownedSnapshot(home.node)).not.toEqual(before);
    expect((await applySite(t, policy(), "again")).changed).toBe(false);
  });

  it("reverts an unconfirmed apply at its deadline, from the timer, to the exact state before", async () => {
    const before = await ownedSnapshot(home.node);
    const timer = machine.host();
    expect(await killedApply(Number.POSITIVE_INFINITY, { seconds: 2, timer })).toBe("finished");
    const id = (await loadPending(target().files))?.id ?? "";
    expect(await ownedSnapshot(home.node)).not.toEqual(before);
    expect(await revertIfUnconfirmed(target(timer), id)).toBe("reverted");
    expect(await ownedSnapshot(home.node)).toEqual(before);
    expect(await loadPending(target().files)).toBeUndefined();
  });

  it("reverts a killed --confirm apply from its timer, however far it got", async () => {
    const before = await ownedSnapshot(home.node);
    const total = await commandsOfAnApply();
    for (let n = 0; n < total; n += options.deathEvery) {
      const timer = machine.host();
      await killedApply(n, { seconds: 2, timer });
      const pending = await loadPending(target().files);
      // Killed before the pending file was written: nothing was changed, and nothing is pending.
      if (pending) expect(await revertIfUnconfirmed(target(timer), pending.id)).toBe("reverted");
      expect(await ownedSnapshot(home.node), `state after a kill at ${n}`).toEqual(before);
      expect(existsSync(file(target(), ".journal.json"))).toBe(false);
    }
  });

  it("carries out a pending revert whose timer died before the next apply, and says so", async () => {
    const before = await ownedSnapshot(home.node);
    const timer = machine.host();
    expect(await killedApply(Number.POSITIVE_INFINITY, { seconds: 60, timer })).toBe("finished");
    machine.kill(timer.self());
    // Applying nothing new: the revert comes first, then the empty policy finds nothing to do.
    const next = await applySite(target(), empty(), "next");
    expect(next.notes.join("\n")).toMatch(/whose revert timer was gone has been reverted/);
    expect(await ownedSnapshot(home.node)).toEqual(before);
  });

  it("refuses a confirm after the deadline and, its revert timer gone, reverts then and there", async () => {
    const before = await ownedSnapshot(home.node);
    const timer = machine.host();
    expect(await killedApply(Number.POSITIVE_INFINITY, { seconds: 1, timer })).toBe("finished");
    machine.kill(timer.self());
    await machine.host().sleep(1_500);
    await expect(confirmApply(target())).rejects.toMatchObject({
      code: "NETPOL_E_CONFIRM_EXPIRED",
      message: expect.stringContaining("has been reverted now"),
    });
    expect(await ownedSnapshot(home.node)).toEqual(before);
    expect(await loadPending(target().files)).toBeUndefined();
  });

  it("reverts at once with netpol revert, and then has nothing to confirm", async () => {
    const before = await ownedSnapshot(home.node);
    const timer = machine.host();
    expect(await killedApply(Number.POSITIVE_INFINITY, { seconds: 60, timer })).toBe("finished");
    await revertNow(target());
    expect(await ownedSnapshot(home.node)).toEqual(before);
    await expect(confirmApply(target())).rejects.toMatchObject({
      code: "NETPOL_E_NO_CONFIRM_PENDING",
    });
  });
}
