import { commandLine, type Naming, type NextCommand } from "../next-command.js";

/**
 * How a command line names its target, and the hints spelled from it. Apart from target.ts so
 * that the top of the CLI (main.ts, fixes.ts), which every command loads, does not load the
 * runner (execa) and the state files (zod) with it: `netpol --version` and `validate` need
 * neither.
 */

export const DEFAULT_STATE_DIR = "/var/lib/netpol";

/** The options a hint repeats: the namespace, a state directory other than the default, the key directory. */
export function namingOf(opts: {
  readonly netns?: string;
  readonly stateDir?: string;
  readonly keyDir?: string;
}): Naming {
  const stateDir = opts.stateDir !== DEFAULT_STATE_DIR ? opts.stateDir : undefined;
  return { netns: opts.netns, stateDir, keyDir: opts.keyDir };
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
