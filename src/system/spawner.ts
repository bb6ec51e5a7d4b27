import type { Readable } from "node:stream";
import { execa } from "execa";

/** A process that runs until stopped, whose output is read as it comes. */
export interface LongLived {
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Resolves when it has ended, however it ended. */
  readonly exited: Promise<unknown>;
  stop(): void;
}

/**
 * Starts long-lived tools (the probers), as the Runner runs short ones: argument arrays,
 * inside the namespace, and with a parent-death signal so none outlives netpol.
 */
export interface Spawner {
  readonly netns: string | undefined;
  start(tool: string, args: readonly string[]): LongLived;
}

export function createSpawner(netns?: string): Spawner {
  return {
    netns,
    start(tool, args) {
      const argv = netns ? ["ip", "netns", "exec", netns, tool, ...args] : [tool, ...args];
      const child = execa("setpriv", ["--pdeathsig", "KILL", ...argv], {
        stdin: "ignore",
        buffer: false,
        reject: false,
        env: { LC_ALL: "C", PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` },
      });
      const { stdout, stderr } = child;
      if (!stdout || !stderr) throw new Error(`${tool}: no output streams`);
      return {
        stdout,
        stderr,
        exited: child.then(
          () => undefined,
          () => undefined,
        ),
        stop: () => void child.kill("SIGTERM"),
      };
    },
  };
}

/** A long-lived process per item, kept running until stopped (the probers). */
export interface KeptRunning {
  stop(): Promise<void>;
}

/**
 * Starts one process per item (`start` wires its output) and keeps it running: one that ends
 * is told to `ended` with the last line of its stderr, and started again `againMs` later.
 */
export function keepRunning<T>(
  items: readonly T[],
  start: (item: T, i: number) => LongLived,
  ended: (i: number, item: T, said: string) => void,
  againMs: (item: T) => number,
): KeptRunning {
  let stopped = false;
  const running = new Set<LongLived>();
  const timers = new Set<NodeJS.Timeout>();
  const run = (i: number, item: T) => {
    if (stopped) return;
    const child = start(item, i);
    running.add(child);
    let said = "";
    child.stderr.on("data", (d: Buffer) => {
      said = d.toString().trim().split("\n").pop() ?? said;
    });
    void child.exited.then(() => {
      running.delete(child);
      if (stopped) return;
      ended(i, item, said);
      const t = setTimeout(() => {
        timers.delete(t);
        run(i, item);
      }, againMs(item));
      timers.add(t);
    });
  };
  items.forEach((item, i) => {
    run(i, item);
  });
  return {
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      const exits = [...running].map((c) => c.exited);
      for (const c of running) c.stop();
      await Promise.all(exits);
    },
  };
}
