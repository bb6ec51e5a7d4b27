import { readFileSync } from "node:fs";
import * as z from "zod";

/**
 * A process named by its pid and its start time (field 22 of /proc/PID/stat, in clock ticks
 * since boot): a pid the kernel has since handed to another process no longer matches.
 */
export const processIdentity = z.strictObject({
  pid: z.number().int().positive(),
  startTime: z.string().regex(/^\d+$/),
});
export type ProcessIdentity = z.infer<typeof processIdentity>;

function startTimeOf(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after its ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[22 - 3];
}

export function identityOf(pid: number): ProcessIdentity | undefined {
  const startTime = startTimeOf(pid);
  return startTime === undefined ? undefined : { pid, startTime };
}

export function thisProcess(): ProcessIdentity {
  const me = identityOf(process.pid);
  if (!me) throw new Error("unreachable: /proc/self/stat is unreadable");
  return me;
}

export function isRunning(who: ProcessIdentity): boolean {
  return startTimeOf(who.pid) === who.startTime;
}

/** Signals the process only if it is still the one named, never a recycled pid. */
export function signalIfRunning(who: ProcessIdentity, signal: NodeJS.Signals = "SIGTERM"): void {
  if (!isRunning(who)) return;
  try {
    process.kill(who.pid, signal);
  } catch {
    // It exited between the check and the signal.
  }
}
