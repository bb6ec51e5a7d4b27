import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import { stateFile } from "../../src/apply/state/files.js";
import { targetOf } from "../../src/apply/target.js";
import { parsePolicy } from "../../src/policy/load.js";
import type { Stamped } from "../../src/resident/events.js";
import { inForceFeed } from "../../src/resident/policy-feed.js";
import { Resident } from "../../src/resident/resident.js";
import type { Runner } from "../../src/system/runner.js";
import type { Session } from "../../src/system/session.js";
import type { FakeKernel } from "../support/fake-kernel/kernel.js";
import { fakeNode, ipJson } from "../support/node.js";

/** Two egresses through ext0: a reaction to ext0's return writes two routes, in two lines. */
const policyText = (third: boolean) => `version: 1
sites:
  home:
    interfaces: [{ name: lan0, kind: physical }]
    networks:
      - { name: a, cidr: 192.168.6.0/24, interface: lan0, address: 192.168.6.1 }
      - { name: b, cidr: 192.168.7.0/24, interface: lan0, address: 192.168.7.1 }
${third ? "      - { name: c, cidr: 192.168.8.0/24, interface: lan0, address: 192.168.8.1 }\n" : ""}    external: [{ name: ext0 }]
    egress:
      - { name: out-a, from: [a], via: ext0, except: [10.0.0.0/8], table: 3, priority: 200 }
      - { name: out-b, from: [b], via: ext0, table: 4, priority: 300 }
`;
const input = (third: boolean) => ({
  ...parsePolicy(policyText(third), "policy.yaml"),
  keyDir: "",
  site: "home",
});

/** An identity no process has: what a holder killed with -9 leaves in its files. */
const DEAD = { pid: 4_194_303, startTime: "1" };

/**
 * A runner on the fake kernel that stops dead once `budget` operations are spent (a command,
 * or a line written to a long-lived tool): the operation under way and every later one never
 * finish, and the lock and journal it held name a dead process, as after kill -9.
 */
function dying(kernel: FakeKernel, stateDir: string) {
  const inner = kernel.runner();
  let budget = Number.POSITIVE_INFINITY;
  let dead = false;
  const never = new Promise<never>(() => undefined);
  const spend = () => {
    if (dead) return false;
    if (budget-- > 0) return true;
    dead = true;
    return false;
  };
  const runner: Runner = {
    netns: inner.netns,
    get spawned() {
      return inner.spawned;
    },
    run: (tool, args, options) => (spend() ? inner.run(tool, args, options) : never),
    session: (tool, args, options) => inner.session(tool, args, options),
    start: (tool, args, options) => {
      const session = inner.start(tool, args, options);
      const guarded: Session = {
        write: (text) => {
          const lines = text.split("\n").filter(Boolean);
          const taken: string[] = [];
          for (const l of lines) {
            if (!spend()) break;
            taken.push(l);
          }
          if (taken.length > 0) session.write(`${taken.join("\n")}\n`);
        },
        onLine: (l) => session.onLine((line) => dead || l(line)),
        onErrorLine: (l) => session.onErrorLine((line) => dead || l(line)),
        exited: session.exited,
        stop: () => session.stop(),
      };
      return guarded;
    },
  };
  return {
    runner,
    dieAfter: (n: number) => {
      budget = n;
    },
    get dead() {
      return dead;
    },
    /** What kill -9 leaves: the lock and the journal name a process that is gone. */
    async buried() {
      const files = targetOf(inner, stateDir).files;
      for (const [suffix, field] of [
        [".lock", "holder"],
        [".journal.json", "writer"],
      ] as const) {
        const file = stateFile(files, suffix);
        if (!existsSync(file)) continue;
        const content = JSON.parse(await readFile(file, "utf8"));
        await writeFile(file, JSON.stringify({ ...content, [field]: DEAD }), { mode: 0o600 });
      }
    },
  };
}

async function until(what: () => boolean, ms = 5000) {
  const giveUp = Date.now() + ms;
  while (!what() && Date.now() < giveUp) await new Promise((r) => setTimeout(r, 2));
}

describe("a resident killed with -9 on a fake kernel", () => {
  async function site() {
    const node = fakeNode();
    await node.run("ip", ["link", "set", "dev", "lo", "up"]);
    await node.run("ip", ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
    await node.run("ip", ["tuntap", "add", "ext0", "mode", "tun"]);
    for (const d of ["lan0", "lan1", "ext0"]) await node.run("ip", ["link", "set", d, "up"]);
    const stateDir = await mkdtemp(path.join(os.tmpdir(), "netpol-rescrash-"));
    const death = dying(node.kernel, stateDir);
    const target = targetOf(death.runner, stateDir);
    const resident = new Resident({
      target,
      feed: inForceFeed(target, input(false)),
      by: "test",
      intervalMs: 0,
    });
    const events: Stamped[] = [];
    resident.bus.on((e) => events.push(e));
    void resident.run(new AbortController().signal, input(false));
    await until(() => events.some((e) => e.event === "watching"));
    // Whatever the start-up's own events set off has run.
    await new Promise((r) => setTimeout(r, 300));
    const after = () => targetOf(node.kernel.runner(), stateDir);
    const egressRoutes = async () =>
      (await ipJson(node, ["route", "show", "table", "all"])).filter((r) => r.dev === "ext0");
    return { node, stateDir, death, resident, events, after, egressRoutes };
  }

  /** After the kill, one apply of `policy` converges, and a plan then finds nothing to do. */
  async function convergesAfter(s: Awaited<ReturnType<typeof site>>, third: boolean, at: string) {
    await s.death.buried();
    const done = await applySite(s.after(), input(third), "test");
    expect(done.record.policyHash, at).toBe(input(third).hash);
    const { plan, interrupted } = await planSite(s.after(), input(third));
    expect(plan.changes, at).toEqual([]);
    expect(interrupted, at).toBeUndefined();
    expect(await s.egressRoutes(), at).toHaveLength(2);
    // Nothing the killed change made is left unowned: lan0 holds the converged policy's addresses.
    const lan = (await ipJson(s.node, ["address", "show", "dev", "lan0"]))[0];
    const addresses = ((lan?.addr_info ?? []) as { local: string; family: string }[])
      .filter((a) => a.family === "inet")
      .map((a) => a.local);
    expect(addresses.sort(), at).toEqual(
      ["192.168.6.1", "192.168.7.1", ...(third ? ["192.168.8.1"] : [])].sort(),
    );
  }

  it("in the middle of a reaction to a device coming back, at every line: one apply converges", async () => {
    for (let k = 0; k <= 2; k++) {
      const s = await site();
      try {
        expect(await s.egressRoutes()).toHaveLength(2);
        await s.node.run("ip", ["link", "set", "ext0", "down"]);
        expect(await s.egressRoutes()).toHaveLength(0);
        // The reaction's request is its two lines and the fence: killed after k of them.
        s.death.dieAfter(k);
        await s.node.run("ip", ["link", "set", "ext0", "up"]);
        await until(() => s.death.dead);
        expect(s.death.dead, `k=${k}`).toBe(true);
        expect((await s.egressRoutes()).length, `k=${k}`).toBe(Math.min(k, 2));
        await convergesAfter(s, false, `killed after ${k} lines of the reaction`);
      } finally {
        await rm(s.stateDir, { recursive: true, force: true });
      }
    }
  });

  it("in the middle of a policy change through it, at every step: one apply converges", async () => {
    let sawJournal = 0;
    for (let k = 0; k <= 14; k++) {
      const s = await site();
      try {
        s.death.dieAfter(k);
        void s.resident.apply(input(true), "test").catch(() => undefined);
        await until(() => s.death.dead, 1000);
        if (existsSync(path.join(s.stateDir, "netns-fake.journal.json"))) sawJournal++;
        // Either policy may be the one to converge to: the operator runs one apply of theirs.
        await convergesAfter(s, k % 2 === 0, `killed after ${k} steps of the change`);
      } finally {
        await rm(s.stateDir, { recursive: true, force: true });
      }
    }
    // The kill came after the journal (the change under way) at least once.
    expect(sawJournal).toBeGreaterThan(0);
  });
});
