import type { Naming } from "../next-command.js";
import type { Runner } from "../system/runner.js";
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
}

/**
 * The target `runner` reaches, its state in `stateDir`. `naming` is how the operator named it
 * (the CLI's options as given); by default the namespace and the state directory, in full.
 */
export function targetOf(
  runner: Runner,
  stateDir: string,
  naming: Naming = { netns: runner.netns, stateDir },
): Target {
  const scope = runner.netns ? `netns-${runner.netns}` : "host";
  return { runner, files: { stateDir, scope, naming } };
}
