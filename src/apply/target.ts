import type { Naming } from "../next-command.js";
import type { Runner } from "../system/runner.js";
import { type Host, realHost } from "./host.js";
import type { StateFiles } from "./state/files.js";

/**
 * Where a command works: the runner that reaches the namespace, and the state files that belong
 * to it. Built once, by `targetOf`, so the scope a record is filed under and the namespace its
 * commands run in cannot disagree. Everything the core needs is passed in: it reads nothing
 * behind your back.
 */
export interface Target {
  readonly runner: Runner;
  readonly files: StateFiles;
  /** The clock and the process table the safety paths (locks, journals, reverts) use. */
  readonly host: Host;
}

/**
 * The target `runner` reaches, its state in `stateDir`. `naming` is how the operator named it
 * (the CLI's options as given; by default the namespace and the state directory, in full);
 * `host` the clock and process table (the real ones by default).
 */
export function targetOf(
  runner: Runner,
  stateDir: string,
  options: { readonly naming?: Naming; readonly host?: Host } = {},
): Target {
  const scope = runner.netns ? `netns-${runner.netns}` : "host";
  const naming = options.naming ?? { netns: runner.netns, stateDir };
  return { runner, files: { stateDir, scope, naming }, host: options.host ?? realHost };
}
