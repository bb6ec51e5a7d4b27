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
