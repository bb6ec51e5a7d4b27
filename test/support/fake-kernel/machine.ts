import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Host } from "../../../src/apply/host.js";
import type { ProcessIdentity } from "../../../src/apply/state/process-identity.js";
import { type Runner, withRun } from "../../../src/system/runner.js";

/**
 * The machine around a namespace, in memory: a process table whose processes a test starts and
 * kills, and a clock. Each process sees it through a Host, the one netpol's safety paths are
 * given (locks and journals name processes, deadlines read the clock). With the "fake" clock,
 * time moves only when netpol sleeps, so a revert an hour away is carried out at once; with the
 * "real" one (the live layer: links settle in real time) netpol waits as it would.
 */
/** Machines made in this process: part of each one's namespace lock names. */
let machines = 0;

export class FakeMachine {
  private readonly running = new Map<number, string>();
  /** Its namespaces' locks: in one shared directory, named by the process, machine and name. */
  private readonly locks = path.join(
    os.tmpdir(),
    "netpol-fake-locks",
    `${process.pid}-${++machines}`,
  );
  private nextPid = 40_000;
  private time = Date.parse("2030-01-01T00:00:00.000Z");

  constructor(readonly clock: "fake" | "real" = "fake") {}

  now(): number {
    return this.clock === "fake" ? this.time : Date.now();
  }

  /** A process that has just started. */
  start(): ProcessIdentity {
    const pid = this.nextPid++;
    const startTime = String(pid * 7);
    this.running.set(pid, startTime);
    return { pid, startTime };
  }

  kill(who: ProcessIdentity): void {
    if (this.isRunning(who)) this.running.delete(who.pid);
  }

  isRunning(who: ProcessIdentity): boolean {
    return this.running.get(who.pid) === who.startTime;
  }

  /** What code running as `me` sees of this machine. */
  host(me: ProcessIdentity = this.start()): Host {
    return {
      now: () => this.now(),
      sleep: async (ms) => {
        if (this.clock === "real") return sleep(ms);
        this.time += ms;
        // Whatever else runs gets its turn, as it would while this one slept.
        await new Promise((resolve) => setImmediate(resolve));
      },
      self: () => me,
      identityOf: (pid) => {
        const startTime = this.running.get(pid);
        return startTime === undefined ? undefined : { pid, startTime };
      },
      isRunning: (who) => this.isRunning(who),
      stop: (who) => this.kill(who),
      namespaceLock: async (netns) => `${this.locks}-${netns ?? "host"}.lock`,
    };
  }
}

/**
 * `inner` in a process that is killed just as it starts its command number `n + 1` (counted
 * from 1): that command and every later one never run and never return, so the apply stops
 * where it stands and leaves its lock, journal and half-made state behind, as a `kill -9`
 * would. The process leaves `machine`'s table; `died` resolves then.
 */
export function dyingAfter(
  n: number,
  inner: Runner,
  machine: FakeMachine,
  me: ProcessIdentity,
): { runner: Runner; died: Promise<number> } {
  let ran = 0;
  let die!: (after: number) => void;
  const died = new Promise<number>((resolve) => {
    die = resolve;
  });
  const never = new Promise<never>(() => {});
  const runner = withRun(inner, (tool, args, options) => {
    if (ran >= n) {
      machine.kill(me);
      die(ran);
      return never;
    }
    ran++;
    return inner.run(tool, args, options);
  });
  return { runner, died };
}
