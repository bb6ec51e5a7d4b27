import os from "node:os";
import type { Command } from "commander";
import { type Target, targetOf } from "../apply/target.js";
import { commandLine, type Naming, type NextCommand } from "../next-command.js";
import { createRunner } from "../system/runner.js";

export interface TargetOptions {
  readonly netns?: string;
  readonly stateDir?: string;
  /** Given by the commands that read key or token files; hints repeat it. */
  readonly keyDir?: string;
}

export const DEFAULT_STATE_DIR = "/var/lib/netpol";

/** --netns and --state-dir, shared by every command that reads or changes the system. */
export function targetOptions(command: Command): Command {
  return command
    .option("--netns <name>", "run every system command inside this network namespace")
    .option(
      "--state-dir <dir>",
      "where netpol keeps its records and locks",
      process.env.NETPOL_STATE_DIR ?? DEFAULT_STATE_DIR,
    );
}

/** The options a hint repeats: the namespace, a state directory other than the default, the key directory. */
export function namingOf(opts: TargetOptions): Naming {
  const stateDir = opts.stateDir !== DEFAULT_STATE_DIR ? opts.stateDir : undefined;
  return { netns: opts.netns, stateDir, keyDir: opts.keyDir };
}

export function targetFrom(opts: TargetOptions): Target {
  return targetOf(createRunner(opts.netns), opts.stateDir ?? DEFAULT_STATE_DIR, {
    naming: namingOf(opts),
  });
}

/**
 * A hint for the command line `args` ran: `next` with the namespace, state and key directory
 * that command was given (read back from its arguments: an error reaches the top without them).
 */
export function hintFor(next: NextCommand, args: readonly string[]): string {
  const value = (name: string) => {
    const at = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
    if (at < 0) return undefined;
    const arg = args[at] as string;
    return arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[at + 1];
  };
  const stateDir = value("--state-dir");
  return commandLine(
    next,
    namingOf({
      ...(value("--netns") !== undefined ? { netns: value("--netns") as string } : {}),
      ...(stateDir !== undefined ? { stateDir } : {}),
      ...(value("--key-dir") !== undefined ? { keyDir: value("--key-dir") as string } : {}),
    }),
  );
}

export function whoAmI(via: string): string {
  return `${os.userInfo().username}@${os.hostname()} (${via})`;
}
