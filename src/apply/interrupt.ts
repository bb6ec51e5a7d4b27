import { NetpolError } from "../errors.js";
import { type Runner, withRun } from "../system/runner.js";

/**
 * Asked at each safe point of a change (before the next system command): the name of the
 * signal that asked the apply to stop (SIGINT, SIGTERM), or undefined to go on. The CLI
 * answers it from its signal handlers (cli/signals.ts); the core never touches `process`.
 */
export type StopRequest = () => string | undefined;

/** The error an apply stopped by a signal throws; the rollback turns it into "rolled back". */
export function interruptedBy(signal: string, where: string): NetpolError {
  return new NetpolError("NETPOL_E_INTERRUPTED", `interrupted by ${signal} ${where}`);
}

/**
 * `runner` with a safe point before each command: once a stop is asked no new command starts,
 * the one at work runs to its end (a tool is never killed mid-write) and the apply's rollback
 * takes over from the error thrown.
 */
export function stoppable(runner: Runner, stop: StopRequest): Runner {
  return withRun(runner, (tool, args, options) => {
    const signal = stop();
    if (signal) return Promise.reject(interruptedBy(signal, "during the change"));
    return runner.run(tool, args, options);
  });
}
